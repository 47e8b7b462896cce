"""Daily reconciliation and the agency's signed exports, over HTTP on the real stack."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.routers.admin import check_day_closed
from onestop.clock import day_closes_ms, iso_from_ms, now_ms, settlement_day
from onestop.domain.errors import InvalidDocument
from onestop.exports import (
    MANIFEST,
    RECOVERIES,
    SETTLEMENTS,
    SUMMARY,
    unzip_export,
    verify_export,
)
from onestop.signing import public_pem
from onestop.storage import layout
from tests.support.clock import Clock, at
from tests.support.gateway import Gateway
from tests.support.redis import ON_BOTH, sync_client
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

FUNDS = ("total", "basic_fund", "supplementary", "assistance", "personal_account", "cash")


def at_community_centre(body: dict[str, Any]) -> dict[str, Any]:
    """The same bill in the community centre's own HIS codes."""
    lines = [
        {**line, "his_code": line["his_code"].replace("RMYY-", "JS")} for line in body["lines"]
    ]
    return {**body, "lines": lines}


def funds(result: dict[str, Any], sign: int = 1) -> dict[str, int]:
    return {fund: sign * result["amounts"][fund] for fund in FUNDS}


@ON_BOTH
async def test_a_day_boundary_splits_a_settlement_and_its_reversal(
    gateway: Gateway, clock: Clock
) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M800001")])
    hospital = clients["ZZH3"]
    clock.now = at("2026-03-09T23:59:59")
    body = stay_body("D1", "M800001", date(2026, 3, 1), 9, 300_000)
    settled = (await hospital.request("POST", "/v1/settlements", json_body=body)).json()
    assert settled["settled_at"].startswith("2026-03-09T23:59:59")
    clock.now = at("2026-03-10T00:00:01")
    reversal = await hospital.request(
        "POST", f"/v1/settlements/{settled['settlement_id']}/reversal"
    )
    assert reversal.json()["reversed_at"].startswith("2026-03-10T00:00:01")

    first = {"date": "2026-03-09", "settlements": 1, "reversals": 0, "amounts": funds(settled)}
    answer = await hospital.request("POST", "/v1/reconciliation", json_body=first)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "balanced"
    assert answer.json()["gateway"] == {k: v for k, v in first.items() if k != "date"}

    second = {"date": "2026-03-10", "settlements": 0, "reversals": 1, "amounts": funds(settled, -1)}
    answer = await hospital.request("POST", "/v1/reconciliation", json_body=second)
    assert answer.json()["result"] == "balanced", answer.text


async def test_differences_and_detail(gateway: Gateway, clock: Clock) -> None:
    clients = await load_demo_over_http(
        gateway, [member_record("M800002"), member_record("M800003")]
    )
    hospital, other = clients["ZZH3"], clients["ZZC1"]
    clock.now = at("2026-05-20T09:00:00")
    results = []
    for n, member in enumerate(("M800002", "M800003")):
        body = stay_body(f"R{n}", member, date(2026, 5, 10), 5, 100_000 * (n + 1))
        results.append((await hospital.request("POST", "/v1/settlements", json_body=body)).json())
    # another hospital's settlement the same day is not this hospital's business
    body = at_community_centre(stay_body("X", "M800002", date(2026, 5, 1), 3, 50_000))
    assert (await other.request("POST", "/v1/settlements", json_body=body)).status_code == 201
    ids = [result["settlement_id"] for result in results]
    claimed = {fund: sum(result["amounts"][fund] for result in results) for fund in FUNDS}
    claimed["cash"] -= 100  # the hospital's books are 1 yuan short in cash
    answer = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={
            "date": "2026-05-20",
            "settlements": 2,
            "reversals": 0,
            "amounts": claimed,
            "settlement_ids": [ids[0], "S-UNKNOWN-TO-THE-GATEWAY"],
        },
    )
    body = answer.json()
    assert body["result"] == "unbalanced"
    assert body["differences"]["cash"] == 100
    assert body["differences"]["total"] == 0
    assert body["differences"]["settlements"] == 0
    assert body["only_in_gateway"] == [ids[1]]
    assert body["only_in_hospital"] == ["S-UNKNOWN-TO-THE-GATEWAY"]

    empty = await clients["GYH3"].request(
        "POST",
        "/v1/reconciliation",
        json_body={
            "date": "2026-05-20",
            "settlements": 0,
            "reversals": 0,
            "amounts": dict.fromkeys(FUNDS, 0),
            "settlement_ids": [],
        },
    )
    assert empty.json()["result"] == "balanced"  # a hospital sees only its own day
    forbidden = await gateway.agency.request(
        "POST",
        "/v1/reconciliation",
        json_body={
            "date": "2026-05-20",
            "settlements": 0,
            "reversals": 0,
            "amounts": dict.fromkeys(FUNDS, 0),
        },
    )
    assert forbidden.status_code == 403


async def _export(gateway: Gateway, day: str, out: Path) -> dict[str, Any]:
    answer = await gateway.agency.request("GET", f"/v1/admin/exports/{day}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(answer.content)).namelist())
    assert names == {SETTLEMENTS, SUMMARY, RECOVERIES, MANIFEST}
    (out.parent / "export.zip").write_bytes(answer.content)
    unzip_export(out.parent / "export.zip", out)
    manifest: dict[str, Any] = json.loads((out / MANIFEST).read_text())
    assert manifest["final"] is True  # a closed day
    return manifest


async def test_detail_reads_the_callers_own_ids_never_the_journal(
    gateway: Gateway, clock: Clock, redis_url: str
) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M800004")])
    clock.now = at("2026-05-21T09:00:00")
    body = stay_body("J1", "M800004", date(2026, 5, 11), 2, 30_000)
    settled = await clients["ZZH3"].request("POST", "/v1/settlements", json_body=body)
    assert settled.status_code == 201, settled.text

    def journal_reads() -> int:
        client = sync_client(redis_url)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        return int(stats.get("cmdstat_xrange", {}).get("calls", 0))

    before = journal_reads()
    answer = await clients["ZZH3"].request(
        "POST",
        "/v1/reconciliation",
        json_body={
            "date": "2026-05-21",
            "settlements": 1,
            "reversals": 0,
            "amounts": {fund: settled.json()["amounts"][fund] for fund in FUNDS},
            "settlement_ids": [settled.json()["settlement_id"]],
        },
    )
    assert answer.json()["result"] == "balanced", answer.json()
    # Reading the journal made the call's cost grow with every client's volume of the day.
    assert journal_reads() == before


@ON_BOTH
async def test_export_of_a_busy_day_verifies_and_tampering_is_caught(
    gateway: Gateway, clock: Clock, tmp_path: Path
) -> None:
    members = [member_record(f"M8001{n:02d}") for n in range(6)]
    clients = await load_demo_over_http(gateway, members)
    clock.now = at("2026-06-01T10:00:00")
    settled = []
    for n, member in enumerate(members):
        window = clients["ZZH3"] if n % 2 else clients["ZZC1"]
        body = stay_body(f"E{n}", member["member_id"], date(2026, 5, 20), 3, 20_000 * (n + 1))
        if window is clients["ZZC1"]:
            body = at_community_centre(body)
        answer = await window.request("POST", "/v1/settlements", json_body=body)
        assert answer.status_code == 201, answer.text
        settled.append(answer.json())
        clock.now += 1000
    reversed_one = settled[1]
    clock.now = at("2026-06-01T18:00:00")
    await clients["ZZH3"].request(
        "POST", f"/v1/settlements/{reversed_one['settlement_id']}/reversal"
    )

    out = tmp_path / "export"
    manifest = await _export(gateway, "2026-06-01", out)
    assert manifest["files"][SETTLEMENTS]["rows"] == 7
    assert manifest["files"][SUMMARY]["rows"] == 2
    result = verify_export(out)
    assert result.ok, result.failures
    keys = (await gateway.agency.request("GET", "/v1/keys")).json()["keys"]
    pem = next(key["public_key"] for key in keys if key["key_id"] == manifest["key_id"])
    assert verify_export(out, pem).ok

    rows = (out / SETTLEMENTS).read_text().splitlines()
    assert rows[0].startswith("event,at,settlement_id,client_id,visit_id,member_id")
    assert [row.split(",")[0] for row in rows[1:]] == ["settlement"] * 6 + ["reversal"]
    times = [row.split(",")[1] for row in rows[1:]]
    assert times == sorted(times)
    reversal_row = rows[-1].split(",")
    assert int(reversal_row[10]) == -reversed_one["amounts"]["total"]
    for member in members:  # no clear personal data
        assert member["id_number"] not in (out / SETTLEMENTS).read_text()
    summary = {
        row.split(",")[0]: row.split(",") for row in (out / SUMMARY).read_text().splitlines()[1:]
    }
    assert summary["ZZH3"][1:3] == ["3", "1"]
    assert (
        int(summary["ZZH3"][3])
        == sum(result["amounts"]["total"] for result in settled[1::2])
        - reversed_one["amounts"]["total"]
    )

    # tampering: one byte of each file, a removed row, a swapped signature, a foreign key
    for name in (SETTLEMENTS, SUMMARY, MANIFEST):
        copy = tmp_path / f"byte-{name}"
        unzip_export(tmp_path / "export.zip", copy)
        data = bytearray((copy / name).read_bytes())
        index = len(data) // 2
        data[index] = ord("7") if data[index] != ord("7") else ord("8")
        (copy / name).write_bytes(bytes(data))
        assert not verify_export(copy).ok, name
    removed = tmp_path / "removed-row"
    unzip_export(tmp_path / "export.zip", removed)
    lines = (removed / SETTLEMENTS).read_text().splitlines(keepends=True)
    (removed / SETTLEMENTS).write_text("".join(lines[:-1]))
    failures = verify_export(removed).failures
    assert any("SHA-256" in failure for failure in failures)
    assert any("rows" in failure for failure in failures)
    swapped = tmp_path / "swapped"
    unzip_export(tmp_path / "export.zip", swapped)
    forged = json.loads((swapped / MANIFEST).read_text())
    forged["signature"] = manifest["signature"][::-1]
    (swapped / MANIFEST).write_text(json.dumps(forged))
    assert "signature: does not verify" in verify_export(swapped).failures
    foreign = public_pem(Ed25519PrivateKey.generate().public_key())
    assert not verify_export(out, foreign).ok
    missing = tmp_path / "missing"
    unzip_export(tmp_path / "export.zip", missing)
    (missing / SUMMARY).unlink()
    assert "summary.csv: missing" in verify_export(missing).failures


async def test_a_day_without_settlements_exports_empty_signed_files(
    gateway: Gateway, tmp_path: Path
) -> None:
    manifest = await _export(gateway, "2026-01-01", tmp_path / "empty")
    assert manifest["files"][SETTLEMENTS]["rows"] == 0
    assert manifest["files"][SUMMARY]["rows"] == 0
    assert verify_export(tmp_path / "empty").ok
    assert (tmp_path / "empty" / SETTLEMENTS).read_text().count("\n") == 1


async def test_an_open_day_exports_only_provisionally_and_a_future_day_never(
    gateway: Gateway, tmp_path: Path
) -> None:
    today = settlement_day(now_ms())
    for day, params, words in [
        (today, {}, "is not closed yet"),
        (today + timedelta(days=1), {}, "is in the future"),
        (today + timedelta(days=1), {"provisional": "true"}, "is in the future"),
        (date(2099, 1, 1), {}, "is in the future"),
    ]:
        answer = await gateway.agency.request(
            "GET", f"/v1/admin/exports/{day.isoformat()}", params=params
        )
        assert (answer.status_code, answer.json()["code"]) == (422, "INVALID"), answer.text
        assert words in answer.json()["detail"]
        assert answer.json()["errors"][0]["field"] == "date"
    answer = await gateway.agency.request(
        "GET", f"/v1/admin/exports/{today.isoformat()}", params={"provisional": "true"}
    )
    assert answer.status_code == 200, answer.text
    (tmp_path / "open.zip").write_bytes(answer.content)
    unzip_export(tmp_path / "open.zip", tmp_path / "open")
    manifest = json.loads((tmp_path / "open" / MANIFEST).read_text())
    assert manifest["final"] is False  # under the signature
    result = verify_export(tmp_path / "open")
    assert result.ok, result.failures
    assert result.final is False
    assert any(check.startswith("provisional") for check in result.checks)


def test_a_day_exports_once_closed_and_the_grace_passed() -> None:
    day = date(2026, 3, 9)
    closes = day_closes_ms(day)
    assert iso_from_ms(closes) == "2026-03-10T00:00:00.000+08:00"
    with pytest.raises(InvalidDocument, match="not closed yet"):
        check_day_closed(day, closes + 899_999, grace_seconds=900)
    assert check_day_closed(day, closes + 900_000, grace_seconds=900) is True
    assert check_day_closed(day, closes, grace_seconds=0) is True
    with pytest.raises(InvalidDocument, match="not closed yet"):
        check_day_closed(day, closes - 1, grace_seconds=0)
    assert check_day_closed(day, closes - 1, grace_seconds=0, provisional=True) is False
    with pytest.raises(InvalidDocument, match="in the future"):
        check_day_closed(day, day_closes_ms(day - timedelta(days=2)), 0, provisional=True)


async def test_an_open_day_is_provisional_and_an_empty_day_says_why(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M730001")])
    hospital = clients["ZZH3"]
    settled = await hospital.request(
        "POST",
        "/v1/settlements",
        json_body=stay_body("PV1", "M730001", date(2026, 3, 1), 2, 10_000),
    )
    assert settled.status_code == 201
    amounts = settled.json()["amounts"]
    mine = {
        "settlements": 1,
        "reversals": 0,
        "amounts": {fund: amounts[fund] for fund in FUNDS},
    }
    today = settlement_day(now_ms())
    answer = await hospital.request(
        "POST", "/v1/reconciliation", json_body={"date": today.isoformat(), **mine}
    )
    assert answer.json()["result"] == "balanced"
    assert answer.json()["provisional"] is True  # the day is still open
    assert answer.json()["notes"] == []
    # The same figures filed under yesterday (a UTC date taken before 08:00 Beijing time).
    wrong_day = (today - timedelta(days=1)).isoformat()
    answer = await hospital.request(
        "POST", "/v1/reconciliation", json_body={"date": wrong_day, **mine}
    )
    body = answer.json()
    assert (body["result"], body["provisional"]) == ("unbalanced", False)
    assert "Asia/Shanghai" in body["notes"][0]
    assert "UTC" in body["notes"][0]


def outpatient_body(visit_id: str, member_id: str, day: date) -> dict[str, Any]:
    """A level-3 outpatient visit: a consultation and a drug."""
    return {
        "visit_id": visit_id,
        "member_id": member_id,
        "visit_type": "outpatient",
        "service_date": day.isoformat(),
        "diagnoses": ["J06.9"],
        "lines": [
            {
                "line_no": 1,
                "his_code": "RMYY-0020",
                "quantity": "1",
                "unit_price": 800,
                "amount": 800,
                "date": day.isoformat(),
            },
            {
                "line_no": 2,
                "his_code": "RMYY-0001",
                "quantity": "2",
                "unit_price": 2350,
                "amount": 4700,
                "date": day.isoformat(),
            },
        ],
    }


def group_figures(results: list[dict[str, Any]], visit_type: str) -> dict[str, Any]:
    chosen = [result for result in results if result["visit_type"] == visit_type]
    return {
        "visit_type": visit_type,
        "scheme": "resident",
        "settlements": len(chosen),
        "reversals": 0,
        "amounts": {fund: sum(result["amounts"][fund] for result in chosen) for fund in FUNDS},
    }


@ON_BOTH
async def test_amounts_per_settlement_and_groups_find_the_fen_and_the_agency_sees_it(
    gateway: Gateway, clock: Clock, tmp_path: Path
) -> None:
    clients = await load_demo_over_http(
        gateway, [member_record("M800021"), member_record("M800022")]
    )
    hospital = clients["ZZH3"]
    clock.now = at("2026-06-10T10:00:00")
    results = []
    for body in (
        stay_body("G1", "M800021", date(2026, 6, 1), 4, 200_000),
        outpatient_body("G2", "M800022", date(2026, 6, 10)),
    ):
        answer = await hospital.request("POST", "/v1/settlements", json_body=body)
        assert answer.status_code == 201, answer.text
        results.append(answer.json())
    stay, visit = results
    day_figures = {
        "date": "2026-06-10",
        "settlements": 2,
        "reversals": 0,
        "amounts": {fund: stay["amounts"][fund] + visit["amounts"][fund] for fund in FUNDS},
    }
    # The HIS booked the outpatient visit's cash one fen short, and the total with it.
    short = {**funds(visit), "cash": visit["amounts"]["cash"] - 1}
    short["total"] -= 1
    first = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={
            **day_figures,
            "settlement_amounts": {
                stay["settlement_id"]: funds(stay),
                visit["settlement_id"]: short,
            },
            "groups": [group_figures(results, "inpatient"), group_figures(results, "outpatient")],
        },
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["result"] == "unbalanced"
    assert body["only_in_gateway"] == []
    assert body["only_in_hospital"] == []
    [difference] = body["amount_differences"]
    assert difference["settlement_id"] == visit["settlement_id"]
    assert difference["differences"] == {**dict.fromkeys(FUNDS, 0), "total": 1, "cash": 1}
    assert [
        (group["visit_type"], group["scheme"], group["result"]) for group in body["groups"]
    ] == [
        ("inpatient", "resident", "balanced"),
        ("outpatient", "resident", "balanced"),
    ]
    assert body["groups"][0]["gateway"]["settlements"] == 1

    # The HIS fixes its books; and files the visit under the wrong visit type.
    misfiled = {**group_figures(results, "outpatient"), "visit_type": "outpatient_special"}
    second = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={**day_figures, "groups": [group_figures(results, "inpatient"), misfiled]},
    )
    groups = {(group["visit_type"], group["result"]) for group in second.json()["groups"]}
    assert groups == {
        ("inpatient", "balanced"),
        ("outpatient", "unbalanced"),
        ("outpatient_special", "unbalanced"),
    }
    assert second.json()["result"] == "unbalanced"
    third = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={
            **day_figures,
            "settlement_amounts": {
                stay["settlement_id"]: funds(stay),
                visit["settlement_id"]: funds(visit),
            },
        },
    )
    assert third.json()["result"] == "balanced", third.text

    # Refusals change nothing and say how to fix.
    both = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={
            **day_figures,
            "settlement_ids": [stay["settlement_id"]],
            "settlement_amounts": {stay["settlement_id"]: funds(stay)},
        },
    )
    assert both.status_code == 422
    assert "settlement_ids or settlement_amounts, not both" in both.text
    twice = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={**day_figures, "groups": [group_figures(results, "inpatient")] * 2},
    )
    assert twice.status_code == 422
    assert "each visit type and scheme at most once" in twice.text

    # The agency sees who balanced, who did not, by how much, and who never reconciled.
    kept = await gateway.agency.request("GET", "/v1/admin/reconciliations?date=2026-06-10")
    assert kept.status_code == 200, kept.text
    standing = {client["client_id"]: client for client in kept.json()["clients"]}
    zzh3 = standing["ZZH3"]
    assert zzh3["status"] == "balanced"
    assert [answer["result"] for answer in zzh3["history"]] == [
        "unbalanced",
        "unbalanced",
        "balanced",
    ]
    assert [answer["detail"] for answer in zzh3["history"]] == ["amounts", "totals", "amounts"]
    assert zzh3["history"][0]["amount_differences"] == 1
    # the day's totals agreed: only the amounts per settlement found the fen
    assert not any(zzh3["history"][0]["differences"].values())
    assert zzh3["history"][1]["unbalanced_groups"] == [
        {"visit_type": "outpatient", "scheme": "resident"},
        {"visit_type": "outpatient_special", "scheme": "resident"},
    ]
    assert zzh3["history"][0]["reconciled_at"].startswith("2026-06-10T10:00:00")
    assert zzh3["history"][0]["provisional"] is False  # closed, by the gateway's own clock
    assert standing["ZZC1"]["status"] == "not_reconciled"
    assert "agency" not in standing  # the agency settles nothing, so reconciles nothing
    assert standing["ZZC1"]["latest"] is None
    one = await gateway.agency.request(
        "GET", "/v1/admin/reconciliations?date=2026-06-10&client_id=ZZH3"
    )
    assert [client["client_id"] for client in one.json()["clients"]] == ["ZZH3"]
    assert (
        await hospital.request("GET", "/v1/admin/reconciliations?date=2026-06-10")
    ).status_code == 403

    # The export carries each settlement's visit type, dates and the hospital's level.
    clock.now = at("2026-06-12T10:00:00")
    rows = await _export_rows(gateway, "2026-06-10", tmp_path / "export")
    by_visit = {row["visit_id"]: row for row in rows}
    assert (
        by_visit["G1"]["visit_type"],
        by_visit["G1"]["first_day"],
        by_visit["G1"]["last_day"],
        by_visit["G1"]["hospital_level"],
        by_visit["G1"]["policy_scheme"],
    ) == ("inpatient", "2026-06-01", "2026-06-04", "level3", "resident")
    assert by_visit["G2"]["first_day"] == by_visit["G2"]["last_day"] == "2026-06-10"


async def _export_rows(gateway: Gateway, day: str, out: Path) -> list[dict[str, str]]:
    out.mkdir(parents=True)
    await _export(gateway, day, out / "files")
    with (out / "files" / SETTLEMENTS).open(newline="") as handle:
        return list(csv.DictReader(handle))


async def test_a_day_settled_before_the_split_was_recorded_still_reconciles(
    gateway: Gateway, clock: Clock, redis_url: str
) -> None:
    """Data an older onestop wrote (no visit facts, no groups) still reconciles.

    A reversal of it counts in the right group: its visit type comes from the record.
    """
    clients = await load_demo_over_http(gateway, [member_record("M800023")])
    hospital = clients["ZZH3"]
    clock.now = at("2026-06-15T10:00:00")
    body = stay_body("OLD1", "M800023", date(2026, 6, 1), 3, 100_000)
    settled = (await hospital.request("POST", "/v1/settlements", json_body=body)).json()
    settlement_id = settled["settlement_id"]
    group = layout.group_of_settlement(settlement_id)
    assert group is not None
    redis = sync_client(redis_url)
    try:
        # What an older version left: no visit facts on the settlement, no groups in the day.
        redis.hdel(
            layout.settlement_key(group, settlement_id),
            *(
                field.value
                for field in (
                    layout.SettlementField.VISIT_TYPE,
                    layout.SettlementField.FIRST_DAY,
                    layout.SettlementField.LAST_DAY,
                    layout.SettlementField.HOSPITAL_LEVEL,
                )
            ),
        )
        totals = layout.day_totals_key(group, "20260615", "ZZH3")
        names = cast(list[bytes], redis.hkeys(totals))
        grouped = [name for name in names if name.startswith(b"by:")]
        assert grouped
        redis.hdel(totals, *grouped)
    finally:
        redis.close()
    first = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={
            "date": "2026-06-15",
            "settlements": 1,
            "reversals": 0,
            "amounts": funds(settled),
        },
    )
    answer = first.json()
    assert answer["result"] == "balanced", answer
    [unrecorded] = answer["groups"]
    assert (unrecorded["visit_type"], unrecorded["scheme"]) == (None, None)
    assert unrecorded["gateway"]["settlements"] == 1
    assert any("before onestop recorded visit types" in note for note in answer["notes"])

    clock.now = at("2026-06-16T09:00:00")
    reversed_ = await hospital.request("POST", f"/v1/settlements/{settlement_id}/reversal")
    assert reversed_.status_code == 200, reversed_.text
    second = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={
            "date": "2026-06-16",
            "settlements": 0,
            "reversals": 1,
            "amounts": funds(settled, -1),
            "groups": [
                {
                    "visit_type": "inpatient",
                    "scheme": "resident",
                    "settlements": 0,
                    "reversals": 1,
                    "amounts": funds(settled, -1),
                }
            ],
        },
    )
    assert second.json()["result"] == "balanced", second.text
