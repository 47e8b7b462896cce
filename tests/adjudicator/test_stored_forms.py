"""A settlement stored before records were packed (a plain ``record``) is read as before.

Since records are packed (0.2.0, issue 20), a commit keeps a settlement's record compressed
under ``packed``; nothing rewrites older settlements, so every path that reads a record must
read both forms: looking one up, answering a repeated request, reversing it, and comparing
its amounts in a reconciliation.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage import layout
from onestop.storage.layout import SettlementField
from tests.support.adjudicator import Adjudicator
from tests.support.redis import sync_client
from tests.support.scenario import (
    HOSPITAL,
    load_demo_world,
    member_record,
    settle_request,
    stay_body,
)


def _as_written_before_packing(redis_url: str, settled: pb.Settlement) -> dict[bytes, bytes]:
    """Rewrite the settlement's hash as kept before packing; its fields before that."""
    key = layout.settlement_key(
        cast(int, layout.group_of_settlement(settled.settlement_id)), settled.settlement_id
    )
    client: Any = sync_client(redis_url)
    try:
        before = cast(dict[bytes, bytes], client.hgetall(key))
        client.hdel(key, SettlementField.PACKED.value)
        client.hset(key, SettlementField.RECORD.value, settled.SerializeToString())
        return before
    finally:
        client.close()


async def test_a_settlement_stored_before_packing_is_read_replayed_reconciled_and_reversed(
    adjudicator: Adjudicator, redis_url: str
) -> None:
    stub = adjudicator.stub
    tables = await load_demo_world(stub, [member_record("P1")])
    request = settle_request(tables, stay_body("OLD-1", "P1", date(2026, 3, 1), 3, 150_000))
    settled = await stub.Settle(request)
    before = _as_written_before_packing(redis_url, settled)
    assert SettlementField.PACKED.value.encode() in before
    assert SettlementField.RECORD.value.encode() not in before

    got = await stub.GetSettlement(
        pb.GetSettlementRequest(client_id=HOSPITAL, settlement_id=settled.settlement_id)
    )
    assert got == settled
    again = await stub.Settle(request)
    assert again.replayed
    again.replayed = False
    assert again == settled

    day = settled.settled_at[:10]
    reconciled = await stub.Reconcile(
        pb.ReconcileRequest(
            client_id=HOSPITAL,
            date=day,
            hospital=pb.DayTotals(settlements=1, amounts=settled.amounts),
            by_amounts=True,
            settlement_amounts=[
                pb.SettlementAmounts(settlement_id=settled.settlement_id, amounts=settled.amounts)
            ],
        )
    )
    assert list(reconciled.amount_differences) == []
    assert list(reconciled.only_in_gateway) == list(reconciled.only_in_hospital) == []
    off_by_a_fen = pb.Amounts()
    off_by_a_fen.CopyFrom(settled.amounts)
    off_by_a_fen.cash += 1
    differing = await stub.Reconcile(
        pb.ReconcileRequest(
            client_id=HOSPITAL,
            date=day,
            by_amounts=True,
            settlement_amounts=[
                pb.SettlementAmounts(settlement_id=settled.settlement_id, amounts=off_by_a_fen)
            ],
        )
    )
    assert [d.settlement_id for d in differing.amount_differences] == [settled.settlement_id]

    reversed_ = await stub.Reverse(
        pb.ReverseRequest(client_id=HOSPITAL, settlement_id=settled.settlement_id)
    )
    assert reversed_.status == "reversed"
    assert reversed_.lines == settled.lines
    assert reversed_.amounts == settled.amounts
