"""Registrations and the round-2 figures over HTTP, on one Redis and on a cluster.

The demo Zhengzhou plan lists dialysis (MT002) for registered patients at 80 % within its own
20,000-yuan cap, and pays 5 points less out of region for registered members (15 for others).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from tests.support.gateway import Gateway
from tests.support.redis import ON_BOTH
from tests.support.scenario import member_record
from tests.support.world import load_demo_over_http

REGISTERED = member_record(
    "M180001",
    out_of_region_registrations=[{"region": "520100", "from": "2026-01-01", "to": None}],
    registered_diseases=[{"code": "MT002", "from": "2026-03-02", "to": None}],
)


def _dialysis(visit_id: str, day: date) -> dict[str, Any]:
    return {
        "visit_id": visit_id,
        "member_id": "M180001",
        "visit_type": "outpatient_special",
        "service_date": day.isoformat(),
        "diagnoses": ["n18.5"],  # matched upper-case
        "lines": [
            {
                "line_no": 1,
                "his_code": "RMYY-0014",  # FA04 dialysis, capped at 450 yuan
                "quantity": "1",
                "unit_price": 45000,
                "amount": 45000,
                "date": day.isoformat(),
            }
        ],
    }


@ON_BOTH
async def test_registrations_show_count_and_reverse_exactly(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [REGISTERED])
    hospital, agency = clients["ZZH3"], gateway.agency

    eligibility = await hospital.request(
        "GET", "/v1/members/M180001/eligibility", params={"date": "2026-03-02"}
    )
    assert eligibility.status_code == 200, eligibility.text
    shown = eligibility.json()
    assert shown["out_of_region_registrations"] == [
        {"region": "520100", "from": "2026-01-01", "to": None}
    ]
    assert shown["registered_diseases"] == [{"code": "MT002", "from": "2026-03-02", "to": None}]
    assert shown["year_to_date"]["diseases"] == {}

    # The day before the registration starts: MT002 does not cover it, and no other disease
    # lists N18: settled as a general outpatient visit, which Zhengzhou does not pool.
    early = await hospital.request(
        "POST", "/v1/settlements", json_body=_dialysis("MT-0", date(2026, 3, 1))
    )
    assert early.status_code == 201, early.text
    assert [note["code"] for note in early.json()["notes"]] == ["DISEASE_NOT_REGISTERED"]
    assert early.json()["amounts"]["basic_fund"] == 0

    # From its first day: 45,000 x 0.80 = 36,000, on the disease's own figure too.
    first = await hospital.request(
        "POST", "/v1/settlements", json_body=_dialysis("MT-1", date(2026, 3, 2))
    )
    assert first.status_code == 201, first.text
    assert first.json()["amounts"]["basic_fund"] == 36000
    assert first.json()["year_to_date"]["diseases"] == {"MT002": 36000}
    second = await hospital.request(
        "POST", "/v1/settlements", json_body=_dialysis("MT-2", date(2026, 3, 5))
    )
    assert second.json()["year_to_date"]["diseases"] == {"MT002": 72000}

    # Reversing the first takes back exactly its 36,000, from both figures.
    reversal = await hospital.request(
        "POST", f"/v1/settlements/{first.json()['settlement_id']}/reversal", json_body={}
    )
    assert reversal.status_code == 200, reversal.text
    after = reversal.json()["year_to_date"]
    assert (after["basic_fund"], after["diseases"]) == (36000, {"MT002": 36000})
    eligibility = await hospital.request(
        "GET", "/v1/members/M180001/eligibility", params={"date": "2026-03-06"}
    )
    assert eligibility.json()["year_to_date"]["diseases"] == {"MT002": 36000}

    # A members file that no longer lists the registrations removes them.
    plain = {
        key: value
        for key, value in REGISTERED.items()
        if key not in ("out_of_region_registrations", "registered_diseases")
    }
    loaded = await agency.request(
        "POST",
        "/v1/admin/members",
        content=json.dumps(plain).encode(),
        content_type="application/x-ndjson",
    )
    assert loaded.status_code == 200, loaded.text
    shown = (
        await hospital.request(
            "GET", "/v1/members/M180001/eligibility", params={"date": "2026-03-06"}
        )
    ).json()
    assert (shown["out_of_region_registrations"], shown["registered_diseases"]) == ([], [])
    assert shown["year_to_date"]["diseases"] == {"MT002": 36000}  # the year's figures stay
    late = await hospital.request(
        "POST", "/v1/settlements", json_body=_dialysis("MT-3", date(2026, 3, 9))
    )
    assert [note["code"] for note in late.json()["notes"]] == ["DISEASE_NOT_REGISTERED"]


@ON_BOTH
async def test_out_of_region_is_the_billing_client_s_region(gateway: Gateway) -> None:
    unregistered = member_record("M180002")
    clients = await load_demo_over_http(gateway, [REGISTERED, unregistered])

    def stay(visit_id: str, member_id: str) -> dict[str, Any]:
        # GYH3 (Guiyang, level 3): a bed for 3 days and a 188,000-fen surgery, 200,000 in all
        lines = [
            {"line_no": day + 1, "his_code": "SY1-0012", "quantity": "1", "unit_price": 4000,
             "amount": 4000, "date": f"2026-05-0{day + 1}"}
            for day in range(3)
        ]  # fmt: skip
        lines.append(
            {"line_no": 4, "his_code": "SY1-0013", "quantity": "1", "unit_price": 188000,
             "amount": 188000, "date": "2026-05-01"}
        )  # fmt: skip
        return {
            "visit_id": visit_id,
            "member_id": member_id,
            "visit_type": "inpatient",
            "admission_date": "2026-05-01",
            "discharge_date": "2026-05-03",
            "diagnoses": ["K35.8"],
            "lines": lines,
        }

    # the Zhengzhou plan at level 3: (200,000 - 90,000) x (0.50 - 0.05) = 49,500 registered,
    # x (0.50 - 0.15) = 38,500 not
    paid = {}
    for visit_id, member_id in (("GY-1", "M180001"), ("GY-2", "M180002")):
        answer = await clients["GYH3"].request(
            "POST", "/v1/settlements", json_body=stay(visit_id, member_id)
        )
        assert answer.status_code == 201, answer.text
        result = answer.json()
        assert [note["code"] for note in result["notes"]] == ["OUT_OF_REGION"]
        assert result["policy"]["region"] == "410100"  # the member's own plan
        paid[member_id] = result["amounts"]["basic_fund"]
    assert paid == {"M180001": 49500, "M180002": 38500}
