"""The FastAPI application: routers, body guard, error mapping, an honest OpenAPI document.

The routes live in :mod:`gateway.routers`, one module per feature.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import schemas
from gateway.adjudicator_client import AdjudicatorClient
from gateway.api_docs import install_api_docs
from gateway.auth import Authenticator
from gateway.console import routes as console
from gateway.console.sessions import ConsoleSettings
from gateway.errors import (
    PROBLEM_JSON,
    domain_error_handler,
    http_error_handler,
    internal_error_handler,
    validation_error_handler,
)
from gateway.limits import RequestLimiter, UnknownMemberGuard, UploadSlots
from gateway.middleware import Authentication, BodyLimit, RequestMetrics, is_signed
from gateway.receipts import ReceiptSigner
from gateway.reference import GatewayReference
from gateway.routers import FEATURES
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from onestop import tracing
from onestop.domain.bill import VisitRequest
from onestop.domain.errors import DomainError
from onestop.redis_client import connect
from onestop.reference_versions import VersionsCache
from onestop.storage.migrate import require_current_layout

log = logging.getLogger("onestop.gateway")

DESCRIPTION = (
    "Hospitals' billing systems and pharmacies' card readers settle here; the insurance "
    "agency loads policies, the catalog, clients, mappings and members. Every request but "
    "`GET /health` is signed: `X-Client-Id`, `X-Timestamp` (unix seconds), `X-Nonce` (16-64 "
    "of `[A-Za-z0-9_-]`, never reused) and `X-Signature`, the standard base64 Ed25519 "
    "signature of `METHOD\\nPATH_AND_QUERY\\nX-Timestamp\\nX-Nonce\\n<lowercase hex SHA-256 "
    "of the body>` (`GET /v1/keys` needs none: anyone may verify a receipt). Money is "
    "integer fen; ratios are decimal strings; dates are `YYYY-MM-DD`. "
    "Refusals are `application/problem+json`, list the codes each operation can answer, and "
    "change nothing."
)


def create_app(
    settings: GatewaySettings,
    *,
    make_gateway: Callable[[GatewaySettings], Awaitable[Gateway]] | None = None,
) -> FastAPI:
    """The gateway application for ``settings``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before the adjudicator's channel is made: its calls then carry the trace context.
        traces = tracing.configure("onestop-gateway")
        gateway = await (make_gateway or build_gateway)(settings)
        app.state.gateway = gateway
        # Not waited for: the gateway answers at once (health, keys) while it reads them.
        gateway.start_warming()
        try:
            yield
        finally:
            gateway.stop_warming()
            await gateway.refusals.flush()
            await gateway.adjudicator.close()
            await gateway.versions.close()
            await gateway.redis.aclose()
            tracing.shutdown(traces)

    app = FastAPI(
        title="onestop",
        version="1",
        summary="One-stop settlement for public medical insurance at the hospital window.",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # One owner of spans (onestop.tracing, from the outermost middleware, with the route
        # template and no ids); FastAPI's own would open a second span per request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    # Starlette runs the middleware added last first: the headers are checked and the client
    # claimed before the body guard lets any of the body through.
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(Authentication, settings=settings)
    app.add_middleware(RequestMetrics)
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(ValidationError, validation_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    for feature in FEATURES:
        app.include_router(feature.router)
    console.install(app)
    install_api_docs(app)
    _document(app)
    return app


SELF_READ_BODIES: tuple[type[BaseModel], ...] = (VisitRequest,)
"""Request bodies a route parses itself (:data:`gateway.dependencies.VisitBodyDep`)."""

SIGNATURE_HEADERS = {
    "ClientId": ("X-Client-Id", "the client id"),
    "Timestamp": ("X-Timestamp", "unix seconds, within 300 s of the server's clock"),
    "Nonce": ("X-Nonce", "16 to 64 characters of [A-Za-z0-9_-], never reused"),
    "Signature": ("X-Signature", "base64 Ed25519 signature of the signing string"),
}


def _document(app: FastAPI) -> None:
    """Make the OpenAPI document say what the gateway sends.

    Refusals are sent as ``application/problem+json`` (FastAPI would list them as JSON), and
    FastAPI's own validation-error schema, which is never sent, is left out; the four
    signature headers are the security requirement of every operation but ``/health``.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            name: {"type": "apiKey", "in": "header", "name": header, "description": text}
            for name, (header, text) in SIGNATURE_HEADERS.items()
        }
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        # Bodies the routes read themselves (the bill, in one pass from the raw bytes): their
        # models' schemas, which FastAPI only adds for the bodies it reads.
        _, definitions = models_json_schema(
            [(model, "validation") for model in SELF_READ_BODIES],
            ref_template="#/components/schemas/{model}",
        )
        for name, definition in definitions.get("$defs", {}).items():
            components.setdefault("schemas", {}).setdefault(name, definition)
        _restore_examples(schema)
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if is_signed(path):
                    operation["security"] = [{name: [] for name in SIGNATURE_HEADERS}]
                responses = operation.get("responses", {})
                if "422" in responses and "x-onestop-codes" not in responses["422"]:
                    # FastAPI's own validation answer for a route that cannot fail it.
                    del responses["422"]
                for status, response in responses.items():
                    content = response.get("content", {})
                    if int(status) >= 400 and content:
                        # FastAPI files the model under the route's own media type.
                        (media,) = content.values()
                        response["content"] = {PROBLEM_JSON: media}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _restore_examples(schema: dict[str, Any]) -> None:
    """Put back the ``null`` values FastAPI drops from examples when it encodes the document.

    An example with a required field left out (``"annual_cap": null`` dropped) would be
    refused when sent as it is shown; the examples are shown exactly as written instead.
    """
    routes = [route for feature in FEATURES for route in feature.router.routes]
    for route in routes:
        if not isinstance(route, APIRoute) or not route.openapi_extra:
            continue
        content = route.openapi_extra.get("requestBody", {}).get("content", {})
        for method in route.methods or ():
            operation = schema["paths"][route.path_format].get(method.lower(), {})
            shown = operation.get("requestBody", {}).get("content", {})
            for media, written in content.items():
                if "example" in written and media in shown:
                    shown[media]["example"] = written["example"]
    components = schema.get("components", {}).get("schemas", {})
    for model in vars(schemas).values():
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        extra = model.model_config.get("json_schema_extra")
        if isinstance(extra, dict) and "example" in extra and model.__name__ in components:
            components[model.__name__]["example"] = extra["example"]


def app_from_environment() -> FastAPI:
    """The application for ``ONESTOP_GATEWAY_*`` (what each uvicorn worker process builds)."""
    return create_app(GatewaySettings())


async def build_gateway(settings: GatewaySettings) -> Gateway:
    """Connect to Redis and the adjudicator; load or create the receipt keys.

    Raises:
        OutdatedLayout: Redis holds data of an older layout (``onestop migrate`` first).
    """
    redis = await connect(
        settings.redis_url,
        timeout_seconds=settings.redis_timeout_seconds,
        wait_seconds=settings.redis_wait_seconds,
        login=settings.redis_login(),
    )
    try:
        await require_current_layout(redis)
    except BaseException:
        await redis.aclose()
        raise
    adjudicator = AdjudicatorClient(
        settings.adjudicator,
        settings.adjudicator_deadline_seconds,
        settings.adjudicator_tls(),
        settings.adjudicator_tls_server_name,
    )
    reference = GatewayReference(adjudicator)
    versions = VersionsCache(redis, settings.reference_max_age_seconds)
    versions.listen(settings.redis_url, settings.redis_login())
    limiter = RequestLimiter(
        per_client_rate=settings.rate_per_client,
        per_client_burst=settings.burst_per_client,
        refusals_rate=settings.refusals_per_address,
        refusals_burst=10 * settings.refusals_per_address,
    )
    auth = Authenticator(
        redis,
        reference,
        versions,
        clock_skew_seconds=settings.clock_skew_seconds,
        nonce_ttl_seconds=settings.nonce_ttl_seconds,
        limiter=limiter,
    )
    return Gateway(
        adjudicator,
        reference,
        auth,
        ReceiptSigner(settings.key_dir, settings.signing_key_id),
        redis,
        UploadSlots(settings.uploads_in_flight, per_client=1),
        UnknownMemberGuard(
            redis, settings.unknown_members_limit, settings.unknown_members_window_seconds
        ),
        versions,
        settings.export_grace_seconds,
        national_profile=settings.national_profile,
        metrics_networks=tuple(settings.metrics_networks),
        console_settings=ConsoleSettings(
            login_seconds=settings.console_login_seconds,
            idle_seconds=settings.console_idle_seconds,
            max_age_seconds=settings.console_max_age_seconds,
            origin=settings.console_origin,
        ),
        statement_font=settings.statement_font,
    )
