"""A day of the HIS's own records, read from its CSV export and reconciled from the CLI."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from onestop.clock import now_ms, settlement_day
from onestop.domain.errors import MalformedDocument
from onestop.domain.money import fen_of_yuan
from onestop.his_reconcile import reconciliation_request, report_lines
from onestop.signing import private_pem, write_secret_file
from tests.onestop.test_cli_errors import onestop_async
from tests.support.gateway import Gateway
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

FUNDS = ("total", "basic_fund", "supplementary", "assistance", "personal_account", "cash")
HEADER = "settlement_id,event,visit_type,scheme," + ",".join(FUNDS)


def test_yuan_convert_exactly_or_not_at_all() -> None:
    assert fen_of_yuan("1234.50") == 123_450
    assert fen_of_yuan("-0.01") == -1
    assert fen_of_yuan("7") == 700
    assert fen_of_yuan("2.3000") == 230  # trailing zeros are exact
    for wrong in ("1.005", "1e3", "", "1,000.00", ".5", "１"):
        with pytest.raises(ValueError, match=r"yuan|decimals"):
            fen_of_yuan(wrong)


def test_a_day_of_records_becomes_totals_groups_and_amounts_per_settlement() -> None:
    text = "\n".join(
        (
            HEADER,
            "S1,settlement,inpatient,resident,100000,60000,0,0,0,40000",
            "S2,,outpatient,resident,5000,2500,0,0,1000,1500",
            # a reversal of an earlier day's settlement, written negative as onestop exports it
            "S0,reversal,inpatient,resident,-3000,-1000,0,0,0,-2000",
            ",,,,,,,,,",
        )
    )
    body = reconciliation_request(text, "2026-03-09")
    assert body["date"] == "2026-03-09"
    assert (body["settlements"], body["reversals"]) == (2, 1)
    assert body["amounts"] == {
        "total": 102_000,
        "basic_fund": 61_500,
        "supplementary": 0,
        "assistance": 0,
        "personal_account": 1_000,
        "cash": 39_500,
    }
    assert set(body["settlement_amounts"]) == {"S1", "S2"}  # only settlements, by id
    assert body["settlement_amounts"]["S2"]["personal_account"] == 1_000
    groups = {(group["visit_type"], group["scheme"]): group for group in body["groups"]}
    assert groups["inpatient", "resident"]["settlements"] == 1
    assert groups["inpatient", "resident"]["reversals"] == 1
    assert groups["inpatient", "resident"]["amounts"]["total"] == 97_000
    assert groups["outpatient", "resident"]["amounts"]["cash"] == 1_500


def test_onestops_own_export_reads_as_it_is_and_yuan_convert() -> None:
    text = (
        "event,at,settlement_id,client_id,total,basic_fund,supplementary,assistance,"
        "personal_account,cash,hospital_part,policy_scheme,visit_type\n"
        "settlement,x,S1,H1,10.50,5.25,0,0,0,5.25,0,resident,pharmacy\n"
    )
    body = reconciliation_request(text, "2026-03-09", yuan=True)
    assert body["settlement_amounts"]["S1"]["cash"] == 525
    assert body["groups"][0]["visit_type"] == "pharmacy"


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("S1,settlement,inpatient,resident,1.005,0,0,0,0,1.005", "row 2"),
        ("S1,refund,inpatient,resident,1,0,0,0,0,1", "not settlement or reversal"),
        ("S1,settlement,inpatient,resident,-1,0,0,0,0,-1", "not negative"),
        ("S1,reversal,inpatient,resident,-1,0,0,0,0,1", "all negative or all positive"),
        ("S1,settlement,clinic,resident,1,0,0,0,0,1", "not a visit type"),
        (",settlement,inpatient,resident,1,0,0,0,0,1", "settlement_id: empty"),
    ],
)
def test_a_row_that_does_not_read_is_named_and_nothing_is_sent(row: str, says: str) -> None:
    with pytest.raises(MalformedDocument) as refused:
        reconciliation_request(f"{HEADER}\n{row}\n", "2026-03-09", yuan=True)
    assert "nothing was sent" in refused.value.message
    assert refused.value.problems[0].row == 2
    assert says in f"row {refused.value.problems[0].row} {refused.value.problems[0].message}"


def test_a_settlement_listed_twice_and_a_missing_column_are_refused() -> None:
    with pytest.raises(MalformedDocument, match="rows that do not read") as twice:
        reconciliation_request(
            f"{HEADER}\nS1,,inpatient,resident,1,0,0,0,0,1\nS1,,inpatient,resident,1,0,0,0,0,1\n",
            "2026-03-09",
        )
    assert "listed twice" in twice.value.problems[0].message
    with pytest.raises(MalformedDocument, match="no column cash"):
        reconciliation_request(
            "settlement_id,total,basic_fund,supplementary,assistance,personal_account\n",
            "2026-03-09",
        )


def test_the_report_names_the_settlement_and_the_fen() -> None:
    answer: dict[str, Any] = {
        "result": "unbalanced",
        "provisional": True,
        "differences": {"settlements": -1, "total": 1, "cash": 1, "basic_fund": 0},
        "only_in_gateway": ["S2"],
        "only_in_hospital": [],
        "amount_differences": [
            {"settlement_id": "S1", "differences": {"total": 1, "cash": 1, "basic_fund": 0}}
        ],
        "groups": [],
        "notes": [],
    }
    text = "\n".join(report_lines(answer))
    assert "result: unbalanced (provisional" in text
    assert "S1: total 0.01 yuan (1 fen), cash 0.01 yuan (1 fen)" in text
    assert "only in onestop (1" in text
    assert "settlements: -1" in text


async def test_onestop_reconcile_prints_what_differs_and_exits_by_the_verdict(
    gateway: Gateway, tmp_path: Path
) -> None:
    clients = await load_demo_over_http(
        gateway, [member_record("M730001"), member_record("M730002")]
    )
    hospital = clients["ZZH3"]
    today = settlement_day(now_ms())
    results = []
    for number, member in enumerate(("M730001", "M730002")):
        body = stay_body(f"CLI{number}", member, date(today.year, 1, 5), 3, 80_000 * (number + 1))
        answer = await hospital.request("POST", "/v1/settlements", json_body=body)
        assert answer.status_code == 201, answer.text
        results.append(answer.json())
    key = tmp_path / "ZZH3.key"
    write_secret_file(key, private_pem(gateway.keys["ZZH3"]))

    def his_export(rows: list[dict[str, Any]]) -> Path:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["settlement_id", *FUNDS])
        for result in rows:
            amounts = result["amounts"]
            writer.writerow(
                [
                    result["settlement_id"],
                    *(f"{amounts[f] // 100}.{amounts[f] % 100:02d}" for f in FUNDS),
                ]
            )
        path = tmp_path / "his.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        return path

    connection = ("--url", gateway.base_url, "--client-id", "ZZH3", "--key", key)
    # The HIS lost the second answer and booked the first one's cash a fen short.
    short = {**results[0], "amounts": {**results[0]["amounts"]}}
    short["amounts"]["cash"] -= 1
    short["amounts"]["total"] -= 1
    status, out, err = await onestop_async(
        "reconcile", his_export([short]), "--date", today.isoformat(), "--yuan", *connection
    )
    assert status == 3, (out, err)
    assert "result: unbalanced" in out
    assert f"{results[0]['settlement_id']}: total 0.01 yuan (1 fen), cash 0.01 yuan (1 fen)" in out
    assert "only in onestop (1" in out
    assert results[1]["settlement_id"] in out

    status, out, err = await onestop_async(
        "reconcile", his_export(results), "--date", today.isoformat(), "--yuan", *connection
    )
    assert status == 0, (out, err)
    assert out.startswith("result: balanced")

    # A file that does not read is refused before anything is sent, row by row.
    bad = tmp_path / "bad.csv"
    bad.write_text("settlement_id," + ",".join(FUNDS) + "\nS1,1.005,0,0,0,0,1\n", "utf-8")
    status, out, err = await onestop_async(
        "reconcile", bad, "--date", today.isoformat(), "--yuan", *connection
    )
    assert status == 2, (out, err)
    assert "row 2: total" in err
    assert "Traceback" not in err
