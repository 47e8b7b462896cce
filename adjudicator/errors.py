"""The adjudicator's exceptions, and their one mapping to gRPC status codes.

Every refusal carries the contract's error code (contract section 5). The servicer turns an
exception into a status with :func:`grpc_status_of`; nothing else chooses status codes.
"""

from __future__ import annotations

import grpc

from onestop.domain.errors import DomainError, Problem


class AdjudicatorError(DomainError):
    """Base of the refusals the service adds to the domain's."""


class UnknownMember(AdjudicatorError):
    """No member has this id."""

    code = "UNKNOWN_MEMBER"


class NoPolicy(AdjudicatorError):
    """No policy is loaded for the member's region, scheme and the visit's year."""

    code = "NO_POLICY"


class NotFound(AdjudicatorError):
    """No such settlement, or not the caller's."""

    code = "NOT_FOUND"


class UnknownClient(AdjudicatorError):
    """The client is not registered."""

    code = "FORBIDDEN"


class VisitAlreadySettled(AdjudicatorError):
    """The visit is settled (and not reversed) with a different request."""

    code = "VISIT_ALREADY_SETTLED"


class OverlappingStay(AdjudicatorError):
    """The stay overlaps another active inpatient stay of the member."""

    code = "OVERLAPPING_STAY"


class RiskyMappingChange(AdjudicatorError):
    """A mapping upload moves codes to items of another kind or category, unconfirmed."""

    code = "RISKY_MAPPING_CHANGE"


class Unavailable(AdjudicatorError):
    """A dependency (Redis) cannot be reached, or contention did not let the commit through.

    Nothing was settled; the caller may retry the same request.
    """

    code = "UNAVAILABLE"


CODE_METADATA_KEY = "onestop-code"
PROBLEMS_METADATA_KEY = "onestop-problems-bin"

_STATUS_BY_CODE: dict[str, grpc.StatusCode] = {
    "MALFORMED": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "UNMAPPED_CODES": grpc.StatusCode.INVALID_ARGUMENT,
    "AMOUNT_MISMATCH": grpc.StatusCode.INVALID_ARGUMENT,
    "IMPLAUSIBLE_QUANTITY": grpc.StatusCode.INVALID_ARGUMENT,
    "DATE_OUT_OF_VISIT": grpc.StatusCode.INVALID_ARGUMENT,
    "FORBIDDEN": grpc.StatusCode.PERMISSION_DENIED,
    "MEMBER_NOT_ELIGIBLE": grpc.StatusCode.FAILED_PRECONDITION,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "UNKNOWN_MEMBER": grpc.StatusCode.NOT_FOUND,
    "NO_POLICY": grpc.StatusCode.NOT_FOUND,
    "VISIT_ALREADY_SETTLED": grpc.StatusCode.ALREADY_EXISTS,
    "OVERLAPPING_STAY": grpc.StatusCode.FAILED_PRECONDITION,
    "RISKY_MAPPING_CHANGE": grpc.StatusCode.FAILED_PRECONDITION,
    "DUPLICATE_ENROLLMENT": grpc.StatusCode.ALREADY_EXISTS,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
}


def grpc_status_of(error: DomainError) -> grpc.StatusCode:
    """The gRPC status for a refusal with the contract code ``error.code``."""
    return _STATUS_BY_CODE.get(error.code, grpc.StatusCode.INVALID_ARGUMENT)


__all__ = [
    "CODE_METADATA_KEY",
    "PROBLEMS_METADATA_KEY",
    "AdjudicatorError",
    "DomainError",
    "NoPolicy",
    "NotFound",
    "OverlappingStay",
    "Problem",
    "RiskyMappingChange",
    "Unavailable",
    "UnknownClient",
    "UnknownMember",
    "VisitAlreadySettled",
    "grpc_status_of",
]
