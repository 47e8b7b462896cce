"""Hot copies of what the gateway reads on every request: clients, catalog, mappings.

Versions come from the process's :class:`~onestop.reference_versions.VersionsCache` (read
from Redis at most once a bound, default 1 s, and forgotten at once when a write is announced);
a kind is fetched from the adjudicator again only when its version moved, so an agency upload
applies from the next request on in the process that made it, and within the bound in every
other gateway process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from gateway.adjudicator_client import AdjudicatorClient
from onestop.domain.catalog import CatalogItem, parse_catalog_csv
from onestop.domain.clients import Client
from onestop.domain.mapping import MappingTable, parse_mapping_csv
from onestop.process import freeze_long_lived_objects

NO_MAPPING = MappingTable({})


class GatewayReference:
    """Clients, catalog and per-client mappings, each kept with the version it was read at."""

    def __init__(self, adjudicator: AdjudicatorClient) -> None:
        self.adjudicator = adjudicator
        self.latest: dict[str, str] = {}
        self._clients: tuple[str | None, dict[str, Client]] = (None, {})
        self._catalog: tuple[str | None, dict[str, CatalogItem]] = (None, {})
        self._mappings: dict[str, tuple[str | None, MappingTable]] = {}
        # One lock per kind: a catalog being parsed (most of a second) does not hold up a
        # registry or mapping read.
        self._clients_lock = asyncio.Lock()
        self._catalog_lock = asyncio.Lock()
        self._mappings_lock = asyncio.Lock()

    def observe(self, versions: Mapping[str, str]) -> None:
        """Note the versions just read (from the process's versions cache)."""
        self.latest = dict(versions)

    async def client(self, client_id: str) -> Client | None:
        """A registered client, read again when the registry's version moved."""
        return (await self._registry()).get(client_id)

    async def _registry(self) -> dict[str, Client]:
        """Every registered client by id, read again when the registry's version moved."""
        version = self.latest.get("clients")
        if self._clients[0] != version or version is None:
            async with self._clients_lock:
                if self._clients[0] != version or version is None:
                    listed, listed_version = await self.adjudicator.list_clients()
                    clients = {client.client_id: client for client in listed}
                    self._clients = (listed_version or version, clients)
        return self._clients[1]

    async def catalog(self) -> dict[str, CatalogItem]:
        """The catalog, read again when its version moved."""
        version = self.latest.get("catalog")
        if self._catalog[0] != version:
            async with self._catalog_lock:
                if self._catalog[0] != version:
                    text = await self.adjudicator.catalog_text()
                    # Tens of thousands of rows, most of a second: parsed beside the event
                    # loop, which goes on answering (the GIL is handed back every few ms).
                    items = await asyncio.to_thread(parse_catalog_csv, text) if text.strip() else []
                    self._catalog = (version, {item.code: item for item in items})
                    freeze_long_lived_objects()
        return self._catalog[1]

    async def warm(self, versions: Mapping[str, str]) -> None:
        """Read the registry and the catalog now, before the first request needs them.

        Started beside the gateway's start (not waited for): a request arriving meanwhile
        waits for the same read instead of starting another.
        """
        self.observe(versions)
        await self._registry()
        await self.catalog()

    async def mapping(self, client_id: str) -> MappingTable:
        """A client's mapping (empty when none was uploaded), read again when it moved."""
        version = self.latest.get(f"mapping:{client_id}")
        if version is None:
            return NO_MAPPING
        cached = self._mappings.get(client_id)
        if cached is None or cached[0] != version:
            async with self._mappings_lock:
                cached = self._mappings.get(client_id)
                if cached is None or cached[0] != version:
                    text = await self.adjudicator.mapping_text(client_id)
                    cached = (version, await asyncio.to_thread(parse_mapping_csv, text, None))
                    self._mappings[client_id] = cached
                    freeze_long_lived_objects()
        return cached[1]
