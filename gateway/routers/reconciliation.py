"""Daily reconciliation (对账) of a hospital's or pharmacy's own figures."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.dependencies import GatewayDep, ProviderDep
from gateway.errors import BODY, SIGNED, refusals
from gateway.schemas import ReconciliationRequest, ReconciliationResult
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
    return ReconciliationResult.model_validate(
        reconcile(gateway_day, theirs, gateway_ids, figures.settlement_ids)
    )
