"""``onestop bench memory``: Redis bytes per member, record plus one year of state.

Loads synthetic members through the adjudicator's real loading path (encrypted identity,
blind index) into a private Redis, gives each one year of year-to-date figures exactly as a
settlement's commit writes them, and divides the growth of Redis's ``used_memory`` by the
number of members. Then the history the controls across visits keep (domain section 18):
members with 1, 12, 52, 156 and 400 entries (a visit, monthly, weekly, dialysis three times a
week, the cap), each entry as a commit writes it, ``MEMORY USAGE`` of the history hash.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from adjudicator.members import MemberLoader
from adjudicator.store import Store
from onestop.domain.controls import HISTORY_ENTRIES, PastVisit
from onestop.domain.state import StateDelta
from onestop.domain.types import VisitType
from onestop.redis_client import RedisClient, connect
from onestop.storage.crypto import MemberCipher
from onestop.storage.layout import history_key, member_key, new_settlement_id
from onestop.storage.records import history_value, member_increments
from onestop.tooling.demo.members import crowd
from onestop.tooling.redis_server import LocalRedisCluster, RedisServer


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    """Bytes of Redis memory per member."""

    members: int
    record_bytes: float
    with_year_bytes: float
    redis_version: str
    shards: int = 1
    history_bytes: dict[int, float] | None = None
    """Entries in a member's history -> bytes of its history hash."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        figures: dict[str, Any] = {
            "members": self.members,
            "record_bytes_per_member": round(self.record_bytes, 1),
            "record_and_year_bytes_per_member": round(self.with_year_bytes, 1),
            "redis_version": self.redis_version,
            "shards": self.shards,
        }
        if self.history_bytes is not None:
            figures["history_bytes_per_member"] = {
                str(entries): round(value, 1) for entries, value in self.history_bytes.items()
            }
        return figures


def node_info(servers: Sequence[RedisServer], section: str) -> list[dict[str, Any]]:
    """One ``INFO`` section of each Redis server (each node of a cluster)."""
    sections = []
    for server in servers:
        node = server.client()
        try:
            sections.append(node.info(section))
        finally:
            node.close()
    return sections


def used_memory(servers: Sequence[RedisServer]) -> int:
    """Bytes Redis uses for data, summed over the servers (the primaries of a cluster)."""
    return sum(int(info["used_memory"]) for info in node_info(servers, "memory"))


async def _measure(
    url: str, servers: Sequence[RedisServer], members: int, year: int
) -> MemoryFigures:
    client = await connect(url, timeout_seconds=10, wait_seconds=10)
    try:
        cipher = MemberCipher(os.urandom(32))
        loader = MemberLoader(Store(client, cipher))
        baseline = used_memory(servers)

        async def lines() -> AsyncIterator[bytes]:
            for record in crowd(members, seed=99):
                yield json.dumps(record, ensure_ascii=False).encode()

        report = await loader.load(lines())
        loaded = report.loaded
        after_records = used_memory(servers)

        rng = random.Random(5)
        member_ids = [record["member_id"] for record in crowd(members, seed=99)]
        for start in range(0, len(member_ids), 1000):
            pipe = client.pipeline(transaction=False)
            for member_id in member_ids[start : start + 1000]:
                # Every figure of the year set, as commits leave them (the account untouched).
                delta = StateDelta(
                    basic_fund=rng.randrange(1, 3_000_000),
                    outpatient_pooling=rng.randrange(1, 3_000_000),
                    supplementary=rng.randrange(1, 3_000_000),
                    critical_illness_base=rng.randrange(1, 3_000_000),
                    assistance=rng.randrange(1, 3_000_000),
                    assistance_base=rng.randrange(1, 3_000_000),
                    admissions=rng.randrange(1, 4),
                )
                for field, increment in member_increments(year, delta):
                    pipe.hincrby(member_key(member_id), field, int(increment))
            await pipe.execute()
        after_year = used_memory(servers)
        version = str(node_info(servers[:1], "server")[0]["redis_version"])
        history = await _history_bytes(client, year)
    finally:
        await client.aclose()
    return MemoryFigures(
        members=loaded,
        record_bytes=(after_records - baseline) / loaded,
        with_year_bytes=(after_year - baseline) / loaded,
        redis_version=version,
        shards=len(servers),
        history_bytes=history,
    )


HISTORY_PROFILES = (1, 12, 52, 156, HISTORY_ENTRIES)
"""Entries per member measured: a visit, monthly, weekly, dialysis three times a week, the cap."""


async def _history_bytes(client: RedisClient, year: int, members: int = 100) -> dict[int, float]:
    """Mean ``MEMORY USAGE`` of a member's history hash, per number of entries."""
    rng = random.Random(7)
    start_ms = 1_767_225_600_000  # 2026-01-01 08:00 +08:00
    figures: dict[int, float] = {}
    for entries in HISTORY_PROFILES:
        keys = []
        for number in range(members):
            member_id = f"HIST{entries:03d}{number:05d}"
            key = history_key(member_id)
            keys.append(key)
            pipe = client.pipeline(transaction=False)
            for visit in range(entries):
                day = date(year, 1, 1) + timedelta(days=visit * 365 // max(entries, 1))
                # A dialysis session or a prescription: one limited item, one diagnosis.
                entry = PastVisit(
                    settlement_id=new_settlement_id(member_id, start_ms + visit * 86_400_000),
                    client_id=f"H{rng.randrange(1, 40):04d}",
                    visit_type=VisitType.OUTPATIENT_SPECIAL,
                    first_day=day,
                    last_day=day,
                    categories=("N18",),
                    bill_digest=f"{rng.getrandbits(64):016x}",
                    quantities=(("FA04", Decimal(1)),),
                )
                pipe.hset(key, entry.settlement_id, history_value(entry))
            await pipe.execute()
        total = 0
        for key in keys:
            total += int(await client.memory_usage(key) or 0)
        figures[entries] = total / members
    return figures


def measure_member_memory(
    members: int = 100_000, year: int = 2026, shards: int = 1
) -> MemoryFigures:
    """Start a private Redis (or cluster), load members with a year of state, measure."""
    with tempfile.TemporaryDirectory(prefix="onestop-memory-") as scratch:
        server: RedisServer | LocalRedisCluster
        if shards > 1:
            server = LocalRedisCluster(Path(scratch), shards, appendfsync="everysec")
        else:
            server = RedisServer(Path(scratch), appendfsync="everysec")
        url = server.start()
        servers = server.nodes
        try:
            return asyncio.run(_measure(url, servers, members, year))
        finally:
            server.stop()
