"""The settlement service: engine plus storage, at most once, exactly.

Transport-free: the gRPC servicer converts messages and calls these methods; tests can call
them directly. Storage gives and takes typed records (:mod:`onestop.storage.records`).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from adjudicator.journal import DayEvent, day_events
from adjudicator.reference import Reference
from adjudicator.store import (
    NO_CONTROL_WRITES,
    ClaimAnswer,
    CommitOutcome,
    ControlWrites,
    DecisionOutcome,
    NewSettlement,
    Snapshot,
    Store,
    day_key,
)
from onestop import metrics
from onestop.clock import iso_from_ms, now_ms, settlement_day
from onestop.domain.bill import Visit, check_client_may_settle
from onestop.domain.clients import Client
from onestop.domain.controls import (
    ControlOutcome,
    check_controls,
    history_entry,
    history_to_forget,
)
from onestop.domain.eligibility import entitlement, require_active
from onestop.domain.engine import Adjudication, Amounts, adjudicate
from onestop.domain.errors import (
    DomainError,
    ErrorCode,
    Forbidden,
    InvalidDocument,
    NoPolicy,
    NotFound,
    OverlappingStay,
    Problem,
    UnknownMember,
    VisitAlreadySettled,
)
from onestop.domain.member import Member, mask_id_number, mask_name
from onestop.domain.policy import Policy
from onestop.domain.reconciliation import VisitFacts
from onestop.domain.reviews import Review, ReviewDecision, ReviewStatus, decide
from onestop.domain.settlement import Eligibility, PolicyRef, Settlement, SettlementStatus
from onestop.domain.state import YearToDateView
from onestop.domain.stays import stays_overlap
from onestop.domain.types import VisitType
from onestop.errors import Unavailable
from onestop.storage import layout
from onestop.storage.archive import VisitBundle
from onestop.storage.layout import new_settlement_id, settlement_id_ms
from onestop.storage.records import (
    LookupEntry,
    LookupKind,
    MemberRecord,
    SettlementRecord,
    StateAfter,
    VisitClaim,
    VisitIndex,
    decode_visit,
)
from onestop.wire import answer_bytes, encode_settlement, record_of, replayed_answer

log = logging.getLogger("onestop.adjudicator")


@dataclass(frozen=True, slots=True)
class SettleCommand:
    """A mapped visit to settle or preview for one client."""

    client_id: str
    visit_id: str
    member_id: str
    visit: Visit
    fingerprint: bytes
    resettle_of: str | None = None


class _ArchivedVisit(Exception):
    """The visit is archived: put it back into Redis and settle again (never leaves settle)."""

    def __init__(self, bundle: VisitBundle) -> None:
        super().__init__("the visit is archived")
        self.bundle = bundle


@dataclass(frozen=True, slots=True)
class _Computed:
    """A visit computed: the engine's answer, the policy it applied, the controls' outcome."""

    result: Adjudication
    policy_ref: PolicyRef
    policy: Policy
    controlled: ControlOutcome
    stay: tuple[date, date] | None
    """An inpatient stay's dates, which the member may not hold twice."""


@dataclass(frozen=True, slots=True)
class _HeldClaim:
    """A claim this request made: what it replaced, and whether it added a claimant."""

    previous: VisitClaim | None
    new_claimant: bool


LIST_PAGE_SIZE = 100
"""Events a page of ``GET /v1/settlements?date=`` holds at most."""

CLAIM_STALE_MS = 60_000
"""How long another member's claim on a visit stands without that member settling it.

A request that claimed a visit and died (its process killed between claim and commit) leaves
its claim; after this long another member's request may take it over. A request itself gives
up before committing once half of it has passed, so a claim is never taken from a request
that could still commit (docs/adr/0008)."""


@dataclass
class SettlementService:
    """Settles, previews, reverses and reads settlements."""

    store: Store
    reference: Reference
    commit_attempts: int = 200
    clock: Callable[[], int] = now_ms
    lookup_audit_seconds: int = 400 * 86_400

    async def preview(self, command: SettleCommand) -> Settlement:
        """Compute as if committed; change nothing.

        Every check settle makes is made, in the same order, with the same refusal: an invalid
        ``resettle_of``, a visit settled with another request or for another member, the
        member's eligibility and policy, an overlapping stay. A preview is never a replay: a
        visit already settled (with this very request too) is refused, naming its settlement.
        """
        await self._check_resettle_of(command)
        await self.reference.refresh()
        snapshot = await self.store.snapshot(
            command.member_id,
            command.client_id,
            command.visit_id,
            with_history=self.reference.controls_on,
        )
        client = self._client(command)
        await self._check_not_another_members(command)
        visit = snapshot.visit
        if visit is None:
            visit = await self._archived_index(command)
        if visit is not None and visit.status is SettlementStatus.SETTLED:
            if visit.fingerprint != command.fingerprint:
                raise self._settled_with_another_request(command, visit.settlement_id)
            # Settle would replay it; a preview is never a replay, and computing it again
            # would count the visit twice. Tell the cashier where the settled result is.
            raise VisitAlreadySettled(
                f"visit {command.visit_id} is already settled as {visit.settlement_id} with "
                f"this request: GET /v1/settlements/{visit.settlement_id} reads it"
            )
        computed = self._compute(command, client, self._member(command, snapshot), snapshot)
        return self._settlement(
            command, computed.result, computed.policy_ref, None, SettlementStatus.PREVIEW, None
        )

    async def settle(self, command: SettleCommand) -> tuple[Settlement, bytes]:
        """Settle and commit, at most once per (client, visit).

        The identical request again answers the original settlement marked ``replayed``; a
        different request for a settled visit is refused. A commit that finds the member's
        state moved since it was read is recomputed and tried again.

        Returns:
            The settlement, and the same as its serialized wire message (built once, with
            what Redis keeps of it: :func:`onestop.wire.encode_settlement`).

        Raises:
            VisitAlreadySettled, OverlappingStay, UnknownMember, NoPolicy, MemberNotEligible,
            Forbidden: refusals; nothing was written.
            Unavailable: Redis is down, or the member's state kept moving; nothing was written.
        """
        started = time.perf_counter()
        await self._check_resettle_of(command)
        for consult_archive in (True, False):
            token = secrets.token_hex(8)
            claimed_ms = self.clock()
            claim = await self._claim_visit(command, token, claimed_ms)
            try:
                settled = await self._settle_claimed(
                    command, started, claimed_ms, consult_archive=consult_archive
                )
            except DomainError:
                if claim is not None:
                    await self._release_visit(command, token, claim)
                raise
            except _ArchivedVisit as archived:
                # The visit was settled before and archived: give up this claim, put the
                # visit back (its claim included) and start again, as if never archived.
                if claim is not None:
                    await self._release_visit(command, token, claim)
                await self.store.restore_visit(archived.bundle)
                continue
            break
        # Acknowledged means replicated: a new settlement or a replay is answered only once
        # the configured replicas hold it (and the visit's claim). Falling short is a 503
        # that is safe to retry: the retry replays the settlement and waits again.
        await self.store.replicated(
            layout.member_key(command.member_id),
            layout.visit_claim_key(command.client_id, command.visit_id),
        )
        return settled

    async def _settle_claimed(
        self, command: SettleCommand, started: float, claimed_ms: int, *, consult_archive: bool
    ) -> tuple[Settlement, bytes]:
        for attempt in range(1, self.commit_attempts + 1):
            # Reference data first: whether any policy runs controls decides whether the
            # member's history is read with the snapshot.
            await self.reference.refresh()
            with metrics.stage("adjudicator", "snapshot"):
                snapshot = await self.store.snapshot(
                    command.member_id,
                    command.client_id,
                    command.visit_id,
                    with_history=self.reference.controls_on,
                )
            if snapshot.visit is None and consult_archive:
                # Redis holds no index of this visit for the member: new, or archived. The
                # archive job writes before it trims, so an index trimmed before this snapshot
                # is found in the archive now.
                bundle = self.store.archived_visit(command.client_id, command.visit_id)
                if bundle is not None:
                    raise _ArchivedVisit(bundle)
            client = self._client(command)
            earlier = await self._earlier_settlement(command, snapshot)
            if earlier is not None:
                metrics.SETTLEMENTS.labels(
                    command.client_id, command.visit.visit_type.value, "replayed"
                ).inc()
                return earlier
            member = self._member(command, snapshot)
            with metrics.stage("adjudicator", "compute"):
                computed = self._compute(command, client, member, snapshot)
            result, policy_ref = computed.result, computed.policy_ref
            stay = computed.stay
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
            answer, record = encode_settlement(settlement)
            if now - claimed_ms >= CLAIM_STALE_MS // 2:
                # Past half the claim's life another member's request could soon take the
                # visit over: give up rather than commit on a claim that may not hold.
                raise Unavailable("settling took too long; nothing was settled, retry")
            with metrics.stage("adjudicator", "commit"):
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
                            visit=VisitFacts(
                                visit_type=command.visit.visit_type,
                                first_day=command.visit.first_day,
                                last_day=command.visit.last_day,
                                hospital_level=client.level,
                            ),
                        ),
                        expected_version=member.version,
                        stay=stay,
                        amounts=result.amounts,
                        policy=policy_ref,
                        controls=self._controls_written(
                            command, computed, snapshot, settlement_id, now
                        ),
                    )
                )
            if outcome is CommitOutcome.OK:
                _count_settled(command, result.amounts, computed.controlled, attempt)
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
                return settlement, answer
            if outcome is CommitOutcome.NOMEMBER:
                raise UnknownMember(f"no member {command.member_id}")
            # CONFLICT: the member's state moved; SETTLED: the visit was settled meanwhile.
            # Either way, read again; a short random pause spreads the contenders out.
            metrics.COMMIT_CONFLICTS.labels(outcome.value.lower()).inc()
            await asyncio.sleep(random.uniform(0, min(0.002 * attempt, 0.05)))
        raise Unavailable(
            f"the member's state kept changing: {self.commit_attempts} attempts; retry"
        )

    async def _earlier_settlement(
        self, command: SettleCommand, snapshot: Snapshot
    ) -> tuple[Settlement, bytes] | None:
        """The answer when the visit was settled before: a replay, or a refusal.

        A request identical to one that settled the visit is answered with that settlement,
        replayed: as it stands, also when it has since been reversed (domain section 15: a
        late retry never settles a visit the cashier undid). Another request for a settled
        visit is refused.
        """
        visit = snapshot.visit
        if visit is None:
            return None
        earlier_id = visit.requests.get(command.fingerprint)
        if earlier_id is not None:
            stored = await self.store.settlement(earlier_id)
            if stored is not None and stored.status is SettlementStatus.SETTLED:
                return replayed_answer(stored.record)
            if stored is not None:
                answer = self._as_stored(stored).as_replay()
                return answer, answer_bytes(answer)
        if visit.status is SettlementStatus.SETTLED:
            raise self._settled_with_another_request(command, visit.settlement_id)
        return None

    @staticmethod
    def _settled_with_another_request(
        command: SettleCommand, settlement_id: str
    ) -> VisitAlreadySettled:
        return VisitAlreadySettled(
            f"visit {command.visit_id} is settled as {settlement_id} with another request; "
            "reverse it first to settle it again"
        )

    async def _check_resettle_of(self, command: SettleCommand) -> None:
        """``resettle_of`` must name the caller's reversed settlement of the same visit.

        Raises:
            InvalidDocument: it names anything else (422, before any visit-state check).
        """
        if command.resettle_of is None:
            return
        stored = await self.store.settlement(command.resettle_of)
        if (
            stored is None
            or stored.client_id != command.client_id
            or stored.visit_id != command.visit_id
            or stored.member_id != command.member_id
        ):
            problem = "is not a settlement of this visit"
        elif stored.status is not SettlementStatus.REVERSED:
            problem = "is not reversed: reverse it first"
        else:
            return
        raise InvalidDocument(
            f"resettle_of {command.resettle_of} {problem}",
            (
                Problem(
                    ErrorCode.INVALID,
                    f"resettle_of must name your reversed settlement of visit "
                    f"{command.visit_id}: {command.resettle_of} {problem}",
                    field="resettle_of",
                ),
            ),
        )

    async def _claim_visit(self, command: SettleCommand, token: str, now: int) -> _HeldClaim | None:
        """Claim the (client, visit) for the request's member.

        Returns:
            What this request's claim replaced, to restore on a refusal; ``None`` when the
            member held the visit already (this request claimed nothing).

        Raises:
            VisitAlreadySettled: another member's request settled the visit (and it stands).
            Unavailable: another member's request is settling it right now; retry.
        """
        take_over: VisitClaim | None = None
        for _ in range(3):
            outcome = await self.store.claim_visit(
                command.client_id,
                command.visit_id,
                VisitClaim(command.member_id, token, now),
                take_over.token if take_over is not None else "",
            )
            if outcome.answer is ClaimAnswer.CLAIMED:
                return _HeldClaim(take_over, outcome.new_claimant)
            if outcome.answer is ClaimAnswer.OWN or outcome.holder is None:
                return None
            holder = outcome.holder
            theirs = await self._refuse_if_settled_for(holder.member_id, command)
            if theirs is None and now - holder.claimed_ms < CLAIM_STALE_MS:
                raise Unavailable(
                    f"another request for visit {command.visit_id} (another member) is being "
                    "settled right now; nothing was settled, retry in a moment"
                )
            take_over = holder  # reversed, or left by a request that died
        raise Unavailable(f"visit {command.visit_id} kept changing hands; retry")

    async def _release_visit(self, command: SettleCommand, token: str, claim: _HeldClaim) -> None:
        """Give up the claim of a request that was refused, as if it never claimed (best effort).

        A claim left behind only delays another member's request until it is stale.
        """
        try:
            await self.store.release_visit(
                command.client_id,
                command.visit_id,
                token,
                previous=claim.previous,
                claimant=command.member_id if claim.new_claimant else None,
            )
        except Unavailable:
            log.warning("could not release a visit claim", extra={"visit_id": command.visit_id})

    async def _check_not_another_members(self, command: SettleCommand) -> None:
        """Refuse, as settle would, a visit another member's request settled."""
        claim = await self.store.visit_claim(command.client_id, command.visit_id)
        if claim is not None and claim.member_id != command.member_id:
            await self._refuse_if_settled_for(claim.member_id, command)

    async def _refuse_if_settled_for(
        self, member_id: str, command: SettleCommand
    ) -> VisitIndex | None:
        """Another member's index of the visit; refused when that member's settlement stands.

        Raises:
            VisitAlreadySettled: the visit is settled (not reversed) for ``member_id``.
        """
        theirs = await self.store.visit(member_id, command.client_id, command.visit_id)
        if theirs is not None and theirs.status is SettlementStatus.SETTLED:
            # The visit is this client's own: saying it is another patient's is no leak.
            raise VisitAlreadySettled(
                f"visit {command.visit_id} is settled for another member: a visit id names one "
                "visit of one patient; use this patient's own visit id, or reverse that "
                "settlement first"
            )
        return theirs

    async def _archived_index(self, command: SettleCommand) -> VisitIndex | None:
        """The member's archived index of the visit, ``None`` when there is none.

        Raises:
            VisitAlreadySettled: the archive shows the visit settled for another member.
        """
        bundle = self.store.archived_visit(command.client_id, command.visit_id)
        if bundle is None:
            return None
        for member_id in bundle.indexes:
            if member_id != command.member_id:
                await self._refuse_if_settled_for(member_id, command)
        raw = bundle.indexes.get(command.member_id)
        return None if raw is None else decode_visit(raw)

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
        self, command: SettleCommand, client: Client, record: MemberRecord, snapshot: Snapshot
    ) -> _Computed:
        """The visit's checks, the controls across visits (which may refuse), the engine.

        In the order of the rules: the policy, the member's eligibility, an overlapping stay,
        then the controls (domain section 18), then the engine's steps.
        """
        visit = command.visit
        policy, policy_ref = self._policy(record.member, visit.policy_year, visit.policy_day)
        require_active(record.member)
        stay = self._check_stay(visit, snapshot)
        controlled = check_controls(
            policy.controls,
            visit,
            command.client_id,
            record.member,
            self.reference.catalog,
            snapshot.history,
        )
        result = adjudicate(
            command.visit,
            client.settling_level(),
            record.member,
            policy,
            self.reference.catalog,
            record.year(command.visit.policy_year),
            record.balance,
            client_region=client.region,
            deducted=controlled.deducted,
        )
        return _Computed(result, policy_ref, policy, controlled, stay)

    def _controls_written(
        self,
        command: SettleCommand,
        computed: _Computed,
        snapshot: Snapshot,
        settlement_id: str,
        now: int,
    ) -> ControlWrites:
        """What a commit writes for the controls: history, forgotten entries, a review."""
        controls = computed.policy.controls
        if controls is None or not controls.active:
            return NO_CONTROL_WRITES
        visit, controlled, amounts = command.visit, computed.controlled, computed.result.amounts
        review = None
        if controlled.flagged:
            review = Review(
                settlement_id=settlement_id,
                client_id=command.client_id,
                member_id=command.member_id,
                visit_id=command.visit_id,
                visit_type=visit.visit_type,
                flagged_ms=now,
                findings=controlled.findings,
                funds_paid=amounts.basic_fund + amounts.supplementary + amounts.assistance,
            )
        return ControlWrites(
            history=history_entry(
                settlement_id,
                command.client_id,
                visit,
                controlled.bill_digest,
                controlled.limited_codes,
                controlled.deducted,
            ),
            forget=tuple(history_to_forget(snapshot.history, settlement_day(now))),
            review=review,
        )

    def _policy(self, member: Member, year: int, on: date) -> tuple[Policy, PolicyRef]:
        """The version of the member's policy of ``year`` in force on ``on`` (section 13)."""
        region, scheme = member.region, member.scheme.value
        found = self.reference.policy(region, scheme, year, on)
        if found is None:
            versions = self.reference.policy_versions(region, scheme, year)
            if versions:
                raise NoPolicy(
                    f"no policy for region {region}, scheme {scheme} in force on {on}: the "
                    f"first version of {year} takes effect on {versions[0].in_force_from}; "
                    "the agency loads a version in force from an earlier day"
                )
            raise NoPolicy(f"no policy for region {region}, scheme {scheme}, {year}")
        policy, version = found
        return policy, PolicyRef(
            policy.region, policy.scheme, policy.year, version, policy.in_force_from
        )

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

    async def visit_settlements(self, client_id: str, visit_id: str) -> list[Settlement]:
        """Every settlement of one of the client's visits, newest first, reversed ones too.

        What a terminal that lost an answer asks (单边账): whichever member the visit was
        settled for, and however often it was reversed and settled again.
        """
        ids: set[str] = set()
        for member_id in await self.store.claimants(client_id, visit_id):
            index = await self.store.visit(member_id, client_id, visit_id)
            if index is not None:
                ids.add(index.settlement_id)
                ids.update(index.requests.values())
        records = await self.store.settlements(sorted(ids))
        found = [self._as_stored(record) for record in records if record.client_id == client_id]
        return sorted(found, key=_commit_order, reverse=True)

    async def day_settlements(
        self, client_id: str, day: date, cursor: str | None, limit: int = LIST_PAGE_SIZE
    ) -> tuple[list[Settlement], str | None]:
        """One page of a client's settlements and reversals committed on ``day``.

        In commit order; a settlement reversed the same day appears at both events. The
        cursor names the last event of the previous page (opaque to callers).

        Raises:
            InvalidDocument: the cursor is not one this call gave.
        """
        events = await day_events(self.store.client, client_id, day, self.store.archive)
        start = 0
        if cursor is not None:
            start = bisect.bisect_right(events, _event_of_cursor(cursor))
        page = events[start : start + limit]
        records = await self.store.settlements([event.settlement_id for event in page])
        items = [self._as_stored(record) for record in records]
        more = start + limit < len(events)
        return items, (_cursor_of(page[-1]) if more and page else None)

    async def find(
        self, client_id: str, visit_id: str, member_id: str, fingerprint: bytes
    ) -> Settlement:
        """The settlement an identical earlier request made, as it stands, as a replay.

        Raises:
            NotFound: no request with this fingerprint settled the visit.
        """
        visit = await self.store.visit(member_id, client_id, visit_id)
        earlier_id = visit.requests.get(fingerprint) if visit is not None else None
        if earlier_id is not None:
            return (await self.get(earlier_id, client_id)).as_replay()
        raise NotFound(f"no settlement of visit {visit_id} for this request")

    async def reverse(self, settlement_id: str, client_id: str) -> Settlement:
        """Undo exactly what the settlement added, once; again answers the same.

        Raises:
            NotFound: no such settlement, or another client's.
        """
        stored = await self._own_settlement(settlement_id, client_id)
        if stored.status is SettlementStatus.REVERSED:
            await self.store.replicated(layout.member_key(stored.member_id))
            return self._as_stored(stored)
        settlement = record_of(stored.record)
        outcome = await self.store.reverse(stored, settlement, self.clock())
        if outcome is None:
            raise NotFound(f"no settlement {settlement_id}")
        if not outcome.already:
            _count_reversed(stored.client_id, settlement)
            log.info("reversed", extra={"settlement_id": settlement_id, "client_id": client_id})
        await self.store.replicated(layout.member_key(stored.member_id))
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

    async def reviews(
        self, day: date, status: ReviewStatus | None = None, client_id: str = ""
    ) -> list[Review]:
        """The settlements flagged on ``day``, in the order flagged (of one status, client)."""
        return [
            review
            for review in await self.store.day_reviews(day)
            if (status is None or review.status is status)
            and (not client_id or review.client_id == client_id)
        ]

    async def recoveries(self, day: date, client_id: str = "") -> list[Review]:
        """The recoveries decided on ``day``, in the order decided (of one client)."""
        return [
            review
            for review in await self.store.day_recoveries(day)
            if not client_id or review.client_id == client_id
        ]

    async def decide_review(
        self,
        settlement_id: str,
        decision: ReviewDecision,
        amount: int,
        reviewer: str,
        reason: str,
    ) -> Review:
        """Decide a review once; the same decision again answers the review as decided.

        Raises:
            NotFound: the settlement was not flagged (or does not exist).
            ReviewDecided: it was decided before, otherwise.
            InvalidDocument: the amount does not fit the decision.
        """
        for _ in range(3):
            review = await self.store.review(settlement_id)
            if review is None:
                raise NotFound(f"settlement {settlement_id} is not in the review queue")
            if review.status is not ReviewStatus.OPEN and _same_decision(
                review, decision, amount, reviewer, reason
            ):
                return review  # a retry of the decision that was recorded
            decided = decide(
                review,
                decision,
                amount,
                reviewer,
                reason,
                self.clock(),
                settlement_reversed=review.settlement_status is SettlementStatus.REVERSED,
            )
            outcome = await self.store.record_decision(decided)
            if outcome is DecisionOutcome.NOTFOUND:
                raise NotFound(f"settlement {settlement_id} is not in the review queue")
            if outcome is DecisionOutcome.OK:
                log.info(
                    "review decided",
                    extra={
                        "settlement_id": settlement_id,
                        "decision": decision.value,
                        "recovered": decided.recovered,
                    },
                )
                return decided
            # Decided, or the settlement reversed, meanwhile: read again and decide again.
        raise Unavailable("the review kept changing; retry")

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
        entries = await self.store.lookups(layout.day_text(day), client_ids)
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
        policy, policy_ref = self._policy(member, day.year, day)
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
            birth_date=member.birth_date.isoformat(),
            sex=member.sex,
            enrolled_since=member.enrolled_since.isoformat(),
            out_of_region_registrations=member.out_of_region_registrations,
            registered_diseases=member.registered_diseases,
        )


PAYERS = ("basic_fund", "supplementary", "assistance", "personal_account", "cash", "hospital_part")
"""Who pays a settlement's total (``Amounts``): the ``fund`` label of the fen counters."""


def _count_settled(
    command: SettleCommand, amounts: Amounts, controlled: ControlOutcome, attempts: int
) -> None:
    """Count a committed settlement, the fen each payer paid, its attempts and its flags."""
    visit_type = command.visit.visit_type.value
    metrics.SETTLEMENTS.labels(command.client_id, visit_type, "settled").inc()
    for fund in PAYERS:
        paid = getattr(amounts, fund)
        if paid:
            metrics.FUNDS_FEN.labels(fund, visit_type, command.client_id).inc(paid)
    metrics.COMMIT_ATTEMPTS.observe(attempts)
    for finding in controlled.findings:
        metrics.REVIEWS.labels(finding.control.value, finding.action.value).inc()


def _count_reversed(client_id: str, settlement: Settlement) -> None:
    """Count a reversal and the fen it gave back to each payer."""
    visit_type = settlement.visit_type.value
    metrics.SETTLEMENTS.labels(client_id, visit_type, "reversed").inc()
    for fund in PAYERS:
        paid = getattr(settlement.amounts, fund)
        if paid:
            metrics.FUNDS_REVERSED_FEN.labels(fund, visit_type, client_id).inc(paid)


def _same_decision(
    review: Review, decision: ReviewDecision, amount: int, reviewer: str, reason: str
) -> bool:
    """Whether a decided review records exactly this decision (a retried request)."""
    status = ReviewStatus.ACCEPTED if decision is ReviewDecision.ACCEPT else ReviewStatus.RECOVERED
    return (review.status, review.recovered, review.decided_by, review.reason or "") == (
        status,
        amount,
        reviewer,
        reason,
    )


def _commit_order(settlement: Settlement) -> tuple[str, str]:
    return (settlement.settled_at or "", settlement.settlement_id or "")


def _cursor_of(event: DayEvent) -> str:
    """An opaque cursor naming a day event (URL-safe base64 of its position)."""
    position = f"{event.ms}.{int(event.is_reversal)}.{event.settlement_id}"
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def _event_of_cursor(cursor: str) -> DayEvent:
    problem = Problem(
        ErrorCode.INVALID,
        "cursor is not one this call gave: send next_cursor from the previous page as it is",
        field="cursor",
    )
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ms, reversal, settlement_id = text.split(".", 2)
        event = DayEvent(int(ms), bool(int(reversal)), settlement_id)
    except ValueError as error:
        raise InvalidDocument("bad cursor", (problem,)) from error
    if reversal not in {"0", "1"} or settlement_id_ms(settlement_id) is None:
        raise InvalidDocument("bad cursor", (problem,))
    return event
