"""One error-code enum, one table of statuses, refusals rebuilt as the same type after gRPC."""

from __future__ import annotations

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from onestop.domain.errors import BILL_CODES, BillRejected, ErrorCode, Problem
from onestop.errors import STATUS, InternalError, Unavailable, refusal_of
from onestop.wire import refusal_from_rpc_error, refusal_trailer


def test_every_code_has_one_status_and_title() -> None:
    assert set(STATUS) == set(ErrorCode)
    for code, status in STATUS.items():
        assert 400 <= status.http < 600, code
        assert status.grpc is not grpc.StatusCode.OK, code
        assert status.title, code
    # Only the codes that mean "no fault of the request" are 5xx: a failure, a dependency
    # down, a gateway without the font a PDF statement needs.
    assert {code for code, status in STATUS.items() if status.http >= 500} == {
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.UNAVAILABLE,
        ErrorCode.NO_STATEMENT_FONT,
    }


@pytest.mark.parametrize("code", list(ErrorCode))
def test_a_refusal_crosses_the_wire_as_the_same_type(code: ErrorCode) -> None:
    problems = (Problem(code, "line 3 is wrong", field="quantity", line_no=3, his_code="X1"),)
    sent = refusal_of(code, f"refused: {code}", problems)
    assert sent.code is code
    if code in BILL_CODES and code is not ErrorCode.INVALID:
        assert isinstance(sent, BillRejected)
    error = AioRpcError(
        STATUS[code].grpc, Metadata(), Metadata(*refusal_trailer(sent)), sent.message
    )
    received = refusal_from_rpc_error(error)
    assert type(received) is type(sent)
    assert received.code is code
    assert received.message == sent.message
    assert received.problems == problems


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Unavailable),
        (grpc.StatusCode.UNKNOWN, InternalError),
        (grpc.StatusCode.INTERNAL, InternalError),
        (grpc.StatusCode.INVALID_ARGUMENT, InternalError),
    ],
)
def test_a_failure_without_a_code_is_unavailable_only_when_it_is(
    status: grpc.StatusCode, expected: type[Exception]
) -> None:
    # A transport failure may be retried; anything else without a code is a fault of the
    # adjudicator, and "retry" would be a promise nobody can keep.
    error = AioRpcError(status, Metadata(), Metadata(), "exception calling the handler")
    assert type(refusal_from_rpc_error(error)) is expected


def test_a_bill_refusal_carries_only_a_bill_code() -> None:
    with pytest.raises(ValueError, match="not a code of a refused bill"):
        BillRejected(ErrorCode.NOT_FOUND, "no", ())
