"""Reference data the agency loads: policies, catalog, clients, mappings (with an audit trail)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from adjudicator.reference import Reference
from onestop.clock import iso_from_ms, now_ms
from onestop.domain.catalog import CatalogItem, parse_catalog_csv
from onestop.domain.clients import Client
from onestop.domain.documents import parse_json
from onestop.domain.errors import (
    ErrorCode,
    Forbidden,
    InvalidDocument,
    NotFound,
    Problem,
    RiskyMappingChange,
)
from onestop.domain.mapping import (
    MappingChange,
    MappingTable,
    diff_mappings,
    mapping_row_csv,
    parse_mapping_csv,
)
from onestop.domain.policy import Policy, parse_policy
from onestop.domain.types import ClientKind
from onestop.redis_client import redis_calls
from onestop.signing import UnusableKey, load_public_key
from onestop.storage.layout import mapping_audit_key, mapping_key
from onestop.storage.records import AuditEntry, audit_fields, decode_audit_entry


@dataclass
class LoadingService:
    """Validates and stores what the agency loads."""

    reference: Reference

    async def put_policy(self, document_json: bytes) -> tuple[Policy, str]:
        """Store a policy document; the policy and its version.

        Raises:
            MalformedDocument: not JSON. InvalidDocument: fields at fault, by path.
        """
        policy = parse_policy(parse_json(document_json))
        return policy, await self.reference.put_policy(policy)

    async def put_catalog(self, csv_text: str) -> tuple[list[CatalogItem], str]:
        """Replace the catalog; its items and version.

        Raises:
            MalformedDocument, InvalidDocument: with row numbers.
        """
        items = parse_catalog_csv(csv_text)
        return items, await self.reference.put_catalog(items)

    async def put_client(self, client: Client) -> Client:
        """Register or update a client (its public key must be Ed25519).

        Raises:
            InvalidDocument: the public key is not a usable Ed25519 key.
        """
        try:
            load_public_key(client.public_key)
        except UnusableKey as error:
            raise InvalidDocument(
                str(error), (Problem(ErrorCode.INVALID, str(error), field="public_key"),)
            ) from error
        await self.reference.put_client(client)
        return client

    async def put_mapping(
        self, client_id: str, csv_text: str, *, confirm: bool, changed_by: str
    ) -> tuple[MappingTable, str, list[MappingChange]]:
        """Replace a client's mapping, refusing risky changes unless confirmed.

        Raises:
            Forbidden: no such hospital or pharmacy.
            MalformedDocument, InvalidDocument: rows at fault (unknown catalog codes too).
            RiskyMappingChange: codes moved to another kind or category, listed; unconfirmed.
        """
        await self.reference.refresh()
        client = self.reference.clients.get(client_id)
        if client is None or client.kind is ClientKind.AGENCY:
            raise Forbidden(f"{client_id} is not a registered hospital or pharmacy")
        table = parse_mapping_csv(csv_text, self.reference.catalog)
        previous = await self.reference.mapping(client_id)
        changes = diff_mappings(previous, table, self.reference.catalog)
        risky = [change for change in changes if change.risky]
        if risky and not confirm:
            raise RiskyMappingChange(
                f"{len(risky)} change(s) move HIS codes to items of another kind or category; "
                "upload again with confirm=true if they are intended",
                tuple(
                    Problem(
                        ErrorCode.RISKY_MAPPING_CHANGE,
                        change.reason,
                        field="catalog_code",
                        his_code=change.his_code,
                    )
                    for change in risky
                ),
            )
        version = await self.reference.put_mapping(client_id, table)
        if changes:
            await self._audit(client_id, changes, changed_by, version)
        return table, version, changes

    async def _audit(
        self, client_id: str, changes: list[MappingChange], changed_by: str, version: str
    ) -> None:
        at = iso_from_ms(now_ms())
        client = self.reference.store.client
        async with redis_calls():
            pipe = client.pipeline(transaction=False)
            for change in changes:
                entry = AuditEntry(
                    at=at,
                    changed_by=changed_by,
                    version=version,
                    his_code=change.his_code,
                    change=change.change,
                    old="\n".join(mapping_row_csv(row) for row in change.old_rows),
                    new="\n".join(mapping_row_csv(row) for row in change.new_rows),
                    risky=change.risky,
                    reason=change.reason,
                )
                pipe.xadd(mapping_audit_key(client_id), audit_fields(entry))  # type: ignore[arg-type]
            await pipe.execute()
        await self.reference.store.replicated(mapping_audit_key(client_id))

    async def mapping_text(self, client_id: str) -> str:
        """A client's current mapping as CSV.

        Raises:
            NotFound: no mapping was uploaded for the client.
        """
        text = await self.reference.store.get(mapping_key(client_id))
        if text is None:
            raise NotFound(f"no mapping for {client_id}")
        return text.decode()

    async def audit(self, client_id: str) -> list[AuditEntry]:
        """Every recorded change to a client's mapping, oldest first."""
        async with redis_calls():
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self.reference.store.client.xrange(mapping_audit_key(client_id)),
            )
        return [decode_audit_entry(fields) for _, fields in entries]
