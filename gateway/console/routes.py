"""The console's pages and its login (the link comes from :mod:`gateway.console.api`).

Every page takes :data:`StaffDep`: a live session of an agency client still registered with
the key it logged in under, or a redirect to the login page. Forms post back here with the
session's CSRF token and from the console's own origin; a decision refused by the queue is
shown on the page, and changes nothing.

The figures are the API's: each page calls the same functions, and converts through the same
models, as the routes in :mod:`gateway.routers` (a test compares them).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from gateway import convert
from gateway.console import PREFIX
from gateway.console.charts import bar_chart, stacked_chart
from gateway.console.sessions import ConsoleSession, registered_key
from gateway.dependencies import GatewayDep
from gateway.errors import domain_error_handler, problem_body
from gateway.routers.activity import day_refusals, day_totals
from gateway.schemas import ReviewDecisionIn
from gateway.service import Gateway
from onestop.clock import settlement_day
from onestop.domain.clients import Client, providers
from onestop.domain.engine import Amounts
from onestop.domain.errors import DomainError, ErrorCode, Forbidden
from onestop.domain.money import fen_of_yuan, format_yuan
from onestop.domain.reconciliation import RECONCILED_FUNDS
from onestop.domain.types import ClientKind
from onestop.statement import AMOUNT_LABELS
from onestop.statement import VISIT_TYPE_LABELS as STATEMENT_VISIT_TYPES

COOKIE = "onestop_console"
"""The session cookie: a random token, HttpOnly, SameSite=Strict, path ``/console``."""

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
TEMPLATES.env.filters["yuan"] = format_yuan

SECURITY_HEADERS = {
    # Nothing runs and nothing loads from elsewhere: the pages have no script at all.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The login link's code must not travel on in a Referer (it is used up anyway).
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

FUND_LABELS = {name: AMOUNT_LABELS[name] for name in RECONCILED_FUNDS}
"""The reconciled funds, labelled as the patient's statement labels them."""
PAYERS = tuple(name for name in RECONCILED_FUNDS if name != "total")
"""Who paid a day's total: the funds, the personal account and the patients' cash."""

VISIT_TYPE_LABELS: dict[str | None, str] = {None: "未分组 before the split"}
VISIT_TYPE_LABELS.update(STATEMENT_VISIT_TYPES)
RECONCILIATION_DAYS = 7
"""Days the reconciliation page shows side by side, ending on the chosen one."""

_SAFE_NEXT = re.compile(r"/console(?:/[A-Za-z0-9_./-]*)?(?:\?[A-Za-z0-9_.=&%-]*)?")

router = APIRouter(prefix=PREFIX, include_in_schema=False)


class LoginRequired(Exception):
    """No live session: the browser is sent to the login page, then back."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


@dataclass(frozen=True, slots=True)
class Staff:
    """Who is using the console: the session and the agency client it belongs to."""

    session: ConsoleSession
    client: Client


async def console_staff(request: Request, gateway: GatewayDep) -> Staff:
    """The session of the request's cookie, still valid for its agency client.

    Raises:
        LoginRequired: no cookie, no such session (expired, logged out), or its client is no
            longer an agency registered with the key the session was opened under.
    """
    back_to = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    token = request.cookies.get(COOKIE)
    session = await gateway.console.find(token) if token else None
    if token is None or session is None:
        raise LoginRequired(back_to)
    client = await gateway.auth.registered(session.client_id)
    if (
        client is None
        or client.kind is not ClientKind.AGENCY
        or registered_key(client) != session.key
    ):
        await gateway.console.close(token)
        raise LoginRequired(back_to)
    return Staff(session, client)


StaffDep = Annotated[Staff, Depends(console_staff)]


def install(app: FastAPI) -> None:
    """Answer the console's own refusals as pages, not as problem+json."""

    async def login_required(request: Request, error: Exception) -> Response:
        back_to = error.back_to if isinstance(error, LoginRequired) else PREFIX
        return RedirectResponse(
            f"{PREFIX}/login?next={quote(back_to, safe='/')}",
            status_code=303,
            headers=SECURITY_HEADERS,
        )

    async def refusal(request: Request, error: Exception) -> Response:
        if not request.url.path.startswith(PREFIX + "/") and request.url.path != PREFIX:
            return await domain_error_handler(request, error)
        if not isinstance(error, DomainError):  # pragma: no cover - registered for those
            raise TypeError(f"not a refusal: {error!r}")
        await domain_error_handler(request, error)  # logged as any refusal is
        body = problem_body(error)
        return _page(request, None, "error.html", {"problem": body}, status=body["status"])

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(DomainError, refusal)


def _page(
    request: Request,
    staff: Staff | None,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> Response:
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"staff": staff, "csrf": staff.session.csrf if staff else "", **context},
        status_code=status,
        headers=SECURITY_HEADERS,
    )


EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)
"""The days a page may be asked for: a week back from any of them is still a date."""


def _day(text: str | None, gateway: Gateway) -> date:
    """``?date=``, or today (Asia/Shanghai) when absent, not a date or out of range.

    Args:
        text: the query's ``date``.
        gateway: the gateway (its clock says what today is).
    """
    if text:
        try:
            asked = date.fromisoformat(text)
        except ValueError:
            asked = None
        if asked is not None and EARLIEST_DAY <= asked <= LATEST_DAY:
            return asked
    return settlement_day(gateway.clock())


def _own_origin(request: Request, gateway: Gateway) -> str:
    """The origin the browser sees the console at: the setting, else the request's own."""
    return gateway.console.settings.origin or f"{request.url.scheme}://{request.url.netloc}"


async def console_form(request: Request, staff: StaffDep, gateway: GatewayDep) -> dict[str, str]:
    """A posted form's fields, once the request is shown to come from the console itself.

    Every state-changing console route takes it (a test checks): the session's CSRF token
    must be in the form, and the browser must say the form came from the console's origin.

    Raises:
        Forbidden: another site's page sent it, or the session's CSRF token is missing.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(request, gateway):
        raise Forbidden("the form was sent from another site's page")
    if request.headers.get("sec-fetch-site") not in (None, "same-origin"):
        raise Forbidden("the form was sent from another site's page")
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = {name: values[0] for name, values in parse_qs(body).items()}
    sent = fields.get("csrf", "").encode("utf-8")
    if not hmac.compare_digest(sent, staff.session.csrf.encode("ascii")):
        raise Forbidden("the form's session token is missing or stale: reload the page")
    return fields


ConsoleFormDep = Annotated[dict[str, str], Depends(console_form)]


# -- login and logout ---------------------------------------------------------------------------


@router.get("/static/console.css")
async def stylesheet() -> FileResponse:
    """The console's one stylesheet."""
    return FileResponse(HERE / "static" / "console.css", media_type="text/css")


@router.get("/login")
async def login_page(request: Request) -> Response:
    """How to open the console: a link from the agency's signed call."""
    return _page(request, None, "login.html", {"expired": "next" in request.query_params})


@router.get("/login/{code}")
async def login(request: Request, code: str, gateway: GatewayDep) -> Response:
    """Take a one-time code, set the session's cookie and go on to the page asked for.

    The page goes on by itself (a meta refresh, no script): a navigation the console's own
    page starts is same-site, so the SameSite=Strict cookie goes with it even when the link
    was opened from another site (a redirect would carry that site's cross-site mark on).
    """
    opened = await gateway.console.open(code) if len(code) <= 128 else None
    if opened is None:
        return _page(request, None, "login.html", {"refused": True}, status=403)
    token, _ = opened
    back_to = request.query_params.get("next", PREFIX)
    if not _SAFE_NEXT.fullmatch(back_to) or "//" in back_to or ".." in back_to:
        back_to = PREFIX
    response = _page(request, None, "opening.html", {"back_to": back_to})
    origin = gateway.console.settings.origin
    loopback = request.url.hostname in ("127.0.0.1", "localhost", "::1")
    response.set_cookie(
        COOKIE,
        token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        # Plain http only on the machine itself (onestop serve, the demo); behind a proxy
        # that ends TLS, the configured origin says https.
        secure=origin.startswith("https:") if origin else not loopback,
    )
    return response


@router.post("/logout")
async def logout(request: Request, form: ConsoleFormDep, gateway: GatewayDep) -> Response:
    """End the session."""
    token = request.cookies.get(COOKIE, "")
    await gateway.console.close(token)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# -- pages --------------------------------------------------------------------------------------


@router.get("")
async def overview(request: Request, staff: StaffDep, gateway: GatewayDep) -> Response:
    """Today's settlements: funds, visit types, hospitals; and refusals by code."""
    day = _day(request.query_params.get("date"), gateway)
    totals = await day_totals(gateway, day)
    refused = await day_refusals(gateway, day)
    amounts = totals.total.amounts.model_dump()
    funds = bar_chart(
        "每项基金支付 Paid by each fund (yuan)",
        [(FUND_LABELS[name], amounts[name]) for name in PAYERS],
        [format_yuan(amounts[name]) for name in PAYERS],
    )
    by_visit_type = stacked_chart(
        "按就诊类型 By visit type (yuan)",
        [FUND_LABELS[name] for name in PAYERS],
        [
            (
                VISIT_TYPE_LABELS.get(row.visit_type, str(row.visit_type)),
                [getattr(row.amounts, name) for name in PAYERS],
            )
            for row in totals.by_visit_type
        ],
        [format_yuan(row.amounts.total) for row in totals.by_visit_type],
    )
    refusals_chart = bar_chart(
        "拒付原因 Refusals by code",
        [(code.value, count) for code, count in refused.by_code.items()],
    )
    return _page(
        request,
        staff,
        "overview.html",
        {
            "page": "overview",
            "day": day,
            "totals": totals,
            "refused": refused,
            "funds": funds,
            "by_visit_type": by_visit_type,
            "refusals_chart": refusals_chart,
            "fund_labels": FUND_LABELS,
            "payers": PAYERS,
            "visit_type_labels": VISIT_TYPE_LABELS,
        },
    )


@router.get("/reconciliation")
async def reconciliation(request: Request, staff: StaffDep, gateway: GatewayDep) -> Response:
    """Each client's reconciliation standing over a week, and the chosen day's answers."""
    day = _day(request.query_params.get("date"), gateway)
    days = [day - timedelta(days=back) for back in range(RECONCILIATION_DAYS - 1, -1, -1)]
    listed, _ = await gateway.adjudicator.list_clients()
    registered = [client.client_id for client in providers(listed)]
    standings = [
        convert.day_reconciliations(
            each, registered, await gateway.adjudicator.reconciliations(each)
        )
        for each in days
    ]
    client_ids = sorted({entry.client_id for standing in standings for entry in standing.clients})
    grid = {
        (entry.client_id, standing.date): entry.status
        for standing in standings
        for entry in standing.clients
    }
    return _page(
        request,
        staff,
        "reconciliation.html",
        {
            "page": "reconciliation",
            "day": day,
            "days": [each.isoformat() for each in days],
            "client_ids": client_ids,
            "names": {client.client_id: client.name for client in listed},
            "grid": grid,
            "chosen": standings[-1],
            "fund_labels": FUND_LABELS,
        },
    )


async def _reviews_page(
    request: Request,
    staff: Staff,
    gateway: Gateway,
    *,
    problem: dict[str, Any] | None = None,
    decided: str | None = None,
    status: int = 200,
) -> Response:
    day = _day(request.query_params.get("date"), gateway)
    wanted = request.query_params.get("status", "")
    if wanted not in ("", "open", "accepted", "recovered"):
        wanted = ""
    found = await gateway.adjudicator.reviews(day, wanted)
    return _page(
        request,
        staff,
        "reviews.html",
        {
            "page": "reviews",
            "day": day,
            "wanted": wanted,
            "reviews": [convert.review_out(review) for review in found],
            "problem": problem,
            "decided": decided,
        },
        status=status,
    )


@router.get("/reviews")
async def reviews(request: Request, staff: StaffDep, gateway: GatewayDep) -> Response:
    """The review queue of a day, with a decision form for each open review."""
    return await _reviews_page(request, staff, gateway, decided=request.query_params.get("decided"))


@router.post("/reviews/{settlement_id}/decision")
async def decide(
    request: Request,
    settlement_id: str,
    staff: StaffDep,
    fields: ConsoleFormDep,
    gateway: GatewayDep,
) -> Response:
    """Decide a review from its form; a refusal is shown on the queue, nothing changed."""
    try:
        amount = fen_of_yuan(fields["amount"]) if fields.get("amount", "").strip() else 0
        decision = ReviewDecisionIn.model_validate(
            {
                "decision": fields.get("decision", ""),
                "amount": amount,
                "reason": fields.get("reason", "").strip(),
                "reviewer": fields.get("reviewer", "").strip() or None,
            }
        )
    except (ValueError, ValidationError) as error:
        # pydantic's ValidationError is a ValueError: both are the form's fault.
        problem = {"status": 422, "code": ErrorCode.INVALID.value, "detail": _first_error(error)}
        return await _reviews_page(request, staff, gateway, problem=problem, status=422)
    reviewer = staff.client.client_id
    if decision.reviewer is not None:
        reviewer = f"{staff.client.client_id}:{decision.reviewer}"
    try:
        await gateway.adjudicator.decide_review(
            settlement_id, decision.decision, decision.amount, reviewer, decision.reason
        )
    except DomainError as error:
        if error.code in (ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL_ERROR):
            raise
        body = problem_body(error)
        return await _reviews_page(request, staff, gateway, problem=body, status=body["status"])
    back = f"{PREFIX}/reviews?decided={quote(settlement_id)}"
    if "date" in request.query_params:
        back += f"&date={quote(request.query_params['date'])}"
    return RedirectResponse(back, status_code=303, headers=SECURITY_HEADERS)


def _first_error(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}"
    return f"amount: {error} (yuan, at most two decimals)"


@router.get("/mappings")
async def mappings(request: Request, staff: StaffDep, gateway: GatewayDep) -> Response:
    """The mapping audit trail of one hospital or pharmacy, newest change first."""
    listed, _ = await gateway.adjudicator.list_clients()
    settling = providers(listed)
    chosen = request.query_params.get("client_id") or (settling[0].client_id if settling else "")
    entries = (
        convert.audit_entries(await gateway.adjudicator.mapping_audit(chosen)) if chosen else []
    )
    return _page(
        request,
        staff,
        "mappings.html",
        {
            "page": "mappings",
            "providers": settling,
            "chosen": chosen,
            "entries": list(reversed(entries)),
        },
    )


@router.get("/settlements")
async def settlements(request: Request, staff: StaffDep, gateway: GatewayDep) -> Response:
    """Find a settlement by its id, or every settlement of a client's visit."""
    settlement_id = request.query_params.get("id", "").strip()
    client_id = request.query_params.get("client_id", "").strip()
    visit_id = request.query_params.get("visit_id", "").strip()
    found = []
    searched = bool(settlement_id or (client_id and visit_id))
    missing = None
    try:
        if settlement_id:
            found = [convert.settlement_result(await gateway.adjudicator.get(settlement_id, ""))]
        elif client_id and visit_id:
            listed = await gateway.adjudicator.visit_settlements(client_id, visit_id)
            found = [convert.settlement_result(item) for item in listed.items]
    except DomainError as error:
        if error.code not in (ErrorCode.NOT_FOUND, ErrorCode.INVALID):
            raise
        missing = error.message
    listed_clients, _ = await gateway.adjudicator.list_clients()
    return _page(
        request,
        staff,
        "settlements.html",
        {
            "page": "settlements",
            "settlement_id": settlement_id,
            "client_id": client_id,
            "visit_id": visit_id,
            "searched": searched,
            "found": found,
            "missing": missing,
            "amount_names": [field.name for field in fields(Amounts)],
            "amount_labels": AMOUNT_LABELS,
            "providers": providers(listed_clients),
            "fund_labels": FUND_LABELS,
            "visit_type_labels": VISIT_TYPE_LABELS,
        },
    )
