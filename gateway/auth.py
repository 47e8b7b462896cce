r"""Who may call (contract section 2): Ed25519-signed requests, a clock window, single-use nonces.

The signed string is ``METHOD \\n PATH_AND_QUERY \\n X-Timestamp \\n X-Nonce \\n`` followed by
the lowercase hex SHA-256 of the body.

Authentication costs an unauthenticated caller nothing it could abuse, in two steps:

1. :meth:`Authenticator.claim`, before the body is read: the four headers are there and
   small, of the right shape, the timestamp is in the window, and the client is registered.
   Nothing is written, nothing echoed.
2. :meth:`Authenticator.prove`, once the body is read (bounded) and hashed: the signature
   verifies; only then is the nonce remembered in Redis, so that the request cannot be sent
   again. A forged request writes nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from starlette.requests import Request

from gateway.limits import RequestLimiter
from gateway.reference import GatewayReference
from onestop.domain.clients import Client
from onestop.domain.errors import ErrorCode, Forbidden, Problem
from onestop.domain.types import ClientKind
from onestop.errors import Unauthenticated
from onestop.redis_client import RedisClient, redis_failures_unavailable
from onestop.reference_versions import VersionsCache
from onestop.signing import UnusableKey, load_public_key, verify
from onestop.storage.layout import nonce_key

CLIENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""A client id: what ``PUT /v1/admin/clients/{client_id}`` accepts."""

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{86}==")  # 64 bytes, standard base64, padded
HEADERS = ("x-client-id", "x-timestamp", "x-nonce", "x-signature")
MAX_SIGNATURE_HEADER = 128
"""No signature header is longer than this many bytes (the longest, a nonce, is 64)."""

NOT_REGISTERED = "X-Client-Id {client_id} is not registered: ask the agency to register it"
"""The answer for an id nobody registered. Client ids are no secret (they are printed on
receipts and exports, and a hospital's national code is public); telling a vendor that the id
is wrong saves a night of checking signatures (docs/security.md)."""


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


def body_digest(body: bytes) -> str:
    """Lowercase hex SHA-256."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """Who a request says it is from: headers checked, client registered, signature unverified."""

    client: Client
    timestamp: str
    nonce: str
    signature: str


class Authenticator:
    """Checks each request's signature, timestamp and nonce; names the calling client."""

    def __init__(
        self,
        redis: RedisClient,
        reference: GatewayReference,
        versions: VersionsCache,
        *,
        clock_skew_seconds: int,
        nonce_ttl_seconds: int,
        limiter: RequestLimiter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.reference = reference
        self.versions = versions
        self.clock_skew = clock_skew_seconds
        self.nonce_ttl = nonce_ttl_seconds
        self.limiter = limiter
        self.clock = clock

    async def claim(self, headers: Mapping[str, str], address: str) -> Claim:
        """Check what the headers claim, before anything else of the request is read.

        Args:
            headers: the request's headers (names lower-case).
            address: the network address it came from.

        Raises:
            RateLimited: the address's recent requests were refused too often.
            Unauthenticated: a header missing, too long or of the wrong shape, a timestamp
                out of the window, or a client that is not registered. No input is echoed.
            Unavailable: the registry's version cannot be read.
        """
        self.limiter.admit_address(address)
        try:
            return await self._claim(headers)
        except Unauthenticated:
            self.limiter.refused(address)
            raise

    async def _claim(self, headers: Mapping[str, str]) -> Claim:
        missing = [name for name in HEADERS if not headers.get(name)]
        if missing:
            raise Unauthenticated(f"missing header(s): {', '.join(missing)}")
        if any(len(headers[name]) > MAX_SIGNATURE_HEADER for name in HEADERS):
            raise Unauthenticated(
                f"a signature header is longer than {MAX_SIGNATURE_HEADER} characters"
            )
        client_id, timestamp = headers["x-client-id"], headers["x-timestamp"]
        nonce, signature = headers["x-nonce"], headers["x-signature"]
        if not CLIENT_ID.fullmatch(client_id):
            raise Unauthenticated("X-Client-Id must be 1 to 64 characters of [A-Za-z0-9_.-]")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise Unauthenticated("X-Timestamp must be unix seconds")
        if abs(self.clock() - int(timestamp)) > self.clock_skew:
            raise Unauthenticated(
                f"X-Timestamp is more than {self.clock_skew} s from the server's clock"
            )
        if not _NONCE.fullmatch(nonce):
            raise Unauthenticated("X-Nonce must be 16 to 64 characters of [A-Za-z0-9_-]")
        if not _SIGNATURE.fullmatch(signature):
            raise Unauthenticated("X-Signature must be 64 bytes in standard, padded base64")
        client = await self.registered(client_id)
        if client is None:
            raise Unauthenticated(NOT_REGISTERED.format(client_id=client_id))
        return Claim(client, timestamp, nonce, signature)

    async def registered(self, client_id: str) -> Client | None:
        """The client registered under ``client_id`` now (the registry's version read first).

        Raises:
            Unavailable: the registry's version cannot be read.
        """
        async with redis_failures_unavailable("Redis is unavailable; retry"):
            versions = await self.versions.current()
        self.reference.observe(versions)
        return await self.reference.client(client_id)

    async def prove(
        self,
        claim: Claim,
        method: str,
        target: str,
        body_sha256_hex: str,
        address: str,
        body_bytes: int = 0,
    ) -> Client:
        """Verify the signature; admit the request under the client's rate; spend the nonce.

        Args:
            claim: what :meth:`claim` found in the headers.
            method: the request's method.
            target: the path and query exactly as sent (:func:`path_and_query`).
            body_sha256_hex: the body's SHA-256, lowercase hex.
            address: the network address the request came from.
            body_bytes: how many body bytes were received (told back when the signature
                does not verify).

        Raises:
            Unauthenticated: the signature does not verify (the answer shows the string the
                server verified), or the nonce was used before.
            RateLimited: the client is over its rate (the nonce is not spent).
            Unavailable: Redis cannot remember the nonce.
        """
        try:
            public_key = load_public_key(claim.client.public_key)
        except UnusableKey as error:  # pragma: no cover - keys are checked at registration
            raise Unauthenticated("the client's registered key is unusable") from error
        message = signing_string(method, target, claim.timestamp, claim.nonce, body_sha256_hex)
        if not verify(public_key, message, claim.signature):
            self.limiter.refused(address)
            raise signature_refusal(message, body_bytes)
        self.limiter.admit_client(claim.client.client_id)
        # Only a verified request is remembered. The value is this check's own: when a lost
        # connection makes the client send the SET again, the second SET finds the key, and
        # the value tells that it was ours.
        remembered = nonce_key(claim.client.client_id, claim.nonce)
        mark = secrets.token_bytes(12)
        async with redis_failures_unavailable("Redis is unavailable; retry"):
            fresh = await self.redis.set(remembered, mark, nx=True, ex=self.nonce_ttl)
            if not fresh:
                fresh = await self.redis.get(remembered) == mark
        if not fresh:
            raise Unauthenticated(
                f"this nonce was used in the last {self.nonce_ttl} s; "
                "sign every request with a new one"
            )
        return claim.client


def signature_refusal(signed: bytes, body_bytes: int) -> Unauthenticated:
    """The refusal of a signature that does not verify, showing what the server verified.

    The server cannot tell which part differs from what the client signed, so it shows its
    own signing string, one line per part, for the client to compare with its own: the method,
    the path and query exactly as received, X-Timestamp, X-Nonce, and the SHA-256 of the body
    bytes received. It holds nothing the client did not send.
    """
    method, target, timestamp, nonce, digest = signed.decode().split("\n")
    parts = [
        ("method", method, "upper-case, as sent"),
        ("path_and_query", target, "exactly as sent: no host, percent-encoding unchanged"),
        ("X-Timestamp", timestamp, "the header's value"),
        ("X-Nonce", nonce, "the header's value"),
        (
            "body_sha256",
            digest,
            f"lowercase hex SHA-256 of the {body_bytes} body bytes received "
            "(of nothing for a GET: e3b0c442...b855)",
        ),
    ]
    return Unauthenticated(
        "the signature does not verify with the key registered for this client id; the "
        "server verified the string whose lines `errors` lists, joined by \\n: compare each "
        "with what you signed (a different key, a changed body or a re-encoded path are the "
        "usual causes)",
        tuple(
            Problem(ErrorCode.UNAUTHENTICATED, f"{value!r}: {hint}", field=name)
            for name, value, hint in parts
        ),
    )


def require_kind(client: Client, *kinds: ClientKind) -> None:
    """Refuse clients of other kinds.

    Raises:
        Forbidden: the client is of another kind.
    """
    if client.kind not in kinds:
        allowed = " or ".join(kind.value for kind in kinds)
        raise Forbidden(f"only {allowed} clients may do this")
