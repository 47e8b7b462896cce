"""Settling: preview (预结算), settle (结算), read, reverse (撤销)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from gateway.dependencies import CallerDep, GatewayDep, ProviderDep
from gateway.errors import BODY, SIGNED, refusals
from gateway.schemas import SETTLE_EXAMPLE, SettlementResult
from onestop.domain.bill import VisitRequest
from onestop.domain.errors import ErrorCode

router = APIRouter(prefix="/v1/settlements", tags=["settlements"])

SettlementIdPath = Annotated[str, Path(min_length=1, max_length=64)]

_BILL = (
    *SIGNED,
    *BODY,
    ErrorCode.FORBIDDEN,
    ErrorCode.MEMBER_NOT_ELIGIBLE,
    ErrorCode.UNKNOWN_MEMBER,
    ErrorCode.NO_POLICY,
    ErrorCode.UNMAPPED_CODES,
    ErrorCode.AMOUNT_MISMATCH,
    ErrorCode.IMPLAUSIBLE_QUANTITY,
    ErrorCode.DATE_OUT_OF_VISIT,
)
_SETTLE_BODY: dict[str, Any] = {
    "requestBody": {"content": {"application/json": {"example": SETTLE_EXAMPLE}}}
}


def _receipt(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


@router.post(
    "/preview",
    response_model=SettlementResult,
    responses=refusals(*_BILL),
    openapi_extra=_SETTLE_BODY,
)
async def preview(
    request: Request, visit: VisitRequest, caller: ProviderDep, gateway: GatewayDep
) -> Response:
    """预结算: the settlement as it would be; nothing is committed."""
    message = await gateway.settle(caller, visit, await request.body(), preview=True)
    return _receipt(gateway.receipt(message))


@router.post(
    "",
    status_code=201,
    response_model=SettlementResult,
    responses={
        200: {
            "model": SettlementResult,
            "description": "the identical request again: the original settlement, replayed: true",
        },
        **refusals(*_BILL, ErrorCode.VISIT_ALREADY_SETTLED, ErrorCode.OVERLAPPING_STAY),
    },
    openapi_extra=_SETTLE_BODY,
)
async def settle(
    request: Request, visit: VisitRequest, caller: ProviderDep, gateway: GatewayDep
) -> Response:
    """结算: settle and commit, at most once per (client, visit)."""
    message = await gateway.settle(caller, visit, await request.body(), preview=False)
    return _receipt(gateway.receipt(message), 200 if message.replayed else 201)


@router.get(
    "/{settlement_id}",
    response_model=SettlementResult,
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.NOT_FOUND),
)
async def get_settlement(
    settlement_id: SettlementIdPath, caller: CallerDep, gateway: GatewayDep
) -> Response:
    """One settlement; another client's answers 404."""
    message = await gateway.adjudicator.get(settlement_id, gateway.owner_filter(caller))
    return _receipt(gateway.receipt(message))


@router.post(
    "/{settlement_id}/reversal",
    response_model=SettlementResult,
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.NOT_FOUND),
)
async def reverse(
    settlement_id: SettlementIdPath, caller: CallerDep, gateway: GatewayDep
) -> Response:
    """撤销: undo exactly what the settlement added; asking again answers the same."""
    message = await gateway.adjudicator.reverse(settlement_id, gateway.owner_filter(caller))
    return _receipt(gateway.receipt(message))
