"""The adjudicator's metrics: every call counted and timed, served on a port of their own.

A gRPC server interceptor counts and times each unary call by method and by the contract
code it was refused with (:func:`adjudicator.servicer._answer` leaves the code in
:data:`REFUSAL_CODE`, which the interceptor reads in the same context). The exposition is
served over HTTP on ``METRICS_PORT`` (:class:`onestop.metrics.MetricsServer`): the adjudicator
speaks gRPC only, and each of its processes is its own scrape target.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import grpc

from onestop import metrics, tracing

REFUSAL_CODE: ContextVar[str] = ContextVar("onestop_refusal_code", default="")
"""The contract code the current call was refused with (empty: answered)."""

if TYPE_CHECKING:  # generic in the type stubs only
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]


class CallMetrics(grpc.aio.ServerInterceptor):
    """Count and time every unary call (the streaming ones are uploads and exports).

    With tracing on (:mod:`onestop.tracing`), each call is a span continuing the caller's trace.
    """

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        """Wrap the unary handler of the method called."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = str(handler_call_details.method).rsplit("/", 1)[-1]
        inner: Any = handler.unary_unary  # an async function under grpc.aio

        async def counted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            REFUSAL_CODE.set("")
            started = time.perf_counter()
            parent = None
            if tracing.enabled():
                parent = tracing.incoming_context(handler_call_details.invocation_metadata)
            try:
                with tracing.span(method, server=True, parent=parent):
                    return await inner(request, context)
            finally:
                metrics.GRPC_REQUESTS.labels(method, REFUSAL_CODE.get()).inc()
                metrics.GRPC_SECONDS.labels(method).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            counted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
