"""Receipts: their money adds up."""

from __future__ import annotations

from onestop.receipts import money_adds_up


def test_a_receipt_adds_up_only_with_the_hospital_s_part() -> None:
    amounts = {
        "total": 520000,
        "full_self_pay": 58250,
        "over_limit_self_pay": 0,
        "pre_self_pay": 0,
        "in_scope": 461750,
        "deductible": 0,
        "basic_fund": 315000,
        "supplementary": 0,
        "assistance": 0,
        "personal_account": 0,
        "cash": 135000,
        "hospital_part": 70000,
    }
    assert money_adds_up(amounts)
    assert not money_adds_up({**amounts, "hospital_part": 0})
    assert not money_adds_up({**amounts, "in_scope": 461749})
