"""Nothing unauthenticated costs the gateway anything: real sockets, real slow clients.

Each test reproduces one finding of the review that ran the gateway black-box on loopback:
a 16 MiB client id that grew Redis and came back in the answer, uploads read before their
signature, connections left half-open for minutes, and ends with the gateway still serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from gateway.settings import GatewaySettings
from onestop.client import json_bytes, signature_headers
from tests.support.adjudicator import Adjudicator
from tests.support.gateway import Gateway, open_gateway
from tests.support.redis import dump_everything
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

SIGNED_GET = "/v1/admin/clients"
"""A signed call the agency may make, with no body."""


def _port(gateway: Gateway) -> int:
    return int(gateway.base_url.rsplit(":", 1)[1])


async def _open(gateway: Gateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", _port(gateway))


async def _answer(reader: asyncio.StreamReader, seconds: float = 5) -> bytes:
    """What the server sends back before it closes the connection (or ``seconds`` pass)."""
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
        except (TimeoutError, ConnectionError):
            break
        if not chunk:
            break
        received += chunk
    return received


async def _healthy(gateway: Gateway) -> bool:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=5) as http:
        answer = await http.get("/health", params={"scope": "process"})
    return answer.status_code == 200


async def test_a_huge_header_is_refused_unread_unechoed_and_unstored(
    gateway: Gateway, redis_url: str
) -> None:
    before = dump_everything(redis_url, refusal_counts=False)
    reader, writer = await _open(gateway)
    huge = "H" * (16 * 1024 * 1024)
    head = (
        f"GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-Client-Id: {huge}\r\nX-Timestamp: 1\r\n"
        "X-Nonce: aaaaaaaaaaaaaaaa\r\nX-Signature: x\r\n\r\n"
    ).encode()
    with contextlib.suppress(ConnectionError):
        writer.write(head)
        await writer.drain()
    answer = await _answer(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"application/problem+json" in answer
    assert b"HEADERS_TOO_LARGE" in answer
    assert len(answer) < 2048, "nothing of the request comes back"
    assert b"HHHHHHHH" not in answer
    assert dump_everything(redis_url, refusal_counts=False) == before, (
        "an unauthenticated request wrote to Redis"
    )
    assert await _healthy(gateway)


async def test_a_long_client_id_within_the_header_limit_is_refused_without_echo(
    gateway: Gateway, redis_url: str
) -> None:
    before = dump_everything(redis_url, refusal_counts=False)
    client_id = "H" * 5000
    headers = signature_headers(gateway.keys["agency"], client_id, "GET", SIGNED_GET, b"")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        answer = await http.get(SIGNED_GET, headers=headers)
    assert answer.status_code == 401
    assert client_id not in answer.text  # too long to be an id: refused before it is named
    assert dump_everything(redis_url, refusal_counts=False) == before


@pytest.mark.parametrize("path", ["/v1/admin/members", "/v1/admin/catalog"])
async def test_an_unsigned_upload_is_refused_before_its_body_is_read(
    gateway: Gateway, path: str
) -> None:
    # Headers promising a gigabyte, and not one byte of it sent: the answer comes anyway.
    reader, writer = await _open(gateway)
    method = "POST" if path.endswith("members") else "PUT"
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n"
        "Content-Type: text/csv\r\n\r\n".encode()
    )
    await writer.drain()
    answer = await _answer(reader, seconds=3)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


async def test_a_hospital_upload_to_an_agency_route_is_refused_before_its_body(
    gateway: Gateway,
) -> None:
    await gateway.register("H1", "hospital", "一院", "level3", "410100")
    headers = signature_headers(
        gateway.keys["H1"], "H1", "PUT", "/v1/admin/catalog", b"", body_sha256_hex="0" * 64
    )
    reader, writer = await _open(gateway)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(
        f"PUT /v1/admin/catalog HTTP/1.1\r\nHost: x\r\n{lines}Content-Length: 262144000\r\n"
        "\r\n".encode()
    )
    await writer.drain()
    answer = await _answer(reader, seconds=3)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


async def test_one_upload_at_a_time_per_client(gateway: Gateway) -> None:
    # The agency's first upload is slow (its body trickles in); a second one is refused 429
    # at once instead of being spooled beside it.
    body = b"code,name,kind,category,self_pay_ratio,price_cap,unit,max_level,max_daily_qty\n"
    slow_headers = signature_headers(
        gateway.keys["agency"], "agency", "PUT", "/v1/admin/catalog", body
    )
    reader, writer = await _open(gateway)
    lines = "".join(f"{name}: {value}\r\n" for name, value in slow_headers.items())
    writer.write(
        f"PUT /v1/admin/catalog HTTP/1.1\r\nHost: x\r\n{lines}Content-Type: text/csv\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    second = await gateway.agency.request(
        "PUT", "/v1/admin/catalog", content=body, content_type="text/csv"
    )
    assert second.status_code == 429, second.text
    assert int(second.headers["Retry-After"]) >= 1
    writer.write(body[10:])
    await writer.drain()
    first = await _answer(reader, seconds=5)
    writer.close()
    assert first.startswith(b"HTTP/1.1 200"), first[:300]


def test_nonces_must_outlive_twice_the_clock_window(tmp_path: Path) -> None:
    common = {"adjudicator": "127.0.0.1:1", "redis_url": "redis://127.0.0.1:1", "key_dir": tmp_path}
    with pytest.raises(ValueError, match="twice"):
        GatewaySettings(clock_skew_seconds=400, nonce_ttl_seconds=600, **common)  # type: ignore[arg-type]
    assert GatewaySettings(clock_skew_seconds=300, nonce_ttl_seconds=600, **common)  # type: ignore[arg-type]


def test_a_console_session_may_not_idle_longer_than_it_lives(tmp_path: Path) -> None:
    common = {"adjudicator": "127.0.0.1:1", "redis_url": "redis://127.0.0.1:1", "key_dir": tmp_path}
    with pytest.raises(ValueError, match="console_idle_seconds"):
        GatewaySettings(console_idle_seconds=1800, console_max_age_seconds=600, **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="console_login_seconds"):
        GatewaySettings(console_login_seconds=3600, **common)  # type: ignore[arg-type]
    assert GatewaySettings(console_idle_seconds=600, console_max_age_seconds=600, **common)  # type: ignore[arg-type]


async def test_half_sent_headers_are_cut_off_and_health_still_answers(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with open_gateway(
        adjudicator, redis_url, tmp_path / "keys", header_timeout_seconds=1.0
    ) as gateway:
        connections = [await _open(gateway) for _ in range(50)]
        for _, writer in connections:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            await writer.drain()
        started = time.monotonic()
        # Keep trickling one byte a connection: the deadline counts from the first byte.
        for _ in range(4):
            await asyncio.sleep(0.5)
            for _, writer in connections:
                with contextlib.suppress(ConnectionError):
                    writer.write(b"a")
        closed = [await _answer(reader, seconds=3) == b"" for reader, _ in connections]
        assert all(closed), f"{closed.count(False)} of 50 half-open connections still open"
        assert time.monotonic() - started < 6
        assert await _healthy(gateway)
        # A connection that sends nothing at all is closed too.
        reader, writer = await _open(gateway)
        assert await _answer(reader, seconds=3) == b""
        writer.close()


async def test_an_idle_kept_alive_connection_is_closed_after_its_time(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with open_gateway(
        adjudicator, redis_url, tmp_path / "keys", keep_alive_seconds=1, header_timeout_seconds=30
    ) as gateway:
        reader, writer = await _open(gateway)
        writer.write(b"GET /health?scope=process HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        started = time.monotonic()
        # The answer, then nothing until the server closes the idle connection: well before
        # the 30 s a client has for its next request's headers.
        received = await _answer(reader, seconds=10)
        writer.close()
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
        assert time.monotonic() - started < 5


async def test_a_stalled_body_is_answered_408(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with open_gateway(
        adjudicator, redis_url, tmp_path / "keys", body_timeout_seconds=1.0
    ) as gateway:
        await load_demo_over_http(gateway, [member_record("M800001")])
        body = json_bytes(stay_body("SLOW1", "M800001", date(2026, 3, 1), 2, 10_000))
        headers = signature_headers(gateway.keys["ZZH3"], "ZZH3", "POST", "/v1/settlements", body)
        reader, writer = await _open(gateway)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"POST /v1/settlements HTTP/1.1\r\nHost: x\r\n{lines}Content-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:20]
        )
        await writer.drain()
        answer = await _answer(reader, seconds=5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        assert b"REQUEST_TIMEOUT" in answer


async def test_connections_past_the_cap_are_closed_at_once(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with open_gateway(
        adjudicator, redis_url, tmp_path / "keys", max_connections=5
    ) as gateway:
        held = [await _open(gateway) for _ in range(5)]
        await asyncio.sleep(0.2)
        reader, writer = await _open(gateway)
        assert await _answer(reader, seconds=2) == b"", "the sixth connection is closed"
        writer.close()
        for _, held_writer in held:
            held_writer.close()
        await asyncio.sleep(0.2)
        assert await _healthy(gateway)


async def test_a_client_over_its_rate_is_answered_429(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with open_gateway(
        adjudicator, redis_url, tmp_path / "keys", rate_per_client=1.0, burst_per_client=3.0
    ) as gateway:
        answers = [await gateway.agency.request("GET", SIGNED_GET) for _ in range(5)]
        statuses = [answer.status_code for answer in answers]
        assert statuses[:3] == [200, 200, 200], statuses
        limited = answers[-1]
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert limited.json()["code"] == "RATE_LIMITED"
        assert int(limited.headers["Retry-After"]) >= 1


async def test_an_address_that_keeps_failing_is_refused_before_being_read(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with open_gateway(
        adjudicator, redis_url, tmp_path / "keys", refusals_per_address=0.1
    ) as gateway:
        forged = signature_headers(
            gateway.keys["agency"],
            "agency",
            "GET",
            SIGNED_GET,
            b"",
            body_sha256_hex="0" * 64,
        )
        async with httpx.AsyncClient(base_url=gateway.base_url) as http:
            statuses = [
                (await http.get(SIGNED_GET, headers=dict(forged))).status_code for _ in range(3)
            ]
        assert statuses[0] == 401
        assert statuses[1:] == [429, 429], statuses
