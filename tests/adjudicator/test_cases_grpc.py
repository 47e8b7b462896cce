"""Every shared acceptance case through the real adjudicator over gRPC, on real Redis.

The bill is mapped here with the same domain function the gateway uses; everything after
that (eligibility, the engine, replay, conflicts, stays, reversal, state) is the service's.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from onestop.domain import BillRejected, MappingTable, VisitRequest, map_bill
from onestop.domain.catalog import parse_catalog_items
from onestop.domain.errors import ErrorCode
from onestop.errors import STATUS
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.wire import settle_request_of
from tests.support.adjudicator import Adjudicator, error_code, fingerprint, load_reference
from tests.support.cases import Case, assert_subset, case_params, load_cases, step_request
from tests.support.redis import ON_BOTH, dump_everything

CASES = load_cases()
NO_MAPPING = MappingTable({})


def _answer(message: pb.Settlement, status: int) -> dict[str, object]:
    answer = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    for block in ("amounts", "year_to_date"):
        # int64 travels as text in the JSON mapping of protobuf
        answer[block] = {
            key: (
                {code: int(paid) for code, paid in value.items()}
                if isinstance(value, dict)
                else int(value)
            )
            for key, value in answer[block].items()
        }
    answer["status"] = status
    return answer


@ON_BOTH
@pytest.mark.parametrize("case", case_params(CASES))
async def test_case_through_grpc(case: Case, adjudicator: Adjudicator, redis_url: str) -> None:
    data = case.data
    tables = await load_reference(
        adjudicator.stub,
        policies=data["policies"],
        catalog=data["catalog"],
        clients=data["clients"],
        mappings=data["mappings"],
        members=data["members"],
    )
    catalog = {item.code: item for item in parse_catalog_items(enumerate(data["catalog"], 2))}
    settlement_of_step: dict[int, str] = {}
    for index, step in enumerate(case.steps):
        where = f"{case.name} step {index} ({step['action']})"
        before = dump_everything(redis_url)
        try:
            if step["action"] in ("settle", "preview"):
                body = step_request(step, settlement_of_step)
                request = VisitRequest.model_validate(body)
                try:
                    visit = map_bill(request, tables.get(step["client_id"], NO_MAPPING), catalog)
                except BillRejected as refusal:
                    answer: dict[str, object] = {"status": 422, "code": refusal.code}
                    assert dump_everything(redis_url) == before, where
                    assert_subset(step["expect"], answer, where)
                    continue
                message = settle_request_of(
                    visit,
                    client_id=step["client_id"],
                    visit_id=request.visit_id,
                    member_id=request.member_id,
                    fingerprint=fingerprint(body),
                    resettle_of=request.resettle_of,
                )
                if step["action"] == "preview":
                    result = await adjudicator.stub.Preview(message)
                    answer = _answer(result, 200)
                    assert dump_everything(redis_url) == before, f"{where}: a preview wrote"
                else:
                    result = await adjudicator.stub.Settle(message)
                    answer = _answer(result, 200 if result.replayed else 201)
                    settlement_of_step[index] = result.settlement_id
            elif step["action"] == "reverse":
                result = await adjudicator.stub.Reverse(
                    pb.ReverseRequest(
                        client_id=step["client_id"],
                        settlement_id=settlement_of_step[step["reverse_step"]],
                    )
                )
                answer = _answer(result, 200)
                assert result.status == "reversed"
            else:
                pytest.fail(f"{where}: no action {step['action']}")
        except grpc.aio.AioRpcError as error:
            code = error_code(error)
            answer = {"status": STATUS[ErrorCode(code)].http, "code": code}
            assert dump_everything(redis_url) == before, f"{where}: a refusal changed Redis"
        try:
            assert_subset(step["expect"], answer)
        except AssertionError as failure:
            raise AssertionError(f"{where}: {failure}") from None
