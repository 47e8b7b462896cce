"""The server around the service: health, reflection, graceful stop, Redis outages."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date
from typing import Any

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from adjudicator.server import LIVENESS_SERVICE, SERVICE_NAME, start
from adjudicator.settings import AdjudicatorSettings
from adjudicator.store import CommitOutcome, NewSettlement
from onestop.domain.policy import policy_to_document
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.storage.layout import journal_key, member_group
from onestop.tooling.demo.regions import demo_policy
from onestop.tooling.redis_server import RedisServer
from tests.support.adjudicator import Adjudicator, error_code, member_key_text
from tests.support.scenario import load_demo_world, member_record, settle_request, stay_body


async def _health(channel: grpc.aio.Channel, service: str = "") -> int:
    stub: Any = health_pb2_grpc.HealthStub(channel)
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return int(answer.status)


async def _wait_health(channel: grpc.aio.Channel, status: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await _health(channel) == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"health never became {status}")


async def test_health_and_reflection(adjudicator: Adjudicator) -> None:
    await _wait_health(adjudicator.channel, health_pb2.HealthCheckResponse.SERVING)
    assert (
        await _health(adjudicator.channel, SERVICE_NAME) == health_pb2.HealthCheckResponse.SERVING
    )
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(adjudicator.channel)  # type: ignore[arg-type]
    answers = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = set()
    async for answer in answers:
        names |= {service.name for service in answer.list_services_response.service}
    assert SERVICE_NAME == "onestop.settlement.v1.Adjudicator"
    assert SERVICE_NAME in names


async def test_graceful_stop_finishes_calls_in_flight(redis_url: str) -> None:
    settings = AdjudicatorSettings(
        port=0, redis_url=redis_url, member_key=member_key_text(), shutdown_grace_seconds=30
    )
    running = await start(settings)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    stub = pb_grpc.AdjudicatorStub(channel)
    members = [member_record(f"M2000{n:02d}") for n in range(20)]
    tables = await load_demo_world(stub, members)

    # Hold every call at its commit until the server has been told to stop.
    store = running.service.store
    commit = store.commit
    waiting = 0
    gate = asyncio.Event()

    async def held_commit(new: NewSettlement) -> CommitOutcome:
        nonlocal waiting
        waiting += 1
        await gate.wait()
        return await commit(new)

    store.commit = held_commit  # type: ignore[method-assign]
    requests = [
        settle_request(
            tables,
            stay_body(
                f"LONG-{member['member_id']}", member["member_id"], date(2026, 4, 1), 30, 500_000
            ),
        )
        for member in members
    ]
    calls = [asyncio.ensure_future(stub.Settle(request)) for request in requests]
    while waiting < len(calls):
        await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(running.stop())
    await asyncio.sleep(0.2)  # the server refuses new calls now; these 20 are in flight
    gate.set()
    receipts = await asyncio.gather(*calls)
    await stopping
    assert all(receipt.settlement_id for receipt in receipts)
    client = redis.Redis.from_url(redis_url)
    journaled = sum(
        client.xlen(journal_key(group))
        for group in {member_group(member["member_id"]) for member in members}
    )
    assert journaled == 20
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Settle(requests[0], timeout=2)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    await channel.close()


async def test_redis_outage_answers_unavailable_then_recovers(own_redis: RedisServer) -> None:
    settings = AdjudicatorSettings(
        port=0, redis_url=own_redis.url, member_key=member_key_text(), redis_timeout_seconds=1
    )
    running = await start(settings)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    stub = pb_grpc.AdjudicatorStub(channel)
    try:
        tables = await load_demo_world(stub, [member_record("M300001")])
        first = await stub.Settle(
            settle_request(tables, stay_body("R1", "M300001", date(2026, 1, 5), 2, 100_000))
        )
        port = own_redis.port
        own_redis.kill()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Settle(
                settle_request(tables, stay_body("R2", "M300001", date(2026, 2, 5), 2, 100_000))
            )
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert error_code(caught.value) == "UNAVAILABLE"
        await _wait_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING)
        # not ready, but alive: an orchestrator must not restart it for Redis's outage
        serving = health_pb2.HealthCheckResponse.SERVING
        assert await _health(channel, LIVENESS_SERVICE) == serving

        restarted = RedisServer(own_redis.data_dir, port=port, appendfsync="always")
        restarted.start()
        own_redis.process = restarted.process
        await _wait_health(channel, health_pb2.HealthCheckResponse.SERVING)
        second = await stub.Settle(
            settle_request(tables, stay_body("R2", "M300001", date(2026, 2, 5), 2, 100_000))
        )
        assert (
            second.year_to_date.basic_fund == first.amounts.basic_fund + second.amounts.basic_fund
        )
    finally:
        await channel.close()
        await running.stop()


async def test_unknown_clients_and_kinds_are_refused(adjudicator: Adjudicator) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M300002")])
    request = settle_request(tables, stay_body("K1", "M300002", date(2026, 1, 5), 2, 1_000))
    request.client_id = "ZZP1"  # a pharmacy may not settle a stay
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.Settle(request)
    assert (caught.value.code(), error_code(caught.value)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "FORBIDDEN",
    )
    request.client_id = "NOBODY"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.Settle(request)
    assert error_code(caught.value) == "FORBIDDEN"
    request.client_id = "ZZH3"
    request.first_day = "not a date"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.Settle(request)
    assert (caught.value.code(), error_code(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID",
    )


async def test_new_policy_applies_from_the_next_settlement(adjudicator: Adjudicator) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M300003")])
    before = await adjudicator.stub.Preview(
        settle_request(tables, stay_body("P1", "M300003", date(2026, 1, 5), 2, 200_000))
    )
    document = policy_to_document(demo_policy("410100"))
    document["inpatient"]["ratio"]["level3"] = "0.70"
    reply = await adjudicator.stub.PutPolicy(
        pb.PutPolicyRequest(document_json=json.dumps(document).encode())
    )
    after = await adjudicator.stub.Preview(
        settle_request(tables, stay_body("P1", "M300003", date(2026, 1, 5), 2, 200_000))
    )
    assert after.policy.version == reply.policy.version != before.policy.version
    assert (before.amounts.basic_fund, after.amounts.basic_fund) == (59000, 82600)
    assert after.status == "preview"
    assert not after.settlement_id
