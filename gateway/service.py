"""What the gateway does for each call, apart from HTTP: map, check, settle, sign."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from gateway.adjudicator_client import AdjudicatorClient
from gateway.auth import Authenticator
from gateway.receipts import ReceiptSigner
from gateway.reference import GatewayReference
from onestop.domain.bill import MAX_BILL_LINES, VisitRequest, check_client_may_settle
from onestop.domain.clients import Client
from onestop.domain.errors import BillRejected, NotFound
from onestop.domain.mapping import map_bill
from onestop.domain.settlement import Settlement
from onestop.domain.types import ClientKind
from onestop.errors import TooLarge, Unavailable
from onestop.redis_client import RedisClient
from onestop.signing import canonical_json

log = logging.getLogger("onestop.gateway")


def request_fingerprint(body: bytes) -> bytes:
    """SHA-256 of the request body in canonical JSON (sorted keys, no spaces).

    The same request sent again matches however its JSON was spaced or its keys ordered.
    """
    return hashlib.sha256(canonical_json(orjson.loads(body))).digest()


@dataclass
class Gateway:
    """The gateway's parts, shared by every request of one process."""

    adjudicator: AdjudicatorClient
    reference: GatewayReference
    auth: Authenticator
    signer: ReceiptSigner
    redis: RedisClient

    def receipt(self, settlement: Settlement) -> dict[str, Any]:
        """A settlement as the contract's result, signed."""
        result = settlement.to_contract()
        result["signature"] = self.signer.signature(result)
        return result

    async def settle(
        self, client: Client, visit: VisitRequest, body: bytes, *, preview: bool
    ) -> Settlement:
        """Map and check the bill, then settle (or preview) it.

        Raises:
            DomainError: a refusal (the bill's faults, the adjudicator's refusal, a bill over
                the size limit); nothing was settled.
        """
        if len(visit.lines) > MAX_BILL_LINES:
            raise TooLarge(
                f"a bill may have at most {MAX_BILL_LINES} lines, not {len(visit.lines)}"
            )
        check_client_may_settle(client.kind, visit.visit_type)
        fingerprint = request_fingerprint(body)
        catalog = await self.reference.catalog()
        mapping = await self.reference.mapping(client.client_id)
        try:
            coded = map_bill(visit, mapping, catalog)
        except BillRejected:
            if not preview:
                # The identical request may have settled before the mapping changed: its
                # answer then stands. Otherwise the bill's faults are the answer.
                earlier = await self._earlier(client, visit, fingerprint)
                if earlier is not None:
                    return earlier
            raise
        return await self.adjudicator.settle(
            coded,
            client_id=client.client_id,
            visit_id=visit.visit_id,
            member_id=visit.member_id,
            fingerprint=fingerprint,
            preview=preview,
        )

    async def _earlier(
        self, client: Client, visit: VisitRequest, fingerprint: bytes
    ) -> Settlement | None:
        try:
            return await self.adjudicator.find(
                client_id=client.client_id,
                visit_id=visit.visit_id,
                member_id=visit.member_id,
                fingerprint=fingerprint,
            )
        except (NotFound, Unavailable):
            return None  # not found, or not known now: the bill's faults are the answer

    @staticmethod
    def owner_filter(client: Client) -> str:
        """The client whose settlements a caller may see: its own; the agency's, anyone's."""
        return "" if client.kind is ClientKind.AGENCY else client.client_id

    async def eligibility(self, member_id: str, day: date) -> dict[str, Any]:
        """The member's entitlement on ``day``, identity masked."""
        answer = await self.adjudicator.eligibility(member_id, day)
        return answer.to_contract()
