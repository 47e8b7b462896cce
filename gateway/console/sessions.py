"""Console login codes and sessions, kept in Redis so that every gateway process knows them.

A login code is issued to the agency by a signed call, lives ``login_seconds`` and is taken
by its first use (``GETDEL``): a link copied out of a terminal works once. The session it
opens is a random token in an HttpOnly cookie; Redis keeps only the token's SHA-256, so a read
of Redis gives no usable cookie. A session ends after ``idle_seconds`` without a request,
after ``max_age_seconds`` whatever its use, on logout, and when its agency client is given a
new key or removed (:func:`registered_key`, checked on each request).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from onestop.clock import now_ms
from onestop.domain.clients import Client
from onestop.redis_client import RedisClient, redis_calls
from onestop.storage.layout import (
    ConsoleSessionField,
    console_login_key,
    console_session_key,
)

TOKEN_BYTES = 32
"""Random bytes of a login code and of a session token (256 bits, URL-safe base64)."""


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """How long console logins and sessions last."""

    login_seconds: int = 60
    idle_seconds: int = 900
    max_age_seconds: int = 8 * 3600
    origin: str | None = None
    """Where browsers reach the console (``https://host``), when a proxy ends TLS in front."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A console session: whose, since when, and the token its forms carry."""

    client_id: str
    key: str
    csrf: str
    created_ms: int


def registered_key(client: Client) -> str:
    """A fingerprint of the key a client is registered with.

    A session opened under one key ends when the client is registered with another.
    """
    return hashlib.sha256(client.public_key.encode()).hexdigest()[:16]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class ConsoleSessions:
    """Issue login codes, open sessions from them, find and end sessions."""

    def __init__(
        self,
        redis: RedisClient,
        settings: ConsoleSettings,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock

    async def issue_code(self, client: Client) -> str:
        """A one-time login code for ``client`` (an agency client; the caller checks).

        Raises:
            Unavailable: Redis cannot be written.
        """
        code = secrets.token_urlsafe(TOKEN_BYTES)
        async with redis_calls():
            await self.redis.set(
                console_login_key(_digest(code)),
                f"{client.client_id}\n{registered_key(client)}",
                ex=self.settings.login_seconds,
            )
        return code

    async def open(self, code: str) -> tuple[str, ConsoleSession] | None:
        """Take a login code and open a session: its cookie token and the session.

        ``None`` when the code is unknown, used already or expired.

        Raises:
            Unavailable: Redis cannot be read or written.
        """
        if not code.isascii():
            return None
        async with redis_calls():
            issued = cast(bytes | None, await self.redis.getdel(console_login_key(_digest(code))))
        if issued is None:
            return None
        client_id, separator, issued_key = issued.decode(errors="replace").partition("\n")
        if not separator:
            return None  # not a code this version issued
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = ConsoleSession(client_id, issued_key, secrets.token_urlsafe(24), self.clock())
        stored = {
            ConsoleSessionField.CLIENT_ID.value: session.client_id,
            ConsoleSessionField.KEY.value: session.key,
            ConsoleSessionField.CSRF.value: session.csrf,
            ConsoleSessionField.CREATED_MS.value: session.created_ms,
        }
        async with redis_calls():
            await self.redis.set(
                console_session_key(_digest(token)),
                json.dumps(stored, separators=(",", ":")),
                ex=self.settings.idle_seconds,
            )
        return token, session

    async def find(self, token: str) -> ConsoleSession | None:
        """The live session of a cookie's token, its idle time restarted; ``None`` if none.

        Raises:
            Unavailable: Redis cannot be read.
        """
        if not token.isascii() or len(token) > 128:
            return None
        key = console_session_key(_digest(token))
        async with redis_calls():
            raw = cast(bytes | None, await self.redis.getex(key, ex=self.settings.idle_seconds))
        if raw is None:
            return None
        try:
            stored = json.loads(raw)
            session = ConsoleSession(
                str(stored[ConsoleSessionField.CLIENT_ID.value]),
                str(stored[ConsoleSessionField.KEY.value]),
                str(stored[ConsoleSessionField.CSRF.value]),
                int(stored[ConsoleSessionField.CREATED_MS.value]),
            )
        except (ValueError, KeyError, TypeError):
            # Not a session this version can read: it is ended rather than guessed at.
            await self.close(token)
            return None
        if self.clock() - session.created_ms >= self.settings.max_age_seconds * 1000:
            await self.close(token)
            return None
        return session

    async def close(self, token: str) -> None:
        """End the session of a cookie's token (nothing when there is none).

        Raises:
            Unavailable: Redis cannot be written.
        """
        async with redis_calls():
            await self.redis.delete(console_session_key(_digest(token)))
