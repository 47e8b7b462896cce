"""A real TCP hop that can hold back a server's answers: a slow dependency, on demand."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


class SlowLink:
    """Forwards 127.0.0.1:``port`` to ``target``; answers arrive ``answer_delay`` s late.

    Requests pass at once, so the server does its work; only what it sends back is held, each
    chunk until its arrival time plus the delay in force when it arrived (a backlog drains as
    soon as the delay is lifted, in order). With ``cut_answers`` set, that many of the next
    answers are swallowed and their connection cut: the server did the work, the client never
    hears of it.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.answer_delay = 0.0
        self.cut_answers = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and cut every connection."""
        if self._server is not None:
            self._server.close()
        # Closing the sockets ends every pipe (cancelling the connection tasks instead would
        # make asyncio log their cancellation as an error).
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)
            return
        self._writers.add(upstream_writer)
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer, delayed=False),
                self._pipe(upstream_reader, writer, delayed=True),
            )
        finally:
            for stream in (writer, upstream_writer):
                stream.close()
                self._writers.discard(stream)
            self._tasks.discard(task)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    sink.close()
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                sink.write(data)
                await sink.drain()

        forwarding = asyncio.create_task(forward())
        try:
            while True:
                data = await source.read(65536)
                if delayed and data and self.cut_answers > 0:
                    self.cut_answers -= 1
                    sink.transport.abort()
                    await queue.put((0.0, b""))  # and the forwarding ends
                    break
                delay = self.answer_delay if delayed else 0.0
                await queue.put((time.monotonic() + delay, data))
                if not data:
                    break
            await forwarding
        except (ConnectionError, OSError):
            pass
        finally:
            forwarding.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await forwarding


@contextlib.asynccontextmanager
async def slow_link(target: str) -> AsyncIterator[SlowLink]:
    """A :class:`SlowLink` to ``host:port``, closed on leaving."""
    host, port = target.rsplit(":", 1)
    link = SlowLink(host, int(port))
    await link.start()
    try:
        yield link
    finally:
        await link.close()
