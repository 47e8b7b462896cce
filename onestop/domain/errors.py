"""Refusals: the contract's error codes (contract section 5) and the exceptions that carry them.

:class:`ErrorCode` is the one list of codes. Each refusal is an exception whose class names
what happened and carries its code; the status each code answers with (HTTP, gRPC) and its
title are in one table outside the domain (:mod:`onestop.errors`), so nothing here knows about
a transport. A refusal changes nothing: whoever raises one has written nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Every code a refusal can carry (contract section 5)."""

    MALFORMED = "MALFORMED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    MEMBER_NOT_ELIGIBLE = "MEMBER_NOT_ELIGIBLE"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN_MEMBER = "UNKNOWN_MEMBER"
    NO_POLICY = "NO_POLICY"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    VISIT_ALREADY_SETTLED = "VISIT_ALREADY_SETTLED"
    OVERLAPPING_STAY = "OVERLAPPING_STAY"
    RISKY_MAPPING_CHANGE = "RISKY_MAPPING_CHANGE"
    DUPLICATE_ENROLLMENT = "DUPLICATE_ENROLLMENT"
    TOO_LARGE = "TOO_LARGE"
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
    INVALID = "INVALID"
    UNMAPPED_CODES = "UNMAPPED_CODES"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    IMPLAUSIBLE_QUANTITY = "IMPLAUSIBLE_QUANTITY"
    DATE_OUT_OF_VISIT = "DATE_OUT_OF_VISIT"
    DUPLICATE_CLAIM = "DUPLICATE_CLAIM"
    SPLIT_ADMISSION = "SPLIT_ADMISSION"
    CONCURRENT_VISIT = "CONCURRENT_VISIT"
    QUANTITY_LIMIT = "QUANTITY_LIMIT"
    SEX_RESTRICTED = "SEX_RESTRICTED"
    AGE_RESTRICTED = "AGE_RESTRICTED"
    PAPER_BED = "PAPER_BED"
    REVIEW_DECIDED = "REVIEW_DECIDED"
    SETTLEMENT_RECOVERED = "SETTLEMENT_RECOVERED"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    UNAVAILABLE = "UNAVAILABLE"
    NO_STATEMENT_FONT = "NO_STATEMENT_FONT"


BILL_CODES = (
    ErrorCode.UNMAPPED_CODES,
    ErrorCode.AMOUNT_MISMATCH,
    ErrorCode.IMPLAUSIBLE_QUANTITY,
    ErrorCode.DATE_OUT_OF_VISIT,
    ErrorCode.INVALID,
)
"""The codes a refused bill can carry (:class:`BillRejected`)."""

CONTROL_CODES = (
    ErrorCode.DUPLICATE_CLAIM,
    ErrorCode.SPLIT_ADMISSION,
    ErrorCode.CONCURRENT_VISIT,
    ErrorCode.QUANTITY_LIMIT,
    ErrorCode.SEX_RESTRICTED,
    ErrorCode.AGE_RESTRICTED,
    ErrorCode.PAPER_BED,
)
"""The codes of the controls across visits (:class:`ControlRefused`, domain section 18)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request or a document.

    Attributes:
        code: the error code for this problem (``AMOUNT_MISMATCH``...).
        message: a sentence a HIS vendor or an agency clerk can act on.
        field: the field at fault, as a dotted path (``inpatient.ratio.level3``), if known.
        line_no: the bill line at fault, for bills.
        his_code: the HIS item code of that line, for bills.
        row: the 1-based row of a CSV file or line of a JSON Lines file, for uploads.
    """

    code: ErrorCode
    message: str
    field: str | None = None
    line_no: int | None = None
    his_code: str | None = None
    row: int | None = None


class DomainError(Exception):
    """Base of every refusal: a code, a message to act on, and the problems in detail.

    Attributes:
        code: the refusal's :class:`ErrorCode` (set by each subclass).
        message: what is wrong and how to fix it.
        problems: each offending line, field or row, when there are several.
    """

    code: ErrorCode = ErrorCode.INVALID

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


class InvalidDocument(DomainError):
    """A request, policy, catalog, mapping or member document breaks the contract's rules."""

    code = ErrorCode.INVALID


class MalformedDocument(InvalidDocument):
    """A body or file is not JSON, YAML, CSV or JSON Lines of the expected shape."""

    code = ErrorCode.MALFORMED


class BillRejected(DomainError):
    """A bill failed the gateway's checks; ``problems`` lists every offending line.

    The code is the first failing check's (one of :data:`BILL_CODES`), so it is set per
    refusal rather than per class.
    """

    def __init__(self, code: ErrorCode, message: str, problems: tuple[Problem, ...]) -> None:
        if code not in BILL_CODES:
            raise ValueError(f"{code} is not a code of a refused bill")
        super().__init__(message, problems)
        self.code = code


class Forbidden(DomainError):
    """This client may not do this (wrong kind of client, or not registered to)."""

    code = ErrorCode.FORBIDDEN


class VisitNotAllowed(Forbidden):
    """This kind of client may not settle this kind of visit."""


class MemberNotEligible(DomainError):
    """The member is suspended or deceased: nothing may be settled."""

    code = ErrorCode.MEMBER_NOT_ELIGIBLE


class NotFound(DomainError):
    """No such settlement (or mapping), or not the caller's."""

    code = ErrorCode.NOT_FOUND


class UnknownMember(DomainError):
    """No member has this id."""

    code = ErrorCode.UNKNOWN_MEMBER


class NoPolicy(DomainError):
    """No policy is loaded for the member's region, scheme and the visit's year."""

    code = ErrorCode.NO_POLICY


class VisitAlreadySettled(DomainError):
    """The visit is settled (and not reversed) with a different request."""

    code = ErrorCode.VISIT_ALREADY_SETTLED


class OverlappingStay(DomainError):
    """The stay overlaps another active inpatient stay of the member."""

    code = ErrorCode.OVERLAPPING_STAY


class RiskyMappingChange(DomainError):
    """A mapping upload moves codes to items of another kind or category, unconfirmed."""

    code = ErrorCode.RISKY_MAPPING_CHANGE


class ControlRefused(DomainError):
    """A control the region set to refuse found the visit at fault; nothing was settled.

    The code is the first refusing control's (one of :data:`CONTROL_CODES`); ``problems``
    lists every refusing finding with its own code, and its lines.
    """

    def __init__(self, code: ErrorCode, message: str, problems: tuple[Problem, ...]) -> None:
        if code not in CONTROL_CODES:
            raise ValueError(f"{code} is not a code of a control")
        super().__init__(message, problems)
        self.code = code


class SettlementRecovered(DomainError):
    """The agency recovered from the settlement after review: it is no longer reversed."""

    code = ErrorCode.SETTLEMENT_RECOVERED


class ReviewDecided(DomainError):
    """The review was decided before, otherwise: a decision is made once."""

    code = ErrorCode.REVIEW_DECIDED
