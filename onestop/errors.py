"""What each refusal answers with, in one table, and the refusals of the services themselves.

:data:`STATUS` maps every :class:`~onestop.domain.errors.ErrorCode` to its HTTP status, its
gRPC status and its title. The adjudicator's servicer and the gateway's problem+json answers
both read it, and the OpenAPI description lists each operation's refusals from it; nothing
else chooses a status.

After crossing the gRPC wire a refusal is rebuilt as the same typed exception
(:func:`refusal_of`), so the gateway catches ``UnknownMember`` as the adjudicator raised it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from onestop.domain.errors import (
    BILL_CODES,
    CONTROL_CODES,
    BillRejected,
    ControlRefused,
    DomainError,
    ErrorCode,
    Forbidden,
    InvalidDocument,
    MalformedDocument,
    MemberNotEligible,
    NoPolicy,
    NotFound,
    OverlappingStay,
    Problem,
    ReviewDecided,
    RiskyMappingChange,
    SettlementRecovered,
    UnknownMember,
    VisitAlreadySettled,
)


@dataclass(frozen=True, slots=True)
class Status:
    """How a refusal with one code is answered."""

    http: int
    grpc: grpc.StatusCode
    title: str


STATUS: Mapping[ErrorCode, Status] = {
    ErrorCode.MALFORMED: Status(
        400, grpc.StatusCode.INVALID_ARGUMENT, "The body is not of the expected shape"
    ),
    ErrorCode.UNAUTHENTICATED: Status(
        401, grpc.StatusCode.UNAUTHENTICATED, "The request is not signed by a known client"
    ),
    ErrorCode.FORBIDDEN: Status(
        403, grpc.StatusCode.PERMISSION_DENIED, "This client may not do this"
    ),
    ErrorCode.MEMBER_NOT_ELIGIBLE: Status(
        403, grpc.StatusCode.FAILED_PRECONDITION, "The member is not entitled to benefits"
    ),
    ErrorCode.NOT_FOUND: Status(404, grpc.StatusCode.NOT_FOUND, "Not found"),
    ErrorCode.UNKNOWN_MEMBER: Status(404, grpc.StatusCode.NOT_FOUND, "No such member"),
    ErrorCode.NO_POLICY: Status(404, grpc.StatusCode.NOT_FOUND, "No policy applies"),
    ErrorCode.METHOD_NOT_ALLOWED: Status(
        405, grpc.StatusCode.UNIMPLEMENTED, "This path does not take this method"
    ),
    ErrorCode.REQUEST_TIMEOUT: Status(
        408, grpc.StatusCode.DEADLINE_EXCEEDED, "The request was not sent in time"
    ),
    ErrorCode.VISIT_ALREADY_SETTLED: Status(
        409,
        grpc.StatusCode.ALREADY_EXISTS,
        "The visit is already settled with another request",
    ),
    ErrorCode.OVERLAPPING_STAY: Status(
        409, grpc.StatusCode.FAILED_PRECONDITION, "The stay overlaps another stay of the member"
    ),
    ErrorCode.RISKY_MAPPING_CHANGE: Status(
        409,
        grpc.StatusCode.FAILED_PRECONDITION,
        "The mapping moves codes to items of another kind or category",
    ),
    ErrorCode.DUPLICATE_ENROLLMENT: Status(
        409, grpc.StatusCode.ALREADY_EXISTS, "The id number is already enrolled"
    ),
    ErrorCode.TOO_LARGE: Status(
        413, grpc.StatusCode.RESOURCE_EXHAUSTED, "The request is too large"
    ),
    ErrorCode.HEADERS_TOO_LARGE: Status(
        431, grpc.StatusCode.RESOURCE_EXHAUSTED, "The request's headers are too large"
    ),
    ErrorCode.INVALID: Status(422, grpc.StatusCode.INVALID_ARGUMENT, "The request is invalid"),
    ErrorCode.UNMAPPED_CODES: Status(
        422, grpc.StatusCode.INVALID_ARGUMENT, "Some HIS codes have no mapping"
    ),
    ErrorCode.AMOUNT_MISMATCH: Status(
        422,
        grpc.StatusCode.INVALID_ARGUMENT,
        "Some amounts are not quantity times unit price",
    ),
    ErrorCode.IMPLAUSIBLE_QUANTITY: Status(
        422, grpc.StatusCode.INVALID_ARGUMENT, "Some daily quantities are implausible"
    ),
    ErrorCode.DATE_OUT_OF_VISIT: Status(
        422, grpc.StatusCode.INVALID_ARGUMENT, "Some lines are dated outside the visit"
    ),
    ErrorCode.DUPLICATE_CLAIM: Status(
        409,
        grpc.StatusCode.ALREADY_EXISTS,
        "The same bill was settled before for this member",
    ),
    ErrorCode.SPLIT_ADMISSION: Status(
        409,
        grpc.StatusCode.FAILED_PRECONDITION,
        "A readmission for a related diagnosis soon after a discharge",
    ),
    ErrorCode.CONCURRENT_VISIT: Status(
        409,
        grpc.StatusCode.FAILED_PRECONDITION,
        "An outpatient visit elsewhere on a day of an inpatient stay",
    ),
    ErrorCode.QUANTITY_LIMIT: Status(
        422, grpc.StatusCode.FAILED_PRECONDITION, "Some items are over their quantity limits"
    ),
    ErrorCode.SEX_RESTRICTED: Status(
        422, grpc.StatusCode.FAILED_PRECONDITION, "Some items are for the other sex"
    ),
    ErrorCode.AGE_RESTRICTED: Status(
        422, grpc.StatusCode.FAILED_PRECONDITION, "Some items are for another age"
    ),
    ErrorCode.PAPER_BED: Status(
        422,
        grpc.StatusCode.FAILED_PRECONDITION,
        "Days of the stay carry a bed fee and nothing else",
    ),
    ErrorCode.REVIEW_DECIDED: Status(
        409, grpc.StatusCode.FAILED_PRECONDITION, "The review was decided before"
    ),
    ErrorCode.SETTLEMENT_RECOVERED: Status(
        409,
        grpc.StatusCode.FAILED_PRECONDITION,
        "The agency recovered from this settlement: it is no longer reversed",
    ),
    ErrorCode.RATE_LIMITED: Status(
        429, grpc.StatusCode.RESOURCE_EXHAUSTED, "Too many requests: wait, then send again"
    ),
    ErrorCode.INTERNAL_ERROR: Status(
        500,
        grpc.StatusCode.INTERNAL,
        "The service failed and logged why; the same request may be sent again safely",
    ),
    ErrorCode.UNAVAILABLE: Status(
        503,
        grpc.StatusCode.UNAVAILABLE,
        "A dependency is unavailable: nothing was settled, retry the same request",
    ),
    ErrorCode.NO_STATEMENT_FONT: Status(
        503,
        grpc.StatusCode.UNAVAILABLE,
        "The gateway has no CJK font to make a PDF statement with (the HTML one works)",
    ),
}


class Unauthenticated(DomainError):
    """The request is not signed by a known client (contract section 2)."""

    code = ErrorCode.UNAUTHENTICATED


class MethodNotAllowed(DomainError):
    """The path exists but does not take this method."""

    code = ErrorCode.METHOD_NOT_ALLOWED


class TooLarge(DomainError):
    """The body or the bill is over the limit."""

    code = ErrorCode.TOO_LARGE


class HeadersTooLarge(DomainError):
    """The request's headers, or one of the signature headers, are over the limit."""

    code = ErrorCode.HEADERS_TOO_LARGE


class RequestTimeout(DomainError):
    """The request's body did not arrive in time."""

    code = ErrorCode.REQUEST_TIMEOUT


class RateLimited(DomainError):
    """The client sent more than its share; ``retry_after`` says when to send again."""

    code = ErrorCode.RATE_LIMITED

    def __init__(
        self, message: str, problems: tuple[Problem, ...] = (), *, retry_after: float = 1.0
    ) -> None:
        super().__init__(message, problems)
        self.retry_after = retry_after


class DuplicateEnrollment(DomainError):
    """The id number already belongs to another active member."""

    code = ErrorCode.DUPLICATE_ENROLLMENT


class InternalError(DomainError):
    """A service failed in a way no request explains; the failure is logged where it happened.

    Whether the request took effect is not known; sending it again settles at most once.
    """

    code = ErrorCode.INTERNAL_ERROR


class Unavailable(DomainError):
    """A dependency (Redis, the adjudicator) is down, or contention kept the commit out.

    Nothing was settled; the caller may retry the same request.
    """

    code = ErrorCode.UNAVAILABLE


class NoStatementFont(DomainError):
    """The gateway cannot make a PDF statement: it has no CJK font to embed.

    Nothing was changed; the HTML statement needs no font.
    """

    code = ErrorCode.NO_STATEMENT_FONT


_CLASSES: dict[ErrorCode, type[DomainError]] = {
    cls.code: cls
    for cls in (
        MalformedDocument,
        InvalidDocument,
        Unauthenticated,
        Forbidden,
        MemberNotEligible,
        NotFound,
        UnknownMember,
        NoPolicy,
        MethodNotAllowed,
        VisitAlreadySettled,
        OverlappingStay,
        RiskyMappingChange,
        DuplicateEnrollment,
        TooLarge,
        HeadersTooLarge,
        RequestTimeout,
        RateLimited,
        InternalError,
        Unavailable,
        ReviewDecided,
        SettlementRecovered,
        NoStatementFont,
    )
}


def refusal_of(code: ErrorCode, message: str, problems: tuple[Problem, ...] = ()) -> DomainError:
    """The typed refusal for ``code``: the exception its raiser would have raised."""
    if code in BILL_CODES and code is not ErrorCode.INVALID:
        return BillRejected(code, message, problems)
    if code in CONTROL_CODES:
        return ControlRefused(code, message, problems)
    return _CLASSES[code](message, problems)
