"""The agency's view of a day as it happens: what was settled, and what was refused.

The console (:mod:`gateway.console`) shows the same figures, taken from the same functions.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter

from gateway import convert
from gateway.dependencies import AgencyDep, GatewayDep
from gateway.errors import SIGNED, refusals
from gateway.routers.admin import ClientFilter, DayQuery
from gateway.schemas import DayRefusalsOut, DayTotalsOut
from gateway.service import Gateway
from onestop.clock import day_closes_ms, settlement_day
from onestop.domain.errors import ErrorCode

router = APIRouter(prefix="/v1/admin", tags=["activity"])


async def day_totals(gateway: Gateway, day: date, client_id: str = "") -> DayTotalsOut:
    """A day's settled figures, in all, per visit type and per client (of one, or all).

    Read again at most every 5 seconds per process (a closed day: every hour), however many
    pages and calls ask: each read costs 1,024 hash reads per client.
    """
    kept = gateway.day_totals_cache.get(day, client_id)
    if isinstance(kept, DayTotalsOut):
        return kept
    found = await gateway.adjudicator.day_totals(day, client_id)
    listed, _ = await gateway.adjudicator.list_clients()
    clients = {client.client_id: client for client in listed}
    now = gateway.clock()
    closed = settlement_day(now) > day
    figures = convert.day_totals_out(day, closed, found, clients)
    settled_for_good = closed and now >= day_closes_ms(day) + gateway.export_grace_seconds * 1000
    gateway.day_totals_cache.put(day, client_id, figures, closed=settled_for_good)
    return figures


async def day_refusals(gateway: Gateway, day: date) -> DayRefusalsOut:
    """A day's refusal counts, every gateway process together."""
    return convert.day_refusals_out(day, await gateway.refusals.day(day))


@router.get(
    "/day-totals",
    response_model=DayTotalsOut,
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN),
)
async def get_day_totals(
    caller: AgencyDep, gateway: GatewayDep, day: DayQuery, client_id: ClientFilter = None
) -> DayTotalsOut:
    """What each hospital and pharmacy settled on a day, by visit type; the day's sums.

    Counts, and each reconciled fund settled that day minus what that day's reversals gave
    back: the figures each client's reconciliation compares (contract section 6).
    """
    return await day_totals(gateway, day, client_id or "")


@router.get(
    "/refusals",
    response_model=DayRefusalsOut,
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN),
)
async def get_refusals(caller: AgencyDep, gateway: GatewayDep, day: DayQuery) -> DayRefusalsOut:
    """How many answers of each refusal code a day saw, every gateway process together.

    Counted after each refused or failed answer (kept 40 days); a count lost to a Redis
    outage is still in the gateway's metrics.
    """
    return await day_refusals(gateway, day)
