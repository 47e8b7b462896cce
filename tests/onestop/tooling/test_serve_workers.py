"""Several gateway and adjudicator processes: one killed under load loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from datetime import date
from pathlib import Path

import pytest

from onestop.client import SignedClient
from onestop.domain.reconciliation import EntryKind
from onestop.tooling.demo.members import crowd
from onestop.tooling.demo.walkthrough import load_region
from tests.support.metrics import scrape, total, value
from tests.support.scenario import stay_body
from tests.support.serve import journal_entries, start_serve


@pytest.mark.parametrize("redis_shards", [1, 3], ids=["redis", "redis-cluster"])
async def test_a_killed_adjudicator_costs_at_most_a_retry(
    tmp_path: Path, redis_shards: int
) -> None:
    data_dir = tmp_path / "data"
    served = start_serve(
        data_dir,
        ONESTOP_ADJUDICATOR_WORKERS="2",
        ONESTOP_GATEWAY_WORKERS="2",
        ONESTOP_REDIS_SHARDS=str(redis_shards),
    )
    assert len(served.addresses["pids"]["redis_nodes"]) == redis_shards
    assert len(served.addresses["pids"]["adjudicators"]) == 2
    assert "," in served.adjudicator
    url = str(served.addresses["gateway"])
    async with SignedClient.from_key_file(url, "agency", data_dir / "agency.key") as agency:
        clients = await load_region(url, agency, lambda _: None)
    hospital = clients["ZZH3"]
    members = [record["member_id"] for record in crowd(300)][:60]
    answers: dict[str, str] = {}
    retries = 0
    killed = False

    async def settle(number: int) -> None:
        nonlocal retries, killed
        body = stay_body(f"W{number}", members[number], date(2026, 2, 1), 2, 20_000)
        for _attempt in range(50):
            answer = await hospital.request("POST", "/v1/settlements", json_body=body)
            if answer.status_code in (200, 201):
                answers[body["visit_id"]] = answer.json()["settlement_id"]
                break
            assert answer.status_code == 503, answer.text  # the only refusal a crash may cause
            retries += 1
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"visit {number} never settled")
        if number == 20 and not killed:
            killed = True
            os.kill(served.addresses["pids"]["adjudicators"][1], signal.SIGKILL)

    for start in range(0, len(members), 10):
        await asyncio.gather(*(settle(number) for number in range(start, start + 10)))

    assert killed
    assert len(answers) == len(members)
    assert len(set(answers.values())) == len(members)  # settled once each, never twice
    for visit_id, settlement_id in answers.items():
        seen = await hospital.request("GET", f"/v1/settlements/{settlement_id}")
        assert seen.status_code == 200
        assert seen.json()["visit_id"] == visit_id
    # the supervisor started the killed process again
    deadline = time.monotonic() + 30
    log = data_dir / "adjudicator-2.log"
    while time.monotonic() < deadline and log.read_text().count('"listening"') < 2:
        await asyncio.sleep(0.2)
    assert log.read_text().count('"listening"') == 2
    # every acknowledged settlement is in the journal exactly once
    journaled = [
        entry.settlement_id
        for entry in journal_entries(served.redis_url)
        if entry.kind is EntryKind.SETTLEMENT
    ]
    assert sorted(journaled) == sorted(answers.values())
    # Two gateway workers share the port: any one answers a scrape with both workers' counts.
    metrics = served.addresses["metrics"]
    for _ in range(3):
        _, samples = await scrape(str(metrics["gateway"]))
        ok = value(
            samples,
            "onestop_http_requests_total",
            route="/v1/settlements",
            method="POST",
            outcome="ok",
            code="",
        )
        assert ok == len(members)
        assert total(samples, "onestop_http_requests_total", outcome="error") == retries
    # Each adjudicator is its own target (the one killed and started again counts afresh).
    calls = 0.0
    for target in metrics["adjudicators"]:
        text, samples = await scrape(str(target))
        assert "onestop_grpc_requests" in text, target
        calls += total(samples, "onestop_grpc_requests_total", method="Settle")
    assert calls >= len(members) // 2
    for client in clients.values():
        with contextlib.suppress(Exception):
            await client.close()
    assert served.terminate() == 0
