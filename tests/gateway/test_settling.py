"""Settling over HTTP beyond the shared cases: refusals, replays, receipts, outages."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.receipts import ReceiptSigner
from onestop.client import signature_headers
from onestop.domain.mapping import MappingTable, mapping_csv
from onestop.tooling.demo.regions import DEMO_CLIENTS, demo_mapping_rows
from onestop.tooling.redis_server import RedisServer
from tests.support.adjudicator import Adjudicator
from tests.support.gateway import Gateway, start_gateway
from tests.support.redis import dump_state
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


async def test_malformed_and_invalid_bodies(gateway: Gateway, redis_url: str) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M600001")])
    hospital = clients["ZZH3"]
    before = dump_state(redis_url)
    answer = await hospital.request(
        "POST", "/v1/settlements", content=b"{not json", content_type="application/json"
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "MALFORMED")
    answer = await hospital.request(
        "POST", "/v1/settlements", content=b"[1, 2]", content_type="application/json"
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "MALFORMED")

    body = stay_body("B1", "M600001", date(2026, 3, 1), 2, 10_000)
    body["lines"][0]["quantity"] = "1.23456"
    body["lines"][1]["his_code"] = "bad\tcode"
    body["surprise"] = True
    answer = await hospital.request("POST", "/v1/settlements", json_body=body)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "INVALID"
    assert {error["field"] for error in problem["errors"]} >= {
        "lines.0.quantity",
        "lines.1.his_code",
        "surprise",
    }
    assert dump_state(redis_url) == before


async def test_size_limits(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M600002")])
    hospital = clients["ZZH3"]
    body = stay_body("BIG", "M600002", date(2026, 1, 1), 1, 100)
    line = body["lines"][0]
    body["lines"] = [{**line, "line_no": n} for n in range(1, 5002)]
    answer = await hospital.request("POST", "/v1/settlements", json_body=body)
    assert (answer.status_code, answer.json()["code"]) == (413, "TOO_LARGE")
    huge = b'{"visit_id": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    answer = await hospital.request(
        "POST", "/v1/settlements", content=huge, content_type="application/json"
    )
    assert (answer.status_code, answer.json()["code"]) == (413, "TOO_LARGE")


async def test_every_offending_line_is_listed(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M600003")])
    body = stay_body("E1", "M600003", date(2026, 9, 1), 3, 10_000)
    body["lines"][0]["his_code"] = "NOPE01"
    body["lines"][1]["amount"] += 500
    body["lines"][2]["date"] = "2026-09-05"
    answer = await clients["ZZH3"].request("POST", "/v1/settlements", json_body=body)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "UNMAPPED_CODES"
    assert sorted((error["line_no"], error["code"]) for error in problem["errors"]) == [
        (1, "UNMAPPED_CODES"),
        (2, "AMOUNT_MISMATCH"),
        (3, "DATE_OUT_OF_VISIT"),
    ]
    assert problem["errors"][0]["his_code"] == "NOPE01"


async def test_replay_survives_a_mapping_change(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M600004")])
    hospital = clients["ZZH3"]
    body = stay_body("RM1", "M600004", date(2026, 4, 1), 2, 80_000)
    first = await hospital.request("POST", "/v1/settlements", json_body=body)
    assert first.status_code == 201
    # the hospital's bed code is withdrawn from the mapping...
    client = next(client for client in DEMO_CLIENTS if client.client_id == "ZZH3")
    rows = [row for row in demo_mapping_rows(client) if row.his_code != "RMYY-0012"]
    answer = await gateway.agency.request(
        "PUT",
        "/v1/admin/clients/ZZH3/mappings",
        content=mapping_csv(MappingTable.from_rows(rows)).encode(),
        content_type="text/csv",
    )
    assert answer.status_code == 200
    # ... yet the identical request, retried, still gets its original answer
    again = await hospital.request("POST", "/v1/settlements", json_body=body)
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    assert again.json()["settlement_id"] == first.json()["settlement_id"]
    other = stay_body("RM2", "M600004", date(2026, 5, 1), 2, 80_000)
    refused = await hospital.request("POST", "/v1/settlements", json_body=other)
    assert (refused.status_code, refused.json()["code"]) == (422, "UNMAPPED_CODES")


async def test_eligibility_masks_identity(gateway: Gateway) -> None:
    record = member_record(
        "M600005", name="李秀英", assistance_category="dibao", enrolled_since="2019-01-01"
    )
    clients = await load_demo_over_http(gateway, [record])
    answer = await clients["ZZH3"].request(
        "GET", "/v1/members/M600005/eligibility", params={"date": "2026-03-01"}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["name"] == "李*"
    assert body["id_number"] == record["id_number"][:4] + "**********" + record["id_number"][-4:]
    assert body["assistance_category"] == "dibao"
    assert body["continuous_years"] == 7
    assert body["waiting_until"] is None
    assert body["year_to_date"]["basic_cap_remaining"] == 2500000
    assert record["id_number"] not in answer.text


async def test_receipt_keys_survive_restarts_and_rotation(tmp_path: Path) -> None:
    first = ReceiptSigner(tmp_path / "keys")
    old = first.current.key_id
    assert (tmp_path / "keys" / f"receipt-{old}.pem").stat().st_mode & 0o777 == 0o600
    assert ReceiptSigner(tmp_path / "keys").current.key_id == old  # the same key after restart
    new = first.rotate()
    listed = {key["key_id"] for key in ReceiptSigner(tmp_path / "keys").published()}
    assert listed == {old, new}
    assert ReceiptSigner(tmp_path / "keys").current.key_id == new


async def test_adjudicator_down_answers_503_and_settles_nothing(
    adjudicator: Adjudicator, gateway: Gateway, redis_url: str, tmp_path: Path
) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M600006")])
    await adjudicator.running.stop()
    before = dump_state(redis_url)
    body = stay_body("D1", "M600006", date(2026, 6, 1), 2, 10_000)
    answer = await clients["ZZH3"].request("POST", "/v1/settlements", json_body=body)
    assert answer.status_code == 503
    assert answer.json()["code"] == "UNAVAILABLE"
    assert answer.headers["retry-after"] == "1"
    assert dump_state(redis_url) == before
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        health = await http.get("/health")
    assert health.status_code == 503


async def test_no_personal_data_in_logs(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    record = member_record("M600007", name="欧阳秀")
    caplog.set_level(logging.DEBUG)
    clients = await load_demo_over_http(gateway, [record])
    for n in range(3):
        body = stay_body(f"L{n}", "M600007", date(2026, 2, 1) + timedelta(days=5 * n), 2, 5_000)
        assert (
            await clients["ZZH3"].request("POST", "/v1/settlements", json_body=body)
        ).status_code == 201
    await clients["ZZH3"].request(
        "GET", "/v1/members/M600007/eligibility", params={"date": "2026-03-01"}
    )
    text = "\n".join(
        entry.getMessage() + json.dumps(entry.__dict__, default=str) for entry in caplog.records
    )
    assert "settled" in text
    assert record["id_number"] not in text
    assert "欧阳秀" not in text


async def test_redis_lost_by_the_gateway_answers_503_until_it_is_back(
    adjudicator: Adjudicator, tmp_path: Path
) -> None:
    own_redis = RedisServer(tmp_path / "redis", appendfsync="everysec")
    own_redis.start()
    server, task, settings = await start_gateway(
        adjudicator, own_redis.url, tmp_path / "keys", redis_timeout_seconds=1
    )
    stranger = Ed25519PrivateKey.generate()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as http:
            assert (await http.get("/health")).status_code == 200
            own_redis.stop()
            headers = signature_headers(stranger, "agency", "GET", "/v1/admin/clients", b"")
            answer = await http.get("/v1/admin/clients", headers=headers)
            assert answer.status_code == 503
            assert answer.json()["code"] == "UNAVAILABLE"
            assert (await http.get("/health")).status_code == 503
            # alive all the same: an orchestrator must not restart it for Redis's outage
            assert (await http.get("/health", params={"scope": "process"})).status_code == 200

            # The same gateway recovers once Redis is back on its address: the request is
            # now judged (a key the agency never registered), not refused for Redis.
            own_redis.start()
            headers = signature_headers(stranger, "agency", "GET", "/v1/admin/clients", b"")
            answer = await http.get("/v1/admin/clients", headers=headers)
            assert answer.status_code == 401
            assert (await http.get("/health")).status_code == 200
    finally:
        server.should_exit = True
        await task
        own_redis.stop()


async def test_the_same_request_formatted_differently_is_a_replay(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M600008")])
    hospital = clients["ZZH3"]
    body = stay_body("F1", "M600008", date(2026, 7, 1), 2, 30_000)
    first = await hospital.request("POST", "/v1/settlements", json_body=body)
    assert first.status_code == 201
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2, ensure_ascii=False)
    again = await hospital.request(
        "POST", "/v1/settlements", content=reordered.encode(), content_type="application/json"
    )
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    assert again.json()["settlement_id"] == first.json()["settlement_id"]
    changed = {**body, "diagnoses": ["I25.1"]}
    refused = await hospital.request("POST", "/v1/settlements", json_body=changed)
    assert (refused.status_code, refused.json()["code"]) == (409, "VISIT_ALREADY_SETTLED")
