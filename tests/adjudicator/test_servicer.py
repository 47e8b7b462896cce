"""The servicer answers refusals by their code, and its own faults as logged INTERNAL errors."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import grpc
import pytest

from onestop.settlement.v1 import adjudicator_pb2 as pb
from tests.support.adjudicator import Adjudicator, error_code, error_problems
from tests.support.scenario import load_demo_world, member_record, settle_request, stay_body


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_a_malformed_quantity_is_invalid_and_names_the_field(
    adjudicator: Adjudicator,
) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M700001")])
    request = settle_request(tables, stay_body("Q1", "M700001", date(2026, 3, 1), 2, 10_000))
    for bad in ("1.5x", "NaN", "Infinity", ""):
        request.lines.catalog_qty[0] = bad
        error = await _refused(adjudicator.stub.Settle(request))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, bad
        assert error_code(error) == "INVALID"
        assert [problem.field for problem in error_problems(error)] == ["lines.catalog_qty"]


async def test_malformed_dates_and_visit_types_are_invalid(adjudicator: Adjudicator) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M700002")])
    request = settle_request(tables, stay_body("Q2", "M700002", date(2026, 3, 1), 2, 10_000))
    request.visit_type = "spa"
    error = await _refused(adjudicator.stub.Preview(request))
    assert (error.code(), error_code(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID")
    error = await _refused(
        adjudicator.stub.Eligibility(pb.EligibilityRequest(member_id="M700002", date="2026-13-01"))
    )
    assert (error.code(), error_code(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID")
    assert [problem.field for problem in error_problems(error)] == ["date"]


async def test_a_fault_inside_the_service_is_internal_and_logged(
    adjudicator: Adjudicator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M700003")])
    request = settle_request(tables, stay_body("Q3", "M700003", date(2026, 3, 1), 2, 10_000))

    async def broken(*_: Any) -> Any:
        # A KeyError was once answered "INVALID malformed request".
        raise KeyError("no such key")

    monkeypatch.setattr(adjudicator.running.service, "preview", broken)
    with caplog.at_level(logging.ERROR, logger="onestop.adjudicator"):
        error = await _refused(adjudicator.stub.Preview(request))
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error_code(error) == "INTERNAL_ERROR"
    assert "no such key" not in (error.details() or ""), "internals stay in the log"
    logged = [record for record in caplog.records if record.exc_info]
    assert logged, "the traceback is logged"
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[0] is KeyError
