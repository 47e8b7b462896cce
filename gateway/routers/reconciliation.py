"""Daily reconciliation (对账) of a hospital's or pharmacy's own figures."""

from __future__ import annotations

from fastapi import APIRouter

from gateway import convert
from gateway.dependencies import GatewayDep, ProviderDep
from gateway.errors import BODY, SIGNED, refusals
from gateway.schemas import ReconciliationRequest, ReconciliationResult
from onestop.clock import day_closes_ms
from onestop.domain.errors import ErrorCode
from onestop.domain.reconciliation import Outcome

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])


@router.post(
    "",
    response_model=ReconciliationResult,
    responses=refusals(*SIGNED, *BODY, ErrorCode.FORBIDDEN),
)
async def reconciliation(
    figures: ReconciliationRequest, caller: ProviderDep, gateway: GatewayDep
) -> ReconciliationResult:
    """对账: the client's own day against the gateway's.

    Compared in totals, per visit type and scheme (`groups`), and one by one by id
    (`settlement_ids`) or by id and amount (`settlement_amounts`).

    Every answer is kept: the agency sees who balanced (`GET /v1/admin/reconciliations`).
    """
    provisional = gateway.clock() < day_closes_ms(figures.date)
    hospital = figures.hospital_day()
    answer, _ = await gateway.adjudicator.reconcile(
        caller.client_id, figures.date, hospital, provisional=provisional
    )
    notes = []
    if (
        answer.outcome is Outcome.UNBALANCED
        and answer.gateway.is_empty()
        and not hospital.totals.is_empty()
    ):
        notes.append(
            f"onestop has nothing of yours committed on {figures.date} (Asia/Shanghai, UTC+8). "
            "A settlement day runs from 00:00 to 24:00 Beijing time: a date taken from a UTC "
            "clock is the day before for everything settled between 00:00 and 08:00, and "
            "settlements are counted on the day they were committed, reversals on theirs"
        )
    if any(group.key.visit_type is None for group in answer.groups):
        notes.append(
            "part of this day was settled before onestop recorded visit types and schemes: "
            "its figures are the group whose visit_type and scheme are null"
        )
    return convert.reconciliation_result(answer, provisional=provisional, notes=notes)
