"""Loading members: encrypted at rest, one active enrolment per id number.

A members file is read line by line and written in batches, so a file of a million members
loads in bounded memory. Each line stands alone: a bad line is reported and the rest loads.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import cast

from adjudicator.store import Store, lua_script
from onestop.domain.errors import ErrorCode
from onestop.domain.member import Member, MemberLine, RejectedLine, parse_member_line
from onestop.domain.types import MemberStatus
from onestop.redis_client import RedisPipeline, redis_calls, run_pipeline
from onestop.storage.layout import MemberField, identity_index_key, member_key
from onestop.storage.records import decode_member, member_cleared_fields, member_fields

BATCH = 500


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line of the members file that was not loaded."""

    line: int
    member_id: str | None
    code: ErrorCode
    message: str


@dataclass
class LoadReport:
    """What a members load did."""

    loaded: int = 0
    rejected: list[Rejection] = field(default_factory=list)


async def lines_of(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Split a stream of byte chunks into lines (a line may span chunks)."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line
    if pending:
        yield pending


class MemberLoader:
    """Writes members to Redis, refusing a second active enrolment of one id number."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.client = store.client
        self.cipher = store.cipher
        self._claim = lua_script("claim_identity.lua")
        self._release = lua_script("release_identity.lua")

    async def load(self, lines: AsyncIterable[bytes]) -> LoadReport:
        """Load a JSON Lines members file."""
        report = LoadReport()
        batch: list[MemberLine] = []
        number = 0
        async for raw in lines:
            number += 1
            parsed = parse_member_line(number, raw)
            if parsed is not None:
                batch.append(parsed)
            if len(batch) >= BATCH:
                await self._load_batch(batch, report)
                batch = []
        if batch:
            await self._load_batch(batch, report)
        return report

    async def _load_batch(self, batch: list[MemberLine], report: LoadReport) -> None:
        members: list[tuple[int, Member]] = []
        for entry in batch:
            if isinstance(entry, RejectedLine):
                report.rejected.append(
                    Rejection(
                        entry.line, entry.member_id, entry.problem.code, entry.problem.message
                    )
                )
            else:
                members.append((entry.line, entry.member))
        if not members:
            return
        # Every configured key's index is read: during a key rotation an id number may still
        # be indexed under a previous key. The current key's index is the one claimed.
        all_indexes = [self.cipher.blind_indexes(member.id_number) for _, member in members]
        indexes = [each[0] for each in all_indexes]
        async with redis_calls():
            pipe = self.client.pipeline(transaction=False)
            for (_, member), each in zip(members, all_indexes, strict=True):
                for index in each:
                    pipe.get(identity_index_key(index))
                pipe.hget(member_key(member.member_id), MemberField.IDENTITY.value)
            answers = await pipe.execute()
        width = len(all_indexes[0]) + 1
        rows = [answers[start : start + width] for start in range(0, len(answers), width)]
        current_holders = [cast(bytes | None, row[0]) for row in rows]
        holders = [next((cast(bytes, found) for found in row[:-1] if found), None) for row in rows]
        previous_sealed = [cast(bytes | None, row[-1]) for row in rows]

        # A holder other than the member itself still blocks only while it is an active
        # member whose id number is this one (its record may have moved to another id).
        other_holders = {
            holder.decode()
            for holder, (_, member) in zip(holders, members, strict=True)
            if holder is not None and holder.decode() != member.member_id
        }
        blocking = await self._active_holders(other_holders)

        # Lines take effect in file order: a member updated by an earlier line of this batch
        # (made deceased, given another id number) is judged as that line left it.
        index_holder: dict[str, str] = {}
        batch_members: dict[str, Member] = {}
        candidates: list[tuple[int, Member, str, str, bytes | None]] = []
        for (line, member), index, holder, current, sealed in zip(
            members, indexes, holders, current_holders, previous_sealed, strict=True
        ):
            seen = index_holder.get(index, holder.decode() if holder is not None else "")
            # What the claim compares with: the holder of the current key's entry.
            expected = index_holder.get(index, current.decode() if current is not None else "")
            if seen and seen != member.member_id and member.status is MemberStatus.ACTIVE:
                earlier = batch_members.get(seen)
                if earlier is not None:
                    blocks = (
                        earlier.status is MemberStatus.ACTIVE
                        and earlier.id_number == member.id_number
                    )
                else:
                    blocks = blocking.get(seen) == member.id_number
                if blocks:
                    report.rejected.append(
                        Rejection(
                            line,
                            member.member_id,
                            ErrorCode.DUPLICATE_ENROLLMENT,
                            f"this id number is already enrolled as active member {seen}",
                        )
                    )
                    continue
            if member.status is MemberStatus.ACTIVE:
                index_holder[index] = member.member_id
            batch_members[member.member_id] = member
            candidates.append((line, member, index, expected, sealed))

        # Claim the index for active members (a compare-and-set, so two lines or two loads
        # racing for one id number cannot both win), then write the members that may be.
        # The claims are compare-and-set and the writes put the same values: both pipelines
        # are safe to run again (which run_pipeline does after a node lost its scripts).
        active = [entry for entry in candidates if entry[1].status is MemberStatus.ACTIVE]

        def claim(pipe: RedisPipeline) -> None:
            for _, member, index, seen, _ in active:
                self._claim.queue(pipe, [identity_index_key(index)], [member.member_id, seen])

        async with redis_calls():
            claims = await run_pipeline(self.client, claim, [self._claim]) if active else []
        lost = {
            entry[1].member_id for entry, claimed in zip(active, claims, strict=True) if not claimed
        }
        writes: list[tuple[Member, list[str]]] = []
        for line, member, _, _, sealed in candidates:
            if member.member_id in lost:
                report.rejected.append(
                    Rejection(
                        line,
                        member.member_id,
                        ErrorCode.DUPLICATE_ENROLLMENT,
                        "this id number was enrolled by another member meanwhile",
                    )
                )
                continue
            released: list[str] = []
            if sealed is not None:
                old_id_number, _ = self.cipher.open(member.member_id, sealed)
                if old_id_number != member.id_number:
                    released = [
                        identity_index_key(index)
                        for index in self.cipher.blind_indexes(old_id_number)
                    ]
            writes.append((member, released))

        def write(pipe: RedisPipeline) -> None:
            for member, released in writes:
                for index_key in released:
                    self._release.queue(pipe, [index_key], [member.member_id])
                key = member_key(member.member_id)
                pipe.hset(key, mapping=member_fields(member, self.cipher))  # type: ignore[arg-type]
                cleared = member_cleared_fields(member)
                if cleared:
                    pipe.hdel(key, *cleared)

        if writes:
            async with redis_calls():
                await run_pipeline(self.client, write, [self._release])
            # A loaded member is acknowledged once the replicas hold it (see Store.replicated).
            await self.store.replicated(*(member_key(member.member_id) for member, _ in writes))
        report.loaded += len(writes)
        report.rejected.sort(key=lambda rejection: rejection.line)

    async def _active_holders(self, member_ids: set[str]) -> dict[str, str]:
        """Of these members, the active ones, with their id numbers."""
        if not member_ids:
            return {}
        ordered = sorted(member_ids)
        async with redis_calls():
            pipe = self.client.pipeline(transaction=False)
            for member_id in ordered:
                pipe.hgetall(member_key(member_id))
            found = await pipe.execute()
        active = {}
        for member_id, fields in zip(ordered, found, strict=True):
            record = decode_member(member_id, fields, self.cipher)
            if record is not None and record.member.status is MemberStatus.ACTIVE:
                active[member_id] = record.member.id_number
        return active
