"""Run the adjudicator: grpc.aio server with health checking, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis import asyncio as aioredis

from adjudicator.archiving import ArchiveBusy, ArchiveJob
from adjudicator.loading import LoadingService
from adjudicator.members import MemberLoader
from adjudicator.observability import CallMetrics
from adjudicator.reference import Reference
from adjudicator.service import SettlementService
from adjudicator.servicer import AdjudicatorServicer
from adjudicator.settings import AdjudicatorSettings
from adjudicator.store import Store
from onestop import metrics, tracing
from onestop.errors import Unavailable
from onestop.metrics import MetricsServer
from onestop.redis_client import (
    REDIS_ERRORS,
    RedisClient,
    Replication,
    connect,
    is_redis_failure,
)
from onestop.reference_versions import VersionsCache
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.storage.archive import ArchiveReader
from onestop.storage.crypto import MemberCipher
from onestop.storage.migrate import require_current_layout
from onestop.tls import server_credentials

log = logging.getLogger("onestop.adjudicator")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Adjudicator"].full_name
LIVENESS_SERVICE = "onestop.liveness"
"""A health service name that is SERVING while the process serves, whatever Redis does.

For liveness probes: a Redis outage makes the adjudicator NOT_SERVING (not ready) but must
not make an orchestrator restart it.
"""
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
HEALTH_PROBE_SECONDS = 1.0


@dataclass
class RunningAdjudicator:
    """A started adjudicator; :meth:`stop` finishes in-flight calls first."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    redis: RedisClient
    grace_seconds: float
    service: SettlementService
    _probe: asyncio.Task[None]
    versions: VersionsCache
    archiving: _ScheduledArchive | None = None
    metrics: MetricsServer | None = None
    """Where this process answers Prometheus scrapes (``METRICS_PORT``), if anywhere."""

    async def stop(self) -> None:
        """Stop taking calls, let in-flight calls finish (up to the grace period), close."""
        await self.health.enter_graceful_shutdown()
        self._probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._probe
        if self.archiving is not None:
            await self.archiving.stop()
        await self.server.stop(self.grace_seconds)
        if self.service.store.archive is not None:
            self.service.store.archive.close()
        await self.versions.close()
        await self.redis.aclose()
        if self.metrics is not None:
            self.metrics.stop()
        log.info("stopped", extra={"port": self.port})


async def _probe_redis(client: RedisClient, servicer: health.aio.HealthServicer) -> None:
    """Report SERVING while Redis answers, NOT_SERVING while it does not."""
    serving: int | None = None
    while True:
        status: int
        try:
            await client.ping()
            status = health_pb2.HealthCheckResponse.SERVING
        except Exception as error:
            # A connection closed under the call (a failover) is a Redis failure too, though
            # redis-py raises it as AttributeError: is_redis_failure knows both.
            if not is_redis_failure(error):
                raise
            status = health_pb2.HealthCheckResponse.NOT_SERVING
        if status != serving:
            for name in ("", SERVICE_NAME):
                await servicer.set(name, status)
            serving = status
        await asyncio.sleep(HEALTH_PROBE_SECONDS)


@dataclass
class _ScheduledArchive:
    """The archive job every ``archive_every_seconds``, on a Redis client of its own.

    A stop lets the job finish the (day, group) it is in (it stops between two); a job cut
    short anyway loses nothing (it is built to survive kill -9), the next one goes on.
    """

    settings: AdjudicatorSettings
    stopping: asyncio.Event
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), self.settings.shutdown_grace_seconds)
        except TimeoutError:
            self.task.cancel()
            log.warning("archive job stopped in the middle of a day; the next one goes on")

    async def _run(self) -> None:
        settings = self.settings
        if settings.archive_dir is None:
            return
        client = await connect(
            settings.redis_url,
            timeout_seconds=settings.redis_timeout_seconds,
            wait_seconds=settings.redis_wait_seconds,
            login=settings.redis_login(),
        )
        job = ArchiveJob(
            client,
            settings.archive_dir,
            keep_days=settings.archive_keep_days,
            restored_grace_seconds=settings.archive_restored_grace_seconds,
            batch=settings.archive_batch,
        )
        try:
            while not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), settings.archive_every_seconds)
                if self.stopping.is_set():
                    return
                try:
                    report = await job.run(self.stopping)
                except ArchiveBusy:
                    metrics.ARCHIVE_RUNS.labels("busy").inc()
                    continue
                except Unavailable as error:
                    metrics.ARCHIVE_RUNS.labels("failed").inc()
                    log.warning("archive job: Redis failed; next turn", extra={"error": str(error)})
                    continue
                metrics.ARCHIVE_RUNS.labels("done").inc()
                metrics.ARCHIVE_LAST_SUCCESS.set(time.time())
                if report.days or report.restored_back:
                    log.info("archived", extra=report.as_json())
        finally:
            await client.aclose()


async def _check_replicas(client: RedisClient, replication: Replication) -> None:
    """Warn at start when a primary has fewer replicas than every write will wait for."""
    if replication.replicas == 0:
        return
    nodes = client.get_primaries() if isinstance(client, aioredis.RedisCluster) else [None]
    for node in nodes:
        try:
            if node is None:
                info = await client.info("replication")
            else:
                info = await client.info("replication", target_nodes=node)
        except REDIS_ERRORS:
            continue
        connected = int(info.get("connected_slaves", 0))
        if connected < replication.replicas:
            log.warning(
                "a Redis primary has fewer replicas than writes wait for: they will be "
                "answered 503 until enough replicas are connected",
                extra={"connected": connected, "required": replication.replicas},
            )


async def start(settings: AdjudicatorSettings) -> RunningAdjudicator:
    """Start serving on ``settings.host:settings.port`` (0: a free port, see ``.port``)."""
    client = await connect(
        settings.redis_url,
        timeout_seconds=settings.redis_timeout_seconds,
        wait_seconds=settings.redis_wait_seconds,
        login=settings.redis_login(),
    )
    try:
        await require_current_layout(client)
    except BaseException:
        await client.aclose()
        raise
    cipher = MemberCipher(settings.member_key_bytes(), settings.previous_member_keys())
    replication = Replication(settings.replicas_required, settings.replica_timeout_ms)
    await _check_replicas(client, replication)
    archive = ArchiveReader(settings.archive_dir) if settings.archive_dir is not None else None
    store = Store(client, cipher, replication, archive)
    versions = VersionsCache(client, settings.reference_max_age_seconds)
    versions.listen(settings.redis_url, settings.redis_login())
    reference = Reference(store, versions)
    service = SettlementService(
        store,
        reference,
        settings.commit_attempts,
        lookup_audit_seconds=settings.lookup_audit_days * 86_400,
    )
    servicer = AdjudicatorServicer(service, LoadingService(reference), MemberLoader(store))

    server = grpc.aio.server(
        interceptors=[CallMetrics()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    pb_grpc.add_AdjudicatorServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{settings.host}:{settings.port}"
    tls = settings.tls()
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, server_credentials(tls))
    if port == 0:
        raise OSError(f"cannot listen on {settings.host}:{settings.port}")
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await health_servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    probe = asyncio.create_task(_probe_redis(client, health_servicer))
    archiving = None
    if settings.archive_every_seconds:
        archiving = _ScheduledArchive(settings, asyncio.Event())
        archiving.start()
    scrapes = None
    if settings.metrics_port is not None:
        scrapes = MetricsServer(settings.host, settings.metrics_port)
    log.info(
        "listening",
        extra={
            "host": settings.host,
            "port": port,
            "metrics_port": scrapes.port if scrapes else None,
        },
    )
    return RunningAdjudicator(
        server,
        port,
        health_servicer,
        client,
        settings.shutdown_grace_seconds,
        service,
        probe,
        versions,
        archiving,
        scrapes,
    )


async def serve(
    settings: AdjudicatorSettings, on_ready: Callable[[int], None] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (traces sent, when configured)."""
    traces = tracing.configure("onestop-adjudicator")
    running = await start(settings)
    if on_ready is not None:
        on_ready(running.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("stopping", extra={"port": running.port})
    await running.stop()
    tracing.shutdown(traces)
