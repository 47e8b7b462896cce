"""Real Redis servers for tests, started on free ports in temporary directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from onestop.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (everysec: these tests are not about fsync)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendfsync="everysec")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


def dump_everything(url: str) -> dict[bytes, bytes]:
    """Every key with its serialized value: two equal dumps mean nothing changed."""
    client = redis.Redis.from_url(url)
    try:
        return {key: client.dump(key) or b"" for key in sorted(client.scan_iter(count=1000))}
    finally:
        client.close()


def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory below ``tmp_path``."""
    path = tmp_path / "data"
    path.mkdir()
    return path
