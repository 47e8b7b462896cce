"""The engine, rule by rule, with the worked numbers in each test (domain.md steps 2 to 7)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from onestop.domain import (
    Adjudication,
    CatalogItem,
    CodedLine,
    HospitalLevel,
    Member,
    MemberNotEligible,
    Policy,
    Visit,
    VisitType,
    YearToDate,
    adjudicate,
)
from onestop.domain.engine import classify_line
from tests.support.builders import line, make_item, make_member, make_policy, make_visit

ZERO_RATIO = {"community": "0", "level1": "0", "level2": "0", "level3": "0"}
NO_DEDUCTIBLE = {"community": 0, "level1": 0, "level2": 0, "level3": 0}
ASSISTANCE = {
    "dibao": {"threshold": 300000, "ratio": "0.70", "annual_cap": 2000000},
    "tekun": {"threshold": 0, "ratio": "1.00", "annual_cap": None},
}
CRITICAL_ILLNESS = {
    "kind": "critical_illness",
    "requires_enrollment": False,
    "threshold": 1500000,
    "bands": [{"width": 5000000, "ratio": "0.60"}, {"width": None, "ratio": "0.70"}],
    "annual_cap": 30000000,
    "hardship": {
        "groups": ["dibao", "tekun"],
        "threshold_factor": "0.5",
        "ratio_bonus": "0.05",
        "uncapped": True,
    },
}


def settle(
    visit: Visit,
    *,
    items: tuple[CatalogItem, ...] = (make_item(),),
    policy: Policy | None = None,
    member: Member | None = None,
    level: HospitalLevel = HospitalLevel.LEVEL3,
    state: YearToDate | None = None,
    balance: int = 0,
) -> Adjudication:
    return adjudicate(
        visit,
        level,
        member or make_member(),
        policy or make_policy(),
        {item.code: item for item in items},
        state or YearToDate(),
        balance,
    )


def amounts(result: Adjudication) -> dict[str, Any]:
    return asdict(result.amounts)


# -- step 2: classify each line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "amount", "qty", "level", "expected"),
    [
        # category C: all of it is fully self-paid
        (
            make_item(category="C"),
            30000,
            "2",
            HospitalLevel.LEVEL3,
            (30000, 0, 0, 0, ("CATEGORY_C",)),
        ),
        # a drug restricted to level 1 billed at level 3
        (
            make_item(category="B", max_level="level1"),
            9000,
            "3",
            HospitalLevel.LEVEL3,
            (9000, 0, 0, 0, ("LEVEL_RESTRICTED",)),
        ),
        # ... and at level 1 it is an ordinary B item: 10 % of 9000 first
        (
            make_item(category="B", max_level="level1"),
            9000,
            "3",
            HospitalLevel.LEVEL1,
            (0, 0, 900, 8100, ("SELF_PAY_FIRST",)),
        ),
        # B with a 50-yuan cap, 2 boxes at 65: 30 over the cap, 10 % of the rest first
        (
            make_item(category="B", price_cap=5000),
            13000,
            "2",
            HospitalLevel.LEVEL3,
            (0, 3000, 1000, 9000, ("OVER_PRICE_CAP", "SELF_PAY_FIRST")),
        ),
        # five tablets mapped at 0.1 box each: the cap is for half a box
        (
            make_item(category="B", price_cap=5000),
            2600,
            "0.5",
            HospitalLevel.LEVEL3,
            (0, 100, 250, 2250, ("OVER_PRICE_CAP", "SELF_PAY_FIRST")),
        ),
        # under the cap: nothing over
        (make_item(price_cap=4000), 3500, "1", HospitalLevel.LEVEL3, (0, 0, 0, 3500, ())),
        # the cap times quantity is rounded half-up: 333 x 1.5 = 499.5 -> 500
        (
            make_item(price_cap=333),
            600,
            "1.5",
            HospitalLevel.LEVEL3,
            (0, 100, 0, 500, ("OVER_PRICE_CAP",)),
        ),
        # self-pay-first is rounded half-up: 10 % of 1005 = 100.5 -> 101
        (
            make_item(category="B"),
            1005,
            "1",
            HospitalLevel.LEVEL3,
            (0, 0, 101, 904, ("SELF_PAY_FIRST",)),
        ),
    ],
)
def test_line_classification(
    item: CatalogItem,
    amount: int,
    qty: str,
    level: HospitalLevel,
    expected: tuple[int, int, int, int, tuple[str, ...]],
) -> None:
    split = classify_line(line(amount, item.code, qty), item, level.rank)
    assert (
        split.full_self_pay,
        split.over_limit_self_pay,
        split.pre_self_pay,
        split.in_scope,
        split.reasons,
    ) == expected
    assert split.amount == amount == sum(expected[:4])


def test_visit_totals_are_sums_of_lines() -> None:
    items = (make_item("A1"), make_item("B1", "B", price_cap=5000), make_item("C1", "C"))
    visit = make_visit(
        line(4000, "A1", line_no=1), line(13000, "B1", "2", line_no=2), line(30000, "C1", line_no=3)
    )
    result = settle(visit, items=items)
    assert [split.line_no for split in result.lines] == [1, 2, 3]
    assert (result.amounts.total, result.amounts.full_self_pay) == (47000, 30000)
    assert (result.amounts.over_limit_self_pay, result.amounts.pre_self_pay) == (3000, 1000)
    assert result.amounts.in_scope == 4000 + 9000


# -- step 4: the basic fund, inpatient --------------------------------------------------------


@pytest.mark.parametrize(
    ("in_scope", "basic_ytd", "deductible", "basic"),
    [
        (111150, 0, 90000, 10575),  # (1111.50 - 900) x 50 %
        (50000, 0, 50000, 0),  # below the deductible: it takes all of S
        (90001, 0, 90000, 1),  # 0.5 fen rounds up
        (200000, 2490000, 90000, 10000),  # 55000 due, 10000 left under the cap
        (200000, 2500000, 90000, 0),  # cap exhausted
    ],
)
def test_inpatient_basic_fund(in_scope: int, basic_ytd: int, deductible: int, basic: int) -> None:
    result = settle(make_visit(line(in_scope)), state=YearToDate(basic_fund=basic_ytd))
    assert (result.amounts.deductible, result.amounts.basic_fund) == (deductible, basic)
    assert result.delta.basic_fund == basic
    assert result.delta.admissions == 1
    assert result.year_to_date.basic_fund == basic_ytd + basic
    assert result.year_to_date.basic_cap_remaining == 2500000 - basic_ytd - basic
    capped = any(note.code == "BASIC_CAP_REACHED" for note in result.notes)
    assert capped == (basic_ytd > 0)


@pytest.mark.parametrize(
    ("level", "deductible", "basic"),
    [
        (HospitalLevel.COMMUNITY, 20000, 48000),  # (1000 - 200) x 60 %
        (HospitalLevel.LEVEL1, 30000, 42000),
        (HospitalLevel.LEVEL2, 60000, 22000),  # (1000 - 600) x 55 %
        (HospitalLevel.LEVEL3, 90000, 5000),
    ],
)
def test_deductible_and_ratio_follow_the_hospital_level(
    level: HospitalLevel, deductible: int, basic: int
) -> None:
    result = settle(make_visit(line(100000)), level=level)
    assert (result.amounts.deductible, result.amounts.basic_fund) == (deductible, basic)


def test_halved_deductible_rounds_half_up_for_listed_groups() -> None:
    inpatient = {
        "deductible": {"community": 4000, "level1": 4000, "level2": 20000, "level3": 40001},
        "ratio": {"community": "0.60", "level1": "0.60", "level2": "0.50", "level3": "0.40"},
        "halved_deductible_groups": ["dibao", "severe_disability"],
    }
    policy = make_policy(inpatient=inpatient)
    visit = make_visit(line(100000))
    by_category = settle(visit, policy=policy, member=make_member(assistance_category="dibao"))
    by_group = settle(visit, policy=policy, member=make_member(groups=["severe_disability"]))
    neither = settle(visit, policy=policy, member=make_member(groups=["veteran"]))
    # 40001 / 2 = 20000.5 -> 20001; (100000 - 20001) x 40 % = 31999.6 -> 32000
    assert (by_category.amounts.deductible, by_category.amounts.basic_fund) == (20001, 32000)
    assert asdict(by_group.amounts) == asdict(by_category.amounts)
    # (100000 - 40001) x 40 % = 23999.6 -> 24000
    assert (neither.amounts.deductible, neither.amounts.basic_fund) == (40001, 24000)


def test_continuous_enrolment_raises_ratio_and_cap() -> None:
    # The case 04 figures: 7 years from 2019-01-01 -> m = 1 + 0.02 x 5 = 1.10.
    policy = make_policy(
        inpatient={
            "deductible": {"community": 4000, "level1": 4000, "level2": 20000, "level3": 40000},
            "ratio": {"community": "0.60", "level1": "0.60", "level2": "0.50", "level3": "0.40"},
        },
        annual_cap=4000000,
        continuous_bonus={"from_years": 3, "step": "0.02", "max": "0.20"},
    )
    result = settle(
        make_visit(line(374100)), policy=policy, member=make_member(enrolled_since="2019-01-01")
    )
    assert result.entitlement.multiplier == Decimal("1.10")
    assert result.entitlement.annual_cap == 4400000
    assert result.amounts.basic_fund == 147004  # (3741 - 400) x 44 %
    assert result.year_to_date.basic_cap_remaining == 4400000 - 147004


def test_bonus_never_lifts_a_ratio_above_one() -> None:
    ratio = {"community": "0.95", "level1": "0.95", "level2": "0.95", "level3": "0.95"}
    policy = make_policy(
        inpatient={"deductible": NO_DEDUCTIBLE, "ratio": ratio},
        continuous_bonus={"from_years": 1, "step": "0.10", "max": "0.20"},
    )
    result = settle(make_visit(line(100000)), policy=policy)
    assert result.amounts.basic_fund == 100000


# -- step 4: outpatient special, general outpatient, pharmacy ---------------------------------

SPECIAL = {"diagnoses": ["C", "N18", "Z94"], "ratio": "0.50", "deductible": 0}
POOLING = {"ratio": "0.50", "annual_cap": 5000}


def test_covered_outpatient_special_shares_the_annual_cap() -> None:
    visit = make_visit(line(45000), visit_type=VisitType.OUTPATIENT_SPECIAL, diagnoses=("N18.5",))
    result = settle(
        visit, policy=make_policy(outpatient_special=SPECIAL), state=YearToDate(basic_fund=2490000)
    )
    assert (result.amounts.basic_fund, result.delta.basic_fund) == (10000, 10000)
    assert result.delta.admissions == 0
    assert result.notes[0].code == "BASIC_CAP_REACHED"


@pytest.mark.parametrize(
    ("pooling", "pooling_ytd", "basic"),
    [(None, 0, 0), (POOLING, 0, 5000), (POOLING, 4000, 1000), (POOLING, 5000, 0)],
)
def test_uncovered_special_settles_as_general_outpatient(
    pooling: dict[str, Any] | None, pooling_ytd: int, basic: int
) -> None:
    visit = make_visit(line(45000), visit_type=VisitType.OUTPATIENT_SPECIAL, diagnoses=("J45.9",))
    policy = make_policy(outpatient_special=SPECIAL, outpatient_pooling=pooling)
    result = settle(visit, policy=policy, state=YearToDate(outpatient_pooling=pooling_ytd))
    assert [note.code for note in result.notes] == ["DIAGNOSIS_NOT_COVERED"]
    assert (result.amounts.basic_fund, result.amounts.deductible) == (basic, 0)
    assert (result.delta.basic_fund, result.delta.outpatient_pooling) == (0, basic)


def test_general_outpatient_pooling_rounds_half_up() -> None:
    visit = make_visit(line(1001), visit_type=VisitType.OUTPATIENT)
    result = settle(visit, policy=make_policy(outpatient_pooling=POOLING))
    assert result.amounts.basic_fund == 501  # 500.5 -> 501


def test_pharmacy_gets_nothing_from_the_basic_fund() -> None:
    visit = make_visit(line(2000), visit_type=VisitType.PHARMACY, diagnoses=())
    result = settle(visit, policy=make_policy(outpatient_pooling=POOLING), balance=0)
    assert (result.amounts.basic_fund, result.amounts.cash) == (0, 2000)


# -- step 3: eligibility ----------------------------------------------------------------------


def test_waiting_period_stops_layers_one_and_two_but_not_assistance() -> None:
    policy = make_policy(
        waiting_period_months=6, supplementary=CRITICAL_ILLNESS, assistance=ASSISTANCE
    )
    member = make_member(enrolled_since="2026-01-10", assistance_category="dibao")
    waiting = settle(make_visit(line(400000)), policy=policy, member=member)
    assert waiting.notes[0].code == "WAITING_PERIOD"
    assert "2026-07-10" in waiting.notes[0].message
    assert (waiting.amounts.deductible, waiting.amounts.basic_fund) == (0, 0)
    assert waiting.amounts.supplementary == 0
    assert waiting.delta.critical_illness_base == 0  # nothing accumulates toward layer 2
    # assistance: B = S = 4000 yuan, 70 % above 3000 yuan
    assert (waiting.amounts.assistance, waiting.delta.assistance_base) == (70000, 400000)

    eligible = settle(
        make_visit(line(400000), first=date(2026, 7, 10), last=date(2026, 7, 12)),
        policy=policy,
        member=member,
    )
    assert not any(note.code == "WAITING_PERIOD" for note in eligible.notes)
    assert eligible.amounts.basic_fund == 155000  # (4000 - 900) x 50 %


@pytest.mark.parametrize("status", ["suspended", "deceased"])
def test_inactive_members_are_refused(status: str) -> None:
    with pytest.raises(MemberNotEligible):
        settle(make_visit(line(1000)), member=make_member(status=status))


def test_a_policy_of_another_year_is_a_caller_error() -> None:
    visit = make_visit(line(1000), first=date(2027, 1, 2), last=date(2027, 1, 3))
    with pytest.raises(ValueError, match="does not apply"):
        settle(visit)


def test_policy_year_is_the_discharge_year() -> None:
    visit = make_visit(line(1000), first=date(2025, 12, 28), last=date(2026, 1, 3))
    assert settle(visit).policy_year == 2026


# -- step 5: supplementary ---------------------------------------------------------------------

BEYOND_CAP = {"kind": "beyond_cap", "requires_enrollment": True, "annual_cap": 3500000}


@pytest.mark.parametrize(
    ("enrolled", "requires", "supp_ytd", "supplementary"),
    [
        (True, True, 0, 45000),  # the 45000 the cap cut off, at the basic ratio
        (False, True, 0, 0),  # voluntary and not enrolled
        (False, False, 0, 45000),
        (True, True, 3480000, 20000),  # its own cap
    ],
)
def test_beyond_cap_pays_what_the_basic_cap_cut_off(
    enrolled: bool, requires: bool, supp_ytd: int, supplementary: int
) -> None:
    policy = make_policy(supplementary={**BEYOND_CAP, "requires_enrollment": requires})
    result = settle(
        make_visit(line(200000)),
        policy=policy,
        member=make_member(supplementary_enrolled=enrolled),
        state=YearToDate(basic_fund=2490000, supplementary=supp_ytd),
    )
    # uncapped = (2000 - 900) x 50 % = 55000; the cap leaves 10000
    assert result.amounts.basic_fund == 10000
    assert (result.amounts.supplementary, result.delta.supplementary) == (supplementary,) * 2
    assert result.delta.critical_illness_base == 0


def _ci_policy(**overrides: Any) -> Policy:
    # Ratio 0 and no deductible: the basic fund pays nothing, so P = S.
    return make_policy(
        inpatient={"deductible": NO_DEDUCTIBLE, "ratio": ZERO_RATIO},
        supplementary={**CRITICAL_ILLNESS, **overrides},
    )


@pytest.mark.parametrize(
    ("base_ytd", "supp_ytd", "in_scope", "category", "supplementary"),
    [
        (1000000, 0, 1000000, None, 300000),  # 500000 above 15000 yuan at 60 %
        (6000000, 0, 1000000, None, 650000),  # 500000 at 60 % then 500000 at 70 %
        (0, 0, 1000000, None, 0),  # below the threshold
        (0, 29990000, 3000000, None, 10000),  # 900000 due, 10000 left under the cap
        (0, 0, 1000000, "tekun", 162500),  # threshold 750000, 65 %
        (0, 29990000, 1000000, "dibao", 162500),  # hardship: no cap
        (6000000, 0, 1000000, "tekun", 750000),  # bands from 750000: all in [5750000, ...) at 75 %
        (5000000, 0, 1000000, "tekun", 675000),  # 750000 at 65 % and 250000 at 75 %
    ],
)
def test_critical_illness_bands(
    base_ytd: int, supp_ytd: int, in_scope: int, category: str | None, supplementary: int
) -> None:
    result = settle(
        make_visit(line(in_scope)),
        policy=_ci_policy(),
        member=make_member(assistance_category=category),
        state=YearToDate(critical_illness_base=base_ytd, supplementary=supp_ytd),
    )
    assert result.amounts.supplementary == supplementary
    assert result.delta.critical_illness_base == in_scope
    assert result.year_to_date.critical_illness_base == base_ytd + in_scope


def test_critical_illness_sums_exactly_and_rounds_once() -> None:
    bands = [{"width": 3, "ratio": "0.5"}, {"width": None, "ratio": "0.5"}]
    policy = _ci_policy(threshold=0, bands=bands, hardship=None)
    # 3 x 0.5 + 3 x 0.5 = 3.0 exactly; rounding each band first would give 2 + 2 = 4
    assert settle(make_visit(line(6)), policy=policy).amounts.supplementary == 3


def test_critical_illness_without_cap_and_past_a_closed_last_band() -> None:
    open_ended = _ci_policy(annual_cap=None, hardship=None)
    state = YearToDate(supplementary=10**9)
    assert (
        settle(make_visit(line(3000000)), policy=open_ended, state=state).amounts.supplementary
        == 900000
    )
    closed = _ci_policy(bands=[{"width": 1000000, "ratio": "0.60"}], hardship=None)
    # only [1500000, 2500000) is paid
    assert settle(make_visit(line(5000000)), policy=closed).amounts.supplementary == 600000


def test_critical_illness_only_for_the_enrolled_when_required() -> None:
    policy = _ci_policy(requires_enrollment=True)
    result = settle(make_visit(line(3000000)), policy=policy)
    assert (result.amounts.supplementary, result.delta.critical_illness_base) == (0, 0)


def test_no_supplementary_for_general_outpatient() -> None:
    visit = make_visit(line(3000000), visit_type=VisitType.OUTPATIENT)
    result = settle(visit, policy=_ci_policy())
    assert (result.amounts.supplementary, result.delta.critical_illness_base) == (0, 0)


# -- step 6: medical assistance ---------------------------------------------------------------


def _assist_policy(**assistance: Any) -> Policy:
    return make_policy(
        inpatient={"deductible": NO_DEDUCTIBLE, "ratio": ZERO_RATIO},
        assistance=assistance or ASSISTANCE,
    )


@pytest.mark.parametrize(
    ("base_ytd", "assist_ytd", "in_scope", "assistance"),
    [
        (200000, 0, 200000, 70000),  # crosses 3000 yuan: 1000 yuan above it at 70 %
        (500000, 0, 100000, 70000),  # already above: all of it
        (0, 0, 100000, 0),  # below
        (500000, 1990000, 100000, 10000),  # 10000 left under the annual cap
        (300000, 0, 1, 1),  # 0.7 -> 1
        (300000, 0, 5, 4),  # 3.5 -> 4
    ],
)
def test_assistance_above_the_years_threshold(
    base_ytd: int, assist_ytd: int, in_scope: int, assistance: int
) -> None:
    result = settle(
        make_visit(line(in_scope)),
        policy=_assist_policy(),
        member=make_member(assistance_category="dibao"),
        state=YearToDate(assistance_base=base_ytd, assistance=assist_ytd),
    )
    assert (result.amounts.assistance, result.delta.assistance) == (assistance, assistance)
    assert result.delta.assistance_base == in_scope


def test_assistance_uncapped_and_unlisted_categories() -> None:
    visit = make_visit(line(1234567))
    tekun = settle(
        visit,
        policy=_assist_policy(),
        member=make_member(assistance_category="tekun"),
        state=YearToDate(assistance=10**9),
    )
    assert tekun.amounts.assistance == 1234567
    youfu = settle(visit, policy=_assist_policy(), member=make_member(assistance_category="youfu"))
    assert (youfu.amounts.assistance, youfu.delta.assistance_base) == (0, 0)


def test_assistance_excludes_self_paid_amounts() -> None:
    items = (make_item("A1"), make_item("C1", "C"))
    result = settle(
        make_visit(line(100000, "A1", line_no=1), line(50000, "C1", line_no=2)),
        items=items,
        policy=_assist_policy(),
        member=make_member(assistance_category="tekun"),
    )
    assert (result.amounts.assistance, result.amounts.cash) == (100000, 50000)


# -- step 7: personal account and cash --------------------------------------------------------


@pytest.mark.parametrize(
    ("pays_self_pay_items", "balance", "account", "cash"),
    [
        (False, 5000, 2350, 9900),  # case 11: only the in-scope drug
        (True, 5000, 5000, 7250),  # the account may pay C items too
        (False, 1000, 1000, 11250),  # the balance runs out
        (False, 0, 0, 12250),
    ],
)
def test_pharmacy_swipe_uses_the_account(
    pays_self_pay_items: bool, balance: int, account: int, cash: int
) -> None:
    items = (make_item("A1"), make_item("C1", "C"))
    visit = make_visit(
        line(2350, "A1", line_no=1),
        line(9900, "C1", line_no=2),
        visit_type=VisitType.PHARMACY,
        diagnoses=(),
    )
    policy = make_policy(personal_account={"pays_self_pay_items": pays_self_pay_items})
    result = settle(visit, items=items, policy=policy, balance=balance)
    assert (result.amounts.personal_account, result.amounts.cash) == (account, cash)
    assert result.delta.personal_account == account
    assert result.year_to_date.personal_account_balance == balance - account


def test_account_pays_self_pay_first_share() -> None:
    visit = make_visit(line(4800, "B1"), visit_type=VisitType.PHARMACY, diagnoses=())
    result = settle(visit, items=(make_item("B1", "B"),), balance=2650)
    assert (result.amounts.pre_self_pay, result.amounts.in_scope) == (480, 4320)
    assert (result.amounts.personal_account, result.amounts.cash) == (2650, 2150)


@pytest.mark.parametrize(("use_account", "account"), [(False, 0), (True, 5000)])
def test_inpatient_uses_the_account_only_when_asked(use_account: bool, account: int) -> None:
    visit = make_visit(line(111150), use_personal_account=use_account)
    result = settle(visit, balance=5000)
    assert result.amounts.personal_account == account
    assert result.amounts.cash == 111150 - 10575 - account


def test_every_fen_is_accounted_for() -> None:
    items = (make_item("A1"), make_item("B1", "B", price_cap=5000), make_item("C1", "C"))
    visit = make_visit(
        line(400000, "A1", line_no=1),
        line(13000, "B1", "2", line_no=2),
        line(30000, "C1", line_no=3),
        use_personal_account=True,
    )
    policy = make_policy(supplementary=BEYOND_CAP, assistance=ASSISTANCE)
    member = make_member(assistance_category="dibao", supplementary_enrolled=True)
    result = settle(visit, items=items, policy=policy, member=member, balance=100000)
    money = result.amounts
    assert (
        money.total
        == money.full_self_pay + money.over_limit_self_pay + money.pre_self_pay + money.in_scope
    )
    assert money.total == (
        money.basic_fund
        + money.supplementary
        + money.assistance
        + money.personal_account
        + money.cash
    )


def test_lines_carry_their_own_catalog_code() -> None:
    visit = make_visit(CodedLine(7, "A1", Decimal(1), 100, date(2026, 3, 1)))
    assert settle(visit).lines[0].line_no == 7


def test_a_band_ratio_with_the_hardship_bonus_is_capped_at_one() -> None:
    # domain.md section 16: 0.98 + 0.05 pays 100 %, never 103 % of the share.
    bands = [{"width": None, "ratio": "0.98"}]
    policy = _ci_policy(threshold=0, bands=bands)
    tekun = make_member(assistance_category="tekun")
    result = settle(make_visit(line(1000000)), policy=policy, member=tekun)
    assert result.amounts.supplementary == 1000000
    assert result.amounts.cash == 0
    ordinary = settle(make_visit(line(1000000)), policy=policy)
    assert ordinary.amounts.supplementary == 980000
