"""Members: the entitlement check at the window (待遇检查)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from gateway import convert
from gateway.dependencies import CallerDep, GatewayDep
from gateway.errors import SIGNED, refusals
from gateway.schemas import EligibilityResult
from onestop.clock import today
from onestop.domain.errors import ErrorCode

router = APIRouter(prefix="/v1/members", tags=["members"])


@router.get(
    "/{member_id}/eligibility",
    response_model=EligibilityResult,
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.UNKNOWN_MEMBER, ErrorCode.NO_POLICY),
)
async def eligibility(
    member_id: Annotated[str, Path(min_length=1, max_length=64)],
    caller: CallerDep,
    gateway: GatewayDep,
    day: Annotated[date | None, Query(alias="date", description="YYYY-MM-DD (today)")] = None,
) -> EligibilityResult:
    """待遇检查: the member's entitlement on a day, identity masked."""
    answer = await gateway.adjudicator.eligibility(member_id, day or today())
    return convert.eligibility_result(answer)
