r"""Who may call (contract section 2): Ed25519-signed requests, a clock window, single-use nonces.

The signed string is ``METHOD \\n PATH_AND_QUERY \\n X-Timestamp \\n X-Nonce \\n`` followed by
the lowercase hex SHA-256 of the body. A nonce is remembered in Redis for the nonce window
after the signature verifies, so a captured request cannot be sent again.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from typing import cast

from starlette.requests import Request

from gateway.reference import GatewayReference
from onestop.domain.clients import Client
from onestop.domain.errors import Forbidden
from onestop.domain.types import ClientKind
from onestop.errors import Unauthenticated, Unavailable
from onestop.redis_client import REDIS_ERRORS, RedisClient
from onestop.signing import UnusableKey, load_public_key, verify
from onestop.storage.layout import VERSIONS_KEY, nonce_key

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
HEADERS = ("x-client-id", "x-timestamp", "x-nonce", "x-signature")


def signing_string(
    method: str, path_and_query: str, timestamp: str, nonce: str, body_sha256_hex: str
) -> bytes:
    """The bytes a client signs."""
    return f"{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body_sha256_hex}".encode()


def path_and_query(request: Request) -> str:
    """The path and query exactly as the client sent them."""
    raw_path = cast(bytes, request.scope.get("raw_path") or request.url.path.encode())
    query = cast(bytes, request.scope.get("query_string", b""))
    text = raw_path.decode("latin-1")
    return f"{text}?{query.decode('latin-1')}" if query else text


def _refuse(reason: str) -> Unauthenticated:
    return Unauthenticated(reason)


class Authenticator:
    """Checks each request's signature, timestamp and nonce; names the calling client."""

    def __init__(
        self,
        redis: RedisClient,
        reference: GatewayReference,
        *,
        clock_skew_seconds: int,
        nonce_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.reference = reference
        self.clock_skew = clock_skew_seconds
        self.nonce_ttl = nonce_ttl_seconds
        self.clock = clock

    async def authenticate(self, request: Request, body_sha256_hex: str) -> Client:
        """The client that signed the request.

        Raises:
            Unauthenticated: a missing header, an unknown client, a bad signature, a
                timestamp out of the window or a nonce seen before.
            Unavailable: Redis cannot remember the nonce.
        """
        headers = request.headers
        missing = [name for name in HEADERS if not headers.get(name)]
        if missing:
            raise _refuse(f"missing header(s): {', '.join(missing)}")
        client_id = headers["x-client-id"]
        timestamp = headers["x-timestamp"]
        nonce = headers["x-nonce"]
        if not _TIMESTAMP.fullmatch(timestamp):
            raise _refuse("X-Timestamp must be unix seconds")
        if abs(self.clock() - int(timestamp)) > self.clock_skew:
            raise _refuse(f"X-Timestamp is more than {self.clock_skew} s from the server's clock")
        if not _NONCE.fullmatch(nonce):
            raise _refuse("X-Nonce must be 16 to 64 characters of [A-Za-z0-9_-]")

        # Remember the nonce and read the reference versions in one round trip. The nonce is
        # only kept once the signature below verifies; a forged request frees it again.
        # The value is this check's own: when a lost connection makes the client send the
        # SET again, the second SET finds the key, and the value tells that it was ours.
        remembered = nonce_key(client_id, nonce)
        claim = secrets.token_bytes(12)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(remembered, claim, nx=True, ex=self.nonce_ttl)
            pipe.hgetall(VERSIONS_KEY)
            fresh, versions = await pipe.execute()
            if not fresh:
                fresh = await self.redis.get(remembered) == claim
        except REDIS_ERRORS as error:
            raise Unavailable("Redis is unavailable; retry") from error
        self.reference.observe(versions)

        client = await self.reference.client(client_id)
        if client is None:
            await self._forget(remembered, fresh)
            raise _refuse(f"unknown client {client_id}")
        try:
            public_key = load_public_key(client.public_key)
        except UnusableKey as error:  # pragma: no cover - keys are checked at registration
            raise _refuse("the client's key is unusable") from error
        message = signing_string(
            request.method, path_and_query(request), timestamp, nonce, body_sha256_hex
        )
        if not verify(public_key, message, headers["x-signature"]):
            await self._forget(remembered, fresh)
            raise _refuse("the signature does not verify")
        if not fresh:
            raise _refuse(
                "this nonce was used in the last "
                f"{self.nonce_ttl} s; sign every request with a new one"
            )
        return client

    async def _forget(self, remembered: str, fresh: bool) -> None:
        if fresh:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.redis.delete(remembered)


def require_kind(client: Client, *kinds: ClientKind) -> None:
    """Refuse clients of other kinds.

    Raises:
        Forbidden: the client is of another kind.
    """
    if client.kind not in kinds:
        allowed = " or ".join(kind.value for kind in kinds)
        raise Forbidden(f"only {allowed} clients may do this")


def body_digest(body: bytes) -> str:
    """Lowercase hex SHA-256."""
    return hashlib.sha256(body).hexdigest()
