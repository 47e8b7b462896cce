"""Real Redis for tests: one server and one 3-primary Redis Cluster, on free ports.

``redis_url`` is the standalone server unless a test asks for the cluster with
``@pytest.mark.parametrize("redis_url", ["standalone", "cluster"], indirect=True)``
(or ``pytestmark``): the same test then runs on both.

Both admit only the services' Redis users (:mod:`onestop.redis_users`), as in production:
``redis_url`` carries the operator's login (tests inspect everything), and the services the
tests start log in as their own users (:func:`service_redis`), so every test also shows that
each service's ACL rules allow what it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from onestop.redis_client import without_credentials
from onestop.redis_users import password_file
from onestop.tooling.redis_server import LocalRedisCluster, RedisServer

ON_BOTH = pytest.mark.parametrize("redis_url", ["standalone", "cluster"], indirect=True)
"""Run a test on the standalone server and on the cluster."""


_USERS_OF: dict[str, Path] = {}
"""host:port of a server with users -> its users' directory."""


def _address(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def service_redis(url: str, user: str) -> dict[str, Any]:
    """The settings that connect a service to ``url`` as its Redis ``user``.

    For a server without users (a test's own), the URL as it is.
    """
    users_dir = _USERS_OF.get(_address(url))
    if users_dir is None:
        return {"redis_url": url}
    return {
        "redis_url": without_credentials(url),
        "redis_username": user,
        "redis_password_file": password_file(users_dir, user),
    }


def through(url: str, port: int) -> str:
    """``url`` reached through a proxy on ``port`` of loopback (same users, same login)."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    address = f"127.0.0.1:{port}"
    if _address(url) in _USERS_OF:
        _USERS_OF[address] = _USERS_OF[_address(url)]
    netloc = f"{credentials}@{address}" if credentials else address
    return urlunsplit(parts._replace(netloc=netloc))


def redis_port(url: str) -> int:
    """The port ``url`` names."""
    return int(_address(url).rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (everysec: these tests are not about fsync)."""
    server = RedisServer(
        tmp_path_factory.mktemp("redis"),
        appendfsync="everysec",
        users_dir=tmp_path_factory.mktemp("redis-users"),
    )
    server.start()
    _USERS_OF[_address(server.url)] = cast(Path, server.users_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A real Redis Cluster of three primaries on loopback, for the session."""
    users_dir = tmp_path_factory.mktemp("redis-cluster-users")
    cluster = LocalRedisCluster(
        tmp_path_factory.mktemp("redis-cluster"), 3, appendfsync="everysec", users_dir=users_dir
    )
    cluster.start()
    for node in cluster.nodes:
        _USERS_OF[_address(node.url)] = users_dir
    yield cluster
    cluster.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, which the test may crash and start again."""
    server = RedisServer(tmp_path / "redis", appendfsync="always")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """The session's Redis (or, when parametrized with "cluster", its cluster), emptied."""
    kind = getattr(request, "param", "standalone")
    if kind == "cluster":
        url = request.getfixturevalue("redis_cluster").admin_url
    else:
        url = request.getfixturevalue("redis_server").admin_url
    client = sync_client(url)
    client.flushall()
    client.close()
    return str(url)


def sync_client(url: str) -> redis.Redis | redis.RedisCluster:
    """A blocking client for ``url``, a cluster client when it names a cluster node."""
    probe = redis.Redis.from_url(url)
    try:
        clustered = bool(probe.info("cluster").get("cluster_enabled"))
    finally:
        probe.close()
    if clustered:
        return redis.RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def dump_everything(url: str, *, refusal_counts: bool = True) -> dict[bytes, bytes]:
    """Every key with its serialized value: two equal dumps mean nothing changed.

    ``refusal_counts=False`` leaves out the day's refusal counts: a process adds to them a
    second after refusing, whoever sent the request (one write a second, bounded).
    """
    client = sync_client(url)
    try:
        return {
            key: client.dump(key) or b""
            for key in sorted(client.scan_iter(count=1000))
            if refusal_counts or b":refusals:" not in key
        }
    finally:
        client.close()


OPERATIONAL = (b":nonce:", b":unknownmembers:", b":lookups:", b":refusals:")
"""Keys that record that a request was made, not what it did: spent nonces, the count of
unknown member ids, the lookup audit trail, the day's refusal counts. A refused request may
touch them."""


def state_of(dump: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """A dump without the operational keys: the data a refused request must leave unchanged."""
    return {key: value for key, value in dump.items() if not any(m in key for m in OPERATIONAL)}


def dump_state(url: str) -> dict[bytes, bytes]:
    """Every key but the operational ones (:data:`OPERATIONAL`)."""
    return state_of(dump_everything(url))


def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory below ``tmp_path``."""
    path = tmp_path / "data"
    path.mkdir()
    return path
