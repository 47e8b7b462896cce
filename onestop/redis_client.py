"""Connecting to Redis, standalone or Cluster, and running Lua scripts on either.

Whether ``ONESTOP_*_REDIS_URL`` names a standalone server or any node of a Redis Cluster is
detected (``INFO cluster``), never configured: the same URL shape works for both. Everything
else in the project talks to the :data:`RedisClient` this returns and uses only what both
kinds share: single-key commands, Lua scripts whose keys share one slot, and non-transactional
pipelines (a cluster pipeline is split by node and its answers come back in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeAlias
from urllib.parse import quote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings
from redis import exceptions as redis_errors
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, PipelineCommand
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from onestop import metrics
from onestop.errors import Unavailable
from onestop.storage.layout import replication_barrier_key

log = logging.getLogger("onestop.redis")

RedisClient: TypeAlias = aioredis.Redis | aioredis.RedisCluster
"""A connection to Redis: one server, or a whole Redis Cluster."""

RedisPipeline: TypeAlias = Pipeline | ClusterPipeline
"""A non-transactional pipeline of either kind."""

UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.SlotNotCoveredError,
    redis_errors.ReadOnlyError,
    OSError,
)
"""Errors meaning Redis (or part of the cluster) cannot answer now: retrying later may work.

``ReadOnlyError`` is a replica promoted away from under a connection during a failover.
"""


_TRANSPORT_RACE_ERRORS = (AttributeError, TypeError, RuntimeError)


def connection_closed_mid_call(error: BaseException) -> bool:
    """Whether ``error`` is redis-py's asyncio connection closing under a call.

    When a connection is closed while a call writes on it (a node failing over, a peer reset),
    redis-py 8.1 lets the transport's ``AttributeError``, ``TypeError`` or ``RuntimeError``
    ("unable to perform operation on <TCPTransport closed=True>") escape instead of its
    ``ConnectionError`` (redis/redis-py#4287, #3546). Such an error raised inside its
    connection code is a lost connection, nothing else: the failover test and the failover
    soak met them.
    """
    if not isinstance(error, _TRANSPORT_RACE_ERRORS):
        return False
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_globals.get("__name__") == "redis.asyncio.connection":
            return True
        trace = trace.tb_next
    return False


@contextlib.asynccontextmanager
async def redis_calls() -> AsyncIterator[None]:
    """Turn a lost or overloaded Redis into :class:`~onestop.errors.Unavailable`.

    Nothing was written when a call fails so: the caller may retry the same request.
    """
    try:
        yield
    except UNAVAILABLE_ERRORS as error:
        metrics.REDIS_ERRORS.labels(type(error).__name__).inc()
        raise Unavailable(f"Redis is unavailable: {type(error).__name__}") from error
    except _TRANSPORT_RACE_ERRORS as error:
        if not connection_closed_mid_call(error):
            raise
        metrics.REDIS_ERRORS.labels("ConnectionClosed").inc()
        raise Unavailable("the connection to Redis closed during the call") from error


REDIS_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.RedisError,
    redis_errors.RedisClusterException,
    OSError,
)
"""Any failure of a call to Redis (the cluster client's own errors are not RedisErrors);
see also :func:`connection_closed_mid_call`."""


@contextlib.asynccontextmanager
async def redis_failures_unavailable(message: str) -> AsyncIterator[None]:
    """Turn any failed call to Redis (:func:`is_redis_failure`) into ``Unavailable(message)``.

    For the gateway's own keys, where every Redis failure means "retry"; anything else passes.
    """
    try:
        yield
    except Exception as error:
        if not is_redis_failure(error):
            raise
        metrics.REDIS_ERRORS.labels(type(error).__name__).inc()
        raise Unavailable(message) from error


def is_redis_failure(error: BaseException) -> bool:
    """Whether ``error`` is a failed call to Redis: :data:`REDIS_ERRORS`, or a lost connection."""
    return isinstance(error, REDIS_ERRORS) or connection_closed_mid_call(error)


CONNECT_PAUSE_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class RedisLogin:
    """A Redis user name and its password."""

    username: str
    password: str = ""

    @classmethod
    def from_file(cls, username: str, password_file: Path) -> RedisLogin:
        """The login whose password is the first line of ``password_file``."""
        return cls(username, password_file.read_text(encoding="utf-8").strip())

    def url(self, url: str) -> str:
        """``url`` with this login in it (for tools that take one URL; never logged)."""
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        credentials = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


def login_of(username: str | None, password_file: Path | None) -> RedisLogin | None:
    """The login a service's settings name: a user and a password file, or neither.

    Raises:
        ValueError: only one of them is given.
        OSError: the password file cannot be read.
    """
    if username is None and password_file is None:
        return None
    if username is None or password_file is None:
        raise ValueError("a Redis user needs its password file, and a password file its user")
    return RedisLogin.from_file(username, password_file)


def without_credentials(url: str) -> str:
    """``url`` with any user name and password removed (for logs and messages)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


class RedisLoginSettings(BaseSettings):
    """The Redis login of a service's settings (``REDIS_USERNAME``, ``REDIS_PASSWORD_FILE``).

    A base of each service's settings class, which gives the environment prefix.
    """

    redis_username: str | None = Field(
        default=None, description="the Redis user this service logs in as"
    )
    redis_password_file: Path | None = Field(
        default=None, description="a file holding that user's password (mode 0600)"
    )

    @model_validator(mode="after")
    def _redis_login_whole(self) -> Self:
        if (self.redis_username is None) != (self.redis_password_file is None):
            raise ValueError("give both redis_username and redis_password_file, or neither")
        return self

    def redis_login(self) -> RedisLogin | None:
        """The Redis user and password to log in with, when a password file is given."""
        return login_of(self.redis_username, self.redis_password_file)


class RedisUnreachable(RuntimeError):
    """Redis did not answer within the time allowed for starting up."""


def login_options(login: RedisLogin | None) -> dict[str, Any]:
    """The client options that log in as ``login`` (none: the URL's own, if any)."""
    if login is None:
        return {}
    return {"username": login.username, "password": login.password}


async def is_cluster(url: str, timeout_seconds: float, login: RedisLogin | None = None) -> bool:
    """Whether the server at ``url`` is a node of a Redis Cluster.

    Raises:
        redis.exceptions.RedisError: the server cannot be asked (or refuses the login).
        OSError: nothing listens there.
    """
    probe = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        **login_options(login),
    )
    try:
        info = await probe.info("cluster")
    finally:
        await probe.aclose()
    return bool(info.get("cluster_enabled"))


async def connect(
    url: str,
    *,
    timeout_seconds: float,
    wait_seconds: float,
    max_connections: int = 512,
    login: RedisLogin | None = None,
) -> RedisClient:
    """A client for ``url``: a cluster client when it is a cluster node, else a plain one.

    Args:
        url: ``redis://`` or ``rediss://`` URL of the server or of any cluster node.
        timeout_seconds: socket connect and read timeout of every call (a lost Redis must
            fail fast, so that callers can answer "unavailable, retry").
        wait_seconds: how long to keep asking when Redis does not answer yet (a service
            started before its Redis waits for it instead of guessing its kind).
        max_connections: pool size (per node for a cluster).
        login: the Redis user to log in as; ``None`` uses the URL's credentials, if any.

    Raises:
        RedisUnreachable: Redis did not answer within ``wait_seconds``.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            clustered = await is_cluster(url, timeout_seconds, login)
            break
        except UNAVAILABLE_ERRORS as error:
            if time.monotonic() >= deadline:
                raise RedisUnreachable(
                    f"Redis did not answer within {wait_seconds} s: {type(error).__name__}"
                ) from error
            log.warning("waiting for Redis", extra={"error": type(error).__name__})
            await asyncio.sleep(CONNECT_PAUSE_SECONDS)
    options: dict[str, Any] = {
        # A few quick retries ride over a dropped connection; a Redis that stays away makes
        # the call fail within about a second, and the caller answers "unavailable, retry".
        # A retried write is safe: every script re-checks what it found (see store.py).
        "retry": Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.25), retries=3),
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "health_check_interval": 10,
        "max_connections": max_connections,
        **login_options(login),
    }
    if clustered:
        log.info("Redis Cluster detected")
        cluster = aioredis.RedisCluster.from_url(url, **options)
        await cluster.initialize()
        return cluster
    return aioredis.Redis.from_url(url, **options)


class LuaScript:
    """A Lua script run by its SHA1, loaded again wherever Redis does not know it.

    Unlike redis-py's registered scripts this also works inside a cluster pipeline, and a
    standalone pipeline does not ask ``SCRIPT EXISTS`` before each run: a node that lost its
    script cache (restart, failover) answers NOSCRIPT once, and :func:`run_pipeline` loads
    the scripts on every primary and runs the pipeline again.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode("utf-8")).hexdigest()

    async def __call__(
        self, client: RedisClient, keys: Sequence[str], args: Sequence[str | int | bytes]
    ) -> Any:
        """Run the script now (loading it first if this node does not know it)."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(
        self, pipe: RedisPipeline, keys: Sequence[str], args: Sequence[str | int | bytes]
    ) -> None:
        """Add a run of the script to a pipeline (see :func:`run_pipeline`)."""
        # By command name: redis-py refuses ``evalsha`` in cluster pipelines although the
        # cluster routes EVALSHA by its keys, which here always share one slot.
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


async def run_pipeline(
    client: RedisClient,
    build: Callable[[RedisPipeline], None],
    scripts: Sequence[LuaScript] = (),
) -> list[Any]:
    """Build and run a non-transactional pipeline; its answers in order.

    When a script in it is unknown to a node, the scripts are loaded on every primary and the
    whole pipeline runs again, so whatever ``build`` queues must be safe to repeat (reads,
    compare-and-set scripts, writes of the same values).
    """
    pipe = client.pipeline(transaction=False)
    build(pipe)
    try:
        return await pipe.execute()
    except redis_errors.NoScriptError:
        for script in scripts:
            await client.script_load(script.text)
        pipe = client.pipeline(transaction=False)
        build(pipe)
        return await pipe.execute()


@dataclass(frozen=True, slots=True)
class Replication:
    """How many replicas must hold a write before it is acknowledged (0: none, as round 1).

    Attributes:
        replicas: replicas of the written key's primary that must confirm it.
        timeout_ms: how long to wait for them; past it the caller answers "unavailable,
            retry" (the write stays: the same request again finds it and waits again).
    """

    replicas: int = 0
    timeout_ms: int = 1000


NO_REPLICATION = Replication()

_BARRIER_TTL_MS = 10_000


async def wait_for_replicas(
    client: RedisClient, keys: Sequence[str], replication: Replication
) -> None:
    """Return once every write so far to the primaries of ``keys`` reached enough replicas.

    Redis's ``WAIT`` counts the writes of the connection it is sent on; the write to
    acknowledge may have gone through another connection of the pool. So each primary gets a
    small write of its own (a barrier key that expires) followed by ``WAIT`` on one connection:
    a replica acknowledges offsets in order, so confirming the barrier confirms every write
    the primary had applied before it.

    Raises:
        Unavailable: a primary could not be reached, or fewer replicas than required
            confirmed within the timeout. The writes stay; the caller's request is safe to
            send again.
    """
    if replication.replicas == 0 or not keys:
        return
    started = time.perf_counter()
    try:
        confirmed = await _confirmations(client, keys, replication)
    finally:
        metrics.REPLICATION_WAIT_SECONDS.observe(time.perf_counter() - started)
    if min(confirmed) < replication.replicas:
        metrics.REPLICATION_TIMEOUTS.inc()
        raise Unavailable(
            f"the change was written but confirmed by {min(confirmed)} of the "
            f"{replication.replicas} replicas required within {replication.timeout_ms} ms: "
            "send the same request again (it is answered once the replicas hold it)"
        )


async def _confirmations(
    client: RedisClient, keys: Sequence[str], replication: Replication
) -> list[int]:
    """How many replicas confirmed a barrier, per primary of ``keys``."""
    if isinstance(client, aioredis.RedisCluster):
        targets: dict[str, tuple[Any, str]] = {}
        for key in keys:
            node = client.get_node_from_key(key)
            if node is not None:
                targets.setdefault(node.name, (node, key))
        return list(
            await asyncio.gather(
                *(
                    _cluster_barrier(client, node, key, replication)
                    for node, key in targets.values()
                )
            )
        )
    return [await _barrier(client, keys[0], replication)]


async def _barrier(client: aioredis.Redis, key: str, replication: Replication) -> int:
    pipe = client.pipeline(transaction=False)  # one connection: WAIT covers the SET
    pipe.set(replication_barrier_key(key), b"", px=_BARRIER_TTL_MS)
    pipe.execute_command("WAIT", replication.replicas, replication.timeout_ms)
    async with redis_calls():
        _, confirmed = await pipe.execute()
    return int(confirmed)


async def _cluster_barrier(
    client: aioredis.RedisCluster, node: Any, key: str, replication: Replication
) -> int:
    commands = [
        PipelineCommand(0, "SET", replication_barrier_key(key), b"", "PX", _BARRIER_TTL_MS),
        PipelineCommand(1, "WAIT", replication.replicas, replication.timeout_ms),
    ]
    async with redis_calls():
        await node.execute_pipeline(commands)
    failed = next(
        (command.result for command in commands if isinstance(command.result, Exception)), None
    )
    if failed is not None:
        # A slot moved (a failover): learn the new map for the next request; this one retries.
        with contextlib.suppress(*REDIS_ERRORS):
            await client.nodes_manager.initialize()
        raise Unavailable(
            f"the replicas could not be asked ({type(failed).__name__}): send the same "
            "request again"
        )
    confirmed: Any = commands[1].result
    return int(confirmed)
