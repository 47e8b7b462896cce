"""The agency's review queue over HTTP: flagged settlements, decisions, and recoveries.

Real gateway, adjudicator and Redis: a region's policy flags a stay whose days carry only a
bed fee; the agency lists the day's reviews, decides one once, and the recovery appears as
its own row of the client's reconciliation and of the day's export, the settlement
unchanged.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

from onestop.domain.policy import policy_to_document
from onestop.exports import RECOVERIES, SETTLEMENTS, verify_export
from onestop.tooling.demo.regions import demo_policy
from tests.support.clock import Clock, at
from tests.support.gateway import Gateway
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

FUNDS = ("total", "basic_fund", "supplementary", "assistance", "personal_account", "cash")
CONTROLS = {
    "duplicate_bill": {"action": "refuse"},
    "paper_bed": {"action": "flag", "bed_items": ["FA02"], "min_days": 3},
}


async def test_a_flagged_stay_is_reviewed_once_and_its_recovery_is_its_own_row(
    gateway: Gateway, clock: Clock, tmp_path: Path
) -> None:
    clients = await load_demo_over_http(gateway, [member_record("RV00001")])
    hospital, agency = clients["ZZH3"], gateway.agency
    policy = {**policy_to_document(demo_policy("410100")), "controls": CONTROLS}
    answer = await agency.request("PUT", "/v1/admin/policies", json_body=policy)
    assert answer.status_code == 200, answer.text

    clock.now = at("2026-05-20T09:00:00")
    # Surgery on the first day, then six days of a bed and nothing else.
    body = stay_body("RV-1", "RV00001", date(2026, 5, 10), 7, 300_000)
    settled = (await hospital.request("POST", "/v1/settlements", json_body=body)).json()
    assert settled["status"] == "settled"
    # The same stay again is an overlapping stay (checked first); the same outpatient bill
    # again, under another visit id, is a duplicate claim.
    again = await hospital.request(
        "POST", "/v1/settlements", json_body={**body, "visit_id": "RV-2"}
    )
    assert again.json()["code"] == "OVERLAPPING_STAY", again.text
    visit = {
        "visit_id": "OP-1",
        "member_id": "RV00001",
        "visit_type": "outpatient",
        "service_date": "2026-05-18",
        "diagnoses": ["J06.9"],
        "lines": [
            {
                "line_no": 1,
                "his_code": "RMYY-0020",
                "quantity": "1",
                "unit_price": 900,
                "amount": 900,
                "date": "2026-05-18",
            },
        ],
    }
    assert (await hospital.request("POST", "/v1/settlements", json_body=visit)).status_code == 201
    duplicate = await hospital.request(
        "POST", "/v1/settlements", json_body={**visit, "visit_id": "OP-2"}
    )
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["code"] == "DUPLICATE_CLAIM"

    query = {"date": "2026-05-20", "status": "open"}
    assert (await hospital.request("GET", "/v1/admin/reviews", params=query)).status_code == 403
    listed = await agency.request("GET", "/v1/admin/reviews", params=query)
    assert listed.status_code == 200, listed.text
    [review] = listed.json()
    assert review["settlement_id"] == settled["settlement_id"]
    assert review["status"] == "open"
    assert review["decided_by"] is None
    [finding] = review["findings"]
    assert finding["control"] == "PAPER_BED"
    assert finding["action"] == "flag"
    assert finding["line_nos"] == [2, 3, 4, 5, 6, 7]
    funds_paid = settled["amounts"]["basic_fund"] + settled["amounts"]["supplementary"]
    assert review["funds_paid"] == funds_paid + settled["amounts"]["assistance"]

    decision_path = f"/v1/admin/reviews/{settled['settlement_id']}/decision"
    too_much = {"decision": "recover", "amount": review["funds_paid"] + 1, "reason": "x"}
    refused = await agency.request("POST", decision_path, json_body=too_much)
    assert refused.status_code == 422, refused.text
    clock.now = at("2026-05-22T16:30:00")
    decision: dict[str, Any] = {
        "decision": "recover",
        "amount": 24_000,
        "reason": "no care on six days of the stay",
        "reviewer": "LI-01",
    }
    decided = await agency.request("POST", decision_path, json_body=decision)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "recovered"
    assert decided.json()["decided_by"] == f"{agency.client_id}:LI-01"
    assert decided.json()["decided_at"].startswith("2026-05-22T16:30:00")
    again = await agency.request("POST", decision_path, json_body=decision)
    assert again.json() == decided.json(), "the same decision again answers it as decided"
    other = await agency.request(
        "POST", decision_path, json_body={"decision": "accept", "reason": "fine after all"}
    )
    assert other.status_code == 409
    assert other.json()["code"] == "REVIEW_DECIDED"
    assert (await agency.request("GET", "/v1/admin/reviews", params=query)).json() == []

    # The settlement itself is never rewritten.
    read = await hospital.request("GET", f"/v1/settlements/{settled['settlement_id']}")
    assert read.json()["amounts"] == settled["amounts"]
    # The recovery is a row of the decision day: reconciliation shows it, apart.
    day = {
        "date": "2026-05-22",
        "settlements": 0,
        "reversals": 0,
        "amounts": dict.fromkeys(FUNDS, 0),
    }
    reconciled = await hospital.request("POST", "/v1/reconciliation", json_body=day)
    assert reconciled.json()["result"] == "balanced", reconciled.text
    assert reconciled.json()["recoveries"] == {"count": 1, "recovered": 24_000}
    recoveries = await agency.request("GET", "/v1/admin/recoveries", params={"date": "2026-05-22"})
    assert [item["settlement_id"] for item in recoveries.json()] == [settled["settlement_id"]]
    # ... and the export's recoveries.csv, signed with the rest.
    exported = await agency.request("GET", "/v1/admin/exports/2026-05-22")
    assert exported.status_code == 200, exported.text
    archive = zipfile.ZipFile(io.BytesIO(exported.content))
    rows = list(csv.DictReader(io.StringIO(archive.read(RECOVERIES).decode())))
    assert [(row["settlement_id"], row["recovered"], row["controls"]) for row in rows] == [
        (settled["settlement_id"], "24000", "PAPER_BED")
    ]
    assert rows[0]["decided_by"] == f"{agency.client_id}:LI-01"
    assert archive.read(SETTLEMENTS).decode().count("\n") == 1, "no settlement that day"
    (tmp_path / "export.zip").write_bytes(exported.content)
    assert verify_export(tmp_path / "export.zip").ok
