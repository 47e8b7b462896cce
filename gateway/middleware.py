"""What every request passes through before a route: the body-size guard."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import problem_response
from gateway.settings import GatewaySettings
from onestop.errors import TooLarge


class BodyLimit:
    """Refuse bodies over the limit with 413 before they are read into memory.

    The limit depends on the path: a members file may be gigabytes (streamed), a catalog or a
    mapping hundreds of megabytes, everything else (bills, policies) ten megabytes.
    """

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings

    def limit(self, path: str) -> int:
        """The most bytes a body sent to ``path`` may have."""
        if path == "/v1/admin/members":
            return self.settings.max_members_bytes
        if path.startswith("/v1/admin/") and not path.startswith("/v1/admin/policies"):
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        too_large = TooLarge(f"the body may not exceed {limit} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await problem_response(too_large)(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large
            return message

        await self.app(scope, counted, send)
