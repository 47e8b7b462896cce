"""Which request is "the same", and whose visit a visit id names (domain.md sections 15, 16).

Each test here failed before the rules were built: a visit settled for member A was settled
again for member B when their slot groups differed; a rebuilt body was told to reverse; a
late retry after a reversal settled again; preview answered 200 where settle refused.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import pytest

from adjudicator.service import CLAIM_STALE_MS
from adjudicator.store import ClaimAnswer, Store
from onestop.client import SignedClient
from onestop.clock import now_ms
from onestop.redis_client import connect
from onestop.storage.crypto import MemberCipher
from onestop.storage.layout import member_group
from onestop.storage.records import VisitClaim
from tests.support.gateway import Gateway
from tests.support.redis import ON_BOTH, dump_state
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


def _members_in_different_groups() -> tuple[str, str]:
    first = "M700001"
    second = next(
        f"M7{n:05d}" for n in range(2, 1000) if member_group(f"M7{n:05d}") != member_group(first)
    )
    return first, second


A, B = _members_in_different_groups()


async def _world(gateway: Gateway, *extra: dict[str, Any]) -> SignedClient:
    clients = await load_demo_over_http(gateway, [member_record(A), member_record(B), *extra])
    return clients["ZZH3"]


async def _settle(hospital: SignedClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = await hospital.request("POST", "/v1/settlements", json_body=body)
    return answer.status_code, answer.json()


@ON_BOTH
async def test_a_visit_settled_for_one_member_is_refused_for_another(
    gateway: Gateway, redis_url: str
) -> None:
    assert member_group(A) != member_group(B)
    hospital = await _world(gateway)
    status, first = await _settle(hospital, stay_body("V1", A, date(2026, 3, 1), 2, 10_000))
    assert status == 201
    before = dump_state(redis_url)
    for action in ("/v1/settlements/preview", "/v1/settlements"):
        answer = await hospital.request(
            "POST", action, json_body=stay_body("V1", B, date(2026, 4, 1), 3, 20_000)
        )
        assert (answer.status_code, answer.json()["code"]) == (409, "VISIT_ALREADY_SETTLED")
        assert "another member" in answer.json()["detail"]
    assert dump_state(redis_url) == before
    # B's caps and account are untouched: B's own visit settles as if V1 never came.
    eligibility = await hospital.request(
        "GET", f"/v1/members/{B}/eligibility", params={"date": "2026-05-01"}
    )
    assert eligibility.json()["year_to_date"]["basic_fund"] == 0
    # Reversing A's settlement gives the visit id up: now it may be B's.
    reversal = await hospital.request("POST", f"/v1/settlements/{first['settlement_id']}/reversal")
    assert reversal.status_code == 200
    status, second = await _settle(hospital, stay_body("V1", B, date(2026, 4, 1), 3, 20_000))
    assert (status, second["member_id"]) == (201, B)
    # ... and, settled for B, it is refused for A again.
    status, problem = await _settle(hospital, stay_body("V1", A, date(2026, 6, 1), 2, 10_000))
    assert (status, problem["code"]) == (409, "VISIT_ALREADY_SETTLED")


@ON_BOTH
async def test_two_members_at_once_for_one_visit_id_exactly_one_settles(
    gateway: Gateway, redis_url: str
) -> None:
    hospital = await _world(gateway)
    for round_no in range(5):
        visit_id = f"RACE{round_no}"
        answers = await asyncio.gather(
            _settle(hospital, stay_body(visit_id, A, date(2026, 1, 1 + 3 * round_no), 1, 1_000)),
            _settle(hospital, stay_body(visit_id, B, date(2026, 1, 1 + 3 * round_no), 1, 1_000)),
        )
        settled = [body for status, body in answers if status == 201]
        refused = [(status, body["code"]) for status, body in answers if status != 201]
        assert len(settled) == 1, answers
        assert refused[0] in {(409, "VISIT_ALREADY_SETTLED"), (503, "UNAVAILABLE")}
        loser = B if settled[0]["member_id"] == A else A
        # The loser's retry (a 503 is safe to retry) is refused, never settled.
        status, problem = await _settle(
            hospital, stay_body(visit_id, loser, date(2026, 1, 1 + 3 * round_no), 1, 1_000)
        )
        assert (status, problem["code"]) == (409, "VISIT_ALREADY_SETTLED")
    for member in (A, B):
        listed = await hospital.request(
            "GET", f"/v1/members/{member}/eligibility", params={"date": "2026-02-01"}
        )
        assert listed.status_code == 200


async def test_a_refused_request_leaves_no_claim_behind(gateway: Gateway) -> None:
    hospital = await _world(gateway, member_record("M700900", status="suspended"))
    status, problem = await _settle(
        hospital, stay_body("V2", "M700900", date(2026, 3, 1), 2, 10_000)
    )
    assert (status, problem["code"]) == (403, "MEMBER_NOT_ELIGIBLE")
    # Another member's request is not kept waiting by the refused one's claim.
    status, settled = await _settle(hospital, stay_body("V2", A, date(2026, 3, 1), 2, 10_000))
    assert (status, settled["member_id"]) == (201, A)


@ON_BOTH
async def test_a_claim_in_flight_answers_retry_and_a_stale_one_is_taken_over(
    gateway: Gateway, redis_url: str
) -> None:
    hospital = await _world(gateway)
    # The claim is written as a request would, through the adjudicator's own store.
    store = Store(
        await connect(redis_url, timeout_seconds=5, wait_seconds=5), MemberCipher(bytes(32))
    )
    # A request for member A claimed V3 and has not committed (still running, or it died).
    outcome = await store.claim_visit("ZZH3", "V3", VisitClaim(A, "deadbeef", now_ms()))
    assert outcome.answer is ClaimAnswer.CLAIMED
    status, problem = await _settle(hospital, stay_body("V3", B, date(2026, 3, 1), 2, 10_000))
    assert (status, problem["code"]) == (503, "UNAVAILABLE")
    assert "retry" in problem["detail"]
    # The claim ages past the stale window with nothing settled: B may take V3.
    await store.release_visit("ZZH3", "V3", "deadbeef", previous=None, claimant=A)
    stale = now_ms() - CLAIM_STALE_MS - 1
    await store.claim_visit("ZZH3", "V3", VisitClaim(A, "deadbeef", stale))
    status, settled = await _settle(hospital, stay_body("V3", B, date(2026, 3, 1), 2, 10_000))
    assert (status, settled["member_id"]) == (201, B)
    claim = await store.visit_claim("ZZH3", "V3")
    assert claim is not None
    assert claim.member_id == B
    await store.client.aclose()


async def test_preview_refuses_what_settle_refuses(gateway: Gateway, redis_url: str) -> None:
    hospital = await _world(gateway)
    status, first = await _settle(hospital, stay_body("S1", A, date(2026, 3, 1), 5, 10_000))
    assert status == 201
    cases = [
        # a second bed during the first stay
        (stay_body("S2", A, date(2026, 3, 3), 2, 10_000), "OVERLAPPING_STAY"),
        # another bill for the settled visit
        (stay_body("S1", A, date(2026, 3, 1), 5, 12_000), "VISIT_ALREADY_SETTLED"),
        # the settled visit for another member
        (stay_body("S1", B, date(2026, 3, 1), 5, 10_000), "VISIT_ALREADY_SETTLED"),
    ]
    before = dump_state(redis_url)
    for body, code in cases:
        preview = await hospital.request("POST", "/v1/settlements/preview", json_body=body)
        settle = await hospital.request("POST", "/v1/settlements", json_body=body)
        assert (preview.status_code, preview.json()["code"]) == (409, code)
        assert (settle.status_code, settle.json()["code"]) == (409, code)
        assert preview.json()["detail"] == settle.json()["detail"]
    assert dump_state(redis_url) == before
    # A preview of the settled request itself is never a replay: it names the settlement.
    preview = await hospital.request(
        "POST", "/v1/settlements/preview", json_body=stay_body("S1", A, date(2026, 3, 1), 5, 10_000)
    )
    assert (preview.status_code, preview.json()["code"]) == (409, "VISIT_ALREADY_SETTLED")
    assert f"GET /v1/settlements/{first['settlement_id']}" in preview.json()["detail"]


@pytest.mark.parametrize(
    "rebuild",
    [
        pytest.param(lambda body: _with_line(body, quantity="1.00"), id="quantity-1.00"),
        pytest.param(lambda body: _with_line(body, quantity=1), id="quantity-number"),
        pytest.param(lambda body: _with_line(body, quantity="1.0000"), id="quantity-1.0000"),
        pytest.param(lambda body: {**body, "diagnoses": ["k35.8"]}, id="diagnosis-lower-case"),
        pytest.param(
            lambda body: {k: v for k, v in body.items() if k != "use_personal_account"},
            id="default-left-out",
        ),
        pytest.param(
            lambda body: {**body, "lines": list(reversed(body["lines"]))}, id="lines-reordered"
        ),
    ],
)
async def test_a_rebuilt_identical_request_is_a_replay(gateway: Gateway, rebuild: Any) -> None:
    hospital = await _world(gateway)
    body = stay_body("R1", A, date(2026, 7, 1), 2, 30_000)
    status, first = await _settle(hospital, body)
    assert status == 201
    rebuilt = rebuild(json.loads(json.dumps(body)))
    assert rebuilt != body
    status, again = await _settle(hospital, rebuilt)
    assert status == 200, again
    assert again["replayed"] is True
    assert again["settlement_id"] == first["settlement_id"]


def _with_line(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**body, "lines": [{**body["lines"][0], **fields}, *body["lines"][1:]]}


async def test_a_his_code_differs_by_case_so_it_is_another_request(gateway: Gateway) -> None:
    hospital = await _world(gateway)
    body = stay_body("R2", A, date(2026, 7, 1), 2, 30_000)
    assert (await _settle(hospital, body))[0] == 201
    # HIS item codes compare exactly as sent (domain.md section 17).
    status, problem = await _settle(hospital, _with_line(body, his_code="rmyy-0012"))
    assert (status, problem["code"]) == (422, "UNMAPPED_CODES")


async def test_a_late_retry_after_a_reversal_never_settles_again(
    gateway: Gateway, redis_url: str
) -> None:
    hospital = await _world(gateway)
    body = stay_body("L1", A, date(2026, 8, 1), 3, 50_000)
    status, first = await _settle(hospital, body)
    assert status == 201
    reversal = await hospital.request("POST", f"/v1/settlements/{first['settlement_id']}/reversal")
    assert reversal.status_code == 200
    before = dump_state(redis_url)
    status, late = await _settle(hospital, body)
    assert status == 200
    assert (late["replayed"], late["status"]) == (True, "reversed")
    assert late["settlement_id"] == first["settlement_id"]
    assert late["year_to_date"] == reversal.json()["year_to_date"]
    assert dump_state(redis_url) == before
    # To settle the same bill again, the request names the reversed settlement.
    again = {**body, "resettle_of": first["settlement_id"]}
    status, second = await _settle(hospital, again)
    assert status == 201
    assert second["settlement_id"] != first["settlement_id"]
    # The original bytes, late once more: still the reversal's answer, nothing settled.
    status, later = await _settle(hospital, body)
    assert (status, later["status"], later["settlement_id"]) == (
        200,
        "reversed",
        first["settlement_id"],
    )
    # A retry of the resettling request is a replay of the new settlement.
    status, replay = await _settle(hospital, again)
    assert (status, replay["settlement_id"], replay["replayed"]) == (
        200,
        second["settlement_id"],
        True,
    )


async def test_resettle_of_must_name_the_callers_reversed_settlement_of_the_visit(
    gateway: Gateway, redis_url: str
) -> None:
    hospital = await _world(gateway)
    body = stay_body("L2", A, date(2026, 9, 1), 2, 10_000)
    status, first = await _settle(hospital, body)
    assert status == 201
    other = stay_body("L3", A, date(2026, 9, 10), 2, 10_000)
    status, other_settled = await _settle(hospital, other)
    assert status == 201
    before = dump_state(redis_url)
    for resettle_of, fragment in [
        (first["settlement_id"], "is not reversed"),
        (other_settled["settlement_id"], "is not a settlement of this visit"),
        ("S-NO-SUCH", "is not a settlement of this visit"),
    ]:
        status, problem = await _settle(hospital, {**body, "resettle_of": resettle_of})
        assert (status, problem["code"]) == (422, "INVALID")
        (error,) = problem["errors"]
        assert error["field"] == "resettle_of"
        assert fragment in error["message"]
    assert dump_state(redis_url) == before
