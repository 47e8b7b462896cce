"""Finding what a terminal lost (单边账): settlements by visit id, and a day page by page."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from onestop.client import SignedClient
from onestop.clock import now_ms, settlement_day
from onestop.domain.mapping import mapping_csv
from onestop.tooling.demo.regions import DEMO_CLIENTS, demo_mapping
from tests.support.gateway import Gateway
from tests.support.redis import ON_BOTH, dump_state
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

A, B = "M710001", "M710002"


async def _with_zzh3_codes(gateway: Gateway, client_id: str) -> None:
    """Give another demo hospital ZZH3's HIS codes, so the same bills fit it."""
    (zzh3,) = [client for client in DEMO_CLIENTS if client.client_id == "ZZH3"]
    answer = await gateway.agency.request(
        "PUT",
        f"/v1/admin/clients/{client_id}/mappings",
        params={"confirm": "true"},
        content=mapping_csv(demo_mapping(zzh3)).encode(),
        content_type="text/csv",
    )
    assert answer.status_code == 200, answer.text


async def _keys(client: SignedClient) -> dict[str, Ed25519PublicKey]:
    answer = await client.request("GET", "/v1/keys")
    keys = {}
    for entry in answer.json()["keys"]:
        key = load_pem_public_key(entry["public_key"].encode())
        assert isinstance(key, Ed25519PublicKey)
        keys[entry["key_id"]] = key
    return keys


def _verify(result: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> None:
    signed = {k: v for k, v in result.items() if k not in ("signature", "replayed")}
    message = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signature = result["signature"]
    keys[signature["key_id"]].verify(base64.b64decode(signature["value"]), message.encode())


@ON_BOTH
async def test_a_visits_settlements_newest_first_whoever_they_were_for(
    gateway: Gateway, redis_url: str
) -> None:
    clients = await load_demo_over_http(gateway, [member_record(A), member_record(B)])
    hospital, other_hospital = clients["ZZH3"], clients["ZZC1"]
    await _with_zzh3_codes(gateway, "ZZC1")
    # Settled for the wrong patient, reversed, settled for the right one.
    wrong = await hospital.request(
        "POST", "/v1/settlements", json_body=stay_body("LOST1", A, date(2026, 3, 1), 2, 10_000)
    )
    assert wrong.status_code == 201
    undo = await hospital.request(
        "POST", f"/v1/settlements/{wrong.json()['settlement_id']}/reversal"
    )
    assert undo.status_code == 200
    right = await hospital.request(
        "POST", "/v1/settlements", json_body=stay_body("LOST1", B, date(2026, 3, 1), 2, 10_000)
    )
    assert right.status_code == 201
    # Another hospital's visit of the same id is its own.
    theirs = await other_hospital.request(
        "POST", "/v1/settlements", json_body=stay_body("LOST1", A, date(2026, 5, 1), 2, 10_000)
    )
    assert theirs.status_code == 201
    before = dump_state(redis_url)

    answer = await hospital.request("GET", "/v1/settlements", params={"visit_id": "LOST1"})
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert listed["next_cursor"] is None
    assert [
        (item["settlement_id"], item["member_id"], item["status"]) for item in listed["items"]
    ] == [
        (right.json()["settlement_id"], B, "settled"),
        (wrong.json()["settlement_id"], A, "reversed"),
    ]
    keys = await _keys(hospital)
    for item in listed["items"]:
        _verify(item, keys)
    assert listed["items"][0]["amounts"] == right.json()["amounts"]
    assert dump_state(redis_url) == before  # reading changes nothing

    nothing = await hospital.request("GET", "/v1/settlements", params={"visit_id": "NEVER"})
    assert nothing.json() == {"items": [], "next_cursor": None}


async def test_a_day_page_by_page_in_commit_order(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record(A), member_record(B)])
    hospital = clients["ZZH3"]
    await _with_zzh3_codes(gateway, "ZZC1")
    settled = []
    for month in range(1, 6):
        answer = await hospital.request(
            "POST",
            "/v1/settlements",
            json_body=stay_body(f"DAY{month}", A, date(2026, month, 1), 2, 10_000),
        )
        assert answer.status_code == 201
        settled.append(answer.json()["settlement_id"])
    reversal = await hospital.request("POST", f"/v1/settlements/{settled[1]}/reversal")
    assert reversal.status_code == 200
    # Another client's day is not listed.
    pharmacy_visit = await clients["ZZC1"].request(
        "POST", "/v1/settlements", json_body=stay_body("DAYX", B, date(2026, 1, 1), 2, 10_000)
    )
    assert pharmacy_visit.status_code == 201
    today = settlement_day(now_ms()).isoformat()

    seen: list[tuple[str, str]] = []
    cursor = None
    pages = 0
    while True:
        params = {"date": today, "limit": "2", **({"cursor": cursor} if cursor else {})}
        answer = await hospital.request("GET", "/v1/settlements", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [(item["settlement_id"], item["status"]) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    # Five settlements, then the reversal of the second: the reversed one appears at both.
    assert [settlement_id for settlement_id, _ in seen] == [*settled, settled[1]]
    assert dict(seen)[settled[1]] == "reversed"

    other_day = await hospital.request("GET", "/v1/settlements", params={"date": "2020-01-01"})
    assert other_day.json() == {"items": [], "next_cursor": None}


async def test_listing_refuses_what_it_cannot_answer(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record(A)])
    hospital = clients["ZZH3"]
    for params, field in [
        ({}, "visit_id"),
        ({"visit_id": "V1", "date": "2026-03-01"}, "date"),
        ({"date": "2026-03-01", "cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"visit_id": "V1", "cursor": "abc"}, "cursor"),
        ({"date": "2026-13-01"}, "date"),
    ]:
        answer = await hospital.request("GET", "/v1/settlements", params=params)
        assert (answer.status_code, answer.json()["code"]) == (422, "INVALID"), params
        assert [error["field"] for error in answer.json()["errors"]] == [field], answer.text
    agency = await gateway.agency.request("GET", "/v1/settlements", params={"visit_id": "V1"})
    assert (agency.status_code, agency.json()["code"]) == (403, "FORBIDDEN")
