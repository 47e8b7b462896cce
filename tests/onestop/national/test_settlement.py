"""The settlement block: ids both ways, and the national relationships on every answer."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import orjson
from hypothesis import given
from hypothesis import strategies as st

from onestop.domain.engine import Amounts
from onestop.domain.settlement import PolicyRef, Settlement, SettlementStatus
from onestop.domain.state import YearToDateView
from onestop.domain.types import Scheme, VisitType
from onestop.national.settlement import (
    Person,
    SettlementContext,
    check_relationships,
    national_setl_id,
    setldetail,
    setlinfo,
    settlement_id_of,
)
from onestop.storage.layout import new_settlement_id

fen = st.integers(min_value=0, max_value=10**9)


@given(st.text(alphabet="0123456789", min_size=1, max_size=8), st.integers(0, 2**47))
def test_a_setl_id_names_its_settlement_both_ways(member: str, now_ms: int) -> None:
    settlement_id = new_settlement_id(member, now_ms)
    setl_id = national_setl_id(settlement_id)
    assert len(setl_id) <= 30
    assert settlement_id_of(setl_id) == settlement_id
    assert settlement_id_of(setl_id.lower()) == settlement_id


def test_what_onestop_never_issued_is_no_settlement() -> None:
    for text in ("", "S", "X123", "S" + "Z" * 30, "S!!"):
        assert settlement_id_of(text) is None


@given(fen, fen, fen, fen, fen, fen, fen, fen, st.sampled_from([Scheme.RESIDENT, Scheme.EMPLOYEE]))
def test_every_answer_keeps_r1_to_r4(
    full: int,
    over: int,
    pre: int,
    basic: int,
    supplementary: int,
    assistance: int,
    account: int,
    hospital: int,
    scheme: Scheme,
) -> None:
    cash = 12_345
    total = basic + supplementary + assistance + account + cash + hospital
    in_scope = total - full - over - pre
    settlement = Settlement(
        settlement_id=new_settlement_id("M1", 1_772_323_200_000),
        client_id="H1",
        visit_id="V1",
        member_id="M1",
        visit_type=VisitType.OUTPATIENT,
        status=SettlementStatus.SETTLED,
        settled_at="2026-03-01T08:00:00+08:00",
        policy=PolicyRef("410100", scheme, 2026, "v", date(2026, 1, 1)),
        amounts=Amounts(
            total=total,
            full_self_pay=full,
            over_limit_self_pay=over,
            pre_self_pay=pre,
            in_scope=in_scope,
            deductible=0,
            basic_fund=basic,
            supplementary=supplementary,
            assistance=assistance,
            personal_account=account,
            cash=cash,
            hospital_part=hospital,
        ),
        lines=(),
        year_to_date=YearToDateView(0, 0, 0, 0, 0, 0, 0, 500),
        notes=(),
    )
    context = SettlementContext(
        "V1", "11", "02", "H1202603010800000001", "410100", Person("张*", "4101**", "1", "", "")
    )
    for sign in (1, -1):
        info = json.loads(
            orjson.dumps(setlinfo(settlement, context, sign=sign)), parse_float=Decimal
        )
        assert check_relationships(info) == []
        assert info["medfee_sumamt"] == sign * Decimal(total) / 100
        supplementary_field = "hifmi_pay" if scheme is Scheme.RESIDENT else "hifob_pay"
        assert info[supplementary_field] == sign * Decimal(supplementary) / 100
        rows = json.loads(orjson.dumps(setldetail(settlement, sign=sign)), parse_float=Decimal)
        assert all(row["fund_payamt"] != 0 for row in rows)
