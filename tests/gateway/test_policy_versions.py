"""Policies that change during the year (domain section 13), over HTTP on real Redis.

The demo Zhengzhou plan pays 50 % at level 3 after a 90,000-fen deductible; each version
below raises the level-3 ratio. Every stay bills 200,000 fen, all in scope, so the basic fund
pays ``(200,000 - 90,000) x ratio``: 55,000 at 50 %, 66,000 at 60 %, 77,000 at 70 %.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from onestop.domain.policy import policy_to_document
from onestop.tooling.demo.regions import demo_policy
from tests.support.gateway import Gateway
from tests.support.redis import ON_BOTH
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


def _version(
    year: int, level3_ratio: str, effective_from: date | None, name: str = ""
) -> dict[str, Any]:
    document = policy_to_document(demo_policy("410100"))
    document["year"] = year
    document["inpatient"]["ratio"]["level3"] = level3_ratio
    if effective_from is not None:
        document["effective_from"] = effective_from.isoformat()
    if name:
        document["name"] = name
    return document


def _stay(visit_id: str, member_id: str, admission: date, days: int) -> dict[str, Any]:
    """``days`` beds at 4,000 and a surgery: 200,000 fen in all."""
    return stay_body(visit_id, member_id, admission, days, 200_000 - 4_000 * days)


@ON_BOTH
async def test_each_visit_uses_the_version_in_force_on_its_first_day(gateway: Gateway) -> None:
    members = [member_record(f"M16{number:04d}") for number in range(1, 8)]
    clients = await load_demo_over_http(gateway, members)
    hospital, agency = clients["ZZH3"], gateway.agency

    async def put(document: dict[str, Any]) -> dict[str, Any]:
        answer = await agency.request("PUT", "/v1/admin/policies", json_body=document)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def settle(body: dict[str, Any]) -> dict[str, Any]:
        answer = await hospital.request("POST", "/v1/settlements", json_body=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def eligibility_policy(member_id: str, day: date) -> dict[str, Any]:
        answer = await hospital.request(
            "GET", f"/v1/members/{member_id}/eligibility?date={day.isoformat()}"
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["policy"])

    january = await put(_version(2026, "0.50", None))
    assert january["effective_from"] == "2026-01-01"  # loaded without the field
    july = await put(_version(2026, "0.60", date(2026, 7, 1), "raised from July"))
    assert july["effective_from"] == "2026-07-01"
    assert july["version"] != january["version"]

    # Admitted the day before the July version: the January one, for the whole stay.
    before = await settle(_stay("PV1", "M160001", date(2026, 6, 30), 3))
    assert before["policy"] == january
    assert before["amounts"]["basic_fund"] == 55_000
    # Admitted on its first day: the July version.
    on_the_day = await settle(_stay("PV2", "M160002", date(2026, 7, 1), 3))
    assert on_the_day["policy"] == july
    assert on_the_day["amounts"]["basic_fund"] == 66_000
    # Eligibility names the version in force on the day asked.
    assert (await eligibility_policy("M160001", date(2026, 6, 30)))["effective_from"] == (
        "2026-01-01"
    )
    assert await eligibility_policy("M160001", date(2026, 7, 1)) == july

    # A document with effective_from January 1 replaces the one loaded without it, not July's.
    replaced = await put(_version(2026, "0.50", date(2026, 1, 1), "January, corrected name"))
    assert replaced["effective_from"] == "2026-01-01"
    assert replaced["version"] != january["version"]
    february = await settle(_stay("PV3", "M160003", date(2026, 2, 1), 3))
    assert february["policy"] == replaced
    assert (await settle(_stay("PV4", "M160004", date(2026, 8, 1), 3)))["policy"] == july

    # A reversal answers with the version its settlement used, though since replaced.
    reversal = await hospital.request(
        "POST", f"/v1/settlements/{before['settlement_id']}/reversal", json_body={}
    )
    assert reversal.status_code == 200, reversal.text
    assert reversal.json()["policy"] == january
    assert reversal.json()["amounts"]["basic_fund"] == 55_000
    assert reversal.json()["year_to_date"]["basic_fund"] == 0

    # A stay crossing January 1 uses the new year's version in force on January 1, though a
    # later one was in force on its last day.
    new_year = await put(_version(2027, "0.50", None))
    second = await put(_version(2027, "0.70", date(2027, 1, 2)))
    crossing = await settle(_stay("PV5", "M160005", date(2026, 12, 30), 4))
    assert crossing["policy"] == new_year
    assert crossing["amounts"]["basic_fund"] == 55_000
    assert crossing["year_to_date"]["basic_fund"] == 55_000  # counted in 2027
    assert (await settle(_stay("PV6", "M160006", date(2027, 1, 2), 3)))["policy"] == second


@ON_BOTH
async def test_a_visit_before_every_version_of_its_year_has_no_policy(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M170001")])
    hospital, agency = clients["ZZH3"], gateway.agency
    answer = await agency.request(
        "PUT", "/v1/admin/policies", json_body=_version(2028, "0.50", date(2028, 3, 1))
    )
    assert answer.status_code == 200, answer.text
    early = await hospital.request(
        "POST", "/v1/settlements", json_body=_stay("NP1", "M170001", date(2028, 2, 28), 3)
    )
    assert early.status_code == 404, early.text
    problem = early.json()
    assert problem["code"] == "NO_POLICY"
    assert "2028-03-01" in problem["detail"]
    eligibility = await hospital.request("GET", "/v1/members/M170001/eligibility?date=2028-02-29")
    assert (eligibility.status_code, eligibility.json()["code"]) == (404, "NO_POLICY")
    # Nothing was settled: the same visit settles once admitted on the version's first day.
    settled = await hospital.request(
        "POST", "/v1/settlements", json_body=_stay("NP1", "M170001", date(2028, 3, 1), 3)
    )
    assert settled.status_code == 201, settled.text
    assert settled.json()["policy"]["effective_from"] == "2028-03-01"


async def test_a_version_outside_its_year_is_refused(gateway: Gateway) -> None:
    answer = await gateway.agency.request(
        "PUT", "/v1/admin/policies", json_body=_version(2026, "0.50", date(2027, 1, 1))
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "INVALID"
    assert "effective_from" in problem["detail"]
