"""Redis access for the adjudicator: snapshots, atomic commits and reversals, reference data.

The service gets typed records (:mod:`onestop.storage.records`) from here and gives typed
values back; every key and field name comes from :mod:`onestop.storage.layout`. Every
multi-key update is one Lua script whose keys share the member's slot, and the scripts know
no field names: they receive field/value pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from importlib import resources
from typing import cast

import orjson

from onestop.clock import now_ms, settlement_day
from onestop.domain.controls import PastVisit
from onestop.domain.engine import Amounts
from onestop.domain.errors import SettlementRecovered
from onestop.domain.reconciliation import EntryKind, JournalEntry
from onestop.domain.reviews import Review, ReviewStatus
from onestop.domain.settlement import PolicyRef, Settlement, SettlementStatus
from onestop.redis_client import (
    NO_REPLICATION,
    LuaScript,
    RedisClient,
    RedisPipeline,
    Replication,
    redis_calls,
    run_pipeline,
    wait_for_replicas,
)
from onestop.reference_versions import announce_versions
from onestop.storage import layout
from onestop.storage.archive import ArchiveReader, VisitBundle
from onestop.storage.crypto import MemberCipher
from onestop.storage.layout import (
    MemberField,
    ReviewField,
    SettlementField,
    VisitClaimField,
    VisitField,
)
from onestop.storage.records import (
    CorruptRecord,
    LookupEntry,
    MemberRecord,
    Pairs,
    SettlementRecord,
    StateAfter,
    Stay,
    VisitClaim,
    VisitIndex,
    day_total_increments,
    decision_fields,
    decode_claimants,
    decode_history,
    decode_lookup_entry,
    decode_member,
    decode_review,
    decode_settlement,
    decode_state_after,
    decode_stays,
    decode_visit,
    decode_visit_claim,
    history_value,
    journal_fields,
    lookup_fields,
    member_increments,
    reversal_fields,
    review_fields,
    settlement_fields,
    state_capture,
    stay_value,
    visit_claim_fields,
    visit_fields,
)


def lua_script(*names: str) -> LuaScript:
    """The script made of these files of ``adjudicator/lua`` (a prelude, then the body)."""
    folder = resources.files("adjudicator").joinpath("lua")
    return LuaScript("".join(folder.joinpath(name).read_text(encoding="utf-8") for name in names))


def _lists(*lists: Pairs) -> list[bytes]:
    """Field/value lists as the scripts read them: one argument each.

    Each is a JSON array of text, ``[name, value, name, value, ...]``: values travel as text
    because Lua numbers are exact only to 2^53, while ``HINCRBY`` reads text exactly.
    """
    return [orjson.dumps([str(item) for pair in pairs for item in pair]) for pairs in lists]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What settling one visit reads of the member, taken atomically."""

    member: MemberRecord | None
    stays: tuple[Stay, ...]
    visit: VisitIndex | None
    history: tuple[PastVisit, ...] = ()
    """The member's recent settlements, for the controls across visits."""


@dataclass(frozen=True, slots=True)
class ControlWrites:
    """What a commit writes for the controls across visits (domain section 18).

    Attributes:
        history: the settlement's history entry (``None``: the policy runs no controls).
        forget: settlement ids of history entries to drop (too old, or too many).
        review: the review to open when the controls flagged the settlement.
    """

    history: PastVisit | None = None
    forget: tuple[str, ...] = ()
    review: Review | None = None


NO_CONTROL_WRITES = ControlWrites()


@dataclass(frozen=True, slots=True)
class NewSettlement:
    """Everything a commit writes.

    Attributes:
        expected_version: the member version the computation read.
        stay: an inpatient stay's dates, which the member may not hold twice.
        controls: the history entry, forgotten entries and review the controls write.
    """

    settlement: SettlementRecord
    expected_version: int
    stay: tuple[date, date] | None
    amounts: Amounts
    policy: PolicyRef
    controls: ControlWrites = NO_CONTROL_WRITES


class CommitOutcome(StrEnum):
    """What the commit script answered."""

    OK = "OK"
    CONFLICT = "CONFLICT"
    """The member's figures moved since the snapshot: compute again."""
    SETTLED = "SETTLED"
    """The visit was settled meanwhile."""
    NOMEMBER = "NOMEMBER"


class DecisionOutcome(StrEnum):
    """What the decision script answered."""

    OK = "OK"
    DECIDED = "DECIDED"
    """Decided meanwhile: nothing written."""
    NOTFOUND = "NOTFOUND"
    REVERSED = "REVERSED"
    """A recovery of a settlement reversed meanwhile: nothing written."""


@dataclass(frozen=True, slots=True)
class ReversalOutcome:
    """What a reversal did: ``reversed`` now, or found it ``already`` reversed."""

    already: bool
    state_after: StateAfter
    reversed_ms: int


class ClaimAnswer(StrEnum):
    """What the claim script answered."""

    CLAIMED = "CLAIMED"
    """This request holds the visit now."""
    OWN = "OWN"
    """The member held it already (its own visit index decides the rest)."""
    OTHER = "OTHER"
    """Another member's request holds it: see :attr:`ClaimOutcome.holder`."""


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    """The claim script's answer, and the other member's claim when there is one."""

    answer: ClaimAnswer
    holder: VisitClaim | None = None
    new_claimant: bool = False
    """Claimed by a member that never held the visit before (its release forgets it)."""


class Store:
    """The adjudicator's view of Redis."""

    def __init__(
        self,
        client: RedisClient,
        cipher: MemberCipher,
        replication: Replication = NO_REPLICATION,
        archive: ArchiveReader | None = None,
    ) -> None:
        self.client = client
        self.cipher = cipher
        self.replication = replication
        self.archive = archive
        """Where settlements and visits of days Redis no longer holds are read from."""
        self._read = lua_script("read_member.lua")
        self._commit = lua_script("prelude.lua", "commit_settlement.lua")
        self._reverse = lua_script("prelude.lua", "reverse_settlement.lua")
        self._claim_visit = lua_script("claim_visit.lua")
        self._release_visit = lua_script("release_visit.lua")
        self._restore_hash = lua_script("restore_hash.lua")
        self._decide_review = lua_script("decide_review.lua")

    async def replicated(self, *keys: str) -> None:
        """Return once the writes to the primaries of ``keys`` reached the replicas required.

        Raises:
            Unavailable: they did not confirm in time (the writes stay; retrying is safe).
        """
        await wait_for_replicas(self.client, keys, self.replication)

    async def snapshot(
        self, member_id: str, client_id: str, visit_id: str, *, with_history: bool = True
    ) -> Snapshot:
        """Read the member, its stays and the visit's settlement, at one moment.

        ``with_history`` also reads the member's history (when some policy runs controls
        across visits; otherwise it is neither read nor written).

        The member's three keys share a slot and are read by one script. The reference
        versions are not read here: :class:`onestop.reference_versions.VersionsCache` keeps
        them, so that no one key is read by every settlement.
        """
        member_keys = [
            layout.member_key(member_id),
            layout.stays_key(member_id),
            layout.visit_key(member_id, client_id, visit_id),
            layout.history_key(member_id),
        ]
        async with redis_calls():
            member, stays, visit, history = await self._read(
                self.client, member_keys, ("1" if with_history else "0",)
            )
        return Snapshot(
            member=decode_member(member_id, _pairs(member), self.cipher),
            stays=decode_stays(_pairs(stays)),
            visit=decode_visit(_pairs(visit)),
            history=decode_history(_pairs(history)) if history else (),
        )

    async def claim_visit(
        self, client_id: str, visit_id: str, claim: VisitClaim, take_over: str = ""
    ) -> ClaimOutcome:
        """Claim a (client, visit) for a member (the claim script; see its description).

        Args:
            client_id: the client whose visit it is.
            visit_id: the client's visit id.
            claim: the member, this request's token and the time.
            take_over: the token of another member's claim found stale or reversed.
        """
        async with redis_calls():
            answer = await self._claim_visit(
                self.client,
                [layout.visit_claim_key(client_id, visit_id)],
                [
                    VisitClaimField.MEMBER_ID.value,
                    VisitClaimField.TOKEN.value,
                    VisitClaimField.CLAIMED_MS.value,
                    claim.member_id,
                    claim.token,
                    claim.claimed_ms,
                    take_over,
                    layout.claimant_field(claim.member_id),
                ],
            )
        outcome = ClaimAnswer(answer[0].decode())
        if outcome is ClaimAnswer.CLAIMED:
            return ClaimOutcome(outcome, new_claimant=bool(int(answer[1])))
        if outcome is ClaimAnswer.OWN:
            return ClaimOutcome(outcome)
        holder = VisitClaim(answer[1].decode(), answer[2].decode(), int(answer[3]))
        return ClaimOutcome(outcome, holder)

    async def release_visit(
        self,
        client_id: str,
        visit_id: str,
        token: str,
        *,
        previous: VisitClaim | None,
        claimant: str | None,
    ) -> None:
        """Give up a claim this request made, if it still holds it, leaving what was before.

        Args:
            client_id: the client whose visit it is.
            visit_id: the client's visit id.
            token: this request's token.
            previous: the claim this request took over (restored), ``None`` if there was none.
            claimant: the member this request recorded as a new claimant (forgotten again).
        """
        if previous is not None:
            fields = [(name, str(value)) for name, value in visit_claim_fields(previous)]
        else:
            fields = [(field.value, "") for field in VisitClaimField]
        async with redis_calls():
            await self._release_visit(
                self.client,
                [layout.visit_claim_key(client_id, visit_id)],
                [
                    VisitClaimField.TOKEN.value,
                    token,
                    layout.claimant_field(claimant) if claimant is not None else "",
                    *(item for pair in fields for item in pair),
                ],
            )

    async def visit_claim(self, client_id: str, visit_id: str) -> VisitClaim | None:
        """The claim on a (client, visit), ``None`` when none was made."""
        async with redis_calls():
            raw = await self.client.hgetall(layout.visit_claim_key(client_id, visit_id))
        return decode_visit_claim(cast(dict[bytes, bytes], raw))

    async def claimants(self, client_id: str, visit_id: str) -> list[str]:
        """Every member that ever held a (client, visit), in the order they claimed it.

        The archived visit's claimants first when it was archived (they claimed it before).
        """
        async with redis_calls():
            raw = await self.client.hgetall(layout.visit_claim_key(client_id, visit_id))
        found = decode_claimants(cast(dict[bytes, bytes], raw))
        archived = self.archived_visit(client_id, visit_id)
        if archived is None:
            return found
        before = decode_claimants(archived.claim or {}) + list(archived.indexes)
        return list(dict.fromkeys([*before, *found]))

    async def visit(self, member_id: str, client_id: str, visit_id: str) -> VisitIndex | None:
        """A member's index of a (client, visit), ``None`` when it never settled.

        Read from the archive when Redis no longer holds it.
        """
        async with redis_calls():
            raw = await self.client.hgetall(layout.visit_key(member_id, client_id, visit_id))
        found = decode_visit(cast(dict[bytes, bytes], raw))
        if found is None:
            archived = self.archived_visit(client_id, visit_id)
            if archived is not None and member_id in archived.indexes:
                return decode_visit(archived.indexes[member_id])
        return found

    # -- the archive ----------------------------------------------------------------------------

    def archived_visit(self, client_id: str, visit_id: str) -> VisitBundle | None:
        """What the archive holds of a (client, visit), ``None`` when nothing (or no archive)."""
        return None if self.archive is None else self.archive.visit(client_id, visit_id)

    async def restore_visit(self, bundle: VisitBundle) -> int:
        """Put an archived visit back into Redis where Redis lacks it; how many keys it wrote.

        The visit indexes go first and the claim last: whoever finds the claim finds the
        indexes it names.
        """
        restored = 0
        for member_id, raw in bundle.indexes.items():
            restored += await self._restore(
                layout.visit_key(member_id, bundle.client_id, bundle.visit_id), raw
            )
        if bundle.claim:
            restored += await self._restore(
                layout.visit_claim_key(bundle.client_id, bundle.visit_id), bundle.claim
            )
        return restored

    async def _restore(self, key: str, raw: Mapping[bytes, bytes]) -> int:
        group = layout.group_of_key(key)
        if group is None:
            raise ValueError(f"{key} belongs to no slot group")
        flat = [item for pair in raw.items() for item in pair]
        async with redis_calls():
            answer = await self._restore_hash(
                self.client, [key, layout.restored_key(group)], [now_ms(), *flat]
            )
        return int(answer)

    def _archived_settlement(self, settlement_id: str) -> SettlementRecord | None:
        if self.archive is None:
            return None
        raw = self.archive.settlement(settlement_id)
        return None if raw is None else decode_settlement(settlement_id, raw)

    async def restore_settlement(self, record: SettlementRecord) -> bool:
        """Put an archived settlement, and its visit, back into Redis (to reverse it there).

        Returns:
            Whether the archive holds the settlement (``False``: nothing was done).
        """
        raw = None if self.archive is None else self.archive.settlement(record.settlement_id)
        if raw is None:
            return False
        group = layout.member_group(record.member_id)
        await self._restore(layout.settlement_key(group, record.settlement_id), raw)
        bundle = self.archived_visit(record.client_id, record.visit_id)
        if bundle is not None:
            await self.restore_visit(bundle)
        return True

    async def member(self, member_id: str) -> MemberRecord | None:
        """The member, ``None`` when unknown."""
        async with redis_calls():
            raw = await self.client.hgetall(layout.member_key(member_id))
        return decode_member(member_id, cast(dict[bytes, bytes], raw), self.cipher)

    async def versions(self) -> dict[str, str]:
        """Reference-data versions, by kind."""
        async with redis_calls():
            raw = await self.client.hgetall(layout.VERSIONS_KEY)
        return _text_map(cast(dict[bytes, bytes], raw))

    async def commit(self, new: NewSettlement) -> CommitOutcome:
        """Run the commit script: everything of ``new`` is written, or nothing."""
        record = new.settlement
        visit_type = record.visit.visit_type
        if visit_type is None:
            raise ValueError("a new settlement records its visit type")
        group = layout.member_group(record.member_id)
        entry = _journal_entry(
            record, EntryKind.SETTLEMENT, record.committed_ms, new.amounts, new.policy
        )
        stay: Pairs = [] if new.stay is None else [(record.settlement_id, stay_value(*new.stay))]
        day = day_key(record.committed_ms)
        controls = new.controls
        async with redis_calls():
            answer = await self._commit(
                self.client,
                [
                    layout.member_key(record.member_id),
                    layout.stays_key(record.member_id),
                    layout.visit_key(record.member_id, record.client_id, record.visit_id),
                    layout.settlement_key(group, record.settlement_id),
                    layout.journal_key(group),
                    layout.day_totals_key(group, day, record.client_id),
                    layout.day_settlements_key(group, day, record.client_id),
                    layout.history_key(record.member_id),
                    layout.review_key(group, record.settlement_id),
                    layout.day_reviews_key(group, day),
                ],
                [
                    MemberField.VERSION.value,
                    str(new.expected_version),
                    VisitField.STATUS.value,
                    SettlementStatus.SETTLED.value,
                    record.committed_ms,
                    record.record.field,
                    record.record.data,
                    *_lists(
                        member_increments(record.policy_year, record.delta),
                        stay,
                        visit_fields(record.settlement_id, record.fingerprint),
                        settlement_fields(record),
                        journal_fields(entry),
                        day_total_increments(
                            EntryKind.SETTLEMENT,
                            new.amounts,
                            visit_type,
                            new.policy.scheme,
                        ),
                    ),
                    record.settlement_id,
                    "" if controls.history is None else history_value(controls.history),
                    orjson.dumps(list(controls.forget)),
                    *_lists([] if controls.review is None else review_fields(controls.review)),
                ],
            )
        return CommitOutcome(answer[0].decode())

    async def settlement(self, settlement_id: str) -> SettlementRecord | None:
        """A settlement, ``None`` when there is none."""
        group = layout.group_of_settlement(settlement_id)
        if group is None:
            return None
        async with redis_calls():
            raw = await self.client.hgetall(layout.settlement_key(group, settlement_id))
        found = decode_settlement(settlement_id, cast(dict[bytes, bytes], raw))
        return found if found is not None else self._archived_settlement(settlement_id)

    async def settlements(self, settlement_ids: Sequence[str]) -> list[SettlementRecord]:
        """Several settlements in one round trip, in the order asked.

        Raises:
            CorruptRecord: an id names no settlement (the indexes that gave it are wrong).
        """
        keys = []
        for settlement_id in settlement_ids:
            group = layout.group_of_settlement(settlement_id)
            if group is None:
                raise CorruptRecord(f"{settlement_id!r} is not a settlement id")
            keys.append(layout.settlement_key(group, settlement_id))

        def build(pipe: RedisPipeline) -> None:
            for key in keys:
                pipe.hgetall(key)

        async with redis_calls():
            answers = await run_pipeline(self.client, build)
        found = []
        for settlement_id, raw in zip(settlement_ids, answers, strict=True):
            record = decode_settlement(settlement_id, cast(dict[bytes, bytes], raw))
            if record is None:
                record = self._archived_settlement(settlement_id)
            if record is None:
                raise CorruptRecord(f"settlement {settlement_id} is indexed but not stored")
            found.append(record)
        return found

    async def reverse(
        self,
        record: SettlementRecord,
        settlement: Settlement,
        now_ms: int,
    ) -> ReversalOutcome | None:
        """Reverse a settlement once; ``None`` when it no longer exists.

        Args:
            record: the settlement as read (its immutable part drives the undo).
            settlement: the settlement as answered: its amounts, policy and visit type go to
                the reversal's journal entry and day totals.
            now_ms: the reversal's time.
        """
        group = layout.member_group(record.member_id)
        # A settlement committed before its visit's facts were recorded still names its visit
        # type in its record: the reversal counts in the right group.
        visit = record.visit
        if visit.visit_type is None:
            visit = replace(visit, visit_type=settlement.visit_type)
        entry = _journal_entry(
            replace(record, visit=visit),
            EntryKind.REVERSAL,
            now_ms,
            settlement.amounts,
            settlement.policy,
        )
        answer = await self._run_reversal(record, group, entry, settlement, now_ms)
        # Archived: put it and its visit back, where the script reverses it atomically.
        if answer[0].decode() == "NOTFOUND" and await self.restore_settlement(record):
            answer = await self._run_reversal(record, group, entry, settlement, now_ms)
        status = answer[0].decode()
        if status == "OK":
            return ReversalOutcome(False, decode_state_after(answer[1]), now_ms)
        if status == "RECOVERED":
            raise SettlementRecovered(
                f"the agency recovered from settlement {record.settlement_id} after reviewing "
                "it: reversing it would give its funds back twice; nothing was reversed, ask "
                "the agency"
            )
        if status == "NOTFOUND":
            return None
        # Reversed meanwhile (or before): answer with what that reversal recorded.
        again = await self.settlement(record.settlement_id)
        if again is None or again.state_after is None or again.reversed_ms is None:
            return None
        return ReversalOutcome(True, again.state_after, again.reversed_ms)

    async def _run_reversal(
        self,
        record: SettlementRecord,
        group: int,
        entry: JournalEntry,
        settlement: Settlement,
        now_ms: int,
    ) -> list[bytes]:
        amounts, policy = settlement.amounts, settlement.policy
        async with redis_calls():
            answer = await self._reverse(
                self.client,
                [
                    layout.settlement_key(group, record.settlement_id),
                    layout.member_key(record.member_id),
                    layout.stays_key(record.member_id),
                    layout.visit_key(record.member_id, record.client_id, record.visit_id),
                    layout.journal_key(group),
                    layout.day_totals_key(group, day_key(now_ms), record.client_id),
                    layout.day_reversals_key(group, day_key(now_ms), record.client_id),
                    layout.history_key(record.member_id),
                    layout.review_key(group, record.settlement_id),
                ],
                [
                    SettlementField.STATUS.value,
                    SettlementStatus.SETTLED.value,
                    record.settlement_id,
                    VisitField.SETTLEMENT_ID.value,
                    SettlementField.STATE_AFTER.value,
                    now_ms,
                    *_lists(
                        member_increments(record.policy_year, record.delta, undo=True),
                        state_capture(record.policy_year, record.delta),
                        [(VisitField.STATUS.value, SettlementStatus.REVERSED.value)],
                        reversal_fields(now_ms),
                        journal_fields(entry),
                        day_total_increments(
                            EntryKind.REVERSAL, amounts, settlement.visit_type, policy.scheme
                        ),
                    ),
                    ReviewField.STATUS.value,
                    ReviewStatus.RECOVERED.value,
                ],
            )
        return cast(list[bytes], answer)

    # -- the review queue ----------------------------------------------------------------------

    async def review(self, settlement_id: str) -> Review | None:
        """The review of a flagged settlement, with the settlement's status; ``None``: none."""
        group = layout.group_of_settlement(settlement_id)
        if group is None:
            return None
        found = await self._reviews([(group, settlement_id)])
        return found[0] if found else None

    async def day_reviews(self, day: date) -> list[Review]:
        """Every settlement flagged on ``day`` (its commit day), in the order flagged."""
        return await self._reviews(await self._day_members(layout.day_reviews_key, day))

    async def day_recoveries(self, day: date) -> list[Review]:
        """Every recovery decided on ``day``, in the order decided."""
        return await self._reviews(await self._day_members(layout.day_recoveries_key, day))

    async def _day_members(
        self, key_of: Callable[[int, str], str], day: date
    ) -> list[tuple[int, str]]:
        """(group, settlement id) of a day's sorted sets of every group, in score order."""
        text = layout.day_text(day)

        def build(pipe: RedisPipeline) -> None:
            for group in range(layout.GROUPS):
                pipe.zrange(key_of(group, text), 0, -1, withscores=True)

        async with redis_calls():
            answers = await run_pipeline(self.client, build)
        scored = sorted(
            (int(score), group, raw_id.decode())
            for group, found in enumerate(answers)
            for raw_id, score in found
        )
        return [(group, settlement_id) for _, group, settlement_id in scored]

    async def _reviews(self, wanted: Sequence[tuple[int, str]]) -> list[Review]:
        def build(pipe: RedisPipeline) -> None:
            for group, settlement_id in wanted:
                pipe.hgetall(layout.review_key(group, settlement_id))
                pipe.hget(layout.settlement_key(group, settlement_id), SettlementField.STATUS.value)

        async with redis_calls():
            answers = await run_pipeline(self.client, build)
        reviews = []
        for index, (_, settlement_id) in enumerate(wanted):
            review = decode_review(cast(dict[bytes, bytes], answers[2 * index]))
            if review is None:
                continue
            status: bytes | None = answers[2 * index + 1]
            if status is None:
                archived = self._archived_settlement(settlement_id)
                settlement_status = None if archived is None else archived.status
            else:
                settlement_status = SettlementStatus(status.decode())
            reviews.append(replace(review, settlement_status=settlement_status))
        return reviews

    async def record_decision(self, decided: Review) -> DecisionOutcome:
        """Write a decision on an open review, once; a recovery also joins the day's list.

        A recovery of a settlement reversed meanwhile is not written (``REVERSED``).
        """
        if decided.decided_ms is None:
            raise ValueError("a decision has a time")
        group = layout.member_group(decided.member_id)
        async with redis_calls():
            answer = await self._decide_review(
                self.client,
                [
                    layout.review_key(group, decided.settlement_id),
                    layout.day_recoveries_key(group, day_key(decided.decided_ms)),
                    layout.settlement_key(group, decided.settlement_id),
                ],
                [
                    ReviewField.STATUS.value,
                    ReviewStatus.OPEN.value,
                    decided.decided_ms,
                    decided.settlement_id,
                    *_lists(decision_fields(decided)),
                    "1" if decided.status is ReviewStatus.RECOVERED else "0",
                    SettlementField.STATUS.value,
                    SettlementStatus.REVERSED.value,
                ],
            )
        return DecisionOutcome(answer[0].decode())

    # -- members by id number, and the lookup audit trail --------------------------------------

    async def member_id_of(self, id_number: str) -> str | None:
        """The active member enrolled with this id number, found by its blind index.

        During a key rotation the index may still be under a previous key: each configured
        key's index is asked, the current key's first.
        """
        async with redis_calls():
            pipe = self.client.pipeline(transaction=False)
            for index in self.cipher.blind_indexes(id_number):
                pipe.get(layout.identity_index_key(index))
            holders = cast(list[bytes | None], await pipe.execute())
        return next((holder.decode() for holder in holders if holder), None)

    async def record_lookup(self, entry: LookupEntry, day: str, keep_seconds: int) -> None:
        """Append a lookup to its client's audit trail of ``day`` (kept ``keep_seconds``)."""
        key = layout.lookups_key(day, entry.client_id)
        async with redis_calls():
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(key, lookup_fields(entry))  # type: ignore[arg-type]
            pipe.expire(key, keep_seconds)  # from the day's last entry (EXPIRE NX is Redis 7)
            await pipe.execute()

    async def lookups(self, day: str, client_ids: Sequence[str]) -> list[LookupEntry]:
        """The audit trail of ``day`` of these clients, each client's in time order."""
        async with redis_calls():
            pipe = self.client.pipeline(transaction=False)
            for client_id in client_ids:
                pipe.xrange(layout.lookups_key(day, client_id))
            streams = cast(list[list[tuple[bytes, dict[bytes, bytes]]]], await pipe.execute())
        return [decode_lookup_entry(fields) for stream in streams for _, fields in stream]

    # -- reference data -----------------------------------------------------------------------

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        """A whole hash."""
        async with redis_calls():
            return cast(dict[bytes, bytes], await self.client.hgetall(key))

    async def get(self, key: str) -> bytes | None:
        """A string value."""
        async with redis_calls():
            return cast(bytes | None, await self.client.get(key))

    async def put_reference(
        self, kind: str, key: str, value: str | bytes, version: str, field: str | None = None
    ) -> None:
        """Write one piece of reference data and announce its new version.

        ``field`` names the hash field for hashes (policies, clients); strings have none.
        """
        async with redis_calls():
            # Data first, then the version that announces it: whoever sees the new version
            # finds the new data (the two may live on different cluster nodes).
            if field is None:
                await self.client.set(key, value)
            else:
                await self.client.hset(key, field, value)
            await self.client.hset(layout.VERSIONS_KEY, kind, version)
        await self.replicated(key, layout.VERSIONS_KEY)
        # Every process forgets its copy of the versions now rather than within its bound.
        await announce_versions(self.client, kind)


def _journal_entry(
    record: SettlementRecord, kind: EntryKind, at_ms: int, amounts: Amounts, policy: PolicyRef
) -> JournalEntry:
    return JournalEntry(
        kind=kind,
        settlement_id=record.settlement_id,
        client_id=record.client_id,
        member_id=record.member_id,
        visit_id=record.visit_id,
        at_ms=at_ms,
        amounts=amounts,
        policy=policy,
        visit=record.visit,
    )


def day_key(epoch_ms: int) -> str:
    """The settlement day of a moment, as in day keys: ``YYYYMMDD`` (Asia/Shanghai)."""
    return layout.day_text(settlement_day(epoch_ms))


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _text_map(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in raw.items()}
