"""``onestop probe``: whether this container's service is up, for Docker ``HEALTHCHECK``.

A gateway is up when ``GET /health`` answers 200; an adjudicator when its gRPC health service
answers SERVING. Both mean "can settle now": Redis answers too. Without options the service
is found from the container's own ``ONESTOP_GATEWAY_*`` or ``ONESTOP_ADJUDICATOR_*``; an
adjudicator that requires mutual TLS is asked with its own certificate (it is also a client
certificate), or with the operator's from ``--tls-dir``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from onestop.tls import TlsFiles, channel


def _local_tls() -> TlsFiles | None:
    files = [
        os.environ.get(f"ONESTOP_ADJUDICATOR_TLS_{name}_FILE") for name in ("CA", "CERT", "KEY")
    ]
    ca, cert, key = files
    return TlsFiles(Path(ca), Path(cert), Path(key)) if ca and cert and key else None


def _local_target() -> tuple[str | None, str | None]:
    if "ONESTOP_GATEWAY_ADJUDICATOR" in os.environ:
        return f"http://127.0.0.1:{os.environ.get('ONESTOP_GATEWAY_PORT', '8080')}", None
    if "ONESTOP_ADJUDICATOR_REDIS_URL" in os.environ:
        return None, f"127.0.0.1:{os.environ.get('ONESTOP_ADJUDICATOR_PORT', '50051')}"
    return None, None


def http_up(base_url: str, timeout: float) -> bool:
    """Whether the gateway at ``base_url`` answers ``GET /health`` with 200."""
    try:
        return httpx.get(f"{base_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def grpc_up(target: str, timeout: float, tls: TlsFiles | None = None, service: str = "") -> bool:
    """Whether the adjudicator at ``target`` reports ``service`` SERVING (over ``tls``).

    ``service`` ``""`` is readiness (Redis answers too); ``onestop.liveness`` is liveness
    (the process serves, whatever Redis does).
    """
    with channel(target, tls) as connection:
        stub: Any = health_pb2_grpc.HealthStub(connection)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def probe(
    http: str | None,
    target: str | None,
    timeout: float,
    tls_dir: Path | None = None,
    service: str = "",
) -> int:
    """0 when the named (or this container's) service is up, 1 when not, 2 when unknown."""
    tls = TlsFiles.of(tls_dir, "operator") if tls_dir is not None else _local_tls()
    if http is None and target is None:
        http, target = _local_target()
    if http is None and target is None:
        print("onestop probe: give --http or --grpc (no ONESTOP_* service here)", file=sys.stderr)
        return 2
    up = http_up(http, timeout) if http is not None else grpc_up(str(target), timeout, tls, service)
    print("up" if up else "down")
    return 0 if up else 1
