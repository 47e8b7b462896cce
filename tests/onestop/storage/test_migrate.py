"""Round 1's data, migrated, reads and reconciles as it did; the migration survives a crash.

The data set in ``tests/storage/data/round1`` was written by round 1's code through the real
HTTP API (layout ``os1``). After ``onestop migrate`` every settlement answers as it did then,
each client's day balances against the receipts it was given, the day exports and verifies,
and the ledger goes on: a replay is a replay, a reversal subtracts exactly, a new visit builds
on the migrated year-to-date figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI

from adjudicator.server import start
from adjudicator.settings import AdjudicatorSettings
from onestop.client import SignedClient
from onestop.clock import day_closes_ms
from onestop.exports import unzip_export, verify_export
from onestop.redis_client import connect
from onestop.storage import layout
from onestop.storage.migrate import Interrupted, OutdatedLayout, migrate
from tests.support import round1
from tests.support.adjudicator import open_adjudicator
from tests.support.cases import REPO_ROOT
from tests.support.gateway import open_gateway
from tests.support.redis import ON_BOTH, dump_everything, sync_client

DAY = date(2026, 11, 30)
_Entries = list[tuple[bytes, dict[bytes, bytes]]]
RECONCILED = ("total", "basic_fund", "supplementary", "assistance", "personal_account", "cash")


def _old_keys(url: str) -> list[bytes]:
    client = sync_client(url)
    try:
        return sorted(client.scan_iter(match="os1:*"))
    finally:
        client.close()


async def _migrate(url: str, **options: Any) -> Any:
    client = await connect(url, timeout_seconds=5, wait_seconds=5)
    try:
        return await migrate(client, **options)
    finally:
        await client.aclose()


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    # Signatures are made at answer time with the gateway's keys of the day; amounts added
    # since (hospital_part, always 0 for what round 1 settled) answer 0 for old settlements,
    # and their policy the version in force from January 1, the only one there was.
    comparable = {k: v for k, v in result.items() if k not in ("signature", "replayed")}
    comparable["amounts"] = {"hospital_part": 0, **result["amounts"]}
    policy = result["policy"]
    comparable["policy"] = {"effective_from": f"{policy['year']}-01-01", **policy}
    # year-to-date figures added since (outpatient assistance, diseases) start at nothing
    comparable["year_to_date"] = {
        "assistance_outpatient": 0,
        "assistance_outpatient_base": 0,
        "diseases": {},
        **result["year_to_date"],
    }
    return comparable


def _expected_days() -> dict[str, dict[str, Any]]:
    """Each client's day, summed from the receipts round 1 handed out."""
    days: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"settlements": 0, "reversals": 0, "amounts": dict.fromkeys(RECONCILED, 0)}
    )
    reversed_ids: set[str] = set()
    for answer in round1.answers():
        body = answer["body"]
        day = days[answer["client_id"]]
        if answer["action"] == "settle" and answer["status"] == 201:
            day["settlements"] += 1
            for fund in RECONCILED:
                day["amounts"][fund] += body["amounts"][fund]
        elif answer["action"] == "reverse" and body["settlement_id"] not in reversed_ids:
            reversed_ids.add(body["settlement_id"])
            day["reversals"] += 1
            for fund in RECONCILED:
                day["amounts"][fund] -= body["amounts"][fund]
    return dict(days)


@ON_BOTH
async def test_round_one_data_reads_and_reconciles_after_migration(
    redis_url: str, tmp_path: Path
) -> None:
    assert round1.restore(redis_url) > 30
    report = await _migrate(redis_url)
    assert report.converted["settlement"] == 7
    assert report.converted["member"] == 2
    assert report.converted["journal"] == 2
    assert report.converted["visit claim"] == 6  # 7 settlements, one visit settled twice
    steps = sync_client(redis_url).smembers(layout.MIGRATIONS_KEY)
    assert steps == {b"visit-claims", b"day-reversals"}
    assert _old_keys(redis_url) == []

    async with (
        open_adjudicator(redis_url, member_key=round1.member_key_text()) as adjudicator,
        open_gateway(adjudicator, redis_url, tmp_path / "keys") as gateway,
    ):
        clients = {
            client_id: SignedClient(gateway.base_url, client_id, round1.client_key(client_id))
            for client_id in ("H3", "P1")
        }
        try:
            # Every settlement answers as it did (the last answer about it, reversals included).
            last: dict[str, dict[str, Any]] = {}
            for answer in round1.answers():
                if answer["status"] in (200, 201):
                    last[answer["body"]["settlement_id"]] = answer
            for settlement_id, answer in last.items():
                fetched = await clients[answer["client_id"]].request(
                    "GET", f"/v1/settlements/{settlement_id}"
                )
                assert fetched.status_code == 200, fetched.text
                assert _comparable(fetched.json()) == _comparable(answer["body"]), settlement_id

            # Each client's day balances against the receipts it holds, one by one too.
            for client_id, figures in _expected_days().items():
                ids = sorted(
                    answer["body"]["settlement_id"]
                    for answer in round1.answers()
                    if answer["client_id"] == client_id and answer["status"] == 201
                )
                reconciled = await clients[client_id].request(
                    "POST",
                    "/v1/reconciliation",
                    json_body={"date": DAY.isoformat(), **figures, "settlement_ids": ids},
                )
                assert reconciled.status_code == 200, reconciled.text
                assert reconciled.json()["result"] == "balanced", reconciled.json()

            # The day exports and verifies once it has closed: seen from two days later (the
            # data set was written on DAY, which may be today).
            served = cast(FastAPI, gateway.server.config.app).state.gateway
            served.clock = lambda: day_closes_ms(DAY) + 2 * 86_400_000
            # The day exports and verifies: one row per journal entry.
            exported = await gateway.agency.request("GET", f"/v1/admin/exports/{DAY}")
            assert exported.status_code == 200, exported.text
            archive = tmp_path / "export.zip"
            archive.write_bytes(exported.content)
            unzip_export(archive, tmp_path / "export")
            assert verify_export(tmp_path / "export").ok
            manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
            assert manifest["files"]["settlements.csv"]["rows"] == 8  # 7 settled, 1 reversed

            # A terminal finds its migrated day and visits (单边账), reversals included.
            for client_id, figures in _expected_days().items():
                listed = await clients[client_id].request(
                    "GET", "/v1/settlements", params={"date": DAY.isoformat(), "limit": "500"}
                )
                assert listed.status_code == 200, listed.text
                events = listed.json()["items"]
                assert len(events) == figures["settlements"] + figures["reversals"]
                for event in events:
                    by_visit = await clients[client_id].request(
                        "GET", "/v1/settlements", params={"visit_id": event["visit_id"]}
                    )
                    ids = [item["settlement_id"] for item in by_visit.json()["items"]]
                    assert event["settlement_id"] in ids

            # The ledger goes on: a replay, a reversal, a new visit on the migrated figures.
            cases = {
                name: json.loads((REPO_ROOT / "docs" / "cases" / f"{name}.json").read_text())
                for name in ("08_replay_conflict_reversal",)
            }
            resettled = cases["08_replay_conflict_reversal"]["steps"][5]["request"]
            replay = await clients["H3"].request("POST", "/v1/settlements", json_body=resettled)
            assert replay.status_code == 200, replay.text
            assert replay.json()["replayed"] is True
            original = next(
                answer["body"]
                for answer in round1.answers()
                if answer["case"].startswith("08") and answer["step"] == 5
            )
            assert replay.json()["settlement_id"] == original["settlement_id"]
            undone = await clients["H3"].request(
                "POST", f"/v1/settlements/{original['settlement_id']}/reversal"
            )
            assert undone.status_code == 200, undone.text
            latest = [
                answer["body"]["year_to_date"]["basic_fund"]
                for answer in round1.answers()
                if answer["status"] == 201 and answer["body"]["member_id"] == "M1"
            ][-1]
            before = latest - original["amounts"]["basic_fund"]
            assert undone.json()["year_to_date"]["basic_fund"] == before
            again = {**resettled, "visit_id": "ZY-AFTER-MIGRATION"}
            settled = await clients["H3"].request("POST", "/v1/settlements", json_body=again)
            assert settled.status_code == 201, settled.text
            assert settled.json()["year_to_date"]["basic_fund"] == (
                before + settled.json()["amounts"]["basic_fund"]
            )
        finally:
            for client in clients.values():
                await client.close()


@pytest.mark.parametrize("stop_after", [1, 5, 17, 30])
async def test_a_migration_cut_short_finishes_when_run_again(
    redis_url: str, stop_after: int
) -> None:
    round1.restore(redis_url)
    await _migrate(redis_url)
    clean = dump_everything(redis_url)

    sync_client(redis_url).flushall()
    round1.restore(redis_url)
    with pytest.raises(Interrupted):
        await _migrate(redis_url, interrupt_after=stop_after)
    assert _old_keys(redis_url), "an interrupted migration leaves work"
    with pytest.raises(OutdatedLayout):
        await start(
            AdjudicatorSettings(port=0, redis_url=redis_url, member_key=round1.member_key_text())
        )
    await _migrate(redis_url)
    assert _old_keys(redis_url) == []
    assert dump_everything(redis_url) == clean


async def test_the_journal_is_rebuilt_with_its_ids(redis_url: str) -> None:
    round1.restore(redis_url)
    client = sync_client(redis_url)
    old_ids = [stream_id for stream_id, _ in cast(_Entries, client.xrange("os1:{g38d}:journal"))]
    await _migrate(redis_url)
    new_entries = cast(_Entries, client.xrange("os2:{g38d}:journal"))
    assert [stream_id for stream_id, _ in new_entries] == old_ids
    first = new_entries[0][1]
    assert first[b"kind"] == b"settlement"
    assert int(first[b"basic_fund"]) == round1.answers()[0]["body"]["amounts"]["basic_fund"]
    client.close()


async def test_migrating_current_data_changes_nothing(redis_url: str) -> None:
    round1.restore(redis_url)
    await _migrate(redis_url)
    before = dump_everything(redis_url)
    report = await _migrate(redis_url)
    assert report.total == 0
    assert dump_everything(redis_url) == before


def test_the_command_reports_what_it_converted(redis_url: str) -> None:
    round1.restore(redis_url)
    completed = subprocess.run(
        [sys.executable, "-m", "onestop", "migrate", "--redis-url", redis_url, "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert "layout os1 -> os2" in lines[-2]
    assert json.loads(lines[-1])["converted"]["settlement"] == 7
    assert _old_keys(redis_url) == []
