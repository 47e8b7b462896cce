"""The versions cache: one read of the versions hash per bound, forgotten when a write says so.

Real Redis, one server and a cluster. The clock is the test's, so "within the bound" is a
fact of the code, not of this machine's speed: only an announcement can make a frozen clock's
copy change, and only the clock can make a deaf cache's copy change.
"""

from __future__ import annotations

import asyncio

from onestop.redis_client import RedisClient, connect
from onestop.reference_versions import VersionsCache, announce_versions
from onestop.storage.layout import VERSIONS_KEY
from tests.support.redis import ON_BOTH


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _client(url: str) -> RedisClient:
    return await connect(url, timeout_seconds=5, wait_seconds=5)


async def _write(client: RedisClient, kind: str, version: str) -> None:
    """What a write of reference data does: the version, then the announcement."""
    await client.hset(VERSIONS_KEY, kind, version)
    await announce_versions(client, kind)


@ON_BOTH
async def test_a_copy_serves_until_the_bound_then_redis_is_read_again(redis_url: str) -> None:
    client = await _client(redis_url)
    clock = Clock()
    cache = VersionsCache(client, max_age_seconds=1.0, clock=clock)  # not listening
    try:
        await client.hset(VERSIONS_KEY, "policies", "v1")
        assert (await cache.current())["policies"] == "v1"
        await client.hset(VERSIONS_KEY, "policies", "v2")
        for _ in range(100):
            assert (await cache.current())["policies"] == "v1"  # within the bound
        assert cache.reads == 1
        clock.now += 0.999
        assert (await cache.current())["policies"] == "v1"
        clock.now += 0.001  # the bound reached: read again
        assert (await cache.current())["policies"] == "v2"
        assert cache.reads == 2
    finally:
        await client.aclose()


@ON_BOTH
async def test_an_announced_write_reaches_every_listening_process_at_once(
    redis_url: str,
) -> None:
    writer = await _client(redis_url)
    clock = Clock()  # frozen: the bound never passes
    # Three processes' caches, each with its own connections.
    clients = [await _client(redis_url) for _ in range(3)]
    caches = [VersionsCache(client, max_age_seconds=3600, clock=clock) for client in clients]
    try:
        await writer.hset(VERSIONS_KEY, "catalog", "c1")
        for cache in caches:
            cache.listen(redis_url, None)
        # A listener starts from a fresh read (it may have missed announcements).
        for cache in caches:
            assert await _eventually(cache, "catalog", "c1")
        await _write(writer, "catalog", "c2")
        for cache in caches:
            assert await _eventually(cache, "catalog", "c2")
    finally:
        for cache in caches:
            await cache.close()
        for client in (writer, *clients):
            await client.aclose()


async def _eventually(cache: VersionsCache, kind: str, version: str) -> bool:
    """Whether the cache answers ``version`` within 5 s of real time (the clock is frozen)."""
    for _ in range(500):
        if (await cache.current()).get(kind) == version:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_requests_that_find_the_copy_old_share_one_read(redis_url: str) -> None:
    client = await _client(redis_url)
    cache = VersionsCache(client, max_age_seconds=60)
    try:
        await client.hset(VERSIONS_KEY, "clients", "k1")
        answers = await asyncio.gather(*(cache.current() for _ in range(50)))
        assert {answer["clients"] for answer in answers} == {"k1"}
        assert cache.reads == 1
        cache.invalidate()
        await cache.current()
        assert cache.reads == 2
    finally:
        await client.aclose()


async def test_a_copy_invalidated_while_it_was_read_is_not_kept(redis_url: str) -> None:
    client = await _client(redis_url)
    cache = VersionsCache(client, max_age_seconds=60)
    try:
        await client.hset(VERSIONS_KEY, "policies", "old")
        reading = asyncio.create_task(cache.current())
        await asyncio.sleep(0)  # the task runs until it waits for Redis's answer
        cache.invalidate()  # an announcement arrives while the read is under way
        await reading
        await client.hset(VERSIONS_KEY, "policies", "new")
        assert (await cache.current())["policies"] == "new"
    finally:
        await client.aclose()


async def test_zero_bound_reads_every_time(redis_url: str) -> None:
    client = await _client(redis_url)
    cache = VersionsCache(client, max_age_seconds=0)
    try:
        for _ in range(3):
            await cache.current()
        assert cache.reads == 3
    finally:
        await client.aclose()
