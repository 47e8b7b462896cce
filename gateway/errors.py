"""Refusals as ``application/problem+json``: the one place the gateway renders them.

Statuses and titles come from :data:`onestop.errors.STATUS`; the refusals are the typed
exceptions of :mod:`onestop.domain.errors` and :mod:`onestop.errors`, raised here or rebuilt
from the adjudicator's answer.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.schemas import Problem as ProblemModel
from onestop.domain.documents import problems_of
from onestop.domain.errors import (
    DomainError,
    ErrorCode,
    InvalidDocument,
    MalformedDocument,
    NotFound,
)
from onestop.errors import STATUS, InternalError, MethodNotAllowed, RateLimited

log = logging.getLogger("onestop.gateway")

PROBLEM_JSON = "application/problem+json"


def problem_body(error: DomainError) -> dict[str, Any]:
    """The problem+json body of a refusal."""
    status = STATUS[error.code]
    body: dict[str, Any] = {
        "type": f"urn:onestop:problem:{error.code}",
        "title": status.title,
        "status": status.http,
        "code": error.code.value,
        "detail": error.message,
        "errors": [],
    }
    for problem in error.problems:
        entry: dict[str, Any] = {
            "line_no": problem.line_no,
            "his_code": problem.his_code,
            "field": problem.field,
            "code": problem.code.value,
            "message": problem.message,
        }
        if problem.row is not None:
            entry["row"] = problem.row
        body["errors"].append(entry)
    return body


def problem_response(error: DomainError) -> JSONResponse:
    """A refusal as an HTTP answer."""
    body = problem_body(error)
    headers = None
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
    elif error.code is ErrorCode.UNAVAILABLE:
        headers = {"Retry-After": "1"}
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


async def domain_error_handler(request: Request, error: Exception) -> JSONResponse:
    """FastAPI exception handler: every refusal becomes problem+json here, and only here.

    A fault the adjudicator reported (``INTERNAL_ERROR``) is logged here too, so that the
    gateway's log shows which request met it; the traceback is in the adjudicator's log.
    """
    if not isinstance(error, DomainError):  # pragma: no cover - registered for DomainError
        raise TypeError(f"not a refusal: {error!r}")
    if error.code is ErrorCode.INTERNAL_ERROR:
        log.error("internal error", extra={"path": request.url.path, "detail": error.message})
    return problem_response(error)


async def http_error_handler(request: Request, error: Exception) -> JSONResponse:
    """Routing refusals (no such path, wrong method) as problem+json too."""
    refusal: DomainError
    status = error.status_code if isinstance(error, StarletteHTTPException) else 400
    if status == 404:
        refusal = NotFound(f"no such path: {request.url.path}")
    elif status == 405:
        refusal = MethodNotAllowed(f"{request.url.path} does not take {request.method}")
    else:
        refusal = MalformedDocument(str(getattr(error, "detail", error)))
    return problem_response(refusal)


async def validation_error_handler(request: Request, error: Exception) -> JSONResponse:
    """A body that could not be parsed or validated: 400 MALFORMED or 422 INVALID.

    FastAPI's check of the request, or a model validated inside a route (a registration
    that the domain's rules refuse), both with the offending fields.
    """
    if not isinstance(error, RequestValidationError | ValidationError):  # pragma: no cover
        raise TypeError(f"not a validation error: {error!r}")  # registered for those only
    details = list(error.errors())
    for detail in details:
        whole_body = tuple(detail.get("loc", ())) == ("body",)
        if detail.get("type") == "json_invalid" or (
            whole_body
            and detail.get("type")
            in ("model_attributes_type", "model_type", "dict_type", "missing")
        ):
            return problem_response(MalformedDocument("the body is not a JSON object"))
    problems = problems_of(details)
    first = problems[0]
    where = f"{first.field}: " if first.field else ""
    return problem_response(InvalidDocument(f"{where}{first.message}", problems))


async def internal_error_handler(request: Request, error: Exception) -> JSONResponse:
    """A failure of the gateway itself: problem+json too, never a bare text page.

    The traceback goes to the log (the server re-raises after answering); the caller learns
    only that it failed, and that the same request may be sent again safely.
    """
    log.error("internal error", exc_info=error, extra={"path": request.url.path})
    return problem_response(InternalError("the gateway failed; the failure is in its log"))


SIGNED = (
    ErrorCode.UNAUTHENTICATED,
    ErrorCode.HEADERS_TOO_LARGE,
    ErrorCode.RATE_LIMITED,
    ErrorCode.INTERNAL_ERROR,
    ErrorCode.UNAVAILABLE,
)
"""What any signed call may be answered: a bad signature or oversized headers, a client over
its rate, a fault, a dependency down."""

BODY = (ErrorCode.MALFORMED, ErrorCode.INVALID, ErrorCode.TOO_LARGE, ErrorCode.REQUEST_TIMEOUT)
"""What a call with a body may be answered besides."""

UPLOAD = (ErrorCode.FORBIDDEN, ErrorCode.TOO_LARGE, ErrorCode.REQUEST_TIMEOUT)
"""What an agency upload may be answered besides (another client, too big, too slow)."""


def refusals(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of an operation that refuses with ``codes``.

    Per status: the problem+json model and the codes with their titles (the OpenAPI document
    moves the model under ``application/problem+json``, see :mod:`gateway.app`).
    """
    by_status: dict[int, list[ErrorCode]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(STATUS[code].http, []).append(code)
    return {
        status: {
            "model": ProblemModel,
            "description": "; ".join(f"`{code}`: {STATUS[code].title}" for code in listed),
            "x-onestop-codes": [code.value for code in listed],
        }
        for status, listed in sorted(by_status.items())
    }
