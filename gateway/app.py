"""The FastAPI application: routes, the request-size guard, and the one error mapping."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path as FilePath
from typing import IO, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import schemas
from gateway.adjudicator_client import AdjudicatorClient
from gateway.auth import Authenticator, body_digest, require_kind
from gateway.errors import (
    PROBLEM_JSON,
    FastJSONResponse,
    domain_error_handler,
    http_error_handler,
    internal_error_handler,
    problem_response,
    validation_error_handler,
)
from gateway.receipts import ReceiptSigner
from gateway.reference import GatewayReference
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from onestop.clock import SHANGHAI, now_ms
from onestop.domain.bill import VisitRequest
from onestop.domain.clients import Client
from onestop.domain.errors import DomainError
from onestop.domain.policy import Policy, policy_to_document
from onestop.domain.reconciliation import DayFigures, reconcile
from onestop.domain.types import ClientKind
from onestop.errors import TooLarge, Unavailable
from onestop.exports import write_export, zip_export
from onestop.redis_client import REDIS_ERRORS, connect
from onestop.storage.migrate import require_current_layout

log = logging.getLogger("onestop.gateway")

HOSPITAL, PHARMACY, AGENCY = ClientKind.HOSPITAL, ClientKind.PHARMACY, ClientKind.AGENCY
UPLOAD_CHUNK = 256 * 1024

_PROBLEMS = {
    status: {"model": schemas.Problem, "content": {PROBLEM_JSON: {}}, "description": text}
    for status, text in {
        400: "MALFORMED: not JSON, CSV or JSON Lines of the expected shape",
        401: "UNAUTHENTICATED: missing or bad signature headers, stale timestamp, reused nonce",
        403: "FORBIDDEN or MEMBER_NOT_ELIGIBLE",
        404: "NOT_FOUND, UNKNOWN_MEMBER or NO_POLICY",
        409: "VISIT_ALREADY_SETTLED, OVERLAPPING_STAY or RISKY_MAPPING_CHANGE",
        413: "TOO_LARGE: over 5,000 lines or over the size limit",
        422: "INVALID, UNMAPPED_CODES, AMOUNT_MISMATCH, IMPLAUSIBLE_QUANTITY, DATE_OUT_OF_VISIT",
        503: "UNAVAILABLE: nothing was settled; retry the same request",
    }.items()
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: _PROBLEMS[status] for status in (400, 401, *statuses, 503)}


class BodyLimit:
    """Refuse bodies over the limit with 413 before they are read into memory."""

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings

    def _limit(self, path: str) -> int:
        if path == "/v1/admin/members":
            return self.settings.max_members_bytes
        if path.startswith("/v1/admin/") and not path.startswith("/v1/admin/policies"):
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        too_large = TooLarge(f"the body may not exceed {limit} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await problem_response(too_large)(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large
            return message

        await self.app(scope, counted, send)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _caller(request: Request) -> Client:
    """The authenticated client (the body is read once, then hashed and checked)."""
    body = await request.body()
    return await _gateway(request).auth.authenticate(request, body_digest(body))


Caller = Annotated[Client, Depends(_caller)]
SettlementIdPath = Annotated[str, Path(min_length=1, max_length=64)]


def _provider(client: Client) -> Client:
    require_kind(client, HOSPITAL, PHARMACY)
    return client


def _agency(client: Client) -> Client:
    require_kind(client, AGENCY)
    return client


def create_app(
    settings: GatewaySettings,
    *,
    make_gateway: Callable[[GatewaySettings], Awaitable[Gateway]] | None = None,
) -> FastAPI:
    """The gateway application for ``settings``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = await (make_gateway or build_gateway)(settings)
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.adjudicator.close()
            await gateway.redis.aclose()

    app = FastAPI(
        title="onestop",
        version="1",
        summary="One-stop settlement for public medical insurance at the hospital window.",
        description=(
            "Hospitals' billing systems and pharmacies' card readers settle here; the insurance "
            "agency loads policies, the catalog, clients, mappings and members. Every request "
            "but `GET /health` is signed: `X-Client-Id`, `X-Timestamp` (unix seconds), "
            "`X-Nonce` (16-64 of `[A-Za-z0-9_-]`, never reused) and `X-Signature`, the "
            "standard base64 Ed25519 signature of `METHOD\\nPATH_AND_QUERY\\nX-Timestamp\\n"
            "X-Nonce\\n<lowercase hex SHA-256 of the body>`. Money is integer fen; ratios are "
            "decimal strings; dates are `YYYY-MM-DD`. Refusals are `application/problem+json` "
            "and change nothing."
        ),
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, settings=settings)
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(ValidationError, validation_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)

    @app.get(
        "/health",
        tags=["operations"],
        response_model=schemas.Health,
        responses={503: _PROBLEMS[503]},
    )
    async def health(
        request: Request,
        scope: Annotated[
            Literal["settle", "process"],
            Query(
                description="settle (default): the adjudicator and Redis answer too; process: "
                "this process serves requests (a liveness probe: a Redis outage must not "
                "restart the gateways)"
            ),
        ] = "settle",
    ) -> Any:
        """200 once the gateway can settle (the adjudicator and Redis answer)."""
        if scope == "process":
            return {"status": "ok"}
        gateway = _gateway(request)
        try:
            redis_ok = bool(await gateway.redis.ping())
        except REDIS_ERRORS:
            redis_ok = False
        if redis_ok and await gateway.adjudicator.serving():
            return {"status": "ok"}
        return problem_response(Unavailable("the adjudicator or Redis is down"))

    @app.get("/v1/keys", tags=["receipts"], response_model=schemas.Keys, responses=_problems())
    async def receipt_keys(request: Request, caller: Caller) -> Any:
        """Every key that ever signed a receipt, to verify any receipt."""
        return {"keys": _gateway(request).signer.published()}

    settle_body = {
        "requestBody": {"content": {"application/json": {"example": schemas.SETTLE_EXAMPLE}}}
    }

    @app.post(
        "/v1/settlements/preview",
        tags=["settlements"],
        response_model=schemas.SettlementResult,
        responses=_problems(403, 404, 413, 422),
        openapi_extra=settle_body,
    )
    async def preview(request: Request, visit: VisitRequest, caller: Caller) -> Any:
        """预结算: the settlement as it would be; nothing is committed."""
        gateway = _gateway(request)
        settlement = await gateway.settle(
            _provider(caller), visit, await request.body(), preview=True
        )
        return FastJSONResponse(gateway.receipt(settlement))

    @app.post(
        "/v1/settlements",
        tags=["settlements"],
        status_code=201,
        response_model=schemas.SettlementResult,
        responses={
            200: {
                "model": schemas.SettlementResult,
                "description": "the identical request again: the original "
                "settlement, replayed: true",
            },
            **_problems(403, 404, 409, 413, 422),
        },
        openapi_extra=settle_body,
    )
    async def settle(request: Request, visit: VisitRequest, caller: Caller) -> Any:
        """结算: settle and commit, at most once per (client, visit)."""
        gateway = _gateway(request)
        settlement = await gateway.settle(
            _provider(caller), visit, await request.body(), preview=False
        )
        return FastJSONResponse(
            gateway.receipt(settlement), status_code=200 if settlement.replayed else 201
        )

    @app.get(
        "/v1/settlements/{settlement_id}",
        tags=["settlements"],
        response_model=schemas.SettlementResult,
        responses=_problems(404),
    )
    async def get_settlement(
        request: Request, settlement_id: SettlementIdPath, caller: Caller
    ) -> Any:
        """One settlement; another client's answers 404."""
        gateway = _gateway(request)
        settlement = await gateway.adjudicator.get(settlement_id, gateway.owner_filter(caller))
        return FastJSONResponse(gateway.receipt(settlement))

    @app.post(
        "/v1/settlements/{settlement_id}/reversal",
        tags=["settlements"],
        response_model=schemas.SettlementResult,
        responses=_problems(404),
    )
    async def reverse(request: Request, settlement_id: SettlementIdPath, caller: Caller) -> Any:
        """撤销: undo exactly what the settlement added; asking again answers the same."""
        gateway = _gateway(request)
        settlement = await gateway.adjudicator.reverse(settlement_id, gateway.owner_filter(caller))
        return FastJSONResponse(gateway.receipt(settlement))

    @app.get(
        "/v1/members/{member_id}/eligibility",
        tags=["members"],
        response_model=schemas.EligibilityResult,
        responses=_problems(404),
    )
    async def eligibility(
        request: Request,
        member_id: Annotated[str, Path(min_length=1, max_length=64)],
        caller: Caller,
        day: Annotated[date | None, Query(alias="date", description="YYYY-MM-DD (today)")] = None,
    ) -> Any:
        """待遇检查: the member's entitlement on a day, identity masked."""
        on = day or _today()
        return JSONResponse(await _gateway(request).eligibility(member_id, on))

    @app.post(
        "/v1/reconciliation",
        tags=["reconciliation"],
        response_model=schemas.ReconciliationResult,
        responses=_problems(403),
    )
    async def reconciliation(
        request: Request, figures: schemas.ReconciliationRequest, caller: Caller
    ) -> Any:
        """对账: the client's own day against the gateway's (with ids: one by one)."""
        client = _provider(caller)
        gateway_day, gateway_ids = await _gateway(request).adjudicator.day_figures(
            client.client_id, figures.date, with_settlement_ids=figures.settlement_ids is not None
        )
        theirs = DayFigures(figures.settlements, figures.reversals, figures.amounts.model_dump())
        return reconcile(gateway_day, theirs, gateway_ids, figures.settlement_ids)

    @app.get(
        "/v1/admin/exports/{day}",
        tags=["admin"],
        response_class=FileResponse,
        responses={
            200: {
                "description": "a zip of settlements.csv, summary.csv and manifest.json",
                "content": {"application/zip": {"example": "(binary zip)"}},
            },
            **_problems(403),
        },
    )
    async def export(request: Request, day: date, caller: Caller) -> Any:
        """The day's signed files for the agency, as one zip."""
        _agency(caller)
        gateway = _gateway(request)
        scratch = FilePath(tempfile.mkdtemp(prefix="onestop-export-"))
        try:
            await write_export(
                gateway.adjudicator.read_journal(day),
                day,
                scratch / "files",
                gateway.signer.export_signer(),
            )
            zip_export(scratch / "files", scratch / "export.zip")
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return FileResponse(
            scratch / "export.zip",
            media_type="application/zip",
            filename=f"onestop-{day.isoformat()}.zip",
            background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
        )

    # -- the agency -----------------------------------------------------------------------------

    @app.put(
        "/v1/admin/clients/{client_id}",
        tags=["admin"],
        response_model=schemas.ClientOut,
        responses=_problems(403, 422),
    )
    async def put_client(
        request: Request,
        client_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")],
        registration: schemas.ClientRegistration,
        caller: Caller,
    ) -> Any:
        """Register or update a hospital, pharmacy or agency client and its public key."""
        _agency(caller)
        client = Client.model_validate({"client_id": client_id, **registration.model_dump()})
        stored = await _gateway(request).adjudicator.put_client(client)
        return stored.model_dump(mode="json")

    @app.get(
        "/v1/admin/clients",
        tags=["admin"],
        response_model=list[schemas.ClientOut],
        responses=_problems(403),
    )
    async def list_clients(request: Request, caller: Caller) -> Any:
        """Every registered client."""
        _agency(caller)
        listed, _ = await _gateway(request).adjudicator.list_clients()
        return [client.model_dump(mode="json") for client in listed]

    @app.put(
        "/v1/admin/policies",
        tags=["admin"],
        response_model=schemas.PolicyLoaded,
        responses=_problems(403, 422),
        openapi_extra={
            "requestBody": {"content": {"application/json": {"example": schemas.POLICY_EXAMPLE}}}
        },
    )
    async def put_policy(request: Request, policy: Policy, caller: Caller) -> Any:
        """Store the policy of one region, scheme and year (unknown keys are refused)."""
        _agency(caller)
        document = json.dumps(policy_to_document(policy), ensure_ascii=False).encode()
        stored = await _gateway(request).adjudicator.put_policy(document)
        return {
            "region": stored.region,
            "scheme": stored.scheme,
            "year": stored.year,
            "version": stored.version,
        }

    @app.put(
        "/v1/admin/catalog",
        tags=["admin"],
        response_model=schemas.CatalogLoaded,
        responses=_problems(403, 413, 422),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "text/csv": {
                        "schema": {"type": "string"},
                        "example": "code,name,kind,category,self_pay_ratio,price_cap,unit,"
                        "max_level,max_daily_qty\nXB02,头孢呋辛酯片,drug,B,0.10,5000,box,,\n",
                    }
                },
            }
        },
    )
    async def put_catalog(request: Request, caller: Caller) -> Any:
        """Replace the catalog (CSV); faulty rows are listed with their numbers."""
        _agency(caller)
        body = await request.body()

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        return await _gateway(request).adjudicator.put_catalog(chunks())

    @app.put(
        "/v1/admin/clients/{client_id}/mappings",
        tags=["admin"],
        response_model=schemas.MappingLoaded,
        responses=_problems(403, 409, 413, 422),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "text/csv": {
                        "schema": {"type": "string"},
                        "example": "his_code,his_name,catalog_code,factor,valid_from,valid_to\n"
                        "YP0002T,头孢呋辛酯(片),XB02,0.1,2020-01-01,\n",
                    }
                },
            }
        },
    )
    async def put_mapping(
        request: Request,
        client_id: Annotated[str, Path(min_length=1, max_length=64)],
        caller: Caller,
        confirm: Annotated[bool, Query(description="accept risky changes")] = False,
    ) -> Any:
        """Replace a client's mapping (CSV). Risky changes are refused unless confirmed."""
        _agency(caller)
        return await _gateway(request).adjudicator.put_mapping(
            client_id, await request.body(), confirm=confirm, changed_by=caller.client_id
        )

    @app.get(
        "/v1/admin/clients/{client_id}/mappings",
        tags=["admin"],
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "the mapping as CSV",
                "content": {"text/csv": {"example": schemas.MAPPING_CSV_EXAMPLE}},
            },
            **_problems(403, 404),
        },
    )
    async def get_mapping(
        request: Request,
        client_id: Annotated[str, Path(min_length=1, max_length=64)],
        caller: Caller,
    ) -> Any:
        """A client's current mapping (CSV)."""
        _agency(caller)
        text = await _gateway(request).adjudicator.mapping_text(client_id)
        return PlainTextResponse(text, media_type="text/csv; charset=utf-8")

    @app.get(
        "/v1/admin/clients/{client_id}/mappings/audit",
        tags=["admin"],
        response_model=list[schemas.AuditEntry],
        responses=_problems(403),
    )
    async def mapping_audit(
        request: Request,
        client_id: Annotated[str, Path(min_length=1, max_length=64)],
        caller: Caller,
    ) -> Any:
        """Every change to a client's mapping: who, when, old, new."""
        _agency(caller)
        return await _gateway(request).adjudicator.mapping_audit(client_id)

    @app.post(
        "/v1/admin/members",
        tags=["admin"],
        response_model=schemas.MembersLoaded,
        responses=_problems(403, 413),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-ndjson": {
                        "schema": {"type": "string"},
                        "example": '{"member_id": "M0001", "id_number": "410102198001011234", '
                        '"name": "张三", "birth_date": "1980-01-01", "sex": "M", '
                        '"region": "410100", "scheme": "resident", "status": "active", '
                        '"enrolled_since": "2020-01-01", "supplementary_enrolled": true, '
                        '"assistance_category": "dibao", "groups": [], '
                        '"personal_account_balance": 5000}\n',
                    }
                },
            }
        },
    )
    async def put_members(request: Request) -> Any:
        """Load members (JSON Lines). Each bad line is reported; the rest loads."""
        gateway = _gateway(request)
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            digest = hashlib.sha256()
            async for chunk in request.stream():
                digest.update(chunk)
                spool.write(chunk)
            caller = await gateway.auth.authenticate(request, digest.hexdigest())
            _agency(caller)
            spool.seek(0)
            return await gateway.adjudicator.put_members(_read_chunks(spool))

    _document_security(app)
    return app


async def _read_chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := spool.read(UPLOAD_CHUNK):
        yield chunk


def _today() -> date:
    return datetime.fromtimestamp(now_ms() / 1000, tz=SHANGHAI).date()


def _document_security(app: FastAPI) -> None:
    """Describe the four signature headers as the API's security requirement."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schemes = {
            "ClientId": "the client id",
            "Timestamp": "unix seconds, within 300 s of the server's clock",
            "Nonce": "16 to 64 characters of [A-Za-z0-9_-], never reused",
            "Signature": "base64 Ed25519 signature of the signing string",
        }
        schema.setdefault("components", {})["securitySchemes"] = {
            name: {"type": "apiKey", "in": "header", "name": f"X-{header}", "description": text}
            for name, header, text in (
                (name, {"ClientId": "Client-Id"}.get(name, name), text)
                for name, text in schemes.items()
            )
        }
        for path, operations in schema.get("paths", {}).items():
            if path == "/health":
                continue
            for operation in operations.values():
                operation["security"] = [{name: [] for name in schemes}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
    )
    try:
        await require_current_layout(redis)
    except BaseException:
        await redis.aclose()
        raise
    adjudicator = AdjudicatorClient(settings.adjudicator, settings.adjudicator_deadline_seconds)
    reference = GatewayReference(adjudicator)
    auth = Authenticator(
        redis,
        reference,
        clock_skew_seconds=settings.clock_skew_seconds,
        nonce_ttl_seconds=settings.nonce_ttl_seconds,
    )
    return Gateway(
        adjudicator,
        reference,
        auth,
        ReceiptSigner(settings.key_dir, settings.signing_key_id),
        redis,
    )
