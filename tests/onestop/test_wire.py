"""The one protobuf conversion module: everything survives a round trip."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from onestop import wire
from onestop.domain import YearToDate, adjudicate
from onestop.domain.settlement import PolicyRef, Settlement, SettlementStatus
from onestop.domain.types import HospitalLevel, Scheme, VisitType
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage.records import CorruptRecord, StoredAnswer
from tests.support.builders import line, make_item, make_member, make_policy, make_visit


def _settlement() -> Settlement:
    items = (make_item("A1"), make_item("B1", "B", price_cap=500), make_item("C1", "C"))
    visit = make_visit(
        line(1000, "A1", "0.5", 1),
        line(900, "B1", "1.25", 2),
        line(300, "C1", "2", 3, date(2026, 3, 2)),
    )
    result = adjudicate(
        visit,
        HospitalLevel.LEVEL3,
        make_member(),
        make_policy(),
        {item.code: item for item in items},
        YearToDate(),
        0,
    )
    return Settlement(
        "S" + "0" * 31,
        "H1",
        "V1",
        "M1",
        VisitType.INPATIENT,
        SettlementStatus.SETTLED,
        "2026-03-09T10:00:00.000+08:00",
        PolicyRef("410100", Scheme.RESIDENT, 2026, "v", date(2026, 7, 1)),
        result.amounts,
        result.lines,
        result.year_to_date,
        result.notes,
    )


def test_settlement_round_trip() -> None:
    settlement = _settlement()
    answer, stored = wire.encode_settlement(settlement)
    assert stored.packed
    assert stored.field == "packed"
    assert wire.record_of(stored) == settlement
    assert wire.settlement_of(pb.Settlement.FromString(answer)) == settlement
    assert answer == wire.answer_bytes(settlement)
    assert settlement.lines[2].reasons == ("CATEGORY_C",)
    assert settlement.lines[1].reasons == ("OVER_PRICE_CAP", "SELF_PAY_FIRST")
    replayed, replayed_bytes = wire.replayed_answer(stored)
    assert replayed == settlement.as_replay()
    assert wire.settlement_of(pb.Settlement.FromString(replayed_bytes)) == replayed


def test_a_record_stored_before_packing_reads_as_it_did() -> None:
    # Before records were packed the hash's "record" field held the plain answer.
    settlement = _settlement()
    plain = StoredAnswer(wire.answer_bytes(settlement), packed=False)
    assert plain.field == "record"
    assert wire.record_of(plain) == settlement
    assert wire.replayed_answer(plain)[0] == settlement.as_replay()


@pytest.mark.parametrize("numbers", [(1, 2, 3), (3, 7, 5), (10, 2, 2, 900)])
def test_line_numbers_in_any_order_survive_packing(numbers: tuple[int, ...]) -> None:
    # Bills number their lines 1, 2, 3 ...: stored as steps; others must come back too.
    settlement = _settlement()
    lines = tuple(
        replace(settlement.lines[index % len(settlement.lines)], line_no=number)
        for index, number in enumerate(numbers)
    )
    numbered = replace(settlement, lines=lines)
    assert wire.record_of(wire.encode_settlement(numbered)[1]).lines == lines


def test_a_200_line_record_is_packed_to_a_third() -> None:
    settlement = _settlement()
    lines = tuple(
        replace(settlement.lines[index % len(settlement.lines)], line_no=index + 1)
        for index in range(200)
    )
    long = replace(settlement, lines=lines)
    answer, stored = wire.encode_settlement(long)
    assert len(stored.data) * 3 < len(answer)
    assert wire.record_of(stored) == long


@pytest.mark.parametrize("packed", [True, False])
def test_a_damaged_record_is_a_corrupt_record(packed: bool) -> None:
    _, stored = wire.encode_settlement(_settlement())
    damaged = StoredAnswer(b"\xff" + stored.data[1:] if packed else b"\xff\xff", packed=packed)
    with pytest.raises(CorruptRecord, match=damaged.field):
        wire.record_of(damaged)


def test_visit_round_trip() -> None:
    visit = make_visit(
        line(1000, "A1", "0.5", 1),
        line(900, "B1", "1.2500", 2, date(2026, 3, 3)),
        use_personal_account=True,
    )
    message = wire.settle_request_of(
        visit, client_id="H1", visit_id="V", member_id="M", fingerprint=b"\x01" * 32
    )
    back = wire.visit_of(message)
    assert back == visit
    assert back.lines[1].catalog_qty == Decimal("1.2500")


def test_empty_lines_round_trip() -> None:
    settlement = _settlement()
    empty = Settlement(
        **{
            **{field: getattr(settlement, field) for field in Settlement.__dataclass_fields__},
            "lines": (),
        }
    )
    assert wire.record_of(wire.encode_settlement(empty)[1]).lines == ()


def test_a_policy_reference_stored_before_versions_names_january_1() -> None:
    # A settlement stored before 0.2.0 has no effective_from: it applied the only version.
    message = pb.PolicyRef(region="410100", scheme="resident", year=2025, version="v")
    assert wire.policy_of(message).effective_from == date(2025, 1, 1)
    later = PolicyRef("410100", Scheme.RESIDENT, 2026, "v", date(2026, 7, 1))
    assert wire.policy_of(wire.policy_message(later)) == later
