"""What every request passes through before a route.

The header and body guards, and the first half of authentication.

Both run before a byte of the body is read: a request that is too large, or whose headers
do not claim a registered client, costs the gateway nothing more.
"""

from __future__ import annotations

import asyncio
import json
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import require_kind
from gateway.errors import PROBLEM_JSON, problem_response
from gateway.settings import GatewaySettings
from onestop import metrics, tracing
from onestop.domain.errors import DomainError, ErrorCode
from onestop.domain.types import ClientKind
from onestop.errors import HeadersTooLarge, RequestTimeout, TooLarge

CLAIM = "claim"
"""Where :class:`Authentication` leaves the request's claim (``request.state.claim``)."""

SIGNED_PREFIXES = ("/v1/", "/fsi/api")
"""Every path under them is signed (contract section 2: the API, and the national interface),
but :data:`UNSIGNED_PATHS`; ``/health`` and the API's own documentation are not either."""

UNSIGNED_PATHS = frozenset({"/v1/keys"})
"""Signed-prefix paths anyone may call: the receipt keys, so that a patient or an auditor
with no client key can verify a receipt (contract section 9)."""


def is_signed(path: str) -> bool:
    """Whether a request to ``path`` must be signed."""
    return path.startswith(SIGNED_PREFIXES) and path not in UNSIGNED_PATHS


class Authentication:
    """Check the signature headers and the client before the request is read any further.

    The claim (:class:`gateway.auth.Claim`) is left in the request's state; a route's
    dependency proves it once the body is read. Only the agency may call ``/v1/admin/*``:
    another client is refused here, before its upload is read.
    """

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.max_header_bytes = settings.max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Claim, or refuse."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("headers", [])
        try:
            if sum(len(name) + len(value) + 4 for name, value in raw) > self.max_header_bytes:
                raise HeadersTooLarge(
                    f"the request's headers may not exceed {self.max_header_bytes} bytes"
                )
            path = scope["path"]
            if is_signed(path):
                await self._claim(scope, raw)
        except DomainError as refusal:
            await problem_response(refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _claim(scope: Scope, raw: list[tuple[bytes, bytes]]) -> None:
        gateway = scope["app"].state.gateway
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
        client = scope.get("client")
        claim = await gateway.auth.claim(headers, client[0] if client else "")
        if scope["path"].startswith("/v1/admin/"):
            require_kind(claim.client, ClientKind.AGENCY)
        scope.setdefault("state", {})[CLAIM] = claim


class BodyLimit:
    """Refuse bodies over the limit (413) before they are read, and bodies that stall (408).

    The limit depends on the path: a members file may be gigabytes (streamed), a catalog or a
    mapping hundreds of megabytes, everything else (bills, policies) ten megabytes. Between
    two parts of a body at most ``body_timeout_seconds`` may pass.
    """

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings
        self.timeout = settings.body_timeout_seconds

    def limit(self, path: str) -> int:
        """The most bytes a body sent to ``path`` may have."""
        if path == "/v1/admin/members":
            return self.settings.max_members_bytes
        if path.startswith("/v1/admin/") and not path.startswith("/v1/admin/policies"):
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body and timing its parts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                # Refused before a byte is read; the connection stays open, so that a client
                # still sending its body reads the answer when it is done.
                too_large = TooLarge(f"the body may not exceed {limit} bytes")
                await problem_response(too_large)(scope, receive, send)
                return
        seen = 0
        refused = False

        async def counted() -> Message:
            # The refusal is answered here, and the application is told the client left: an
            # exception raised into it would become whatever its body parser makes of it.
            nonlocal seen, refused
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                refusal: DomainError = RequestTimeout(
                    f"no part of the body arrived for {self.timeout:g} s; send it again"
                )
            else:
                if message["type"] != "http.request":
                    return message
                seen += len(message.get("body", b""))
                if seen <= limit:
                    return message
                refusal = TooLarge(f"the body may not exceed {limit} bytes")
            if not refused:
                refused = True
                await _refuse(refusal, scope, send)
            return {"type": "http.disconnect"}

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)


async def _refuse(refusal: DomainError, scope: Scope, send: Send) -> None:
    """Answer a refusal and close the connection.

    The rest of a body that stalls, or grows past the limit, is not read.
    """
    response = problem_response(refusal)
    response.headers["connection"] = "close"

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_CODES = frozenset(code.value for code in ErrorCode)
_UNMEASURED = frozenset({"/metrics"})


class RequestMetrics:
    """Count and time every HTTP request by route template, outcome and refusal code.

    The outermost layer: refusals of the other middleware count too. The code is read from a
    problem+json answer (a few hundred bytes); label values are bounded (a route template, a
    known method, a contract code), never a path with ids in it. Each refusal is also added to
    the day's counts of every process (:class:`gateway.refusals.RefusalCounts`, the console's),
    after the answer has gone.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, then record what was answered."""
        if scope["type"] != "http" or scope["path"] in _UNMEASURED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        problem: bytearray | None = None

        async def sending(message: Message) -> None:
            nonlocal status, problem
            if message["type"] == "http.response.start":
                status = message["status"]
                if any(
                    name == b"content-type" and value.startswith(PROBLEM_JSON.encode())
                    for name, value in message.get("headers", ())
                ):
                    problem = bytearray()
            elif (
                message["type"] == "http.response.body"
                and problem is not None
                and len(problem) < 65_536
            ):
                problem.extend(message.get("body", b""))
            await send(message)

        with tracing.span("HTTP request", server=True) as current:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = _route_of(scope)
                method = scope.get("method", "")
                self._record(scope, route, method, status, problem, started)
                if current is not None:
                    current.update_name(f"{method} {route}")
                    current.set_attribute("http.route", route)
                    current.set_attribute("http.response.status_code", status)

    @staticmethod
    def _record(
        scope: Scope,
        route: str,
        method: str,
        status: int,
        problem: bytearray | None,
        started: float,
    ) -> None:
        outcome = "ok" if status < 400 else "refused" if status < 500 else "error"
        code = _code_of(bytes(problem)) if problem is not None else ""
        metrics.HTTP_REQUESTS.labels(
            route, method if method in _METHODS else "OTHER", outcome, code
        ).inc()
        if code and is_signed(scope["path"]):
            # The API's refusals; a browser's 404 for a favicon is not the day's business.
            gateway = getattr(getattr(scope.get("app"), "state", None), "gateway", None)
            if gateway is not None:
                gateway.refusals.record(ErrorCode(code))
        metrics.HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    """The route template that answered (``/v1/settlements/{settlement_id}``), or ``other``.

    A request refused before routing (a middleware's refusal) is matched against the routes
    here; a path no route knows is ``other``.
    """
    route = scope.get("route")
    if route is None:
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


def _code_of(body: bytes) -> str:
    """The contract code of a problem+json body, empty when it names none we know."""
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return ""
    return code if isinstance(code, str) and code in _CODES else ""
