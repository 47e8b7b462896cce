"""The gateway's hot copies of the reference data: read at start, before any request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.reference import GatewayReference
from onestop.domain.catalog import catalog_csv
from onestop.tooling.demo.regions import demo_catalog
from onestop.tooling.redis_server import free_port
from tests.support.adjudicator import Adjudicator
from tests.support.gateway import Gateway, open_gateway
from tests.support.scenario import load_demo_world


def _reference(gateway: Gateway) -> GatewayReference:
    app = gateway.server.config.app
    assert isinstance(app, FastAPI)
    reference = app.state.gateway.reference
    assert isinstance(reference, GatewayReference)
    return reference


async def _until(done: Callable[[], bool], seconds: float = 5) -> None:
    """Wait for ``done`` (what the gateway does beside its requests), at most ``seconds``."""
    for _ in range(int(seconds * 100)):
        if done():
            return
        await asyncio.sleep(0.01)


async def test_the_catalog_and_the_registry_are_read_at_start_before_any_request(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    await load_demo_world(adjudicator.stub, [])
    async with open_gateway(adjudicator, redis_url, tmp_path / "keys") as gateway:
        reference = _reference(gateway)
        await _until(lambda: None not in (reference._catalog[0], reference._clients[0]))
        assert set(reference._catalog[1]) == set(demo_catalog())
        assert reference._clients[1]["agency"].kind.value == "agency"


async def test_a_gateway_whose_adjudicator_is_not_up_starts_and_says_so(
    adjudicator: Adjudicator,
    redis_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="onestop.gateway")
    nowhere = f"127.0.0.1:{free_port()}"
    async with open_gateway(adjudicator, redis_url, tmp_path / "keys", target=nowhere) as gateway:
        await _until(lambda: "reference data not read at start" in caplog.text)
        assert "read by the first request instead" in caplog.text
        async with httpx.AsyncClient(base_url=gateway.base_url) as http:
            assert (await http.get("/v1/keys")).status_code == 200


async def test_a_catalog_uploaded_through_a_process_is_read_into_it_once_answered(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    await load_demo_world(adjudicator.stub, [])
    async with open_gateway(adjudicator, redis_url, tmp_path / "keys") as gateway:
        reference = _reference(gateway)
        items = list(demo_catalog().values())[:3]
        answer = await gateway.agency.request(
            "PUT",
            "/v1/admin/catalog",
            content=catalog_csv(items).encode(),
            content_type="text/csv",
        )
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]
        await _until(lambda: reference._catalog[0] == version)
        assert reference._catalog[0] == version
        assert set(reference._catalog[1]) == {item.code for item in items}
