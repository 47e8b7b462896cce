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
from onestop.tooling.redis_server import (
    LocalRedisCluster,
    LocalRedisReplicated,
    RedisServer,
    replica_linked,
)
from tests.support.adjudicator import error_code, open_adjudicator
from tests.support.faults import slow_link
from tests.support.ledger import assert_ledger_consistent
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
    # Two seconds for the replica: a machine running the suite in two processes has been seen
    # to take longer than 300 ms to confirm the first write (the refusal below waits as long).
    async with open_adjudicator(
        replicated.url, replicas_required=1, replica_timeout_ms=2000
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


@pytest.mark.parametrize("replicas_required", [1, 0])
async def test_a_partition_then_a_promotion_loses_only_what_was_not_waited_for(
    tmp_path: Path, replicas_required: int
) -> None:
    """A replica cut off, its primary dead, the replica promoted: what was acknowledged?

    The replica is cut from its primary's stream (a TCP hop that stops forwarding), a
    settlement is sent, the primary dies and the replica is promoted. Waiting for the replica,
    that settlement was refused ``UNAVAILABLE`` and its retry on the promoted replica settles
    it once: lost 0. Not waiting, it was acknowledged, and the promoted replica never had it:
    the receipt the terminal holds names a lost settlement.
    """
    primary = RedisServer(tmp_path / "primary", appendfsync="everysec")
    primary.start()
    async with slow_link(f"127.0.0.1:{primary.port}") as link:
        replica = RedisServer(
            tmp_path / "replica",
            appendfsync="everysec",
            extra_config=(f"replicaof 127.0.0.1 {link.port}",),
        )
        replica.start()
        try:
            await _linked(replica)
            acknowledged: dict[str, pb.Settlement] = {}
            async with open_adjudicator(
                primary.url, replicas_required=replicas_required, replica_timeout_ms=300
            ) as running:
                tables = await load_demo_world(running.stub, MEMBERS)
                before = settle_request(
                    tables, stay_body("PT1", "M500000", date(2026, 3, 1), 3, 100_000)
                )
                settled = await running.stub.Settle(before)
                acknowledged[settled.settlement_id] = settled
                await asyncio.sleep(0.2)  # the replica has everything so far
                link.answer_delay = 3600.0  # the partition: the stream stops reaching it
                during = settle_request(
                    tables, stay_body("PT2", "M500001", date(2026, 3, 1), 3, 100_000)
                )
                refused = None
                try:
                    settled = await running.stub.Settle(during)
                    acknowledged[settled.settlement_id] = settled
                except grpc.aio.AioRpcError as error:
                    refused = error.code()
                expected = grpc.StatusCode.UNAVAILABLE if replicas_required else None
                assert refused is expected
                member_key_text = running.settings.member_key
                assert member_key_text is not None
            # The primary dies; the replica, cut off, is promoted with what it had.
            primary.kill()
            promote = replica.client()
            try:
                promote.execute_command("REPLICAOF", "NO", "ONE")  # type: ignore[no-untyped-call]
            finally:
                promote.close()
            async with open_adjudicator(
                replica.url, member_key=member_key_text.get_secret_value()
            ) as promoted:
                # The terminal sends what was not acknowledged again.
                if refused:
                    settled = await promoted.stub.Settle(during)
                    assert not settled.replayed  # it never reached the replica
                    acknowledged[settled.settlement_id] = settled
                lost = {}
                for settlement_id, receipt in acknowledged.items():
                    try:
                        await promoted.stub.GetSettlement(
                            pb.GetSettlementRequest(
                                client_id=receipt.client_id, settlement_id=settlement_id
                            )
                        )
                    except grpc.aio.AioRpcError as error:
                        lost[settlement_id] = error.code()
            assert set(lost.values()) <= {grpc.StatusCode.NOT_FOUND}
            assert len(lost) == (0 if replicas_required else 1), lost
            print(
                f"partition then promotion, REPLICAS_REQUIRED={replicas_required}: "
                f"{len(acknowledged)} acknowledged, lost {len(lost)}"
            )
            if replicas_required:
                assert_ledger_consistent(
                    replica.url, acknowledged, [member["member_id"] for member in MEMBERS]
                )
        finally:
            replica.stop()
            primary.stop()


async def _linked(server: RedisServer) -> None:
    client = server.client()
    try:
        for _ in range(200):
            if replica_linked(client) and client.info("replication")["role"] == "slave":
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the replica did not link")
    finally:
        client.close()
