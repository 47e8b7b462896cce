"""``onestop serve``: everything on one machine, supervised.

Starts (unless ``ONESTOP_REDIS_URL`` names one) a real Redis with append-only persistence in
the data directory, then the adjudicator, then the HTTP gateway, and keeps them running: a
child that dies is started again. On first start it makes the agency's key pair, writes the
private key to ``DIR/agency.key`` (mode 0600) and registers the ``agency`` client. SIGTERM or
SIGINT stops them in order. A restart on the same directory, also after ``kill -9`` of
everything, finds every acknowledged settlement: Redis fsyncs each write before
it answers (``appendfsync always``), and a stale Redis left on the directory is shut down
cleanly before the new one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import grpc
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adjudicator.settings import new_member_key
from onestop import wire
from onestop.domain.clients import Client
from onestop.domain.types import ClientKind
from onestop.metrics import MULTIPROCESS_DIR_ENV
from onestop.process import die_with_parent
from onestop.redis_client import RedisLogin
from onestop.redis_users import ADJUDICATOR, GATEWAY, password_file
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.signing import load_private_key, private_pem, public_pem, write_secret_file
from onestop.storage.migrate import run_migration
from onestop.tls import TlsFiles, channel, make_tls_material
from onestop.tooling.redis_server import (
    LocalRedisCluster,
    LocalRedisReplicated,
    RedisServer,
    RedisStartError,
    free_port,
)

log = logging.getLogger("onestop.tooling.serve")

RESTART_PAUSE_SECONDS = 1.0


class ServeSettings(BaseSettings):
    """Settings of ``onestop serve`` (``ONESTOP_*``); command-line options override them."""

    model_config = SettingsConfigDict(env_prefix="ONESTOP_", extra="ignore")

    data_dir: Path = Path("var/onestop")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP gateway port (0: free)")
    adjudicator_port: int = Field(
        default=0, ge=0, le=65535, description="the first adjudicator's port; 0: free ports"
    )
    adjudicator_workers: int = Field(default=1, ge=1, le=64, description="adjudicator processes")
    gateway_workers: int = Field(default=1, ge=1, le=64, description="gateway processes")
    redis_url: str | None = Field(
        default=None, pattern=r"^rediss?://", description="an external Redis or cluster node"
    )
    redis_shards: int = Field(
        default=1,
        ge=1,
        le=16,
        description="the embedded Redis: 1 server, or a Redis Cluster of this many primaries",
    )
    redis_replicas: int = Field(
        default=0,
        ge=0,
        le=5,
        description="replicas of each embedded primary; the adjudicators then acknowledge a "
        "write once all of them hold it (ONESTOP_ADJUDICATOR_REPLICAS_REQUIRED)",
    )
    redis_node_timeout_ms: int = Field(
        default=5000,
        ge=100,
        le=60_000,
        description="cluster-node-timeout of the embedded cluster: how long a primary may be "
        "unreachable before its replica is promoted",
    )
    archive_keep_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="closed days Redis keeps; older ones move to DATA_DIR/archive "
        "(ONESTOP_ADJUDICATOR_ARCHIVE_KEEP_DAYS)",
    )
    archive_every_seconds: float = Field(
        default=3600,
        ge=0,
        le=86_400,
        description="how often the adjudicators run the archive job (one at a time); 0: never",
    )
    appendfsync: Literal["always", "everysec"] = "always"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    ready_timeout_seconds: float = Field(default=60.0, gt=0)
    service_environment: dict[str, str] = Field(
        default_factory=dict,
        description="more ONESTOP_GATEWAY_* / ONESTOP_ADJUDICATOR_* variables for the services "
        "(the benchmark lifts the per-client rate limit with them)",
    )


def _tls_environment(prefix: str, files: TlsFiles) -> dict[str, str]:
    return {
        f"{prefix}CA_FILE": str(files.ca),
        f"{prefix}CERT_FILE": str(files.cert),
        f"{prefix}KEY_FILE": str(files.key),
    }


def _redis_user_environment(prefix: str, users_dir: Path | None, user: str) -> dict[str, str]:
    if users_dir is None:
        return {}  # an external Redis: its URL carries whatever login it needs
    return {
        f"{prefix}REDIS_USERNAME": user,
        f"{prefix}REDIS_PASSWORD_FILE": str(password_file(users_dir, user)),
    }


def tighten_permissions(directory: Path) -> int:
    """Make ``directory`` and what it holds owner-only (0700/0600); how many were changed.

    A data directory of an earlier version may hold world-readable files (the append-only
    file, logs); only files this user owns are touched, symbolic links never followed.
    """
    changed = 0
    for path in (directory, *directory.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
            continue
        if info.st_mode & 0o077:
            path.chmod(stat.S_IMODE(info.st_mode) & 0o700)
            changed += 1
    if changed:
        log.warning("made %d files of %s readable by their owner only", changed, directory)
    return changed


class AlreadyServing(RuntimeError):
    """Another ``onestop serve`` holds the data directory."""


def ensure_secret_file(path: Path, make: Callable[[], bytes]) -> Path:
    """Create ``path`` with ``make()`` (mode 0600) unless it exists; refuse a readable one."""
    if not path.exists():
        write_secret_file(path, make())
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    return path


@dataclass
class Child:
    """A supervised service process."""

    name: str
    command: list[str]
    environment: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start (or start again) the process."""
        metrics_dir = self.environment.get(MULTIPROCESS_DIR_ENV)
        if metrics_dir:
            # Values of the processes before this start are not the new ones': the client
            # library wants the folder empty before its processes start.
            shutil.rmtree(metrics_dir, ignore_errors=True)
            Path(metrics_dir).mkdir(parents=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's life
        self.process = subprocess.Popen(
            self.command,
            env=self.environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )

    def exited(self) -> bool:
        """Whether the process has ended."""
        return self.process is not None and self.process.poll() is not None

    def stop(self, timeout: float) -> None:
        """SIGTERM, wait, then SIGKILL."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_serving(target: str, timeout: float, tls: TlsFiles | None = None) -> None:
    """Wait until the gRPC health service at ``target`` answers SERVING."""
    deadline = time.monotonic() + timeout
    with channel(target, tls) as connection:
        stub: Any = health_pb2_grpc.HealthStub(connection)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.RpcError):
                answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.1)
    raise TimeoutError(f"{target} did not become healthy within {timeout} s")


def wait_http_healthy(base_url: str, timeout: float, child: Child | None = None) -> None:
    """Wait until ``GET /health`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.exited():
            raise RuntimeError(f"{child.name} exited at start; see {child.log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become healthy within {timeout} s")


AGENCY_CLIENT_ID = "agency"


def bootstrap_agency(adjudicator: str, key_path: Path, tls: TlsFiles | None = None) -> None:
    """Create the agency's key on first start (mode 0600) and register the agency client.

    The private key is written to ``DIR/agency.key`` (PEM, PKCS8); the gateway keeps only the
    public key, through the client registry.
    """
    ensure_secret_file(key_path, lambda: private_pem(Ed25519PrivateKey.generate()))
    register_agency(adjudicator, public_pem(load_private_key(key_path).public_key()), tls=tls)


def register_agency(
    adjudicator: str, public: str, timeout: float = 30, tls: TlsFiles | None = None
) -> None:
    """Register (or re-key) the agency client directly with an adjudicator.

    The one step that cannot go through the signed HTTP API, which needs the agency first:
    it takes the operator's TLS certificate (``tls``) where the adjudicator requires one.
    Waits up to ``timeout`` seconds for the adjudicator to answer.
    """
    with channel(adjudicator, tls) as connection:
        stub = pb_grpc.AdjudicatorStub(connection)
        agency = Client(
            client_id=AGENCY_CLIENT_ID,
            kind=ClientKind.AGENCY,
            name="医疗保障经办机构 (agency)",
            public_key=public,
        )
        stub.PutClient(wire.client_message(agency), timeout=timeout, wait_for_ready=True)


class Supervisor:
    """Runs Redis and the services of one data directory until told to stop."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.redis: RedisServer | LocalRedisCluster | LocalRedisReplicated | None = None
        self.children: list[Child] = []
        self._lock: IO[bytes] | None = None
        self._stopping = False

    def _take_lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = open(self.data_dir / "serve.lock", "wb")  # noqa: SIM115 - held until exit
        try:
            # The kernel drops the lock when the holder dies, even by kill -9.
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            lock.close()
            raise AlreadyServing(f"another onestop serve is running on {self.data_dir}") from error
        self._lock = lock

    def start(self) -> dict[str, object]:
        """Start everything; the addresses, also written to ``DIR/serve.json``.

        Raises:
            AlreadyServing: another supervisor holds the directory (nothing was started).
        """
        # Whatever this process and its children create (keys, logs, Redis's append-only
        # file with members' birth dates) is readable by its owner only.
        os.umask(0o077)
        self._take_lock()
        tighten_permissions(self.data_dir)
        member_key = ensure_secret_file(self.data_dir / "member.key", new_member_key)
        tls_dir = self.data_dir / "tls"
        if not (tls_dir / "ca.pem").exists():
            make_tls_material(tls_dir)
        operator_tls = TlsFiles.of(tls_dir, "operator")
        redis_url = self.settings.redis_url
        users_dir: Path | None = None
        admin: RedisLogin | None = None
        if redis_url is None:
            users_dir = self.data_dir / "redis-users"
            if self.settings.redis_shards > 1:
                self.redis = LocalRedisCluster(
                    self.data_dir / "redis-cluster",
                    self.settings.redis_shards,
                    replicas=self.settings.redis_replicas,
                    node_timeout_ms=self.settings.redis_node_timeout_ms,
                    appendfsync=self.settings.appendfsync,
                    users_dir=users_dir,
                )
            elif self.settings.redis_replicas:
                self.redis = LocalRedisReplicated(
                    self.data_dir / "redis-replicated",
                    self.settings.redis_replicas,
                    appendfsync=self.settings.appendfsync,
                    users_dir=users_dir,
                )
            else:
                self.redis = RedisServer(
                    self.data_dir / "redis",
                    appendfsync=self.settings.appendfsync,
                    users_dir=users_dir,
                )
            redis_url = self.redis.start(timeout=self.settings.ready_timeout_seconds)
            admin = self.redis.admin_login()
        # Data of an older layout (a data directory of an earlier version) is converted
        # before any service reads it; with nothing to convert this is one SCAN.
        asyncio.run(
            run_migration(
                redis_url,
                write=log.info,
                wait_seconds=self.settings.ready_timeout_seconds,
                login=admin,
            )
        )
        adjudicators: list[Child] = []
        targets: list[str] = []
        scrape_targets: list[str] = []
        for number in range(self.settings.adjudicator_workers):
            port = (
                self.settings.adjudicator_port + number
                if self.settings.adjudicator_port
                else free_port()
            )
            metrics_port = free_port()
            scrape_targets.append(f"{self.settings.host}:{metrics_port}")
            environment = {
                **os.environ,
                "ONESTOP_ADJUDICATOR_ARCHIVE_DIR": str(self.settings.data_dir / "archive"),
                "ONESTOP_ADJUDICATOR_ARCHIVE_KEEP_DAYS": str(self.settings.archive_keep_days),
                "ONESTOP_ADJUDICATOR_ARCHIVE_EVERY_SECONDS": str(
                    self.settings.archive_every_seconds
                ),
                **self.settings.service_environment,
                "ONESTOP_ADJUDICATOR_HOST": self.settings.host,
                "ONESTOP_ADJUDICATOR_PORT": str(port),
                "ONESTOP_ADJUDICATOR_METRICS_PORT": str(metrics_port),
                "ONESTOP_ADJUDICATOR_REDIS_URL": redis_url,
                "ONESTOP_ADJUDICATOR_MEMBER_KEY_FILE": str(member_key),
                "ONESTOP_ADJUDICATOR_LOG_LEVEL": self.settings.log_level,
                "ONESTOP_ADJUDICATOR_REPLICAS_REQUIRED": str(
                    self.settings.redis_replicas if self.redis is not None else 0
                ),
                **_tls_environment("ONESTOP_ADJUDICATOR_TLS_", TlsFiles.of(tls_dir, "adjudicator")),
                **_redis_user_environment("ONESTOP_ADJUDICATOR_", users_dir, ADJUDICATOR),
            }
            environment.pop("ONESTOP_ADJUDICATOR_MEMBER_KEY", None)
            # One process per port: each adjudicator is its own scrape target.
            environment.pop(MULTIPROCESS_DIR_ENV, None)
            suffix = f"-{number + 1}" if self.settings.adjudicator_workers > 1 else ""
            adjudicator = Child(
                f"adjudicator{suffix}",
                [sys.executable, "-m", "adjudicator"],
                environment,
                self.data_dir / f"adjudicator{suffix}.log",
            )
            adjudicator.start()
            self.children.append(adjudicator)
            adjudicators.append(adjudicator)
            targets.append(f"{self.settings.host}:{port}")
        for target in targets:
            wait_serving(target, self.settings.ready_timeout_seconds, operator_tls)
        target = ",".join(targets)
        bootstrap_agency(targets[0], self.data_dir / "agency.key", operator_tls)

        gateway_port = self.settings.port or free_port()
        gateway_metrics_port = free_port()
        gateway = Child(
            "gateway",
            [sys.executable, "-m", "gateway"],
            {
                **os.environ,
                **self.settings.service_environment,
                "ONESTOP_GATEWAY_HOST": self.settings.host,
                "ONESTOP_GATEWAY_PORT": str(gateway_port),
                "ONESTOP_GATEWAY_ADJUDICATOR": target,
                "ONESTOP_GATEWAY_REDIS_URL": redis_url,
                "ONESTOP_GATEWAY_KEY_DIR": str(self.data_dir / "gateway-keys"),
                "ONESTOP_GATEWAY_LOG_LEVEL": self.settings.log_level,
                "ONESTOP_GATEWAY_WORKERS": str(self.settings.gateway_workers),
                # The workers share one port: each writes its metrics here, the supervising
                # process answers a scrape with the sum (onestop/metrics.py).
                MULTIPROCESS_DIR_ENV: str(self.data_dir / "metrics" / "gateway"),
                "ONESTOP_GATEWAY_METRICS_PORT": str(gateway_metrics_port),
                **_tls_environment(
                    "ONESTOP_GATEWAY_ADJUDICATOR_TLS_", TlsFiles.of(tls_dir, "gateway")
                ),
                # Several adjudicators are one target of addresses; the certificate names
                # the machine.
                "ONESTOP_GATEWAY_ADJUDICATOR_TLS_SERVER_NAME": "localhost",
                **_redis_user_environment("ONESTOP_GATEWAY_", users_dir, GATEWAY),
            },
            self.data_dir / "gateway.log",
        )
        gateway.start()
        self.children.append(gateway)
        gateway_url = f"http://{self.settings.host}:{gateway_port}"
        wait_http_healthy(gateway_url, self.settings.ready_timeout_seconds, gateway)

        addresses: dict[str, object] = {
            "data_dir": str(self.data_dir),
            "gateway": gateway_url,
            "redis_url": redis_url,
            # The operator's login (this file is the owner's only, like agency.key).
            "redis_admin_url": admin.url(redis_url) if admin else redis_url,
            "redis_users": str(users_dir) if users_dir else None,
            "tls_dir": str(tls_dir),
            "adjudicator": target,
            "metrics": {
                "gateway": f"http://{self.settings.host}:{gateway_metrics_port}/metrics",
                "adjudicators": [f"http://{address}/metrics" for address in scrape_targets],
            },
            "agency_key": str(self.data_dir / "agency.key"),
            "pids": {
                "serve": os.getpid(),
                "gateway": gateway.process.pid if gateway.process else None,
                "adjudicator": adjudicators[0].process.pid if adjudicators[0].process else None,
                "adjudicators": [
                    child.process.pid if child.process else None for child in adjudicators
                ],
                "redis": self._redis_pids()[0],
                "redis_nodes": self._redis_pids(),
            },
        }
        (self.data_dir / "serve.json").write_text(json.dumps(addresses, indent=2))
        return addresses

    def supervise(self) -> None:
        """Restart children that die, until :meth:`request_stop`."""
        while not self._stopping:
            if self.redis is not None:
                try:
                    if self.redis.restart_if_exited(self.settings.ready_timeout_seconds):
                        log.warning("redis exited; started it again")
                except RedisStartError as error:
                    log.error("redis did not start again: %s", error)
            for child in self.children:
                if child.exited() and not self._stopping:
                    log.warning("%s exited; starting it again", child.name)
                    time.sleep(RESTART_PAUSE_SECONDS)
                    child.start()
            time.sleep(0.2)

    def _redis_pids(self) -> list[int | None]:
        if self.redis is None:
            return [None]
        return [node.process.pid if node.process else None for node in self.redis.nodes]

    def request_stop(self, *_: object) -> None:
        """Ask :meth:`supervise` to return (a signal handler)."""
        self._stopping = True

    def stop(self) -> None:
        """Stop the services, then Redis, then release the directory."""
        self._stopping = True
        if self._lock is None:
            return  # never started: the directory is someone else's
        for child in reversed(self.children):
            child.stop(timeout=30)
        if self.redis is not None:
            self.redis.stop()
        (self.data_dir / "serve.json").unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()


def run(settings: ServeSettings) -> int:
    """Serve until SIGTERM or SIGINT; the exit status."""
    supervisor = Supervisor(settings)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    try:
        addresses = supervisor.start()
        print(
            f"onestop serving {addresses['gateway']} from {addresses['data_dir']} "
            f"(adjudicator {addresses['adjudicator']}, redis {addresses['redis_url']}); "
            f"agency key {addresses['agency_key']}",
            flush=True,
        )
        supervisor.supervise()
    except AlreadyServing as error:
        print(f"onestop serve: {error}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    return 0
