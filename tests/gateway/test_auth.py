"""Who may call: each rule of contract section 2, over real HTTP."""

from __future__ import annotations

import time
from datetime import date

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.client import SignedClient, json_bytes, signature_headers
from tests.support.gateway import Gateway
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


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
    answer = await _raw(gateway, "GET", "/v1/keys", _signed(gateway, "agency", "GET", "/v1/keys"))
    assert answer.status_code == 200
    assert answer.json()["keys"][0]["algorithm"] == "ed25519"


@pytest.mark.parametrize("missing", ["X-Client-Id", "X-Timestamp", "X-Nonce", "X-Signature"])
async def test_each_header_is_required(gateway: Gateway, missing: str) -> None:
    headers = _signed(gateway, "agency", "GET", "/v1/keys")
    del headers[missing]
    await _unauthenticated(await _raw(gateway, "GET", "/v1/keys", headers))


async def test_unknown_client(gateway: Gateway) -> None:
    key = Ed25519PrivateKey.generate()
    headers = signature_headers(key, "H-STRANGER", "GET", "/v1/keys", b"")
    await _unauthenticated(await _raw(gateway, "GET", "/v1/keys", headers))


async def test_signature_by_another_key(gateway: Gateway) -> None:
    headers = signature_headers(Ed25519PrivateKey.generate(), "agency", "GET", "/v1/keys", b"")
    await _unauthenticated(await _raw(gateway, "GET", "/v1/keys", headers))


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
    headers = _signed(gateway, "agency", "GET", "/v1/keys", timestamp=int(time.time()) + skew)
    await _unauthenticated(await _raw(gateway, "GET", "/v1/keys", headers))


async def test_timestamp_inside_the_window(gateway: Gateway) -> None:
    headers = _signed(gateway, "agency", "GET", "/v1/keys", timestamp=int(time.time()) - 290)
    assert (await _raw(gateway, "GET", "/v1/keys", headers)).status_code == 200


@pytest.mark.parametrize(
    "nonce", ["short", "x" * 65, "has space in it!!", "dots.are.not.allowed.here"]
)
async def test_nonce_shape(gateway: Gateway, nonce: str) -> None:
    headers = _signed(gateway, "agency", "GET", "/v1/keys", nonce=nonce)
    await _unauthenticated(await _raw(gateway, "GET", "/v1/keys", headers))


async def test_a_nonce_is_used_once(gateway: Gateway) -> None:
    headers = _signed(gateway, "agency", "GET", "/v1/keys", nonce="same-nonce-0123456789")
    assert (await _raw(gateway, "GET", "/v1/keys", headers)).status_code == 200
    await _unauthenticated(await _raw(gateway, "GET", "/v1/keys", headers))


async def test_a_forged_request_does_not_spend_the_nonce(gateway: Gateway) -> None:
    forged = signature_headers(
        Ed25519PrivateKey.generate(), "agency", "GET", "/v1/keys", b"", nonce="precious-nonce-12345"
    )
    await _unauthenticated(await _raw(gateway, "GET", "/v1/keys", forged))
    genuine = _signed(gateway, "agency", "GET", "/v1/keys", nonce="precious-nonce-12345")
    assert (await _raw(gateway, "GET", "/v1/keys", genuine)).status_code == 200


async def test_admin_calls_are_for_the_agency(gateway: Gateway) -> None:
    hospital = await gateway.register("H1", "hospital", "一院", "level3", "410100")
    for method, path, kwargs in (
        ("GET", "/v1/admin/clients", {}),
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
