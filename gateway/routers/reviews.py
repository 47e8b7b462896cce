"""The agency's review queue: settlements the controls flagged, and decisions on them.

The controls across visits (domain section 18) settle and flag, or settle and deduct; each
flagged settlement waits here for the agency, which accepts it or recovers an amount from
the client. A decision is made once and never rewrites the settlement: a recovery is its own
row of the decision day's export and reconciliation.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from gateway import convert
from gateway.dependencies import AgencyDep, GatewayDep
from gateway.errors import BODY, SIGNED, refusals
from gateway.routers.admin import ClientFilter, DayQuery
from gateway.schemas import ReviewDecisionIn, ReviewOut
from onestop.domain.errors import ErrorCode

router = APIRouter(prefix="/v1/admin", tags=["reviews"])

SettlementIdPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.get(
    "/reviews",
    response_model=list[ReviewOut],
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN),
)
async def reviews(
    caller: AgencyDep,
    gateway: GatewayDep,
    day: DayQuery,
    status: Annotated[
        Literal["open", "accepted", "recovered"] | None,
        Query(description="one status only (open: not decided yet)"),
    ] = None,
    client_id: ClientFilter = None,
) -> list[ReviewOut]:
    """The settlements the controls flagged on a day (their settlement day), in order.

    Each with its findings (control, action, message, lines, the earlier settlement it rests
    on), what the funds paid, and the decision once made.
    """
    found = await gateway.adjudicator.reviews(day, status or "", client_id or "")
    return [convert.review_out(review) for review in found]


@router.post(
    "/reviews/{settlement_id}/decision",
    response_model=ReviewOut,
    responses=refusals(
        *SIGNED, *BODY, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, ErrorCode.REVIEW_DECIDED
    ),
)
async def decide(
    settlement_id: SettlementIdPath,
    decision: ReviewDecisionIn,
    caller: AgencyDep,
    gateway: GatewayDep,
) -> ReviewOut:
    """Decide a flagged settlement once: `accept` it, or `recover` an amount from the client.

    Who decided (the agency's client id, and `reviewer` when given) and when are kept. The
    same decision sent again answers the review as decided; another one is refused
    (`409 REVIEW_DECIDED`). A recovery is at most what the funds paid, and none is made on a
    reversed settlement (`422 INVALID`).
    """
    reviewer = caller.client_id
    if decision.reviewer is not None:
        reviewer = f"{caller.client_id}:{decision.reviewer}"
    decided = await gateway.adjudicator.decide_review(
        settlement_id, decision.decision, decision.amount, reviewer, decision.reason
    )
    return convert.review_out(decided)


@router.get(
    "/recoveries",
    response_model=list[ReviewOut],
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN),
)
async def recoveries(
    caller: AgencyDep,
    gateway: GatewayDep,
    day: DayQuery,
    client_id: ClientFilter = None,
) -> list[ReviewOut]:
    """The recoveries decided on a day (the decision's day), in the order decided."""
    found = await gateway.adjudicator.recoveries(day, client_id or "")
    return [convert.review_out(review) for review in found]
