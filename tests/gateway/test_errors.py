"""Refusals over HTTP: problem+json from the one table; the adjudicator's faults are 500s."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pytest

from gateway.adjudicator_client import AdjudicatorClient
from onestop.domain.errors import ErrorCode, UnknownMember
from onestop.errors import STATUS
from tests.support.adjudicator import Adjudicator
from tests.support.gateway import Gateway
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


async def test_a_fault_of_the_adjudicator_is_a_logged_500_never_a_retry(
    gateway: Gateway,
    adjudicator: Adjudicator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M710001")])
    body = stay_body("E1", "M710001", date(2026, 3, 1), 2, 10_000)
    service = adjudicator.running.service

    async def broken(*_: Any) -> Any:
        raise KeyError("inside the service")

    monkeypatch.setattr(service, "settle", broken)
    with caplog.at_level(logging.ERROR):
        answer = await clients["ZZH3"].request("POST", "/v1/settlements", json_body=body)
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["code"] == "INTERNAL_ERROR"
    assert problem["title"] == STATUS[ErrorCode.INTERNAL_ERROR].title
    assert "Retry-After" not in answer.headers
    assert "inside the service" not in answer.text
    assert any(record.exc_info for record in caplog.records), "the traceback is logged"


async def test_a_refusal_of_the_adjudicator_keeps_its_type(adjudicator: Adjudicator) -> None:
    client = AdjudicatorClient(adjudicator.target, deadline_seconds=5)
    try:
        with pytest.raises(UnknownMember, match="M-NOBODY"):
            await client.eligibility("M-NOBODY", date(2026, 3, 1), "H1")
    finally:
        await client.close()
