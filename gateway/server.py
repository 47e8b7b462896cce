"""Serving the gateway: uvicorn on httptools, with the two guards httptools does not have.

uvicorn's httptools protocol accepts headers of any size and waits for them forever: one
request with a 16 MiB header, or fifty connections sending half a header each, cost the
gateway memory and sockets before any application code could refuse them.
:class:`GuardedHttpToolsProtocol` bounds a request's header bytes (431 and the connection
closed) and the time from a connection's first byte, or the previous answer, to the last
header (the connection closed), and closes connections past ``max_connections`` at once. Idle
keep-alive is bounded by uvicorn's own setting, slow bodies by :mod:`gateway.middleware`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from gateway.errors import PROBLEM_JSON, problem_body
from gateway.settings import GatewaySettings
from onestop.errors import HeadersTooLarge
from onestop.metrics import MULTIPROCESS_DIR_ENV, MetricsServer

log = logging.getLogger("onestop.gateway")


class GatewayConfig(uvicorn.Config):
    """uvicorn's configuration, with the guards' limits (it travels to worker processes)."""

    def __init__(self, app: Any, settings: GatewaySettings, **options: Any) -> None:
        super().__init__(
            app,
            host=settings.host,
            port=settings.port,
            http=GuardedHttpToolsProtocol,
            timeout_keep_alive=settings.keep_alive_seconds,
            timeout_graceful_shutdown=30,
            log_level=settings.log_level.lower(),
            access_log=False,
            proxy_headers=False,
            server_header=False,
            **options,
        )
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout_seconds = settings.header_timeout_seconds
        self.max_connections = settings.max_connections


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing oversized headers and closing slow ones."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_header_bytes: int = getattr(config, "max_header_bytes", 16 * 1024)
        self.header_timeout: float = getattr(config, "header_timeout_seconds", 10.0)
        self.max_connections: int = getattr(config, "max_connections", 1000)
        self.header_bytes = 0
        self.header_deadline: asyncio.TimerHandle | None = None
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection has ``header_timeout`` to send its first request's headers.

        Past ``max_connections`` open ones, it is closed at once: the process keeps its
        sockets and memory for the clients it is already serving.
        """
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("closing a connection beyond %d open ones", self.max_connections)
            self.refused = True
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Read nothing more from a connection that was refused."""
        if not self.refused:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline of a connection that is gone."""
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A request begins: its headers are counted from zero."""
        super().on_message_begin()
        self.header_bytes = 0
        if self.header_deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        """Count the request line toward the header bytes."""
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count each header; past the limit, answer 431 and close."""
        super().on_header(name, value)
        self._count(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        """The headers arrived in time."""
        self._disarm()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """Uvicorn answers a parser error 400; a request refused here was answered already."""
        if not self.refused:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > self.max_header_bytes and not self.refused:
            self.refused = True
            refusal = HeadersTooLarge(
                f"the request's headers may not exceed {self.max_header_bytes} bytes"
            )
            self._answer_and_close(431, orjson.dumps(problem_body(refusal)))
            # Stops the parser: uvicorn turns it into a 400, which send_400_response drops.
            raise httptools.HttpParserError("headers too large")

    def _arm(self) -> None:
        self._disarm()
        self.header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _too_slow(self) -> None:
        self.header_deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: its headers were complete
        log.info("closing a connection slower than %.0f s to send its headers", self.header_timeout)
        self.refused = True
        self.transport.close()

    def _answer_and_close(self, status: int, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} Request Header Fields Too Large\r\n"
            f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode("ascii")
        self.transport.write(head + body)
        self.transport.close()


def serve(settings: GatewaySettings, app: Any) -> None:
    """Serve until SIGTERM or SIGINT (in-flight requests are finished first).

    Args:
        settings: the gateway's settings.
        app: the application, or with several workers the import string of its factory.
    """
    config = GatewayConfig(app, settings, workers=settings.workers, factory=settings.workers > 1)
    metrics_dir = os.environ.get(MULTIPROCESS_DIR_ENV)
    if metrics_dir:
        # The workers' metric files of an earlier run are not this run's (onestop/metrics.py).
        # This process's own are kept: with one worker it serves here, and its metrics already
        # write to them (a file removed under them would take every later value with it).
        own = f"_{os.getpid()}.db"
        for stale in Path(metrics_dir).glob("*.db"):
            if not stale.name.endswith(own):
                stale.unlink(missing_ok=True)
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)
    if settings.metrics_port is not None:
        # In this (the supervising) process: with several workers it sums their files.
        MetricsServer(settings.host, settings.metrics_port)
    if settings.workers > 1:
        # Several processes share one listening socket; each builds its own app.
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
