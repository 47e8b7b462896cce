"""Reference data kept hot in process: policies, catalog, clients; loaded and refreshed.

Each kind has a version in Redis (:data:`onestop.storage.layout.VERSIONS_KEY`). Every
settlement asks the process's :class:`~onestop.reference_versions.VersionsCache` for the
versions (from memory while they are younger than the bound, default 1 s) and reloads a kind
only when its version moved. A write announces itself, so a policy or catalog the agency loads
applies at once in the process that wrote it and, in every other process, as soon as the
announcement arrives and at the latest after the bound.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from adjudicator.store import Store
from onestop.domain.catalog import CatalogItem, catalog_csv, parse_catalog_csv
from onestop.domain.clients import Client
from onestop.domain.mapping import MappingTable, mapping_csv, parse_mapping_csv
from onestop.domain.policy import Policy, parse_policy, policy_to_document
from onestop.process import freeze_long_lived_objects
from onestop.reference_versions import VersionsCache
from onestop.storage.layout import (
    CATALOG_KEY,
    CATALOG_KIND,
    CLIENTS_KEY,
    CLIENTS_KIND,
    POLICIES_KEY,
    POLICIES_KIND,
    mapping_key,
    mapping_kind,
    policy_field,
)


def content_version(text: str | bytes) -> str:
    """A version naming exactly this content: 12 hex digits of its SHA-256."""
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:12]


def fresh_version() -> str:
    """A new version for a collection (it changes on every write)."""
    return os.urandom(6).hex()


@dataclass
class Reference:
    """Hot copies of the reference data, each with the version it was read at."""

    store: Store
    versions_cache: VersionsCache | None = None
    """Where the versions come from; ``None`` reads Redis every time (tests, tools)."""
    versions: dict[str, str] = field(default_factory=dict)
    policies: dict[tuple[str, str, int], tuple[tuple[Policy, str], ...]] = field(
        default_factory=dict
    )
    """(region, scheme, year) -> its versions with their content versions, earliest first."""
    catalog: dict[str, CatalogItem] = field(default_factory=dict)
    controls_on: bool = False
    """Whether any loaded policy runs controls across visits (then histories are read)."""
    clients: dict[str, Client] = field(default_factory=dict)

    async def refresh(self, versions: Mapping[str, str] | None = None) -> None:
        """Reload whatever changed since it was read (``versions`` as just read, if at hand)."""
        if versions is not None:
            current = versions
        elif self.versions_cache is not None:
            current = await self.versions_cache.current()
        else:
            current = await self.store.versions()
        loaded = False
        for kind, loader in (
            (POLICIES_KIND, self._load_policies),
            (CATALOG_KIND, self._load_catalog),
            (CLIENTS_KIND, self._load_clients),
        ):
            if current.get(kind) != self.versions.get(kind):
                await loader()
                loaded = True
                if kind in current:
                    self.versions[kind] = current[kind]
        if loaded:
            freeze_long_lived_objects()

    async def _load_policies(self) -> None:
        raw = await self.store.hgetall(POLICIES_KEY)
        loaded: dict[tuple[str, str, int], list[tuple[Policy, str]]] = {}
        for value in raw.values():
            entry = json.loads(value)
            policy = parse_policy(entry["document"])
            loaded.setdefault((policy.region, policy.scheme.value, policy.year), []).append(
                (policy, str(entry["version"]))
            )
        self.policies = {
            key: tuple(sorted(versions, key=lambda version: version[0].in_force_from))
            for key, versions in loaded.items()
        }
        # Read by every settlement: found once per load, not per request.
        self.controls_on = any(
            policy.controls is not None and policy.controls.active
            for versions in self.policies.values()
            for policy, _ in versions
        )

    async def _load_catalog(self) -> None:
        text = await self.store.get(CATALOG_KEY)
        items = parse_catalog_csv(text.decode()) if text else []
        self.catalog = {item.code: item for item in items}

    async def _load_clients(self) -> None:
        raw = await self.store.hgetall(CLIENTS_KEY)
        self.clients = {
            name.decode(): Client.model_validate_json(value) for name, value in raw.items()
        }

    def policy(self, region: str, scheme: str, year: int, on: date) -> tuple[Policy, str] | None:
        """The policy version of ``year`` in force on ``on`` and its content version, if any.

        ``on`` is the day that chooses (:attr:`onestop.domain.bill.Visit.policy_day`); the
        versions are few, earliest first, so the latest one started by then is found by a walk.
        """
        found = None
        for version in self.policies.get((region, scheme, year), ()):
            if version[0].in_force_from > on:
                break
            found = version
        return found

    def policy_versions(self, region: str, scheme: str, year: int) -> tuple[Policy, ...]:
        """Every loaded version of one policy year, earliest first."""
        return tuple(policy for policy, _ in self.policies.get((region, scheme, year), ()))

    # -- writes -------------------------------------------------------------------------------

    async def put_policy(self, policy: Policy) -> str:
        """Store a policy version; its content version.

        It replaces the version of its region, scheme and year in force from the same day
        (January 1 when the document has no ``effective_from``), and no other.
        """
        document = policy_to_document(policy)
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        version = content_version(canonical)
        value = json.dumps({"version": version, "document": document}, ensure_ascii=False)
        await self.store.put_reference(
            POLICIES_KIND,
            POLICIES_KEY,
            value,
            fresh_version(),
            field=policy_field(
                policy.region, policy.scheme.value, policy.year, policy.effective_from
            ),
        )
        self._written()
        await self.refresh()
        return version

    async def put_catalog(self, items: list[CatalogItem]) -> str:
        """Replace the catalog; its version."""
        text = catalog_csv(items)
        version = content_version(text)
        await self.store.put_reference(CATALOG_KIND, CATALOG_KEY, text, version)
        self._written()
        await self.refresh()
        return version

    async def put_client(self, client: Client) -> None:
        """Register or update a client."""
        await self.store.put_reference(
            CLIENTS_KIND,
            CLIENTS_KEY,
            client.model_dump_json(),
            fresh_version(),
            field=client.client_id,
        )
        self._written()
        await self.refresh()

    def _written(self) -> None:
        """This process wrote reference data: its next read of the versions goes to Redis."""
        if self.versions_cache is not None:
            self.versions_cache.invalidate()

    async def mapping(self, client_id: str) -> MappingTable:
        """A client's mapping as stored (empty when none was uploaded)."""
        text = await self.store.get(mapping_key(client_id))
        if not text:
            return MappingTable({})
        return parse_mapping_csv(text.decode(), None)

    async def put_mapping(self, client_id: str, table: MappingTable) -> str:
        """Replace a client's mapping; its version."""
        text = mapping_csv(table)
        version = content_version(text)
        await self.store.put_reference(
            mapping_kind(client_id), mapping_key(client_id), text, version
        )
        self._written()
        return version

    def catalog_text(self) -> str:
        """The catalog as CSV."""
        return catalog_csv(self.catalog.values())
