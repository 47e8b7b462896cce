"""Primaries killed and replicas promoted while terminals settle: nothing acknowledged lost.

A real Redis Cluster of three primaries with a replica each (``cluster-node-timeout`` 1 s) and
a real adjudicator that acknowledges only what a replica holds (``REPLICAS_REQUIRED=1``).
Terminals settle stays, send each one again (as after a lost answer), reverse some and send
those again, concurrently, while a primary is killed (``kill -9``) and its replica promoted,
twice, each dead node coming back as a replica. A terminal answered ``UNAVAILABLE`` sends the
same request again, as a cashier's terminal does. At the end: every acknowledged settlement
and reversal is in Redis, nothing is journaled twice, each visit settled at most once, and each
member's year-to-date equals its journal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import grpc

from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage.layout import SettlementField, group_of_settlement, settlement_key
from onestop.tooling.redis_server import LocalRedisCluster, RedisServer, replica_linked
from tests.support.adjudicator import open_adjudicator
from tests.support.ledger import assert_ledger_consistent
from tests.support.redis import sync_client
from tests.support.scenario import load_demo_world, member_record, settle_request, stay_body

T = TypeVar("T")
LANES = 4
VISITS_PER_LANE = 8
MEMBERS = [member_record(f"M6{number:05d}") for number in range(LANES * VISITS_PER_LANE)]
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass
class Tally:
    acknowledged: dict[str, str] = field(default_factory=dict)  # settlement id -> visit id
    reversed_ids: set[str] = field(default_factory=set)
    retries: int = 0
    kills: int = 0


async def _until_answered(tally: Tally, call: Callable[[], Awaitable[T]]) -> T:
    deadline = time.monotonic() + 60
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE or time.monotonic() > deadline:
                raise
            tally.retries += 1
            await asyncio.sleep(0.05)


async def _fail_over(cluster: LocalRedisCluster, victim: RedisServer) -> None:
    """Kill a primary; wait until its replica serves its slots; bring it back as a replica."""
    survivor = next(node for node in cluster.nodes if node is not victim)
    victim.kill()
    deadline = time.monotonic() + 30
    while True:
        client = survivor.client()
        try:
            info = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
        finally:
            client.close()
        text = info.decode() if isinstance(info, bytes) else str(info)
        if "cluster_state:ok" in text and len(cluster.primaries()) == 3:
            break
        assert time.monotonic() < deadline, "no replica was promoted"
        await asyncio.sleep(0.1)
    # Started from this thread: the server is tied to the thread that forks it (it dies with
    # its parent), and a worker thread of asyncio's pool may end.
    cluster.rejoin(victim)
    client = victim.client()
    try:
        while not replica_linked(client) or client.info("replication")["role"] != "slave":
            assert time.monotonic() < deadline + 30, "the old primary did not rejoin as a replica"
            await asyncio.sleep(0.1)
    finally:
        client.close()


async def test_primaries_fail_over_under_load_and_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    cluster = LocalRedisCluster(
        tmp_path / "cluster", 3, replicas=1, appendfsync="everysec", node_timeout_ms=1000
    )
    cluster.start()
    tally = Tally()
    try:
        async with open_adjudicator(
            cluster.url,
            replicas_required=1,
            replica_timeout_ms=500,
            redis_timeout_seconds=1.0,
        ) as running:
            stub = running.stub
            tables = await load_demo_world(stub, MEMBERS)

            chaos_over = asyncio.Event()

            async def terminal(lane: int) -> None:
                """Settle visit after visit until the faults are over (and 8 at least)."""
                number = 0
                while number < VISITS_PER_LANE or not chaos_over.is_set():
                    member = MEMBERS[lane * VISITS_PER_LANE + number % VISITS_PER_LANE]
                    # each member's stays four days apart: they never overlap
                    admission = date(2026, 1, 1) + timedelta(days=4 * (number // VISITS_PER_LANE))
                    body = stay_body(
                        f"FO{lane}-{number}", member["member_id"], admission, 3, 300_000
                    )
                    request = settle_request(tables, body)
                    settled = await _until_answered(tally, partial(stub.Settle, request))
                    tally.acknowledged[settled.settlement_id] = settled.visit_id
                    # The answer "lost": the same request again is the same settlement.
                    again = await _until_answered(tally, partial(stub.Settle, request))
                    assert again.settlement_id == settled.settlement_id
                    if number % 3 == 0:
                        reverse = pb.ReverseRequest(
                            client_id=settled.client_id, settlement_id=settled.settlement_id
                        )
                        undone = await _until_answered(tally, partial(stub.Reverse, reverse))
                        assert undone.status == "reversed"
                        tally.reversed_ids.add(settled.settlement_id)
                        twice = await _until_answered(tally, partial(stub.Reverse, reverse))
                        assert twice.reversed_at == undone.reversed_at
                    number += 1
                    await asyncio.sleep(0.02)

            async def chaos() -> None:
                try:
                    for _ in range(2):
                        await asyncio.sleep(0.5)
                        await _fail_over(cluster, cluster.primaries()[0])
                        tally.kills += 1
                finally:
                    chaos_over.set()

            await asyncio.gather(*(terminal(lane) for lane in range(LANES)), chaos())

        acknowledged = set(tally.acknowledged)
        # each visit settled once: one settlement per visit id
        assert len(acknowledged) == len(set(tally.acknowledged.values()))
        assert tally.retries > 0, "no request met a failover: the faults came too late"
        assert_ledger_consistent(
            cluster.url, acknowledged, [member["member_id"] for member in MEMBERS]
        )
        client = sync_client(cluster.url)
        try:
            for settlement_id in tally.reversed_ids:
                group = group_of_settlement(settlement_id)
                assert group is not None
                status = client.hget(settlement_key(group, settlement_id), SettlementField.STATUS)
                assert status == b"reversed", settlement_id
        finally:
            client.close()
        print(
            f"failover: {tally.kills} primaries killed and replaced, "
            f"{len(acknowledged)} settlements and {len(tally.reversed_ids)} reversals "
            f"acknowledged, {tally.retries} retries; lost 0, duplicated 0"
        )
    finally:
        cluster.stop()
