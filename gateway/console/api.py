"""The signed call that issues a one-time console login link to the agency."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.console import PREFIX
from gateway.dependencies import AgencyDep, GatewayDep
from gateway.errors import SIGNED, refusals
from gateway.schemas import ConsoleLoginOut
from onestop.domain.errors import ErrorCode

router = APIRouter(prefix="/v1/admin/console", tags=["console"])


@router.post(
    "/sessions",
    status_code=201,
    response_model=ConsoleLoginOut,
    responses=refusals(*SIGNED, ErrorCode.FORBIDDEN),
)
async def issue_login(caller: AgencyDep, gateway: GatewayDep) -> ConsoleLoginOut:
    """A one-time link that opens the agency console in a browser (`onestop console-login`).

    The link works once, within `expires_in_seconds`; the session it opens lasts while used
    (15 minutes idle, 8 hours at most by default) and ends when the agency's key changes.
    """
    code = await gateway.console.issue_code(caller)
    return ConsoleLoginOut(
        login_path=f"{PREFIX}/login/{code}",
        expires_in_seconds=gateway.console.settings.login_seconds,
    )
