"""The gateway's refusals, and their one mapping to ``application/problem+json``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from onestop.domain.errors import DomainError, Problem

log = logging.getLogger("onestop.gateway")

PROBLEM_JSON = "application/problem+json"

STATUS_BY_CODE: dict[str, int] = {
    "MALFORMED": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "MEMBER_NOT_ELIGIBLE": 403,
    "NOT_FOUND": 404,
    "UNKNOWN_MEMBER": 404,
    "NO_POLICY": 404,
    "VISIT_ALREADY_SETTLED": 409,
    "OVERLAPPING_STAY": 409,
    "RISKY_MAPPING_CHANGE": 409,
    "DUPLICATE_ENROLLMENT": 409,
    "METHOD_NOT_ALLOWED": 405,
    "TOO_LARGE": 413,
    "INVALID": 422,
    "UNMAPPED_CODES": 422,
    "AMOUNT_MISMATCH": 422,
    "IMPLAUSIBLE_QUANTITY": 422,
    "DATE_OUT_OF_VISIT": 422,
    "UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}

TITLES: dict[str, str] = {
    "MALFORMED": "The body is not of the expected shape",
    "UNAUTHENTICATED": "The request is not signed by a known client",
    "FORBIDDEN": "This client may not do this",
    "MEMBER_NOT_ELIGIBLE": "The member is not entitled to benefits",
    "NOT_FOUND": "Not found",
    "UNKNOWN_MEMBER": "No such member",
    "NO_POLICY": "No policy applies",
    "VISIT_ALREADY_SETTLED": "The visit is already settled with another request",
    "OVERLAPPING_STAY": "The stay overlaps another stay of the member",
    "RISKY_MAPPING_CHANGE": "The mapping moves codes to items of another kind or category",
    "DUPLICATE_ENROLLMENT": "The id number is already enrolled",
    "METHOD_NOT_ALLOWED": "This path does not take this method",
    "TOO_LARGE": "The request is too large",
    "INVALID": "The request is invalid",
    "UNMAPPED_CODES": "Some HIS codes have no mapping",
    "AMOUNT_MISMATCH": "Some amounts are not quantity times unit price",
    "IMPLAUSIBLE_QUANTITY": "Some daily quantities are implausible",
    "DATE_OUT_OF_VISIT": "Some lines are dated outside the visit",
    "UNAVAILABLE": "A dependency is unavailable: nothing was settled, retry the same request",
    "INTERNAL_ERROR": "The gateway failed; the same request may be retried",
}


class GatewayError(DomainError):
    """A refusal decided by the gateway itself (authentication, size, shape)."""

    def __init__(self, code: str, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message, problems)
        self.code = code


def problem_body(error: DomainError) -> dict[str, Any]:
    """The problem+json body of a refusal."""
    status = STATUS_BY_CODE.get(error.code, 422)
    body: dict[str, Any] = {
        "type": f"urn:onestop:problem:{error.code}",
        "title": TITLES.get(error.code, "The request was refused"),
        "status": status,
        "code": error.code,
        "detail": error.message,
        "errors": [],
    }
    for problem in error.problems:
        entry: dict[str, Any] = {
            "line_no": problem.line_no,
            "his_code": problem.his_code,
            "field": problem.field,
            "code": problem.code,
            "message": problem.message,
        }
        if problem.row is not None:
            entry["row"] = problem.row
        body["errors"].append(entry)
    return body


def problem_response(error: DomainError) -> JSONResponse:
    """A refusal as an HTTP answer."""
    body = problem_body(error)
    headers = {"Retry-After": "1"} if error.code == "UNAVAILABLE" else None
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


async def domain_error_handler(request: Request, error: Exception) -> JSONResponse:
    """FastAPI exception handler: every refusal becomes problem+json here, and only here."""
    assert isinstance(error, DomainError)
    return problem_response(error)


async def http_error_handler(request: Request, error: Exception) -> JSONResponse:
    """Routing refusals (no such path, wrong method) as problem+json too."""
    assert isinstance(error, StarletteHTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, "MALFORMED")
    response = problem_response(GatewayError(code, str(error.detail)))
    response.status_code = error.status_code
    return response


async def validation_error_handler(request: Request, error: Exception) -> JSONResponse:
    """A body that could not be parsed or validated: 400 MALFORMED or 422 INVALID.

    FastAPI's check of the request, or a model validated inside a route (a registration
    that the domain's rules refuse), both with the offending fields.
    """
    assert isinstance(error, RequestValidationError | ValidationError)
    details = list(error.errors())
    for detail in details:
        whole_body = tuple(detail.get("loc", ())) == ("body",)
        if detail.get("type") == "json_invalid" or (
            whole_body and detail.get("type") in ("model_attributes_type", "dict_type", "missing")
        ):
            return problem_response(GatewayError("MALFORMED", "the body is not a JSON object"))
    problems = []
    for detail in details:
        location = [str(part) for part in detail.get("loc", ()) if part != "body"]
        message = "unknown field" if detail.get("type") == "extra_forbidden" else detail["msg"]
        problems.append(Problem("INVALID", message, field=".".join(location) or None))
    first = problems[0]
    return problem_response(
        GatewayError("INVALID", f"{first.field}: {first.message}", tuple(problems))
    )


async def internal_error_handler(request: Request, error: Exception) -> JSONResponse:
    """A failure of the gateway itself: problem+json too, never a bare text page.

    The traceback goes to the log (the server re-raises after answering); the caller is told
    to retry, which is safe: the same request never settles twice.
    """
    log.error("internal error", exc_info=error, extra={"path": request.url.path})
    return problem_response(GatewayError("INTERNAL_ERROR", "the gateway failed; retry later"))


class FastJSONResponse(JSONResponse):
    """A JSON answer rendered by orjson (receipts carry hundreds of lines)."""

    def render(self, content: Any) -> bytes:
        """UTF-8 JSON, compact."""
        return orjson.dumps(content)
