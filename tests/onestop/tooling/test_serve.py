"""``onestop serve``: real processes, real crashes (kill -9), nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import grpc
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.client import SignedClient
from onestop.domain.policy import policy_to_document
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.signing import public_pem
from onestop.storage.layout import member_key
from onestop.tls import aio_channel
from onestop.tooling.demo.regions import demo_policy
from onestop.tooling.redis_server import find_redis_server
from tests.support import round1
from tests.support.ledger import assert_ledger_consistent
from tests.support.redis import sync_client
from tests.support.scenario import load_demo_world, member_record, settle_request, stay_body
from tests.support.serve import Served, start_serve

MEMBERS = [member_record(f"M4000{n:02d}") for n in range(12)]


async def _stream_until_killed(
    served: Served, acknowledged: list[pb.Settlement], kill_after: int
) -> None:
    """Settle a stream of stays on 4 lanes; kill -9 Redis, adjudicator and serve mid-stream."""
    async with served.adjudicator_channel() as channel:
        stub = pb_grpc.AdjudicatorStub(channel)
        tables = await load_demo_world(stub, MEMBERS)
        killed = asyncio.Event()

        async def lane(lane_no: int) -> None:
            for n in range(400):
                member = MEMBERS[(lane_no * 3 + n) % len(MEMBERS)]["member_id"]
                day = date(2026, 1, 1) + timedelta(days=(n * 4 + lane_no) % 360)
                body = stay_body(f"L{lane_no}-{n}", member, day, 1, 50_000 + n)
                try:
                    receipt = await stub.Settle(settle_request(tables, body), timeout=5)
                except grpc.aio.AioRpcError:
                    if killed.is_set():
                        return
                    continue  # an overlap with another lane's stay: refused, fine
                acknowledged.append(receipt)
                if len(acknowledged) >= kill_after and not killed.is_set():
                    killed.set()
                    for name in ("redis", "adjudicator", "gateway", "serve"):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(served.pid(name), signal.SIGKILL)

        await asyncio.gather(*(lane(lane_no) for lane_no in range(4)))


def _check_consistent(served: Served, acknowledged: list[pb.Settlement]) -> None:
    assert_ledger_consistent(
        served.redis_url,
        [receipt.settlement_id for receipt in acknowledged],
        [member["member_id"] for member in MEMBERS],
    )


async def _read_back(served: Served, acknowledged: list[pb.Settlement]) -> None:
    async with served.adjudicator_channel() as channel:
        stub = pb_grpc.AdjudicatorStub(channel)
        for receipt in acknowledged:
            stored = await stub.GetSettlement(
                pb.GetSettlementRequest(settlement_id=receipt.settlement_id)
            )
            assert stored.amounts == receipt.amounts
            assert stored.status == "settled"


async def test_kill_minus_nine_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    served = start_serve(data_dir)
    acknowledged: list[pb.Settlement] = []
    await _stream_until_killed(served, acknowledged, kill_after=40)
    served.process.wait(10)
    assert len(acknowledged) >= 40

    restarted = start_serve(data_dir)  # stale pid files, dead processes
    try:
        await _read_back(restarted, acknowledged)
        _check_consistent(restarted, acknowledged)
    finally:
        assert restarted.terminate() == 0


async def test_restart_over_a_stale_redis_still_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    served = start_serve(data_dir)
    acknowledged: list[pb.Settlement] = []
    async with served.adjudicator_channel() as channel:
        stub = pb_grpc.AdjudicatorStub(channel)
        tables = await load_demo_world(stub, MEMBERS[:1])
        for n in range(5):
            body = stay_body(f"S{n}", MEMBERS[0]["member_id"], date(2026, 3, 1 + 2 * n), 1, 90_000)
            acknowledged.append(await stub.Settle(settle_request(tables, body)))
    for name in ("redis", "adjudicator", "gateway", "serve"):
        os.kill(served.pid(name), signal.SIGKILL)
    served.process.wait(10)
    # A Redis left running on the directory, holding its port and pid file.
    stale = subprocess.Popen(
        [find_redis_server(), str(data_dir / "redis" / "redis.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (data_dir / "redis" / "redis.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    restarted = start_serve(data_dir)
    try:
        assert stale.wait(20) == 0  # shut down cleanly by the new supervisor
        await _read_back(restarted, acknowledged)
        _check_consistent(restarted, acknowledged)
    finally:
        assert restarted.terminate() == 0


def test_one_supervisor_per_directory_and_a_clean_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    served = start_serve(data_dir)
    second = subprocess.run(
        [sys.executable, "-m", "onestop", "serve", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert "another onestop serve is running" in second.stderr
    assert (data_dir / "serve.json").exists()  # the refused one touched nothing
    assert (data_dir / "member.key").stat().st_mode & 0o777 == 0o600

    pids = [served.pid("redis"), served.pid("adjudicator")]
    assert served.terminate() == 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text().lower()
    assert not (data_dir / "serve.json").exists()


async def test_an_existing_redis_is_used_when_configured(tmp_path: Path, redis_url: str) -> None:
    data_dir = tmp_path / "data"
    served = start_serve(data_dir, ONESTOP_REDIS_URL=redis_url)
    try:
        assert served.redis_url == redis_url
        assert served.addresses["pids"]["redis"] is None
        assert not (data_dir / "redis").exists()
        async with served.adjudicator_channel() as channel:
            stub = pb_grpc.AdjudicatorStub(channel)
            tables = await load_demo_world(stub, MEMBERS[:1])
            body = stay_body("E1", MEMBERS[0]["member_id"], date(2026, 3, 1), 1, 90_000)
            receipt = await stub.Settle(settle_request(tables, body))
        assert receipt.settlement_id
    finally:
        assert served.terminate() == 0


async def test_serve_migrates_data_of_round_one_before_starting(
    tmp_path: Path, redis_url: str
) -> None:
    round1.restore(redis_url)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "member.key").write_text(round1.member_key_text() + "\n")
    (data_dir / "member.key").chmod(0o600)
    served = start_serve(data_dir, ONESTOP_REDIS_URL=redis_url)
    try:
        first = round1.answers()[0]["body"]
        async with served.adjudicator_channel() as channel:
            stub = pb_grpc.AdjudicatorStub(channel)
            read = await stub.GetSettlement(
                pb.GetSettlementRequest(settlement_id=first["settlement_id"])
            )
        assert read.amounts.basic_fund == first["amounts"]["basic_fund"]
        assert read.status == "reversed"  # as round 1 left it
        client = sync_client(redis_url)
        assert list(client.scan_iter(match="os1:*")) == []
        client.close()
    finally:
        assert served.terminate() == 0


async def test_the_data_directory_is_owners_only_and_every_hop_authenticated(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    # A data directory of an earlier version: readable by anyone.
    (data_dir / "gateway.log").write_text("an old log\n")
    (data_dir / "gateway.log").chmod(0o644)
    served = start_serve(data_dir)
    try:
        assert (data_dir / "redis" / "appendonly.aof").exists()
        readable = [
            f"{path} {path.stat().st_mode & 0o777:o}"
            for path in (data_dir, *data_dir.rglob("*"))
            if not path.is_symlink() and path.stat().st_mode & 0o077
        ]
        assert readable == []

        address = served.addresses["redis_url"]
        assert "@" not in address, "serve.json's plain URL carries no password"
        anonymous = redis.Redis.from_url(address)
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.get("os2:versions")
        anonymous.close()

        async with grpc.aio.insecure_channel(served.adjudicator) as plain:
            stub = pb_grpc.AdjudicatorStub(plain)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListClients(pb.ListClientsRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        async with served.adjudicator_channel() as channel:
            clients = await pb_grpc.AdjudicatorStub(channel).ListClients(pb.ListClientsRequest())
        assert [client.client_id for client in clients.clients] == ["agency"]
    finally:
        assert served.terminate() == 0


async def test_reference_data_applies_within_the_bound_in_every_process(tmp_path: Path) -> None:
    """Two adjudicators and two gateways: what is loaded through one applies in every one.

    A policy and a client apply within the versions bound (1 s by default), though no process
    reads the versions hash for every request.
    """
    served = start_serve(
        tmp_path / "data", ONESTOP_ADJUDICATOR_WORKERS="2", ONESTOP_GATEWAY_WORKERS="2"
    )
    addresses = served.adjudicator.split(",")
    assert len(addresses) == 2
    channels = [aio_channel(address, served.operator_tls) for address in addresses]
    try:
        stubs = [pb_grpc.AdjudicatorStub(channel) for channel in channels]
        await load_demo_world(stubs[0], MEMBERS[:1])
        asked = pb.EligibilityRequest(member_id=MEMBERS[0]["member_id"], date="2026-03-01")

        async def versions() -> list[str]:
            return [(await stub.Eligibility(asked)).policy.version for stub in stubs]

        first = await versions()
        assert len(set(first)) == 1
        document = policy_to_document(demo_policy("410100"))
        document["inpatient"]["ratio"]["level3"] = "0.60"
        reply = await stubs[1].PutPolicy(
            pb.PutPolicyRequest(document_json=json.dumps(document).encode())
        )
        await asyncio.sleep(1.2)  # the bound, and a margin
        assert await versions() == [reply.policy.version] * 2
    finally:
        for channel in channels:
            await channel.close()

    # A client registered through the port is known to whichever gateway process a new
    # connection reaches.
    base_url = str(served.addresses["gateway"])
    key = Ed25519PrivateKey.generate()
    async with SignedClient.from_key_file(
        base_url, "agency", Path(served.addresses["agency_key"])
    ) as agency:
        registered = await agency.request(
            "PUT",
            "/v1/admin/clients/NEWH1",
            json_body={
                "kind": "hospital",
                "name": "新医院",
                "level": "level2",
                "region": "410100",
                "public_key": public_pem(key.public_key()),
            },
        )
        assert registered.status_code == 200, registered.text
    await asyncio.sleep(1.2)
    for _ in range(8):  # a new connection each time: the kernel spreads them over the workers
        async with SignedClient(base_url, "NEWH1", key) as hospital:
            answer = await hospital.request("GET", "/v1/keys")
            listed = await hospital.request("GET", "/v1/settlements", params={"date": "2026-03-01"})
        assert answer.status_code == 200
        assert listed.status_code == 200, listed.text


async def test_serve_with_replicas_acknowledges_what_they_hold(tmp_path: Path) -> None:
    """``onestop serve --redis-replicas 1``: what the adjudicator answers is on the replica.

    Serve starts a primary and a replica and sets ONESTOP_ADJUDICATOR_REPLICAS_REQUIRED=1.
    """
    served = start_serve(tmp_path / "data", ONESTOP_REDIS_REPLICAS="1")
    environ = Path(f"/proc/{served.pid('adjudicator')}/environ").read_bytes().split(b"\0")
    assert b"ONESTOP_ADJUDICATOR_REPLICAS_REQUIRED=1" in environ
    async with served.adjudicator_channel() as channel:
        stub = pb_grpc.AdjudicatorStub(channel)
        tables = await load_demo_world(stub, MEMBERS[:2])
        for number, member in enumerate(MEMBERS[:2]):
            body = stay_body(f"REP{number}", member["member_id"], date(2026, 3, 1), 2, 50_000)
            await stub.Settle(settle_request(tables, body))
    replica_dir = tmp_path / "data" / "redis-replicated" / "replica-1"
    port = int((replica_dir / "redis.port").read_text())
    admin = served.redis_url  # the primary's URL with the admin login
    replica = redis.Redis.from_url(admin.rsplit(":", 1)[0] + f":{port}/0")
    try:
        assert replica.info("replication")["role"] == "slave"
        for member in MEMBERS[:2]:
            assert replica.hget(member_key(member["member_id"]), "2026:ad") == b"1"
    finally:
        replica.close()
