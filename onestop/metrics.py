"""Every metric onestop exports, in one place (Prometheus format, ``/metrics``).

The gateway serves them at ``GET /metrics``; each adjudicator process on its own port
(``METRICS_PORT``). Label values are bounded: route templates, contract error codes, gRPC
methods, visit types, funds, stage names and registered client ids, never a member, visit or
settlement id.

Several gateway worker processes share one port: with ``PROMETHEUS_MULTIPROC_DIR`` set (by
``onestop serve``, emptied before the workers start) each writes its values to files there and
any worker answers a scrape with the sum of all (:func:`exposition`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector

from onestop import tracing

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where worker processes sharing a port write their values (prometheus_client's variable)."""

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The exposition's media type."""

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STAGE = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

# -- the gateway --------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "onestop_http_requests",
    "HTTP requests answered, by route template, method, outcome and refusal code.",
    ["route", "method", "outcome", "code"],
)
"""``outcome``: ``ok`` (2xx, 3xx), ``refused`` (4xx), ``error`` (5xx); ``code``: the contract's
error code of a refusal or an error, empty otherwise."""

HTTP_SECONDS = Histogram(
    "onestop_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route"],
    buckets=_LATENCY,
)

STAGE_SECONDS = Histogram(
    "onestop_stage_duration_seconds",
    "Time spent in one stage of a settlement, by service and stage.",
    ["service", "stage"],
    buckets=_STAGE,
)
"""Gateway stages: ``validation``, ``mapping``, ``adjudication`` (the call), ``signing``;
adjudicator stages: ``snapshot``, ``compute`` (controls and engine), ``commit``,
``replication``."""

ADJUDICATOR_CALL_ERRORS = Counter(
    "onestop_adjudicator_call_errors",
    "Calls from the gateway to the adjudicator that failed in transport, by gRPC status.",
    ["status"],
)

# -- the adjudicator ----------------------------------------------------------------------

GRPC_REQUESTS = Counter(
    "onestop_grpc_requests",
    "gRPC calls answered by the adjudicator, by method and contract code (empty: OK).",
    ["method", "code"],
)

GRPC_SECONDS = Histogram(
    "onestop_grpc_request_duration_seconds",
    "Time to answer a gRPC call, by method.",
    ["method"],
    buckets=_LATENCY,
)

SETTLEMENTS = Counter(
    "onestop_settlements",
    "Settlements committed, replayed and reversed, by client, visit type and kind.",
    ["client", "visit_type", "kind"],
)
"""``kind``: ``settled``, ``replayed`` (an identical request answered again), ``reversed``."""

FUNDS_FEN = Counter(
    "onestop_funds_fen",
    "Fen paid by each payer on settlements committed (reversals subtract in "
    "onestop_funds_reversed_fen), by fund, visit type and client.",
    ["fund", "visit_type", "client"],
)
"""``fund``: basic_fund, supplementary, assistance, personal_account, cash, hospital_part."""

FUNDS_REVERSED_FEN = Counter(
    "onestop_funds_reversed_fen",
    "Fen given back by reversals, by fund, visit type and client.",
    ["fund", "visit_type", "client"],
)

COMMIT_CONFLICTS = Counter(
    "onestop_commit_conflicts",
    "Commits that found the member's state moved (or the visit settled) and computed again.",
    ["reason"],
)

COMMIT_ATTEMPTS = Histogram(
    "onestop_commit_attempts",
    "Attempts a settlement took to commit.",
    buckets=(1, 2, 3, 5, 10, 25, 50, 100, 200),
)

REDIS_ERRORS = Counter(
    "onestop_redis_errors",
    "Redis calls that failed (connection lost, timeout, cluster moved), by error class.",
    ["error"],
)

REPLICATION_WAIT_SECONDS = Histogram(
    "onestop_replication_wait_seconds",
    "Time a write waited for the replicas required to hold it.",
    buckets=_STAGE,
)

REPLICATION_TIMEOUTS = Counter(
    "onestop_replication_timeouts",
    "Writes the replicas required did not confirm in time (answered 503).",
)

RECONCILIATIONS = Counter(
    "onestop_reconciliations",
    "Reconciliations answered, by result (balanced, unbalanced) and whether the day was open.",
    ["result", "provisional"],
)

REVIEWS = Counter(
    "onestop_reviews",
    "Settlements the controls across visits flagged, by control code and action.",
    ["control", "action"],
)

ARCHIVE_RUNS = Counter(
    "onestop_archive_runs",
    "Runs of the scheduled archive job, by outcome (done, busy, failed).",
    ["outcome"],
)

ARCHIVE_LAST_SUCCESS = Gauge(
    "onestop_archive_last_success_timestamp_seconds",
    "When the scheduled archive job last completed (Unix time; 0: never in this process).",
    multiprocess_mode="max",
)


def exposition() -> bytes:
    """The current values in the Prometheus text format.

    With :data:`MULTIPROCESS_DIR_ENV` set, the values of every process writing there, summed
    (a fresh registry per scrape, as the client library requires); else this process's.
    """
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class MetricsServer:
    """Prometheus scrapes answered on ``host:port`` (HTTP ``/metrics``, a thread of this process).

    With :data:`MULTIPROCESS_DIR_ENV` set, every process's values are summed at each scrape.
    """

    def __init__(self, host: str, port: int) -> None:
        registry = REGISTRY
        if os.environ.get(MULTIPROCESS_DIR_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port: int = int(self._server.server_port)

    def stop(self) -> None:
        """Stop answering scrapes."""
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def stage(service: str, name: str) -> Iterator[None]:
    """Time one stage of a settlement into :data:`STAGE_SECONDS` (and a span, when tracing)."""
    started = time.perf_counter()
    try:
        with tracing.span(f"{service}.{name}"):
            yield
    finally:
        STAGE_SECONDS.labels(service, name).observe(time.perf_counter() - started)
