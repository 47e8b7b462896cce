"""``POST /fsi/api/{infno}`` and ``POST /fsi/api``: the national interface's one door.

Authenticated as every call is (contract section 2: a failure is a 401 problem+json and
nothing national is read); every other answer is HTTP 200 with the national envelope,
``infcode`` 0 or -1 (contract section 9).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from gateway.dependencies import GatewayDep, ProviderDep
from gateway.errors import SIGNED, refusals
from gateway.national.service import NationalService
from gateway.national.store import NationalStore
from onestop.domain.errors import ErrorCode

router = APIRouter(prefix="/fsi/api", tags=["national interface"])

InfnoPath = Annotated[
    str, Path(description="the transaction number; checked against the envelope's infno")
]
"""Any text: a path naming no served transaction is answered ``infcode -1`` like any other."""

_ENVELOPE: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "the national request envelope"},
                "example": {
                    "infno": "1101",
                    "msgid": "H41010000001202603091015000001",
                    "mdtrtarea_admvs": "410100",
                    "insuplc_admdvs": "",
                    "recer_sys_code": "YBXT",
                    "infver": "V1.0",
                    "opter_type": "1",
                    "opter": "0001",
                    "opter_name": "收费员",
                    "inf_time": "2026-03-09 10:15:00",
                    "fixmedins_code": "H41010000001",
                    "fixmedins_name": "省人民医院",
                    "sign_no": "",
                    "input": {
                        "data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "410102198001011234"}
                    },
                },
            }
        },
    }
}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the national answer envelope: infcode 0, or -1 with err_msg",
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "example": {
                    "infcode": -1,
                    "inf_refmsgid": "410100202603091015000000000001",
                    "refmsg_time": "20260309101500123",
                    "respond_time": "20260309101500130",
                    "err_msg": "input.data.mdtrt_cert_type: 01 is not served ...",
                    "warn_msg": None,
                    "cainfo": None,
                    "signtype": None,
                    "output": {},
                },
            }
        },
    },
    **refusals(*SIGNED, ErrorCode.FORBIDDEN, ErrorCode.TOO_LARGE, ErrorCode.REQUEST_TIMEOUT),
}


def _service(request: Request, gateway: GatewayDep) -> NationalService:
    national: NationalService | None = getattr(request.app.state, "national", None)
    if national is None or national.gateway is not gateway:
        national = NationalService(
            gateway, NationalStore(gateway.redis), gateway.national_profile, gateway.clock
        )
        request.app.state.national = national
    return national


def _answer(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.post("/{infno}", response_class=Response, responses=_ANSWERS, openapi_extra=_ENVELOPE)
async def national_transaction(
    infno: InfnoPath, request: Request, caller: ProviderDep, gateway: GatewayDep
) -> Response:
    """A national transaction (infno in the path and in the envelope, equal)."""
    body = await request.body()
    return _answer(await _service(request, gateway).handle(caller, body, infno))


@router.post("", response_class=Response, responses=_ANSWERS, openapi_extra=_ENVELOPE)
async def national_message(request: Request, caller: ProviderDep, gateway: GatewayDep) -> Response:
    """A national transaction, its infno taken from the envelope."""
    body = await request.body()
    return _answer(await _service(request, gateway).handle(caller, body, None))
