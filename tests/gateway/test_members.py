"""Member privacy at the window: lookups by id number, an audit trail, no enumeration."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from onestop.clock import today
from onestop.tooling.demo.regions import DEMO_CLIENTS, his_code
from tests.support.adjudicator import Adjudicator
from tests.support.gateway import Gateway, open_gateway
from tests.support.redis import dump_everything
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


async def test_a_patient_is_found_by_the_id_number_they_show(
    gateway: Gateway, redis_url: str
) -> None:
    record = member_record("M810001", name="欧阳娜娜")
    clients = await load_demo_over_http(gateway, [record])
    answer = await clients["ZZH3"].request(
        "POST",
        "/v1/members/lookup",
        json_body={"id_number": record["id_number"], "date": "2026-03-01"},
    )
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["member_id"] == "M810001"
    assert found["name"] == "欧*", "a mask does not tell the name's length"
    assert record["id_number"] not in answer.text

    stranger = "110101199001011234"
    missing = await clients["ZZH3"].request(
        "POST", "/v1/members/lookup", json_body={"id_number": stranger}
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "UNKNOWN_MEMBER")
    assert stranger not in missing.text
    stored = b"".join(key + value for key, value in dump_everything(redis_url).items())
    assert stranger.encode() not in stored, "an id number never rests in clear"
    assert record["id_number"].encode() not in stored


async def test_every_check_is_in_the_agency_audit_trail(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M810002")])
    hospital, pharmacy = clients["ZZH3"], clients["ZZP1"]
    assert (await hospital.request("GET", "/v1/members/M810002/eligibility")).status_code == 200
    assert (await pharmacy.request("GET", "/v1/members/M-NOBODY/eligibility")).status_code == 404
    assert (
        await pharmacy.request(
            "POST", "/v1/members/lookup", json_body={"id_number": "110101199001011234"}
        )
    ).status_code == 404

    trail = await gateway.agency.request(
        "GET", "/v1/admin/lookups", params={"date": today().isoformat()}
    )
    assert trail.status_code == 200, trail.text
    seen = [
        (entry["client_id"], entry["kind"], entry["member_id"], entry["found"])
        for entry in trail.json()
    ]
    assert ("ZZH3", "eligibility", "M810002", True) in seen
    assert ("ZZP1", "eligibility", None, False) in seen
    assert ("ZZP1", "lookup", None, False) in seen
    one_client = await gateway.agency.request(
        "GET", "/v1/admin/lookups", params={"date": today().isoformat(), "client_id": "ZZP1"}
    )
    assert {entry["client_id"] for entry in one_client.json()} == {"ZZP1"}
    refused = await hospital.request(
        "GET", "/v1/admin/lookups", params={"date": today().isoformat()}
    )
    assert refused.status_code == 403


async def test_member_ids_cannot_be_tried_one_by_one(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with open_gateway(
        adjudicator, redis_url, tmp_path / "keys", unknown_members_limit=3
    ) as gateway:
        clients = await load_demo_over_http(gateway, [member_record("M810003")])
        pharmacy = clients["ZZP1"]
        statuses = [
            (await pharmacy.request("GET", f"/v1/members/M-GUESS-{n}/eligibility")).status_code
            for n in range(4)
        ]
        assert statuses == [404, 404, 404, 429]
        # Past the limit a real member answers the same: a guess tells nothing.
        real = await pharmacy.request("GET", "/v1/members/M810003/eligibility")
        assert real.status_code == 429
        assert real.json()["code"] == "RATE_LIMITED"
        assert int(real.headers["Retry-After"]) >= 1
        # Another client is not held back by this one.
        other = await clients["ZZH3"].request("GET", "/v1/members/M810003/eligibility")
        assert other.status_code == 200


async def test_an_overlap_tells_nothing_of_the_other_hospital(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M810004")])
    first = stay_body("OV1", "M810004", date(2026, 5, 1), 5, 10_000)
    settled = await clients["ZZH3"].request("POST", "/v1/settlements", json_body=first)
    assert settled.status_code == 201, settled.text
    second = stay_body("OV2", "M810004", date(2026, 5, 3), 5, 10_000)
    guiyang = next(client for client in DEMO_CLIENTS if client.client_id == "GYH3")
    for line in second["lines"]:  # the same items, in the other hospital's own codes
        catalog_code = "FA02" if line["his_code"] == "RMYY-0012" else "FA03"
        line["his_code"] = his_code(guiyang, catalog_code)
    refused = await clients["GYH3"].request("POST", "/v1/settlements", json_body=second)
    assert (refused.status_code, refused.json()["code"]) == (409, "OVERLAPPING_STAY")
    assert settled.json()["settlement_id"] not in refused.text
    assert "2026-05-01" not in refused.text, "the other stay's dates stay private"
    assert "2026-05-03" in refused.text, "the caller's own dates say what to check"
