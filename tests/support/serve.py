"""``onestop serve`` as a real child process, and what its data directory holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from onestop.domain.reconciliation import JournalEntry
from onestop.storage.layout import GROUPS, journal_key
from onestop.storage.records import decode_journal_entry
from onestop.tls import TlsFiles, aio_channel
from tests.support.redis import sync_client


@dataclass
class Served:
    """A running ``onestop serve`` and the addresses it wrote."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    addresses: dict[str, Any]

    @property
    def adjudicator(self) -> str:
        return str(self.addresses["adjudicator"])

    @property
    def redis_url(self) -> str:
        """The operator's URL (with the admin login of the embedded Redis)."""
        return str(self.addresses["redis_admin_url"])

    @property
    def operator_tls(self) -> TlsFiles:
        """The operator's certificate for the adjudicator's mutual TLS."""
        return TlsFiles.of(Path(self.addresses["tls_dir"]), "operator")

    def adjudicator_channel(self) -> grpc.aio.Channel:
        """A channel to the (first) adjudicator over mutual TLS, as the operator."""
        return aio_channel(self.adjudicator.split(",")[0], self.operator_tls)

    def pid(self, name: str) -> int:
        return int(self.addresses["pids"][name])

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


_STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_supervisor_outlives_its_test() -> Iterator[None]:
    """Whatever a test started with :func:`start_serve` is stopped, pass or fail."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_serve(
    data_dir: Path, timeout: float = 60, *, stop_after_test: bool = True, **environment: str
) -> Served:
    """Start ``onestop serve --data-dir DIR`` and wait until it reports its addresses.

    It is stopped after the test unless ``stop_after_test`` is false (a fixture of wider scope
    stops it itself). Its gateway takes a free port (``ONESTOP_PORT=0``) unless the test
    names one: a server already on the default port (a developer's own ``onestop serve``)
    must not answer in its place.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "onestop", "serve", "--data-dir", str(data_dir)],
        env={**os.environ, "ONESTOP_PORT": "0", **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if stop_after_test:
        _STARTED.append(process)
    deadline = time.monotonic() + timeout
    addresses_file = data_dir / "serve.json"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"onestop serve exited with {process.returncode}:\n{output}")
        if addresses_file.exists():
            try:
                addresses = json.loads(addresses_file.read_text())
            except json.JSONDecodeError:
                addresses = {}
            if addresses.get("pids", {}).get("serve") == process.pid:
                return Served(process, data_dir, addresses)
        time.sleep(0.1)
    process.kill()
    raise TimeoutError("onestop serve did not start")


def journal_entries(redis_url: str) -> list[JournalEntry]:
    """Every journal entry of every slot group."""
    client = sync_client(redis_url)
    try:
        entries: list[JournalEntry] = []
        for group in range(GROUPS):
            stream = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(journal_key(group)))
            entries.extend(decode_journal_entry(fields) for _, fields in stream)
        return entries
    finally:
        client.close()
