"""What operators and verifiers call: health probes and the receipt-signing keys."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gateway.dependencies import GatewayDep
from gateway.errors import problem_response, refusals
from gateway.schemas import Health, Keys
from onestop import metrics
from onestop.domain.errors import ErrorCode, NotFound
from onestop.errors import Unavailable
from onestop.redis_client import is_redis_failure

router = APIRouter()


@router.get(
    "/health",
    tags=["operations"],
    response_model=Health,
    responses=refusals(ErrorCode.INVALID, ErrorCode.INTERNAL_ERROR, ErrorCode.UNAVAILABLE),
)
async def health(
    gateway: GatewayDep,
    scope: Annotated[
        Literal["settle", "process"],
        Query(
            description="settle (default): the adjudicator and Redis answer too; process: "
            "this process serves requests (a liveness probe: a Redis outage must not "
            "restart the gateways)"
        ),
    ] = "settle",
) -> Any:
    """200 once the gateway can settle (the adjudicator and Redis answer)."""
    if scope == "process":
        return Health(status="ok")
    try:
        redis_ok = bool(await gateway.redis.ping())
    except Exception as error:
        if not is_redis_failure(error):
            raise
        redis_ok = False
    if redis_ok and await gateway.adjudicator.serving():
        return Health(status="ok")
    return problem_response(Unavailable("the adjudicator or Redis is down"))


@router.get("/metrics", tags=["operations"], include_in_schema=False)
async def metrics_exposition(request: Request, gateway: GatewayDep) -> Response:
    """The gateway's metrics in the Prometheus text format, to the networks allowed.

    Another network is answered 404, as a path that does not exist: the figures name clients
    and the fen they settled, for the agency's monitoring only.
    """
    client = request.client
    if not gateway.metrics_allowed(client.host if client else ""):
        return problem_response(NotFound(f"no such path: {request.url.path}"))
    body = await run_in_threadpool(metrics.exposition)
    return Response(body, media_type=metrics.CONTENT_TYPE)


@router.get(
    "/v1/keys",
    tags=["receipts"],
    response_model=Keys,
    responses=refusals(ErrorCode.INTERNAL_ERROR),
)
async def receipt_keys(gateway: GatewayDep) -> Keys:
    """Every key that ever signed a receipt, to verify any receipt. No signature needed."""
    return Keys.model_validate({"keys": gateway.signer.published()})
