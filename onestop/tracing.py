"""Traces of a settlement across gateway, adjudicator and Redis, when an endpoint is set.

Off by default, and then free: nothing is timed twice, no context travels. A process turns it
on with :func:`configure` when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and the ``otel`` extra is installed (the
OpenTelemetry SDK and its OTLP/HTTP exporter); the other ``OTEL_*`` variables (headers,
sampling, batch delay) apply as the SDK reads them. Then:

- the gateway opens a span per HTTP request (``POST /v1/settlements``, by route template),
- its calls to the adjudicator carry the W3C trace context in their gRPC metadata,
- the adjudicator continues the trace with a span per call (``Settle``), and every stage
  timed for the metrics (:func:`onestop.metrics.stage`: mapping, adjudication, signing;
  snapshot, compute, commit, the Redis scripts) is a span of its own.

No member, visit or settlement id is put on a span: what a trace shows is timing and route.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace

log = logging.getLogger("onestop.tracing")

TRACER = trace.get_tracer("onestop")
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_enabled = False


def enabled() -> bool:
    """Whether this process sends traces."""
    return _enabled


def configure(service_name: str) -> Any | None:
    """Send this process's spans over OTLP/HTTP when an endpoint is configured.

    Args:
        service_name: the ``service.name`` of its spans (``onestop-gateway``...).

    Returns:
        The tracer provider to shut down at the process's stop (:func:`shutdown`), or ``None``
        when no endpoint is set or the SDK is not installed (said once in the log).
    """
    global _enabled
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "an OTLP endpoint is set but the OpenTelemetry SDK is not installed: no traces "
            "(install onestop[otel])"
        )
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _enabled = True
    return provider


def shutdown(provider: Any | None) -> None:
    """Send what is left and stop (a provider :func:`configure` returned, or ``None``)."""
    global _enabled
    if provider is not None:
        provider.shutdown()
        _enabled = False


@contextmanager
def span(name: str, *, server: bool = False, parent: Any = None) -> Iterator[Any]:
    """A span around a block when tracing is on (else nothing); the span, or ``None``."""
    if not _enabled:
        yield None
        return
    kind = trace.SpanKind.SERVER if server else trace.SpanKind.INTERNAL
    with TRACER.start_as_current_span(name, context=parent, kind=kind) as current:
        yield current


def outgoing_metadata() -> list[tuple[str, str]]:
    """The current trace context as gRPC metadata (``traceparent``...), for a call out."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def incoming_context(metadata: Sequence[tuple[str, Any]] | None) -> context.Context:
    """The trace context a call's metadata carries (an empty one when none)."""
    carrier: Mapping[str, str] = {
        str(key): str(value) for key, value in (metadata or ()) if isinstance(value, str)
    }
    return propagate.extract(carrier)
