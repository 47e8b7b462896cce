"""Members: the entitlement check at the window (待遇检查), by member id or by id number.

Every check is kept in an audit trail the agency reads (``GET /v1/admin/lookups``). A client
that keeps naming members nobody has is slowed down (429), so that ids cannot be tried one
by one; the answers show the identity masked.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from gateway import convert
from gateway.dependencies import CallerDep, GatewayDep
from gateway.errors import BODY, SIGNED, refusals
from gateway.schemas import EligibilityResult, LookupRequest
from onestop.clock import today
from onestop.domain.errors import ErrorCode

router = APIRouter(prefix="/v1/members", tags=["members"])

_LOOKUP_REFUSALS = (*SIGNED, ErrorCode.INVALID, ErrorCode.UNKNOWN_MEMBER, ErrorCode.NO_POLICY)


@router.get(
    "/{member_id}/eligibility",
    response_model=EligibilityResult,
    responses=refusals(*_LOOKUP_REFUSALS),
)
async def eligibility(
    member_id: Annotated[str, Path(min_length=1, max_length=64)],
    caller: CallerDep,
    gateway: GatewayDep,
    day: Annotated[date | None, Query(alias="date", description="YYYY-MM-DD (today)")] = None,
) -> EligibilityResult:
    """待遇检查: the member's entitlement on a day, identity masked."""
    await gateway.unknown_members.check(caller.client_id)
    async with gateway.counting_unknown_members(caller):
        answer = await gateway.adjudicator.eligibility(member_id, day or today(), caller.client_id)
    return convert.eligibility_result(answer)


@router.post(
    "/lookup",
    response_model=EligibilityResult,
    responses=refusals(*_LOOKUP_REFUSALS, *BODY),
)
async def lookup(
    request: LookupRequest, caller: CallerDep, gateway: GatewayDep
) -> EligibilityResult:
    """待遇检查 by what the patient presents: the id number, in the body.

    The number is never in a URL, a log or the audit trail (its keyed digest is). Answers the
    member id and the entitlement, identity masked.
    """
    await gateway.unknown_members.check(caller.client_id)
    async with gateway.counting_unknown_members(caller):
        answer = await gateway.adjudicator.lookup(
            request.id_number, request.date or today(), caller.client_id
        )
    return convert.eligibility_result(answer)
