"""Console login codes and sessions in a real Redis (and a real Redis Cluster).

A code opens one session, once; a session ends when idle, when old, on logout, and what Redis
holds is never a usable cookie.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.console.sessions import ConsoleSessions, ConsoleSettings, registered_key
from onestop.domain.clients import Client
from onestop.domain.types import ClientKind
from onestop.redis_client import RedisClient, connect
from onestop.signing import public_pem
from onestop.storage.layout import console_login_key, console_session_key
from tests.support.clock import Clock
from tests.support.redis import ON_BOTH, dump_everything

SETTINGS = ConsoleSettings(login_seconds=60, idle_seconds=900, max_age_seconds=3600)


def _agency() -> Client:
    key = Ed25519PrivateKey.generate()
    return Client(
        client_id="agency",
        kind=ClientKind.AGENCY,
        name="医保经办机构",
        public_key=public_pem(key.public_key()),
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = await connect(redis_url, timeout_seconds=5, wait_seconds=5)
    yield client
    await client.aclose()


@ON_BOTH
async def test_a_code_opens_one_session_once_and_redis_holds_no_usable_secret(
    redis: RedisClient, redis_url: str
) -> None:
    clock = Clock()
    clock.now = 1_000_000
    sessions = ConsoleSessions(redis, SETTINGS, clock)
    agency = _agency()
    code = await sessions.issue_code(agency)
    assert 0 < await redis.ttl(console_login_key(hashlib.sha256(code.encode()).hexdigest())) <= 60

    opened = await sessions.open(code)
    assert opened is not None
    token, session = opened
    assert session.client_id == "agency"
    assert session.key == registered_key(agency)
    assert await sessions.open(code) is None, "a code works once"
    assert await sessions.open("not-a-code") is None
    assert await sessions.open("码") is None

    stored = dump_everything(redis_url)
    assert len(stored) == 1, "the code is gone, one session is kept"
    assert not any(
        token.encode() in key or token.encode() in value for key, value in stored.items()
    )
    session_key = console_session_key(hashlib.sha256(token.encode()).hexdigest())
    assert 0 < await redis.ttl(session_key) <= 900

    found = await sessions.find(token)
    assert found == session
    assert await sessions.find(token + "x") is None
    await sessions.close(token)
    assert await sessions.find(token) is None


async def test_a_session_ends_at_its_age_however_much_it_is_used(redis: RedisClient) -> None:
    clock = Clock()
    clock.now = 5_000_000
    sessions = ConsoleSessions(redis, SETTINGS, clock)
    code = await sessions.issue_code(_agency())
    opened = await sessions.open(code)
    assert opened is not None
    token, _ = opened
    clock.now += 3_599_999
    assert await sessions.find(token) is not None
    clock.now += 1
    assert await sessions.find(token) is None
    assert await redis.exists(console_session_key(hashlib.sha256(token.encode()).hexdigest())) == 0


async def test_an_idle_session_expires_and_a_used_one_is_kept_alive(redis: RedisClient) -> None:
    sessions = ConsoleSessions(redis, SETTINGS)
    opened = await sessions.open(await sessions.issue_code(_agency()))
    assert opened is not None
    token, _ = opened
    key = console_session_key(hashlib.sha256(token.encode()).hexdigest())
    await redis.expire(key, 5)
    assert await sessions.find(token) is not None
    assert await redis.ttl(key) > 800, "a request restarts the idle time"
    await redis.delete(key)
    assert await sessions.find(token) is None


async def test_a_session_this_version_cannot_read_is_ended(redis: RedisClient) -> None:
    sessions = ConsoleSessions(redis, SETTINGS)
    token = "t" * 43
    key = console_session_key(hashlib.sha256(token.encode()).hexdigest())
    await redis.set(key, '{"client_id": "agency"}', ex=60)
    assert await sessions.find(token) is None
    assert await redis.exists(key) == 0
