"""The reference-data versions, kept in process for a bounded time (no hot key).

Every settlement and every signed request needs the versions of the reference data (policies,
catalog, clients, mappings) to know whether its hot copies are current. Read from Redis each
time, the one versions hash would take every request of the province on one node: at 10,000
settlements a second, a hot key. :class:`VersionsCache` reads it at most once per
``max_age_seconds`` per process and otherwise answers from memory; a write of reference data
publishes on :data:`~onestop.storage.layout.VERSIONS_CHANNEL`, and every process listening
forgets its copy at once, so a new policy normally applies within milliseconds and, should a
message be lost (a subscriber reconnecting, a node failing over), within the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import cast

from redis import asyncio as aioredis

from onestop.redis_client import (
    REDIS_ERRORS,
    RedisClient,
    RedisLogin,
    login_options,
    redis_calls,
)
from onestop.storage.layout import VERSIONS_CHANNEL, VERSIONS_KEY

log = logging.getLogger("onestop.reference")

RESUBSCRIBE_PAUSE_SECONDS = 0.5
"""How long a listener waits before subscribing again after losing its connection."""

CLOSE_WAIT_SECONDS = 2.0
"""How long :meth:`VersionsCache.close` waits for the listener to end."""


async def announce_versions(client: RedisClient, kind: str) -> None:
    """Tell every process that ``kind`` has a new version (a lost message costs the bound)."""
    async with redis_calls():
        await client.publish(VERSIONS_CHANNEL, kind)


class VersionsCache:
    """The versions hash, read at most once per ``max_age_seconds`` by this process.

    Args:
        client: the process's Redis client (plain or cluster).
        max_age_seconds: how old a copy may be when a request uses it; 0 reads Redis for
            every request (round 1's behaviour).
        clock: monotonic seconds (tests move it).
    """

    def __init__(
        self,
        client: RedisClient,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._versions: dict[str, str] | None = None
        self._read_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self.reads = 0
        """Reads of the versions hash so far (what the cache saves is measured by it)."""

    def invalidate(self) -> None:
        """Forget the copy: the next request reads Redis."""
        self._generation += 1
        self._versions = None

    def _fresh(self) -> dict[str, str] | None:
        versions = self._versions
        if versions is None or self.clock() - self._read_at >= self.max_age_seconds:
            return None
        return versions

    async def current(self) -> Mapping[str, str]:
        """The versions, from memory when the copy is young enough, else from Redis.

        Concurrent requests that find the copy too old share one read.

        Raises:
            redis.exceptions.RedisError, OSError: Redis cannot be read (callers answer
                "unavailable, retry").
        """
        versions = self._fresh()
        if versions is not None:
            return versions
        async with self._lock:
            versions = self._fresh()
            if versions is not None:
                return versions
            generation = self._generation
            read_at = self.clock()
            async with redis_calls():
                raw = await self.client.hgetall(VERSIONS_KEY)
            self.reads += 1
            versions = {
                name.decode(): value.decode()
                for name, value in cast(dict[bytes, bytes], raw).items()
            }
            if generation == self._generation:
                # Not invalidated while reading: the copy is as old as the read's start.
                self._versions, self._read_at = versions, read_at
            return versions

    def listen(self, url: str, login: RedisLogin | None) -> None:
        """Start forgetting the copy whenever a write is announced (see the module).

        Args:
            url: a Redis server, or any node of a cluster (published messages reach every
                node's subscribers).
            login: the Redis user to log in as.
        """
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(url, login))

    async def _listen(self, url: str, login: RedisLogin | None) -> None:
        while not self._closing:
            connection = aioredis.Redis.from_url(url, **login_options(login))
            try:
                async with connection.pubsub() as subscription:
                    await subscription.subscribe(VERSIONS_CHANNEL)
                    # Whatever was announced while this process was not listening is missed:
                    # start from a fresh read.
                    self.invalidate()
                    async for message in subscription.listen():
                        if self._closing:
                            return
                        if message.get("type") == "message":
                            self.invalidate()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as error:
                log.warning(
                    "reference announcements lost; listening again",
                    extra={"error": type(error).__name__},
                )
                self.invalidate()
            finally:
                # Bounded: a connection to a Redis that went away must not hold a shutdown.
                with contextlib.suppress(*REDIS_ERRORS, TimeoutError):
                    await asyncio.wait_for(connection.aclose(), CLOSE_WAIT_SECONDS)
            await asyncio.sleep(RESUBSCRIBE_PAUSE_SECONDS)

    async def close(self) -> None:
        """Stop listening (within :data:`CLOSE_WAIT_SECONDS`, whatever Redis does)."""
        self._closing = True
        listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.cancel()
        # Not awaited unbounded: a client library that swallows the cancellation while it
        # waits on a dead connection would hold the process's shutdown forever.
        done, _ = await asyncio.wait({listener}, timeout=CLOSE_WAIT_SECONDS)
        if not done:
            log.warning("reference announcements: the listener did not stop in time")
        elif not listener.cancelled() and listener.exception() is not None:
            log.warning(
                "reference announcements: the listener failed",
                extra={"error": type(listener.exception()).__name__},
            )
