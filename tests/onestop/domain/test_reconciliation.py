"""Reconciliation compares totals, groups, ids and each settlement's amounts."""

from __future__ import annotations

from datetime import date

from onestop.domain.reconciliation import (
    RECONCILED_FUNDS,
    UNRECORDED_GROUP,
    DayFigures,
    Detail,
    GatewayDay,
    GroupKey,
    HospitalDay,
    Outcome,
    reconcile,
    summarise,
)
from onestop.domain.types import Scheme, VisitType

INPATIENT = GroupKey(VisitType.INPATIENT, Scheme.RESIDENT)
PHARMACY = GroupKey(VisitType.PHARMACY, Scheme.EMPLOYEE)


def funds(total: int, basic_fund: int) -> dict[str, int]:
    return {
        **dict.fromkeys(RECONCILED_FUNDS, 0),
        "total": total,
        "basic_fund": basic_fund,
        "cash": total - basic_fund,
    }


def day(settlements: int, reversals: int, total: int, basic_fund: int) -> DayFigures:
    return DayFigures(settlements, reversals, funds(total, basic_fund))


GATEWAY = GatewayDay(
    totals=day(2, 0, 15_000, 9_000),
    groups={INPATIENT: day(1, 0, 10_000, 6_000), PHARMACY: day(1, 0, 5_000, 3_000)},
    settlement_ids=["S1", "S2"],
    settlement_amounts={"S1": funds(10_000, 6_000), "S2": funds(5_000, 3_000)},
)


def test_amounts_per_settlement_name_the_settlement_and_the_fen() -> None:
    hospital = HospitalDay(
        totals=day(2, 0, 14_999, 9_000),
        settlement_amounts={"S1": funds(10_000, 6_000), "S2": funds(4_999, 3_000)},
    )
    answer = reconcile(GATEWAY, hospital)
    assert answer.outcome is Outcome.UNBALANCED
    assert answer.detail is Detail.AMOUNTS
    assert answer.only_in_gateway == []
    assert answer.only_in_hospital == []
    [difference] = answer.amount_differences
    assert difference.settlement_id == "S2"
    assert difference.differences() == {**dict.fromkeys(RECONCILED_FUNDS, 0), "total": 1, "cash": 1}
    assert answer.differences()["cash"] == 1


def test_a_settlement_only_one_side_holds_is_not_an_amount_difference() -> None:
    hospital = HospitalDay(
        totals=day(2, 0, 15_000, 9_000),
        settlement_amounts={"S1": funds(10_000, 6_000), "S9": funds(5_000, 3_000)},
    )
    answer = reconcile(GATEWAY, hospital)
    assert answer.only_in_gateway == ["S2"]
    assert answer.only_in_hospital == ["S9"]
    assert answer.amount_differences == []
    assert answer.outcome is Outcome.UNBALANCED


def test_identical_days_balance_at_every_level() -> None:
    hospital = HospitalDay(
        totals=GATEWAY.totals,
        settlement_amounts=dict(GATEWAY.settlement_amounts),
        groups=dict(GATEWAY.groups),
    )
    answer = reconcile(GATEWAY, hospital)
    assert answer.outcome is Outcome.BALANCED
    assert [group.key for group in answer.groups] == [INPATIENT, PHARMACY]
    assert all(group.balanced() for group in answer.groups)


def test_groups_compare_one_by_one_and_a_group_on_one_side_counts_against_nothing() -> None:
    # The totals agree, but the hospital filed the pharmacy swipe as a resident's.
    misfiled = GroupKey(VisitType.PHARMACY, Scheme.RESIDENT)
    hospital = HospitalDay(
        totals=GATEWAY.totals,
        groups={INPATIENT: day(1, 0, 10_000, 6_000), misfiled: day(1, 0, 5_000, 3_000)},
    )
    answer = reconcile(GATEWAY, hospital)
    assert not any(answer.differences().values())
    assert answer.outcome is Outcome.UNBALANCED
    assert answer.unbalanced_groups() == [PHARMACY, misfiled]
    by_key = {group.key: group for group in answer.groups}
    assert by_key[misfiled].gateway.settlements == 0
    differences = by_key[PHARMACY].differences()
    assert differences is not None
    assert differences["settlements"] == 1


def test_groups_not_reported_are_shown_but_not_judged() -> None:
    answer = reconcile(GATEWAY, HospitalDay(totals=GATEWAY.totals))
    assert answer.outcome is Outcome.BALANCED
    assert answer.detail is Detail.TOTALS
    assert [group.differences() for group in answer.groups] == [None, None]


def test_the_unrecorded_group_sorts_last() -> None:
    gateway = GatewayDay(
        totals=day(2, 0, 15_000, 9_000),
        groups={UNRECORDED_GROUP: day(1, 0, 5_000, 3_000), INPATIENT: day(1, 0, 10_000, 6_000)},
    )
    answer = reconcile(gateway, HospitalDay(totals=gateway.totals))
    assert [group.key for group in answer.groups] == [INPATIENT, UNRECORDED_GROUP]


def test_the_summary_keeps_the_verdict_and_by_how_much() -> None:
    hospital = HospitalDay(totals=day(1, 0, 10_000, 6_000), settlement_ids=["S1"])
    answer = reconcile(GATEWAY, hospital)
    summary = summarise(answer, "H1", date(2026, 3, 9), 123, provisional=True)
    assert summary.outcome is Outcome.UNBALANCED
    assert summary.detail is Detail.IDS
    assert summary.differences["settlements"] == 1
    assert summary.differences["total"] == 5_000
    assert (summary.only_in_gateway, summary.only_in_hospital) == (1, 0)
    assert summary.provisional
    assert summary.at_ms == 123
