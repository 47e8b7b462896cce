"""Dependency faults under a stream of settlements.

Redis crashed and restarted, an adjudicator too slow for the gateway's deadline, SIGTERM under
load: nothing acknowledged is lost, nothing settles twice, every refusal is a problem+json
``UNAVAILABLE``, and the services recover without being restarted.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from onestop.client import SignedClient
from onestop.tooling.demo.members import crowd
from onestop.tooling.demo.walkthrough import load_region
from onestop.tooling.redis_server import RedisServer, free_port
from tests.support.adjudicator import Adjudicator, open_adjudicator
from tests.support.faults import slow_link
from tests.support.gateway import open_gateway
from tests.support.ledger import assert_ledger_consistent
from tests.support.redis import redis_port, through
from tests.support.scenario import member_record, stay_body
from tests.support.serve import start_serve
from tests.support.world import load_demo_over_http


@dataclass
class Outcomes:
    """What a stream of settlements saw."""

    settled: dict[str, str] = field(default_factory=dict)  # visit id -> settlement id
    statuses: Counter[str] = field(default_factory=Counter)  # "201", "503 UNAVAILABLE", ...
    unanswered: int = 0  # connection refused or dropped before an answer

    def note(self, answer: httpx.Response) -> None:
        """Record an answer; a refusal must be problem+json with a code."""
        if answer.status_code in (200, 201):
            self.statuses[str(answer.status_code)] += 1
            return
        assert answer.headers["content-type"].startswith("application/problem+json")
        code = answer.json()["code"]
        self.statuses[f"{answer.status_code} {code}"] += 1
        assert (answer.status_code, code) == (503, "UNAVAILABLE"), answer.text


async def settle_until_done(
    client: SignedClient,
    body: dict[str, Any],
    outcomes: Outcomes,
    attempts: int = 200,
) -> str:
    """Send the same body until it settles (as a cashier's terminal retries); its id."""
    for _ in range(attempts):
        try:
            answer = await client.request("POST", "/v1/settlements", json_body=body)
        except httpx.TransportError:
            outcomes.unanswered += 1
            await asyncio.sleep(0.2)
            continue
        outcomes.note(answer)
        if answer.status_code in (200, 201):
            settlement_id = str(answer.json()["settlement_id"])
            previous = outcomes.settled.setdefault(body["visit_id"], settlement_id)
            assert previous == settlement_id, "one visit, two settlements"
            return settlement_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{body['visit_id']} never settled")


async def test_redis_restarted_mid_stream(tmp_path: Path, own_redis: RedisServer) -> None:
    members = [member_record(f"M7100{n:02d}") for n in range(16)]
    redis = own_redis
    async with (
        open_adjudicator(redis.url, redis_timeout_seconds=1) as adjudicator,
        open_gateway(adjudicator, redis.url, tmp_path / "keys", redis_timeout_seconds=1) as gateway,
    ):
        clients = await load_demo_over_http(gateway, members)
        hospital = clients["ZZH3"]
        outcomes = Outcomes()
        down = asyncio.Event()

        async def lane(lane_no: int) -> None:
            for n in range(12):
                member = members[(lane_no * 4 + n) % len(members)]["member_id"]
                admission = date(2026, 1, 5) + timedelta(days=20 * n + 4 * lane_no)
                body = stay_body(f"R{lane_no}-{n}", member, admission, 2, 30_000 + n)
                await settle_until_done(hospital, body, outcomes)

        async def outage() -> None:
            while len(outcomes.settled) < 12:
                await asyncio.sleep(0.02)
            redis.kill()  # a crash, not a clean stop
            down.set()
            await asyncio.sleep(1.5)
            await asyncio.to_thread(redis.start)

        await asyncio.gather(outage(), *(lane(lane_no) for lane_no in range(4)))

        assert down.is_set()
        assert outcomes.statuses["503 UNAVAILABLE"] > 0, outcomes.statuses
        assert len(outcomes.settled) == 48
        assert len(set(outcomes.settled.values())) == 48
        # the same gateway and adjudicator serve again, and hold every acknowledged receipt
        for settlement_id in outcomes.settled.values():
            answer = await hospital.request("GET", f"/v1/settlements/{settlement_id}")
            assert answer.status_code == 200
        assert_ledger_consistent(
            redis.url, outcomes.settled.values(), [member["member_id"] for member in members]
        )


async def test_a_nonce_remembered_by_a_lost_answer_is_still_this_request(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    port = redis_port(redis_url)
    async with (
        slow_link(f"127.0.0.1:{port}") as link,
        open_gateway(adjudicator, through(redis_url, link.port), tmp_path / "keys") as gateway,
    ):
        assert (await gateway.agency.request("GET", "/v1/admin/clients")).status_code == 200
        # Redis stores the nonce, the answer is lost, the client sends the SET again and
        # finds the nonce taken: by this very check, so the request goes through.
        link.cut_answers = 1
        answer = await gateway.agency.request("GET", "/v1/admin/clients")
        assert answer.status_code == 200, answer.text
        assert link.cut_answers == 0


async def test_a_slow_adjudicator_times_out_and_the_retry_finds_the_first_outcome(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    members = [member_record(f"M7200{n:02d}") for n in range(3)]
    redis = own_redis
    async with (
        open_adjudicator(redis.url) as adjudicator,
        slow_link(adjudicator.target) as link,
        open_gateway(
            adjudicator,
            redis.url,
            tmp_path / "keys",
            target=f"127.0.0.1:{link.port}",
            adjudicator_deadline_seconds=1,
        ) as gateway,
    ):
        clients = await load_demo_over_http(gateway, members)
        hospital = clients["ZZH3"]
        # reference data (the client, its mapping) now in the gateway's cache, so that only
        # the settlement itself meets the slow link
        warm = stay_body("WARM-1", "M720001", date(2026, 1, 10), 2, 10_000)
        warmed = await hospital.request("POST", "/v1/settlements", json_body=warm)
        assert warmed.status_code == 201, warmed.text
        body = stay_body("SLOW-1", "M720000", date(2026, 3, 2), 3, 40_000)

        link.answer_delay = 2.5
        first = await hospital.request("POST", "/v1/settlements", json_body=body)
        assert first.status_code == 503
        assert first.json()["code"] == "UNAVAILABLE"
        assert "did not answer in time" in first.json()["detail"]

        await asyncio.sleep(2.0)  # the late answer drains
        link.answer_delay = 0
        # The cashier retries until answered: on a busy machine the late answer may still hold
        # the link for a moment, and the retry meets the deadline too (503 again).
        for _ in range(20):
            retry = await hospital.request("POST", "/v1/settlements", json_body=body)
            if retry.status_code != 503:
                break
            await asyncio.sleep(0.5)
        # the first attempt had settled: the retry answers that settlement
        assert retry.status_code == 200, retry.text
        assert retry.json()["replayed"] is True
        again = await hospital.request("POST", "/v1/settlements", json_body=body)
        assert again.json()["settlement_id"] == retry.json()["settlement_id"]

        # a stream through the slow link: every visit settles exactly once
        outcomes = Outcomes()
        link.answer_delay = 1.2

        async def visit(n: int) -> None:
            member = members[n % 3]["member_id"]
            admission = date(2026, 4, 1) + timedelta(days=10 * (n // 3))
            stay = stay_body(f"SLOW-S{n}", member, admission, 2, 10_000 + n)
            await settle_until_done(hospital, stay, outcomes)

        async def lift() -> None:
            await asyncio.sleep(2.5)
            link.answer_delay = 0

        await asyncio.gather(lift(), *(visit(n) for n in range(9)))
        assert outcomes.statuses["503 UNAVAILABLE"] > 0
        assert outcomes.statuses["200"] > 0, "some retries found their first outcome"
        assert len(set(outcomes.settled.values())) == 9
        settled = [
            warmed.json()["settlement_id"],
            retry.json()["settlement_id"],
            *outcomes.settled.values(),
        ]
        assert_ledger_consistent(redis.url, settled, [member["member_id"] for member in members])


async def test_sigterm_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # One port for both runs: the terminal keeps the URL it was given.
    port = str(free_port())
    served = start_serve(
        data_dir, ONESTOP_PORT=port, ONESTOP_GATEWAY_WORKERS="2", ONESTOP_ADJUDICATOR_WORKERS="2"
    )
    url = str(served.addresses["gateway"])
    members = [record["member_id"] for record in crowd(300)][:80]
    async with SignedClient.from_key_file(url, "agency", data_dir / "agency.key") as agency:
        clients = await load_region(url, agency, lambda _: None)
    hospital = clients["ZZH3"]
    bodies = [stay_body(f"T{n}", members[n], date(2026, 2, 1), 2, 20_000 + n) for n in range(80)]
    outcomes = Outcomes()
    pending: list[dict[str, Any]] = []
    stopped = asyncio.Event()

    async def first_try(body: dict[str, Any]) -> None:
        try:
            answer = await hospital.request("POST", "/v1/settlements", json_body=body)
        except httpx.TransportError:
            outcomes.unanswered += 1
            pending.append(body)
            return
        outcomes.note(answer)
        if answer.status_code in (200, 201):
            outcomes.settled[body["visit_id"]] = answer.json()["settlement_id"]
        else:
            pending.append(body)

    async def stop_when_busy() -> None:
        while len(outcomes.settled) < 20:
            await asyncio.sleep(0.01)
        os.kill(served.process.pid, signal.SIGTERM)
        stopped.set()

    async def lane(lane_no: int) -> None:
        for body in bodies[lane_no::8]:
            await first_try(body)

    await asyncio.gather(stop_when_busy(), *(lane(lane_no) for lane_no in range(8)))
    assert stopped.is_set()
    assert await asyncio.to_thread(served.process.wait, 60) == 0
    acknowledged = dict(outcomes.settled)

    # the same directory again (the gateway comes back on its port): every acknowledged
    # settlement is there, and the terminal's retries settle the rest once each
    served = start_serve(data_dir, ONESTOP_PORT=port)
    assert served.addresses["gateway"] == url
    for visit_id, settlement_id in acknowledged.items():
        answer = await hospital.request("GET", f"/v1/settlements/{settlement_id}")
        assert answer.status_code == 200, visit_id
    for body in bodies:
        settlement_id = await settle_until_done(hospital, body, outcomes)
        if body["visit_id"] in acknowledged:
            assert settlement_id == acknowledged[body["visit_id"]]
    assert len(set(outcomes.settled.values())) == len(bodies)
    assert_ledger_consistent(served.redis_url, outcomes.settled.values(), members)
    for client in clients.values():
        await client.close()
    assert served.terminate() == 0
