"""Acknowledged means replicated: writes are answered once the replicas hold them (WAIT).

Real servers: a primary with a replica, and a Redis Cluster of three primaries with a replica
each. A replica that stops confirming turns a settlement into ``UNAVAILABLE`` (503 at the
gateway), never an acknowledgement; the settlement stays on the primary, and the same request
sent again is answered, as a replay, once the replica holds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import grpc
import pytest
import redis

from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage.layout import member_key
from onestop.tooling.redis_server import LocalRedisCluster, LocalRedisReplicated
from tests.support.adjudicator import error_code, open_adjudicator
from tests.support.scenario import load_demo_world, member_record, settle_request, stay_body

MEMBERS = [member_record(f"M5000{number:02d}") for number in range(4)]


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[LocalRedisReplicated]:
    servers = LocalRedisReplicated(tmp_path / "redis", 1, appendfsync="everysec")
    servers.start()
    yield servers
    servers.stop()


async def test_a_settlement_is_answered_once_the_replica_holds_it(
    replicated: LocalRedisReplicated,
) -> None:
    primary, replica = replicated.primary, replicated.replicas[0]
    async with open_adjudicator(
        replicated.url, replicas_required=1, replica_timeout_ms=300
    ) as running:
        tables = await load_demo_world(running.stub, MEMBERS)
        first = await running.stub.Settle(
            settle_request(tables, stay_body("RP1", "M500000", date(2026, 3, 1), 3, 100_000))
        )
        replica_client = replica.client()
        try:
            # Acknowledged: the replica holds the member's new figures already.
            assert replica_client.hget(member_key("M500000"), "2026:bf") is not None
        finally:
            replica_client.close()

        # The replica stops: the next settlement is written on the primary but refused.
        replica.kill()
        body = stay_body("RP2", "M500001", date(2026, 3, 1), 3, 100_000)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await running.stub.Settle(settle_request(tables, body))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert error_code(refused.value) == "UNAVAILABLE"
        assert "replicas" in (refused.value.details() or "")
        primary_client = primary.client()
        try:
            assert primary_client.hget(member_key("M500001"), "2026:bf") is not None
        finally:
            primary_client.close()

        # It comes back and catches up: the same request is answered, once, as a replay.
        replica.start()
        retried = await running.stub.Settle(settle_request(tables, body))
        assert retried.replayed
        again = await running.stub.Settle(settle_request(tables, body))
        assert again.settlement_id == retried.settlement_id
        # A reversal waits too.
        reversed_ = await running.stub.Reverse(
            pb.ReverseRequest(client_id=first.client_id, settlement_id=first.settlement_id)
        )
        assert reversed_.status == "reversed"


async def test_on_a_cluster_with_replicas_every_write_reaches_its_replica(tmp_path: Path) -> None:
    cluster = LocalRedisCluster(
        tmp_path / "cluster", 3, replicas=1, appendfsync="everysec", node_timeout_ms=2000
    )
    cluster.start()
    try:
        async with open_adjudicator(
            cluster.url, replicas_required=1, replica_timeout_ms=1000
        ) as running:
            tables = await load_demo_world(running.stub, MEMBERS)
            settled = await asyncio.gather(
                *(
                    running.stub.Settle(
                        settle_request(
                            tables,
                            stay_body(f"RC{n}", f"M50000{n}", date(2026, 4, 1), 3, 100_000),
                        )
                    )
                    for n in range(4)
                )
            )
            assert all(result.status == "settled" for result in settled)
        # Each member's figures are on a replica of its primary.
        replicas = [node for node in cluster.nodes if _role(node.client()) == "slave"]
        assert len(replicas) == 3
        for member in MEMBERS:
            key = member_key(member["member_id"])
            holders = []
            for node in replicas:
                client = node.client()
                try:
                    client.execute_command("READONLY")  # type: ignore[no-untyped-call]
                    holders.append(
                        client.hget(key, "2026:bf") is not None if _serves(client, key) else None
                    )
                finally:
                    client.close()
            assert True in holders, key
    finally:
        cluster.stop()


def _role(client: redis.Redis) -> str:
    try:
        return str(client.info("replication")["role"])
    finally:
        client.close()


def _serves(client: redis.Redis, key: str) -> bool:
    """Whether this replica's primary owns the key's slot."""
    slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))  # type: ignore[no-untyped-call]
    return int(client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) > 0  # type: ignore[no-untyped-call]
