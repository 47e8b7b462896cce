"""Redis access for the adjudicator: snapshots, atomic commits and reversals, reference data.

Every key comes from :mod:`onestop.keys`; every multi-key update is one Lua script whose keys
share the member's slot.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from onestop import keys
from onestop.clock import settlement_day
from onestop.errors import Unavailable
from onestop.redis_client import (
    UNAVAILABLE_ERRORS,
    LuaScript,
    RedisClient,
    RedisPipeline,
    run_pipeline,
)


def lua_script(*names: str) -> LuaScript:
    """The script made of these files of ``adjudicator/lua`` (a prelude, then the body)."""
    folder = resources.files("adjudicator").joinpath("lua")
    return LuaScript("".join(folder.joinpath(name).read_text(encoding="utf-8") for name in names))


@contextlib.asynccontextmanager
async def redis_calls() -> AsyncIterator[None]:
    """Turn a lost or overloaded Redis into :class:`Unavailable` (nothing was settled)."""
    try:
        yield
    except UNAVAILABLE_ERRORS as error:
        raise Unavailable(f"Redis is unavailable: {type(error).__name__}") from error


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What settling one visit reads, taken atomically, plus the reference-data versions."""

    member: Mapping[bytes, bytes]
    stays: Mapping[bytes, bytes]
    visit: Mapping[bytes, bytes]
    versions: Mapping[bytes, bytes]


@dataclass(frozen=True, slots=True)
class CommitArguments:
    """Everything the commit script writes (see ``lua/commit_settlement.lua``)."""

    member_id: str
    client_id: str
    visit_id: str
    expected_version: int
    year: int
    increments: str
    settlement_id: str
    fingerprint: bytes
    record: bytes
    stay: str
    amounts: str
    committed_ms: int
    policy: str


@dataclass(frozen=True, slots=True)
class ReversalOutcome:
    """What the reversal script answered."""

    status: str  # OK | ALREADY | NOTFOUND
    state_after: str = ""
    reversed_ms: int = 0


class Store:
    """The adjudicator's view of Redis."""

    def __init__(self, client: RedisClient) -> None:
        self.client = client
        self._read = lua_script("read_member.lua")
        self._commit = lua_script("journal_id.lua", "commit_settlement.lua")
        self._reverse = lua_script("journal_id.lua", "reverse_settlement.lua")

    async def snapshot(self, member_id: str, client_id: str, visit_id: str) -> Snapshot:
        """Read the member, its stays, the visit's settlement and the reference versions."""
        member_keys = [
            keys.member(member_id),
            keys.stays(member_id),
            keys.visit(member_id, client_id, visit_id),
        ]

        def build(pipe: RedisPipeline) -> None:
            # The member's three keys share a slot and are read by one script (one moment);
            # the versions live elsewhere (on another node in a cluster).
            self._read.queue(pipe, member_keys, ())
            pipe.hgetall(keys.VERSIONS)

        async with redis_calls():
            (member, stays, visit), versions = await run_pipeline(self.client, build, [self._read])
        return Snapshot(_pairs(member), _pairs(stays), _pairs(visit), versions)

    async def member(self, member_id: str) -> dict[bytes, bytes]:
        """The member's hash (empty when unknown)."""
        async with redis_calls():
            return cast(dict[bytes, bytes], await self.client.hgetall(keys.member(member_id)))

    async def versions(self) -> dict[bytes, bytes]:
        """Reference-data versions."""
        async with redis_calls():
            return cast(dict[bytes, bytes], await self.client.hgetall(keys.VERSIONS))

    async def commit(self, arguments: CommitArguments) -> str:
        """Run the commit script; its answer: OK, CONFLICT, SETTLED or NOMEMBER."""
        group = keys.member_group(arguments.member_id)
        async with redis_calls():
            answer = await self._commit(
                self.client,
                [
                    keys.member(arguments.member_id),
                    keys.stays(arguments.member_id),
                    keys.visit(arguments.member_id, arguments.client_id, arguments.visit_id),
                    keys.settlement(group, arguments.settlement_id),
                    keys.journal(group),
                    keys.day_totals(group, day_key(arguments.committed_ms), arguments.client_id),
                ],
                [
                    arguments.expected_version,
                    arguments.year,
                    arguments.increments,
                    arguments.settlement_id,
                    arguments.fingerprint.hex(),
                    arguments.record,
                    arguments.stay,
                    arguments.client_id,
                    arguments.member_id,
                    arguments.visit_id,
                    arguments.amounts,
                    arguments.committed_ms,
                    arguments.policy,
                ],
            )
        return str(answer[0].decode())

    async def settlement(self, settlement_id: str) -> dict[bytes, bytes]:
        """A settlement record (empty when there is none)."""
        group = keys.group_of_settlement(settlement_id)
        if group is None:
            return {}
        async with redis_calls():
            return cast(
                dict[bytes, bytes], await self.client.hgetall(keys.settlement(group, settlement_id))
            )

    async def reverse(self, settlement_id: str, client_id: str, now_ms: int) -> ReversalOutcome:
        """Reverse a settlement (``client_id`` empty: the agency may reverse any)."""
        group = keys.group_of_settlement(settlement_id)
        if group is None:
            return ReversalOutcome("NOTFOUND")
        record_key = keys.settlement(group, settlement_id)
        async with redis_calls():
            member_id, owner, visit_id = cast(
                list[bytes | None], await self.client.hmget(record_key, ["m", "c", "vi"])
            )
            if member_id is None or owner is None or visit_id is None:
                return ReversalOutcome("NOTFOUND")
            member = member_id.decode()
            answer = await self._reverse(
                self.client,
                [
                    record_key,
                    keys.member(member),
                    keys.stays(member),
                    keys.visit(member, owner.decode(), visit_id.decode()),
                    keys.journal(group),
                    keys.day_totals(group, day_key(now_ms), owner.decode()),
                ],
                [client_id, now_ms],
            )
        status = answer[0].decode()
        if status == "OK":
            return ReversalOutcome(status, answer[1].decode(), now_ms)
        if status == "ALREADY":
            return ReversalOutcome(status, answer[1].decode(), int(answer[2]))
        return ReversalOutcome(status)

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
        self, kind: str, key: str, value: Any, version: str, field: str | None = None
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
            await self.client.hset(keys.VERSIONS, kind, version)


def day_key(epoch_ms: int) -> str:
    """The settlement day of a moment, as in day keys: ``YYYYMMDD`` (Asia/Shanghai)."""
    return settlement_day(epoch_ms).strftime("%Y%m%d")


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
