"""The domain's exceptions. Each carries the contract's error code (contract section 5).

Transports map these to gRPC status codes and HTTP problem+json, each in exactly one place;
nothing in the domain knows about either.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request or a document.

    Attributes:
        code: the contract's error code for this problem (``AMOUNT_MISMATCH``...).
        message: a sentence a HIS vendor or an agency clerk can act on.
        field: the field at fault, as a dotted path (``inpatient.ratio.level3``), if known.
        line_no: the bill line at fault, for bills.
        his_code: the HIS item code of that line, for bills.
        row: the 1-based row of a CSV file or line of a JSON Lines file, for uploads.
    """

    code: str
    message: str
    field: str | None = None
    line_no: int | None = None
    his_code: str | None = None
    row: int | None = None


class DomainError(Exception):
    """Base of every refusal the settlement rules can produce."""

    code: str = "INVALID"

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


class InvalidDocument(DomainError):
    """A policy, catalog, mapping or member document breaks the contract's rules."""

    code = "INVALID"


class MalformedDocument(InvalidDocument):
    """A body or file is not JSON, YAML, CSV or JSON Lines of the expected shape."""

    code = "MALFORMED"


class BillRejected(DomainError):
    """A bill failed the gateway's checks; ``problems`` lists every offending line."""

    def __init__(self, code: str, message: str, problems: tuple[Problem, ...]) -> None:
        super().__init__(message, problems)
        self.code = code


class MemberNotEligible(DomainError):
    """The member is suspended or deceased: nothing may be settled."""

    code = "MEMBER_NOT_ELIGIBLE"


class VisitNotAllowed(DomainError):
    """This kind of client may not settle this kind of visit."""

    code = "FORBIDDEN"
