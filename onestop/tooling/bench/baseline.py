"""The bare baseline the product is measured against, in the same HTTP server.

One FastAPI endpoint that validates the same request body with the same pydantic model and
does one Redis ``INCR``: the least any settlement service must do. ``onestop bench`` serves
it with the same uvicorn settings and worker count as the gateway.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from onestop.domain.bill import VisitRequest
from onestop.redis_client import RedisClient, connect
from onestop.storage.layout import PREFIX


def create_baseline(redis_url: str) -> FastAPI:
    """The baseline application."""
    state: dict[str, RedisClient] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["redis"] = await connect(redis_url, timeout_seconds=5, wait_seconds=30)
        yield
        await state["redis"].aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/settlements", status_code=201)
    async def settle(visit: VisitRequest) -> dict[str, Any]:
        count = await state["redis"].incr(f"{PREFIX}:bench:baseline")
        return {"visit_id": visit.visit_id, "count": count}

    return app


def baseline_from_environment() -> FastAPI:
    """The baseline for ``ONESTOP_BASELINE_REDIS_URL`` (what each worker process builds)."""
    return create_baseline(os.environ["ONESTOP_BASELINE_REDIS_URL"])


def main() -> None:
    """Serve the baseline: ``ONESTOP_BASELINE_PORT`` and ``ONESTOP_BASELINE_WORKERS``."""
    workers = int(os.environ.get("ONESTOP_BASELINE_WORKERS", "1"))
    uvicorn.run(
        "onestop.tooling.bench.baseline:baseline_from_environment",
        factory=True,
        workers=workers,
        host="127.0.0.1",
        port=int(os.environ["ONESTOP_BASELINE_PORT"]),
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
