"""At most once, exactly, under concurrency: real gRPC, real Redis, many calls at once."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import grpc
import pytest

from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage.layout import journal_key, member_group, member_key, year_field
from tests.support.adjudicator import Adjudicator, error_code
from tests.support.redis import ON_BOTH, sync_client
from tests.support.scenario import load_demo_world, member_record, settle_request, stay_body

CAP = 2500000  # Zhengzhou's basic annual cap, fen

pytestmark = ON_BOTH


async def test_fifty_concurrent_settlements_never_pass_the_cap(
    adjudicator: Adjudicator, redis_url: str
) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M000001")])
    # 50 one-day stays, each worth (3,040 - 900) x 50 % = 1,070 yuan from the basic fund:
    # 53,500 yuan together, so about half of them meet a cap that others are filling.
    requests = [
        settle_request(
            tables,
            stay_body(f"V{n:03d}", "M000001", date(2026, 1, 1) + timedelta(days=2 * n), 1, 300_000),
        )
        for n in range(50)
    ]
    receipts = await asyncio.gather(*(adjudicator.stub.Settle(request) for request in requests))

    assert len({receipt.settlement_id for receipt in receipts}) == 50
    paid = sum(receipt.amounts.basic_fund for receipt in receipts)
    assert paid == CAP
    full = [receipt for receipt in receipts if receipt.amounts.basic_fund == 107000]
    assert len(full) == CAP // 107000  # 23 paid in full, one in part, the rest nothing
    assert sorted({receipt.amounts.basic_fund for receipt in receipts}) == [0, CAP % 107000, 107000]
    client = sync_client(redis_url)
    state = client.hget(member_key("M000001"), year_field(2026, "basic_fund"))
    assert int(state or 0) == paid
    assert max(receipt.year_to_date.basic_fund for receipt in receipts) == CAP
    # every receipt's money adds up, whichever order the commits took
    for receipt in receipts:
        money = receipt.amounts
        assert money.total == money.basic_fund + money.supplementary + money.assistance + (
            money.personal_account + money.cash
        )
    assert client.xlen(journal_key(member_group("M000001"))) == 50


async def test_twenty_identical_requests_settle_once(
    adjudicator: Adjudicator, redis_url: str
) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M000002")])
    request = settle_request(tables, stay_body("SAME", "M000002", date(2026, 5, 1), 3, 200_000))
    receipts = await asyncio.gather(*(adjudicator.stub.Settle(request) for _ in range(20)))

    assert len({receipt.settlement_id for receipt in receipts}) == 1
    assert sum(1 for receipt in receipts if not receipt.replayed) == 1
    assert sum(1 for receipt in receipts if receipt.replayed) == 19
    first = next(receipt for receipt in receipts if not receipt.replayed)
    for receipt in receipts:
        assert receipt.amounts == first.amounts
        assert receipt.year_to_date == first.year_to_date
    client = sync_client(redis_url)
    assert (
        int(client.hget(member_key("M000002"), year_field(2026, "basic_fund")) or 0)
        == first.amounts.basic_fund
    )
    assert client.xlen(journal_key(member_group("M000002"))) == 1


async def test_concurrent_overlapping_stays_settle_one(
    adjudicator: Adjudicator, redis_url: str
) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M000003")])
    requests = [
        settle_request(tables, stay_body(f"BED{n}", "M000003", date(2026, 6, 1 + n), 5, 100_000))
        for n in range(4)
    ]
    outcomes = await asyncio.gather(
        *(adjudicator.stub.Settle(request) for request in requests), return_exceptions=True
    )
    settled = [outcome for outcome in outcomes if isinstance(outcome, pb.Settlement)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, grpc.aio.AioRpcError)]
    assert len(settled) == 1
    assert len(refused) == 3
    assert {error_code(error) for error in refused} == {"OVERLAPPING_STAY"}
    assert {error.code() for error in refused} == {grpc.StatusCode.FAILED_PRECONDITION}


async def test_reversal_twice_subtracts_once(adjudicator: Adjudicator, redis_url: str) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M000004")])
    first = await adjudicator.stub.Settle(
        settle_request(tables, stay_body("A", "M000004", date(2026, 2, 1), 3, 300_000))
    )
    second = await adjudicator.stub.Settle(
        settle_request(tables, stay_body("B", "M000004", date(2026, 3, 1), 3, 300_000))
    )
    reversals = await asyncio.gather(
        *(
            adjudicator.stub.Reverse(
                pb.ReverseRequest(client_id="ZZH3", settlement_id=first.settlement_id)
            )
            for _ in range(10)
        )
    )
    assert {reversal.status for reversal in reversals} == {"reversed"}
    assert len({reversal.reversed_at for reversal in reversals}) == 1
    # after the undo only the second settlement counts
    assert {reversal.year_to_date.basic_fund for reversal in reversals} == {
        second.amounts.basic_fund
    }
    client = sync_client(redis_url)
    member = client.hgetall(member_key("M000004"))
    assert int(member[year_field(2026, "basic_fund").encode()]) == second.amounts.basic_fund
    assert int(member[year_field(2026, "admissions").encode()]) == 1
    assert client.xlen(journal_key(member_group("M000004"))) == 3  # 2 settled, 1 reversed

    again = await adjudicator.stub.GetSettlement(
        pb.GetSettlementRequest(client_id="ZZH3", settlement_id=first.settlement_id)
    )
    assert again.status == "reversed"
    assert again.amounts == first.amounts


async def test_another_clients_settlement_is_not_found(adjudicator: Adjudicator) -> None:
    tables = await load_demo_world(adjudicator.stub, [member_record("M000005")])
    receipt = await adjudicator.stub.Settle(
        settle_request(tables, stay_body("X", "M000005", date(2026, 2, 1), 2, 10_000))
    )
    for call in (
        adjudicator.stub.GetSettlement(
            pb.GetSettlementRequest(client_id="GYH3", settlement_id=receipt.settlement_id)
        ),
        adjudicator.stub.Reverse(
            pb.ReverseRequest(client_id="GYH3", settlement_id=receipt.settlement_id)
        ),
        adjudicator.stub.GetSettlement(
            pb.GetSettlementRequest(client_id="ZZH3", settlement_id="S" + "0" * 31)
        ),
        adjudicator.stub.GetSettlement(
            pb.GetSettlementRequest(client_id="ZZH3", settlement_id="not-an-id")
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        assert error_code(caught.value) == "NOT_FOUND"
    # the agency (empty client id) sees it
    seen = await adjudicator.stub.GetSettlement(
        pb.GetSettlementRequest(settlement_id=receipt.settlement_id)
    )
    assert seen.settlement_id == receipt.settlement_id
