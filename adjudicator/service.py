"""The settlement service: engine plus storage, at most once, exactly.

Transport-free: the gRPC servicer converts messages and calls these methods; tests can call
them directly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from adjudicator import records
from adjudicator.crypto import MemberCipher
from adjudicator.reference import Reference
from adjudicator.store import CommitArguments, Snapshot, Store
from onestop import keys
from onestop.clock import iso_from_ms, now_ms
from onestop.domain.bill import Visit, check_client_may_settle
from onestop.domain.clients import Client
from onestop.domain.eligibility import entitlement
from onestop.domain.engine import Adjudication, adjudicate
from onestop.domain.errors import (
    Forbidden,
    NoPolicy,
    NotFound,
    OverlappingStay,
    UnknownMember,
    VisitAlreadySettled,
)
from onestop.domain.member import Member, mask_id_number, mask_name
from onestop.domain.policy import Policy
from onestop.domain.settlement import PREVIEW, SETTLED, Eligibility, PolicyRef, Settlement
from onestop.domain.state import YearToDateView
from onestop.domain.stays import stays_overlap
from onestop.domain.types import VisitType
from onestop.errors import Unavailable
from onestop.wire import amounts_text, record_bytes, record_of, replayed_record

log = logging.getLogger("onestop.adjudicator")


@dataclass(frozen=True, slots=True)
class SettleCommand:
    """A mapped visit to settle or preview for one client."""

    client_id: str
    visit_id: str
    member_id: str
    visit: Visit
    fingerprint: bytes


@dataclass
class SettlementService:
    """Settles, previews, reverses and reads settlements."""

    store: Store
    reference: Reference
    cipher: MemberCipher
    commit_attempts: int = 200
    clock: Callable[[], int] = now_ms

    async def preview(self, command: SettleCommand) -> Settlement:
        """Compute as if committed; change nothing."""
        snapshot = await self.store.snapshot(command.member_id, command.client_id, command.visit_id)
        await self.reference.refresh(snapshot.versions)
        client = self._client(command)
        result, policy_ref = self._compute(command, client, snapshot)
        return self._settlement(command, result, policy_ref, None, PREVIEW, None)

    async def settle(self, command: SettleCommand) -> tuple[Settlement, bytes]:
        """Settle and commit, at most once per (client, visit).

        The identical request again answers the original settlement marked ``replayed``; a
        different request for a settled visit is refused. A commit that finds the member's
        state moved since it was read is recomputed and tried again.

        Returns:
            The settlement, and the same as its serialized wire message (built once: it is
            both what Redis stores and what the caller is answered).

        Raises:
            VisitAlreadySettled, OverlappingStay, UnknownMember, NoPolicy, MemberNotEligible,
            Forbidden: refusals; nothing was written.
            Unavailable: Redis is down, or the member's state kept moving; nothing was written.
        """
        started = time.perf_counter()
        for attempt in range(1, self.commit_attempts + 1):
            snapshot = await self.store.snapshot(
                command.member_id, command.client_id, command.visit_id
            )
            await self.reference.refresh(snapshot.versions)
            client = self._client(command)
            earlier = await self._earlier_settlement(command, snapshot)
            if earlier is not None:
                return earlier
            result, policy_ref = self._compute(command, client, snapshot)
            stay = self._check_stay(command.visit, snapshot)
            now = self.clock()
            settlement_id = keys.new_settlement_id(command.member_id, now)
            settlement = self._settlement(
                command, result, policy_ref, settlement_id, SETTLED, iso_from_ms(now)
            )
            record = record_bytes(settlement)
            outcome = await self.store.commit(
                CommitArguments(
                    member_id=command.member_id,
                    client_id=command.client_id,
                    visit_id=command.visit_id,
                    expected_version=records.version_of(snapshot.member),
                    year=result.policy_year,
                    increments=records.increments_text(result.delta),
                    settlement_id=settlement_id,
                    fingerprint=command.fingerprint,
                    record=record,
                    stay=stay,
                    amounts=amounts_text(result.amounts),
                    committed_ms=now,
                    policy=_policy_text(policy_ref),
                )
            )
            if outcome == "OK":
                log.info(
                    "settled",
                    extra={
                        "settlement_id": settlement_id,
                        "client_id": command.client_id,
                        "visit_type": command.visit.visit_type.value,
                        "lines": len(command.visit.lines),
                        "attempts": attempt,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
                return settlement, record
            if outcome == "NOMEMBER":
                raise UnknownMember(f"no member {command.member_id}")
            # CONFLICT: the member's state moved; SETTLED: the visit was settled meanwhile.
            # Either way, read again; a short random pause spreads the contenders out.
            await asyncio.sleep(random.uniform(0, min(0.002 * attempt, 0.05)))
        raise Unavailable(
            f"the member's state kept changing: {self.commit_attempts} attempts; retry"
        )

    async def _earlier_settlement(
        self, command: SettleCommand, snapshot: Snapshot
    ) -> tuple[Settlement, bytes] | None:
        visit = snapshot.visit
        if visit.get(b"st") != b"settled":
            return None
        if visit.get(b"fp") == command.fingerprint.hex().encode():
            stored = await self.store.settlement(visit[b"id"].decode())
            if stored:
                replayed = replayed_record(stored[b"r"])
                return record_of(replayed), replayed
        raise VisitAlreadySettled(
            f"visit {command.visit_id} is settled as {visit[b'id'].decode()} with another "
            "request; reverse it first to settle it again"
        )

    def _client(self, command: SettleCommand) -> Client:
        client = self.reference.clients.get(command.client_id)
        if client is None:
            raise Forbidden(f"client {command.client_id} is not registered")
        check_client_may_settle(client.kind, command.visit.visit_type)
        return client

    def _compute(
        self, command: SettleCommand, client: Client, snapshot: Snapshot
    ) -> tuple[Adjudication, PolicyRef]:
        if not snapshot.member:
            raise UnknownMember(f"no member {command.member_id}")
        member = records.decode_member(command.member_id, snapshot.member, self.cipher)
        policy, policy_ref = self._policy(member, command.visit.policy_year)
        assert client.level is not None  # hospitals and pharmacies always have one
        result = adjudicate(
            command.visit,
            client.level,
            member,
            policy,
            self.reference.catalog,
            records.year_state_of(snapshot.member, command.visit.policy_year),
            records.balance_of(snapshot.member),
        )
        return result, policy_ref

    def _policy(self, member: Member, year: int) -> tuple[Policy, PolicyRef]:
        found = self.reference.policy(member.region, member.scheme.value, year)
        if found is None:
            raise NoPolicy(
                f"no policy for region {member.region}, scheme {member.scheme.value}, {year}"
            )
        policy, version = found
        return policy, PolicyRef(policy.region, policy.scheme.value, policy.year, version)

    @staticmethod
    def _check_stay(visit: Visit, snapshot: Snapshot) -> str:
        if visit.visit_type is not VisitType.INPATIENT:
            return ""
        stay = (visit.first_day, visit.last_day)
        for settlement_id, other in records.stays_of(snapshot.stays).items():
            if stays_overlap(stay, other):
                raise OverlappingStay(
                    f"the stay {stay[0]} to {stay[1]} overlaps settlement {settlement_id} "
                    f"({other[0]} to {other[1]})"
                )
        return f"{stay[0].isoformat()}|{stay[1].isoformat()}"

    @staticmethod
    def _settlement(
        command: SettleCommand,
        result: Adjudication,
        policy_ref: PolicyRef,
        settlement_id: str | None,
        status: str,
        settled_at: str | None,
    ) -> Settlement:
        return Settlement(
            settlement_id=settlement_id,
            client_id=command.client_id,
            visit_id=command.visit_id,
            member_id=command.member_id,
            visit_type=command.visit.visit_type,
            status=status,
            settled_at=settled_at,
            policy=policy_ref,
            amounts=result.amounts,
            lines=result.lines,
            year_to_date=result.year_to_date,
            notes=result.notes,
        )

    async def get(self, settlement_id: str, client_id: str) -> Settlement:
        """A settlement of ``client_id`` (empty: any client's, for the agency).

        Raises:
            NotFound: no such settlement, or another client's.
        """
        stored = await self.store.settlement(settlement_id)
        if not stored or (client_id and stored[b"c"].decode() != client_id):
            raise NotFound(f"no settlement {settlement_id}")
        settlement = record_of(stored[b"r"])
        if stored.get(b"st") == b"reversed":
            settlement = self._reversed_view(settlement, stored[b"ry"].decode(), int(stored[b"ra"]))
        return settlement

    async def find(
        self, client_id: str, visit_id: str, member_id: str, fingerprint: bytes
    ) -> Settlement:
        """The active settlement of a visit when the fingerprint matches, as a replay.

        Raises:
            NotFound: no active settlement of the visit with this fingerprint.
        """
        snapshot = await self.store.snapshot(member_id, client_id, visit_id)
        visit = snapshot.visit
        if visit.get(b"st") == b"settled" and visit.get(b"fp") == fingerprint.hex().encode():
            return (await self.get(visit[b"id"].decode(), client_id)).as_replay()
        raise NotFound(f"no settlement of visit {visit_id} for this request")

    async def reverse(self, settlement_id: str, client_id: str) -> Settlement:
        """Undo exactly what the settlement added, once; again answers the same.

        Raises:
            NotFound: no such settlement, or another client's.
        """
        outcome = await self.store.reverse(settlement_id, client_id, self.clock())
        if outcome.status == "NOTFOUND":
            raise NotFound(f"no settlement {settlement_id}")
        stored = await self.store.settlement(settlement_id)
        settlement = record_of(stored[b"r"])
        if outcome.status == "OK":
            log.info("reversed", extra={"settlement_id": settlement_id, "client_id": client_id})
        return self._reversed_view(settlement, outcome.state_after, outcome.reversed_ms)

    @staticmethod
    def _reversed_view(settlement: Settlement, state_after: str, reversed_ms: int) -> Settlement:
        state, balance = records.parse_state_after(state_after)
        # The cap remaining is shown against the cap the settlement itself was computed with.
        cap = settlement.year_to_date.basic_cap_remaining + settlement.year_to_date.basic_fund
        return settlement.as_reversed(
            YearToDateView.of(state, cap, balance), iso_from_ms(reversed_ms)
        )

    async def eligibility(self, member_id: str, day: date) -> Eligibility:
        """The member's entitlement on ``day``, identity masked.

        Raises:
            UnknownMember, NoPolicy.
        """
        fields = await self.store.member(member_id)
        if not fields:
            raise UnknownMember(f"no member {member_id}")
        await self.reference.refresh()
        member = records.decode_member(member_id, fields, self.cipher)
        policy, policy_ref = self._policy(member, day.year)
        rights = entitlement(policy, member, day)
        balance = records.balance_of(fields)
        return Eligibility(
            member_id=member_id,
            name_masked=mask_name(member.name),
            id_number_masked=mask_id_number(member.id_number),
            scheme=member.scheme.value,
            region=member.region,
            status=member.status.value,
            waiting_until=rights.benefits_start.isoformat() if rights.benefits_start else None,
            in_waiting_period=rights.in_waiting_period,
            continuous_years=rights.continuous_years,
            assistance_category=(
                member.assistance_category.value if member.assistance_category else None
            ),
            supplementary_enrolled=member.supplementary_enrolled,
            personal_account_balance=balance,
            year_to_date=YearToDateView.of(
                records.year_state_of(fields, day.year), rights.annual_cap, balance
            ),
            policy=policy_ref,
        )


def _policy_text(policy: PolicyRef) -> str:
    return f"{policy.region}|{policy.scheme}|{policy.year}|{policy.version}"
