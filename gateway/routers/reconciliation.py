"""Daily reconciliation (对账) of a hospital's or pharmacy's own figures."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.dependencies import GatewayDep, ProviderDep
from gateway.errors import BODY, SIGNED, refusals
from gateway.schemas import ReconciliationRequest, ReconciliationResult
from onestop.clock import day_closes_ms
from onestop.domain.errors import ErrorCode
from onestop.domain.reconciliation import DayFigures, reconcile

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])


@router.post(
    "",
    response_model=ReconciliationResult,
    responses=refusals(*SIGNED, *BODY, ErrorCode.FORBIDDEN),
)
async def reconciliation(
    figures: ReconciliationRequest, caller: ProviderDep, gateway: GatewayDep
) -> ReconciliationResult:
    """对账: the client's own day against the gateway's (with ids: one by one)."""
    gateway_day, gateway_ids = await gateway.adjudicator.day_figures(
        caller.client_id, figures.date, with_settlement_ids=figures.settlement_ids is not None
    )
    theirs = DayFigures(figures.settlements, figures.reversals, figures.amounts.model_dump())
    answer = reconcile(gateway_day, theirs, gateway_ids, figures.settlement_ids)
    now = gateway.clock()
    notes = []
    if answer["result"] == "unbalanced" and gateway_day.is_empty() and not theirs.is_empty():
        notes.append(
            f"onestop has nothing of yours committed on {figures.date} (Asia/Shanghai, UTC+8). "
            "A settlement day runs from 00:00 to 24:00 Beijing time: a date taken from a UTC "
            "clock is the day before for everything settled between 00:00 and 08:00, and "
            "settlements are counted on the day they were committed, reversals on theirs"
        )
    return ReconciliationResult.model_validate(
        {**answer, "provisional": now < day_closes_ms(figures.date), "notes": notes}
    )
