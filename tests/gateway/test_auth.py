"""Who may call: each rule of contract section 2, over real HTTP."""

from __future__ import annotations

import hashlib
import time
from datetime import date

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.client import SignedClient, json_bytes, signature_headers
from tests.support.gateway import Gateway
from tests.support.redis import dump_everything
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

SIGNED_GET = "/v1/admin/clients"
"""A signed call the agency may make, with no body."""


async def _raw(
    gateway: Gateway, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        return await http.request(method, path, content=body, headers=headers)


def _signed(
    gateway: Gateway, client_id: str, method: str, path: str, body: bytes = b"", **overrides: object
) -> dict[str, str]:
    return signature_headers(gateway.keys[client_id], client_id, method, path, body, **overrides)  # type: ignore[arg-type]


async def _unauthenticated(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "UNAUTHENTICATED"


async def test_a_correctly_signed_request_passes(gateway: Gateway) -> None:
    answer = await _raw(gateway, "GET", SIGNED_GET, _signed(gateway, "agency", "GET", SIGNED_GET))
    assert answer.status_code == 200
    assert "agency" in answer.text


@pytest.mark.parametrize("missing", ["X-Client-Id", "X-Timestamp", "X-Nonce", "X-Signature"])
async def test_each_header_is_required(gateway: Gateway, missing: str) -> None:
    headers = _signed(gateway, "agency", "GET", SIGNED_GET)
    del headers[missing]
    await _unauthenticated(await _raw(gateway, "GET", SIGNED_GET, headers))


async def test_unknown_client(gateway: Gateway) -> None:
    key = Ed25519PrivateKey.generate()
    headers = signature_headers(key, "H-STRANGER", "GET", SIGNED_GET, b"")
    await _unauthenticated(await _raw(gateway, "GET", SIGNED_GET, headers))


async def test_signature_by_another_key(gateway: Gateway) -> None:
    headers = signature_headers(Ed25519PrivateKey.generate(), "agency", "GET", SIGNED_GET, b"")
    await _unauthenticated(await _raw(gateway, "GET", SIGNED_GET, headers))


async def test_signature_covers_method_path_query_and_body(gateway: Gateway) -> None:
    await gateway.register("H1", "hospital", "一院", "level3", "410100")
    body = json_bytes({"visit_id": "x"})
    headers = _signed(gateway, "H1", "POST", "/v1/settlements/preview", body)
    for method, path, sent in (
        ("POST", "/v1/settlements", body),  # another path
        ("POST", "/v1/settlements/preview", body + b" "),  # another body
    ):
        await _unauthenticated(await _raw(gateway, method, path, dict(headers), sent))
    signed_as_get = _signed(gateway, "H1", "GET", "/v1/settlements/preview", body)
    await _unauthenticated(
        await _raw(gateway, "POST", "/v1/settlements/preview", signed_as_get, body)
    )
    query_headers = _signed(gateway, "H1", "GET", "/v1/members/M1/eligibility?date=2026-01-01")
    await _unauthenticated(
        await _raw(gateway, "GET", "/v1/members/M1/eligibility?date=2026-01-02", query_headers)
    )


@pytest.mark.parametrize("skew", [-302, 302, 10_000])  # whole seconds: 1 s of slack
async def test_timestamp_window(gateway: Gateway, skew: int) -> None:
    headers = _signed(gateway, "agency", "GET", SIGNED_GET, timestamp=int(time.time()) + skew)
    await _unauthenticated(await _raw(gateway, "GET", SIGNED_GET, headers))


async def test_timestamp_inside_the_window(gateway: Gateway) -> None:
    headers = _signed(gateway, "agency", "GET", SIGNED_GET, timestamp=int(time.time()) - 290)
    assert (await _raw(gateway, "GET", SIGNED_GET, headers)).status_code == 200


@pytest.mark.parametrize(
    "nonce", ["short", "x" * 65, "has space in it!!", "dots.are.not.allowed.here"]
)
async def test_nonce_shape(gateway: Gateway, nonce: str) -> None:
    headers = _signed(gateway, "agency", "GET", SIGNED_GET, nonce=nonce)
    await _unauthenticated(await _raw(gateway, "GET", SIGNED_GET, headers))


async def test_a_nonce_is_used_once(gateway: Gateway) -> None:
    headers = _signed(gateway, "agency", "GET", SIGNED_GET, nonce="same-nonce-0123456789")
    assert (await _raw(gateway, "GET", SIGNED_GET, headers)).status_code == 200
    await _unauthenticated(await _raw(gateway, "GET", SIGNED_GET, headers))


async def test_a_forged_request_does_not_spend_the_nonce(gateway: Gateway) -> None:
    forged = signature_headers(
        Ed25519PrivateKey.generate(),
        "agency",
        "GET",
        SIGNED_GET,
        b"",
        nonce="precious-nonce-12345",
    )
    await _unauthenticated(await _raw(gateway, "GET", SIGNED_GET, forged))
    genuine = _signed(gateway, "agency", "GET", SIGNED_GET, nonce="precious-nonce-12345")
    assert (await _raw(gateway, "GET", SIGNED_GET, genuine)).status_code == 200


async def test_admin_calls_are_for_the_agency(gateway: Gateway) -> None:
    hospital = await gateway.register("H1", "hospital", "一院", "level3", "410100")
    for method, path, kwargs in (
        ("GET", SIGNED_GET, {}),
        ("PUT", "/v1/admin/catalog", {"content": b"code\n", "content_type": "text/csv"}),
        (
            "PUT",
            "/v1/admin/clients/H1",
            {"json_body": {"kind": "agency", "name": "x", "public_key": "x"}},
        ),
        ("POST", "/v1/admin/members", {"content": b"{}\n", "content_type": "application/x-ndjson"}),
    ):
        answer = await hospital.request(method, path, **kwargs)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["code"] == "FORBIDDEN"


async def test_another_clients_settlement_answers_404(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M500001")])
    mine = clients["ZZH3"]
    body = stay_body("T1", "M500001", date(2026, 3, 1), 2, 50_000)
    settled = await mine.request("POST", "/v1/settlements", json_body=body)
    assert settled.status_code == 201
    settlement_id = settled.json()["settlement_id"]
    other = clients["GYH3"]
    for method, path in (
        ("GET", f"/v1/settlements/{settlement_id}"),
        ("POST", f"/v1/settlements/{settlement_id}/reversal"),
    ):
        answer = await other.request(method, path)
        assert answer.status_code == 404
        assert answer.json()["code"] == "NOT_FOUND"
    assert (await mine.request("GET", f"/v1/settlements/{settlement_id}")).status_code == 200
    # the agency sees every client's settlements
    seen = await gateway.agency.request("GET", f"/v1/settlements/{settlement_id}")
    assert seen.status_code == 200


async def test_the_receipt_keys_need_no_signature(gateway: Gateway) -> None:
    # A patient or an auditor has no client key: anyone may verify a receipt.
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        answer = await http.get("/v1/keys")
    assert answer.status_code == 200
    assert answer.json()["keys"][0]["algorithm"] == "ed25519"
    operation = (await _raw(gateway, "GET", "/openapi.json", {})).json()["paths"]["/v1/keys"]
    assert "security" not in operation["get"]


async def test_a_bad_signature_shows_the_string_the_server_verified(gateway: Gateway) -> None:
    await gateway.register("H1", "hospital", "一院", "level3", "410100")
    body = json_bytes({"visit_id": "x"})
    headers = _signed(gateway, "H1", "POST", "/v1/settlements/preview", body)
    answer = await _raw(gateway, "POST", "/v1/settlements/preview", headers, body + b" ")
    await _unauthenticated(answer)
    problem = answer.json()
    assert "does not verify" in problem["detail"]
    parts = {error["field"]: error["message"] for error in problem["errors"]}
    assert list(parts) == ["method", "path_and_query", "X-Timestamp", "X-Nonce", "body_sha256"]
    assert parts["method"].startswith("'POST'")
    assert parts["path_and_query"].startswith("'/v1/settlements/preview'")
    assert parts["X-Nonce"].startswith(repr(headers["X-Nonce"]))
    changed = hashlib.sha256(body + b" ").hexdigest()
    assert parts["body_sha256"].startswith(repr(changed))
    assert f"{len(body) + 1} body bytes" in parts["body_sha256"]
    # Nothing secret: the key is not in it, and the signature sent is not echoed either.
    assert headers["X-Signature"] not in answer.text


async def test_an_unregistered_client_id_is_named(gateway: Gateway, redis_url: str) -> None:
    before = dump_everything(redis_url, refusal_counts=False)
    key = Ed25519PrivateKey.generate()
    headers = signature_headers(key, "H-STRANGER", "GET", SIGNED_GET, b"")
    answer = await _raw(gateway, "GET", SIGNED_GET, headers)
    await _unauthenticated(answer)
    assert answer.json()["detail"] == (
        "X-Client-Id H-STRANGER is not registered: ask the agency to register it"
    )
    assert dump_everything(redis_url, refusal_counts=False) == before, (
        "no nonce is kept for an unproven request"
    )


async def test_health_needs_no_signature(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        answer = await http.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


async def test_the_signed_client_signs_queries(gateway: Gateway) -> None:
    client = SignedClient(gateway.base_url, "agency", gateway.keys["agency"])
    answer = await client.request(
        "GET", "/v1/members/NOBODY/eligibility", params={"date": "2026-01-01"}
    )
    await client.close()
    assert answer.status_code == 404
    assert answer.json()["code"] == "UNKNOWN_MEMBER"


async def test_unknown_routes_and_methods_answer_problem_json(gateway: Gateway) -> None:
    for method, path, status in (
        ("GET", "/v1/nothing-here", 404),
        ("DELETE", "/v1/settlements", 405),
    ):
        answer = await _raw(gateway, method, path, _signed(gateway, "agency", method, path))
        assert answer.status_code == status
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["status"] == status
