"""Settling: preview (预结算), settle (结算), read, reverse (撤销)."""

from __future__ import annotations

import asyncio
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from gateway.dependencies import CallerDep, GatewayDep, ProviderDep, VisitBodyDep
from gateway.errors import BODY, SIGNED, refusals
from gateway.schemas import SETTLE_EXAMPLE, SettlementList, SettlementResult
from onestop.domain.errors import CONTROL_CODES, ErrorCode, InvalidDocument, Problem
from onestop.domain.types import Code
from onestop.statement.html import render_html
from onestop.statement.pdf import render_pdf

router = APIRouter(prefix="/v1/settlements", tags=["settlements"])

SettlementIdPath = Annotated[str, Path(min_length=1, max_length=64)]

_BILL = (
    *SIGNED,
    *BODY,
    ErrorCode.FORBIDDEN,
    ErrorCode.MEMBER_NOT_ELIGIBLE,
    ErrorCode.UNKNOWN_MEMBER,
    ErrorCode.NO_POLICY,
    ErrorCode.UNMAPPED_CODES,
    ErrorCode.AMOUNT_MISMATCH,
    ErrorCode.IMPLAUSIBLE_QUANTITY,
    ErrorCode.DATE_OUT_OF_VISIT,
)
_SETTLE_BODY: dict[str, Any] = {
    # The bill is read by VisitBodyDep (from the raw bytes, in one pass), not by FastAPI's
    # body handling: it is documented here, its schema added by gateway.app.
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/VisitRequest"},
                "example": SETTLE_EXAMPLE,
            }
        },
    }
}


def _receipt(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


@router.post(
    "/preview",
    response_model=SettlementResult,
    responses=refusals(
        *_BILL, ErrorCode.VISIT_ALREADY_SETTLED, ErrorCode.OVERLAPPING_STAY, *CONTROL_CODES
    ),
    openapi_extra=_SETTLE_BODY,
)
async def preview(
    request: Request, caller: ProviderDep, visit: VisitBodyDep, gateway: GatewayDep
) -> Response:
    """预结算: the settlement as it would be; nothing is committed."""
    message = await gateway.settle(caller, visit, await request.body(), preview=True)
    return _receipt(gateway.receipt(message))


@router.post(
    "",
    status_code=201,
    response_model=SettlementResult,
    responses={
        200: {
            "model": SettlementResult,
            "description": "the identical request again: the original settlement, replayed: true",
        },
        **refusals(
            *_BILL, ErrorCode.VISIT_ALREADY_SETTLED, ErrorCode.OVERLAPPING_STAY, *CONTROL_CODES
        ),
    },
    openapi_extra=_SETTLE_BODY,
)
async def settle(
    request: Request, caller: ProviderDep, visit: VisitBodyDep, gateway: GatewayDep
) -> Response:
    """结算: settle and commit, at most once per (client, visit)."""
    message = await gateway.settle(caller, visit, await request.body(), preview=False)
    return _receipt(gateway.receipt(message), 200 if message.replayed else 201)


@router.get(
    "",
    response_model=SettlementList,
    responses=refusals(*SIGNED, ErrorCode.FORBIDDEN, ErrorCode.INVALID),
)
async def list_settlements(
    caller: ProviderDep,
    gateway: GatewayDep,
    visit_id: Annotated[
        Code | None, Query(description="every settlement of this visit of yours, newest first")
    ] = None,
    day: Annotated[
        date | None,
        Query(
            alias="date",
            description="your settlements and reversals committed this day (Asia/Shanghai), "
            "in commit order, a page at a time",
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="`next_cursor` of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="most items in a day's page")] = 100,
) -> Response:
    """Find what a terminal lost (单边账): by visit id, or a whole day page by page.

    A settlement reversed on the day it was settled appears twice in the day's list: once
    where it was settled and once where it was reversed (its `status` is its state now).
    """
    if cursor is not None and day is None:
        raise InvalidDocument(
            "cursor without date",
            (Problem(ErrorCode.INVALID, "cursor pages a day: send it with date", field="cursor"),),
        )
    if day is not None and visit_id is None:
        listed = await gateway.adjudicator.day_settlements(caller.client_id, day, cursor, limit)
    elif visit_id is not None and day is None:
        listed = await gateway.adjudicator.visit_settlements(caller.client_id, visit_id)
    else:
        raise InvalidDocument(
            "visit_id or date",
            (
                Problem(
                    ErrorCode.INVALID,
                    "give exactly one of visit_id (a visit's settlements) or date (a day's, "
                    "YYYY-MM-DD)",
                    field="visit_id" if visit_id is None else "date",
                ),
            ),
        )
    items = b",".join(gateway.receipt(item) for item in listed.items)
    body = b'{"items":[' + items + b'],"next_cursor":' + orjson.dumps(listed.next_cursor or None)
    return _receipt(body + b"}")


@router.get(
    "/{settlement_id}",
    response_model=SettlementResult,
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.NOT_FOUND),
)
async def get_settlement(
    settlement_id: SettlementIdPath, caller: CallerDep, gateway: GatewayDep
) -> Response:
    """One settlement; another client's answers 404."""
    message = await gateway.adjudicator.get(settlement_id, gateway.owner_filter(caller))
    return _receipt(gateway.receipt(message))


class StatementFormat(StrEnum):
    """What a statement is answered as."""

    HTML = "html"
    PDF = "pdf"


PDF = "application/pdf"
_STATEMENT_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the statement: an HTML page (default), or a PDF with `format=pdf` "
        "(or, without `format`, an `Accept` that prefers `application/pdf` to `text/html`)",
        "content": {
            "text/html": {
                "schema": {"type": "string"},
                "example": '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
                "<title>医疗费用结算单 Settlement statement "
                "S1a3019c8f6b2a0d4e7f0a1b2c3d4e5f</title>\n...",
            },
            PDF: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def choose_statement_format(chosen: StatementFormat | None, accept: str) -> StatementFormat:
    """``format`` when given; else PDF when ``Accept`` prefers it to HTML; else HTML."""
    if chosen is not None:
        return chosen
    quality: dict[str, float] = {}
    for part in accept.split(","):
        media, *parameters = part.split(";")
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        quality[media.strip().lower()] = weight
    if quality.get(PDF, 0.0) > quality.get("text/html", 0.0):
        return StatementFormat.PDF
    return StatementFormat.HTML


STATEMENT_HTML_HEADERS = {
    # A page to print or save: its own styles and the QR code's inline SVG, nothing else.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
}


@router.get(
    "/{settlement_id}/statement",
    response_class=HTMLResponse,
    responses={
        **_STATEMENT_ANSWER,
        **refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.NOT_FOUND, ErrorCode.NO_STATEMENT_FONT),
    },
)
async def statement(
    request: Request,
    settlement_id: SettlementIdPath,
    caller: CallerDep,
    gateway: GatewayDep,
    format: Annotated[
        StatementFormat | None,
        Query(description="html or pdf (default: by `Accept`, else html)"),
    ] = None,
) -> Response:
    """The patient's statement (结算单): lines by fee category, amounts, notes, a sealed QR code.

    Who may read it is who may read the settlement. The QR code holds the statement's seal,
    signed with the receipt key: `onestop verify-receipt --seal TEXT` checks it.
    """
    chosen = choose_statement_format(format, request.headers.get("accept", ""))
    font = gateway.pdf_font() if chosen is StatementFormat.PDF else None
    made = await gateway.statement(caller, settlement_id)
    if font is None:
        return HTMLResponse(render_html(made), headers=STATEMENT_HTML_HEADERS)
    # A 200-line statement takes about a second to lay out: not on the event loop, and two at
    # most at once in a process (one per client), beside the settlements it serves.
    with gateway.statement_slots.slot(caller.client_id):
        body = await asyncio.to_thread(render_pdf, made, font)
    return Response(
        body,
        media_type=PDF,
        headers={
            "Content-Disposition": f'inline; filename="statement-{made.settlement_id}.pdf"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/{settlement_id}/reversal",
    response_model=SettlementResult,
    responses=refusals(
        *SIGNED, ErrorCode.INVALID, ErrorCode.NOT_FOUND, ErrorCode.SETTLEMENT_RECOVERED
    ),
)
async def reverse(
    settlement_id: SettlementIdPath, caller: CallerDep, gateway: GatewayDep
) -> Response:
    """撤销: undo exactly what the settlement added; asking again answers the same."""
    message = await gateway.adjudicator.reverse(settlement_id, gateway.owner_filter(caller))
    return _receipt(gateway.receipt(message))
