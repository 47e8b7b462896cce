"""The settlement service: engine plus storage, at most once, exactly.

Transport-free: the gRPC servicer converts messages and calls these methods; tests can call
them directly. Storage gives and takes typed records (:mod:`onestop.storage.records`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from adjudicator.reference import Reference
from adjudicator.store import CommitOutcome, NewSettlement, Snapshot, Store, day_key
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
from onestop.domain.settlement import Eligibility, PolicyRef, Settlement, SettlementStatus
from onestop.domain.state import YearToDateView
from onestop.domain.stays import stays_overlap
from onestop.domain.types import VisitType
from onestop.errors import Unavailable
from onestop.storage.layout import new_settlement_id
from onestop.storage.records import (
    LookupEntry,
    LookupKind,
    MemberRecord,
    SettlementRecord,
    StateAfter,
)
from onestop.wire import record_bytes, record_of, replayed_record

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
    commit_attempts: int = 200
    clock: Callable[[], int] = now_ms
    lookup_audit_seconds: int = 400 * 86_400

    async def preview(self, command: SettleCommand) -> Settlement:
        """Compute as if committed; change nothing."""
        snapshot = await self.store.snapshot(command.member_id, command.client_id, command.visit_id)
        await self.reference.refresh(snapshot.versions)
        client = self._client(command)
        result, policy_ref = self._compute(command, client, self._member(command, snapshot))
        return self._settlement(command, result, policy_ref, None, SettlementStatus.PREVIEW, None)

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
            member = self._member(command, snapshot)
            result, policy_ref = self._compute(command, client, member)
            stay = self._check_stay(command.visit, snapshot)
            now = self.clock()
            settlement_id = new_settlement_id(command.member_id, now)
            settlement = self._settlement(
                command,
                result,
                policy_ref,
                settlement_id,
                SettlementStatus.SETTLED,
                iso_from_ms(now),
            )
            record = record_bytes(settlement)
            outcome = await self.store.commit(
                NewSettlement(
                    settlement=SettlementRecord(
                        settlement_id=settlement_id,
                        status=SettlementStatus.SETTLED,
                        fingerprint=command.fingerprint,
                        client_id=command.client_id,
                        member_id=command.member_id,
                        visit_id=command.visit_id,
                        policy_year=result.policy_year,
                        committed_ms=now,
                        delta=result.delta,
                        record=record,
                    ),
                    expected_version=member.version,
                    stay=stay,
                    amounts=result.amounts,
                    policy=policy_ref,
                )
            )
            if outcome is CommitOutcome.OK:
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
            if outcome is CommitOutcome.NOMEMBER:
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
        if visit is None or visit.status is not SettlementStatus.SETTLED:
            return None
        if visit.fingerprint == command.fingerprint:
            stored = await self.store.settlement(visit.settlement_id)
            if stored is not None:
                replayed = replayed_record(stored.record)
                return record_of(replayed), replayed
        raise VisitAlreadySettled(
            f"visit {command.visit_id} is settled as {visit.settlement_id} with another "
            "request; reverse it first to settle it again"
        )

    def _client(self, command: SettleCommand) -> Client:
        client = self.reference.clients.get(command.client_id)
        if client is None:
            raise Forbidden(f"client {command.client_id} is not registered")
        check_client_may_settle(client.kind, command.visit.visit_type)
        return client

    @staticmethod
    def _member(command: SettleCommand, snapshot: Snapshot) -> MemberRecord:
        if snapshot.member is None:
            raise UnknownMember(f"no member {command.member_id}")
        return snapshot.member

    def _compute(
        self, command: SettleCommand, client: Client, record: MemberRecord
    ) -> tuple[Adjudication, PolicyRef]:
        policy, policy_ref = self._policy(record.member, command.visit.policy_year)
        result = adjudicate(
            command.visit,
            client.settling_level(),
            record.member,
            policy,
            self.reference.catalog,
            record.year(command.visit.policy_year),
            record.balance,
        )
        return result, policy_ref

    def _policy(self, member: Member, year: int) -> tuple[Policy, PolicyRef]:
        found = self.reference.policy(member.region, member.scheme.value, year)
        if found is None:
            raise NoPolicy(
                f"no policy for region {member.region}, scheme {member.scheme.value}, {year}"
            )
        policy, version = found
        return policy, PolicyRef(policy.region, policy.scheme, policy.year, version)

    @staticmethod
    def _check_stay(visit: Visit, snapshot: Snapshot) -> tuple[date, date] | None:
        if visit.visit_type is not VisitType.INPATIENT:
            return None
        stay = (visit.first_day, visit.last_day)
        for other in snapshot.stays:
            if stays_overlap(stay, (other.admission, other.discharge)):
                # What the window needs to act, and nothing of another hospital's: neither
                # its settlement nor the patient's dates there.
                raise OverlappingStay(
                    f"the member has an active inpatient stay that overlaps {stay[0]} to "
                    f"{stay[1]}: check the dates, or settle once that stay is reversed"
                )
        return stay

    @staticmethod
    def _settlement(
        command: SettleCommand,
        result: Adjudication,
        policy_ref: PolicyRef,
        settlement_id: str | None,
        status: SettlementStatus,
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

    async def _own_settlement(self, settlement_id: str, client_id: str) -> SettlementRecord:
        stored = await self.store.settlement(settlement_id)
        if stored is None or (client_id and stored.client_id != client_id):
            raise NotFound(f"no settlement {settlement_id}")
        return stored

    async def get(self, settlement_id: str, client_id: str) -> Settlement:
        """A settlement of ``client_id`` (empty: any client's, for the agency).

        Raises:
            NotFound: no such settlement, or another client's.
        """
        return self._as_stored(await self._own_settlement(settlement_id, client_id))

    async def find(
        self, client_id: str, visit_id: str, member_id: str, fingerprint: bytes
    ) -> Settlement:
        """The active settlement of a visit when the fingerprint matches, as a replay.

        Raises:
            NotFound: no active settlement of the visit with this fingerprint.
        """
        snapshot = await self.store.snapshot(member_id, client_id, visit_id)
        visit = snapshot.visit
        if (
            visit is not None
            and visit.status is SettlementStatus.SETTLED
            and visit.fingerprint == fingerprint
        ):
            return (await self.get(visit.settlement_id, client_id)).as_replay()
        raise NotFound(f"no settlement of visit {visit_id} for this request")

    async def reverse(self, settlement_id: str, client_id: str) -> Settlement:
        """Undo exactly what the settlement added, once; again answers the same.

        Raises:
            NotFound: no such settlement, or another client's.
        """
        stored = await self._own_settlement(settlement_id, client_id)
        if stored.status is SettlementStatus.REVERSED:
            return self._as_stored(stored)
        settlement = record_of(stored.record)
        outcome = await self.store.reverse(
            stored, settlement.amounts, settlement.policy, self.clock()
        )
        if outcome is None:
            raise NotFound(f"no settlement {settlement_id}")
        if not outcome.already:
            log.info("reversed", extra={"settlement_id": settlement_id, "client_id": client_id})
        return self._reversed_view(settlement, outcome.state_after, outcome.reversed_ms)

    def _as_stored(self, stored: SettlementRecord) -> Settlement:
        """The settlement as it stands: as committed, or as its reversal left it."""
        settlement = record_of(stored.record)
        if stored.state_after is not None and stored.reversed_ms is not None:
            return self._reversed_view(settlement, stored.state_after, stored.reversed_ms)
        return settlement

    @staticmethod
    def _reversed_view(settlement: Settlement, after: StateAfter, reversed_ms: int) -> Settlement:
        # The cap remaining is shown against the cap the settlement itself was computed with.
        cap = settlement.year_to_date.basic_cap_remaining + settlement.year_to_date.basic_fund
        return settlement.as_reversed(
            YearToDateView.of(after.year_to_date, cap, after.balance), iso_from_ms(reversed_ms)
        )

    async def eligibility(self, member_id: str, day: date, client_id: str) -> Eligibility:
        """The member's entitlement on ``day``, identity masked; kept in the audit trail.

        Raises:
            UnknownMember, NoPolicy.
        """
        record = await self.store.member(member_id)
        await self._audit(client_id, LookupKind.ELIGIBILITY, member_id, record, day)
        if record is None:
            raise UnknownMember(f"no member {member_id}")
        return await self._eligibility(record, day)

    async def lookup(self, id_number: str, day: date, client_id: str) -> Eligibility:
        """The entitlement of the active member with this id number (what the patient shows).

        The audit trail keeps the id number's blind index, never the number; a refusal does
        not repeat it.

        Raises:
            UnknownMember, NoPolicy.
        """
        member_id = await self.store.member_id_of(id_number)
        record = await self.store.member(member_id) if member_id else None
        if record is not None and record.member.id_number != id_number:
            # An index entry left behind (the member's id number changed while a key
            # rotation moved its index): it names someone else now.
            member_id, record = None, None
        await self._audit(
            client_id,
            LookupKind.LOOKUP,
            member_id or "",
            record,
            day,
            self.store.cipher.blind_index(id_number),
        )
        if record is None:
            raise UnknownMember("no active member is enrolled with this id number")
        return await self._eligibility(record, day)

    async def lookups(self, day: date, client_ids: list[str]) -> list[LookupEntry]:
        """The audit trail of ``day`` (Asia/Shanghai) of these clients (empty: all of them)."""
        if not client_ids:
            await self.reference.refresh()
            client_ids = sorted(self.reference.clients)
        entries = await self.store.lookups(day.strftime("%Y%m%d"), client_ids)
        return sorted(entries, key=lambda entry: entry.at)

    async def _audit(
        self,
        client_id: str,
        kind: LookupKind,
        member_id: str,
        record: MemberRecord | None,
        day: date,
        blind_index: str = "",
    ) -> None:
        now = self.clock()
        await self.store.record_lookup(
            LookupEntry(
                at=iso_from_ms(now),
                client_id=client_id,
                kind=kind,
                member_id=member_id if record is not None else "",
                found=record is not None,
                asked_date=day.isoformat(),
                blind_index=blind_index,
            ),
            day_key(now),
            self.lookup_audit_seconds,
        )

    async def _eligibility(self, record: MemberRecord, day: date) -> Eligibility:
        await self.reference.refresh()
        member = record.member
        policy, policy_ref = self._policy(member, day.year)
        rights = entitlement(policy, member, day)
        return Eligibility(
            member_id=member.member_id,
            name_masked=mask_name(member.name),
            id_number_masked=mask_id_number(member.id_number),
            scheme=member.scheme,
            region=member.region,
            status=member.status,
            waiting_until=rights.benefits_start.isoformat() if rights.benefits_start else None,
            in_waiting_period=rights.in_waiting_period,
            continuous_years=rights.continuous_years,
            assistance_category=member.assistance_category,
            supplementary_enrolled=member.supplementary_enrolled,
            personal_account_balance=record.balance,
            year_to_date=YearToDateView.of(
                record.year(day.year), rights.annual_cap, record.balance
            ),
            policy=policy_ref,
        )
