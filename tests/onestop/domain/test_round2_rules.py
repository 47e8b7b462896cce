"""The round-2 rules (domain.md sections 8, 10, 11, 12), each with its worked numbers.

The plain policy of the builders pays 50 % at level 3 after a 90,000-fen deductible, within a
2,500,000-fen annual cap. Each table row states its own numbers; the boundaries the rules turn
on (a registration starting on the visit day, a reduction below 0, a disease cap reached
mid-visit, a bill below and above a fixed price) are rows of their own.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

import pytest

from onestop.domain import (
    Adjudication,
    HospitalLevel,
    Member,
    Policy,
    Visit,
    VisitType,
    YearToDate,
    adjudicate,
)
from onestop.domain.engine import (
    BASIC_CAP_REACHED,
    DIAGNOSIS_NOT_COVERED,
    DISEASE_NOT_REGISTERED,
    NOT_REFERRED,
    OUT_OF_REGION,
    SINGLE_DISEASE,
    WAITING_PERIOD,
)
from tests.support.builders import line, make_item, make_member, make_policy, make_visit

HOME, AWAY = "410100", "520100"
OUT_OF_REGION_BLOCK = {
    "registered_ratio_reduction": "0.05",
    "unregistered_ratio_reduction": "0.15",
    "pooling": False,
}
REFERRAL_BLOCK = {"levels": ["level3"], "unreferred_ratio_reduction": "0.10"}
DISEASES = [
    {
        "code": "MT001",
        "name": "恶性肿瘤门诊放化疗",
        "diagnoses": ["C"],
        "ratio": "0.70",
        "deductible": 0,
        "annual_cap": None,
        "requires_registration": True,
    },
    {
        "code": "MT002",
        "name": "尿毒症透析",
        "diagnoses": ["N18"],
        "ratio": "0.80",
        "deductible": 0,
        "annual_cap": 100000,
        "requires_registration": True,
    },
    {
        "code": "MT003",
        "name": "器官移植抗排异",
        "diagnoses": ["Z94", "N18"],
        "ratio": "0.60",
        "deductible": 20000,
        "annual_cap": None,
        "requires_registration": False,
    },
]
APPENDICITIS = {
    "code": "DB01",
    "name": "急性阑尾炎",
    "diagnoses": ["K35"],
    "price": 450000,
    "patient_ratio": "0.30",
}
DAY = date(2026, 3, 1)


def settle(
    visit: Visit,
    policy: Policy,
    member: Member | None = None,
    *,
    region: str | None = HOME,
    level: HospitalLevel = HospitalLevel.LEVEL3,
    state: YearToDate | None = None,
    balance: int = 0,
) -> Adjudication:
    items = (make_item("A1"), make_item("C1", "C"))
    return adjudicate(
        visit,
        level,
        member or make_member(),
        policy,
        {item.code: item for item in items},
        state or YearToDate(),
        balance,
        client_region=region,
    )


def codes(result: Adjudication) -> list[str]:
    return [note.code for note in result.notes]


def stay(amount: int = 500000, **fields: Any) -> Visit:
    return make_visit(line(amount), first=DAY, last=date(2026, 3, 5), **fields)


def registered(region: str, starts: str, ends: str | None = None) -> Member:
    return make_member(out_of_region_registrations=[{"region": region, "from": starts, "to": ends}])


# -- section 8: where the patient is treated ------------------------------------------------


@pytest.mark.parametrize(
    ("policy_blocks", "member", "region", "level", "referral_no", "basic", "notes"),
    [
        # (500,000 - 90,000) x (0.50 - 0.05): registered on the visit's first day exactly
        ({"out_of_region": OUT_OF_REGION_BLOCK}, registered(AWAY, "2026-03-01"), AWAY,
         "level3", None, 184500, [OUT_OF_REGION]),
        # a registration starting the day after the admission does not cover it: x 0.35
        ({"out_of_region": OUT_OF_REGION_BLOCK}, registered(AWAY, "2026-03-02"), AWAY,
         "level3", None, 143500, [OUT_OF_REGION]),
        # one that ended the day before: x 0.35; one for another region: x 0.35
        ({"out_of_region": OUT_OF_REGION_BLOCK}, registered(AWAY, "2025-01-01", "2026-02-28"),
         AWAY, "level3", None, 143500, [OUT_OF_REGION]),
        ({"out_of_region": OUT_OF_REGION_BLOCK}, registered("610822", "2026-01-01"), AWAY,
         "level3", None, 143500, [OUT_OF_REGION]),
        # reductions add: not registered, not referred: x (0.50 - 0.15 - 0.10) = 102,500
        ({"out_of_region": OUT_OF_REGION_BLOCK, "referral": REFERRAL_BLOCK}, make_member(),
         AWAY, "level3", None, 102500, [OUT_OF_REGION, NOT_REFERRED]),
        # at home, not referred: x 0.40 = 164,000; referred: x 0.50 = 205,000
        ({"referral": REFERRAL_BLOCK}, make_member(), HOME, "level3", None, 164000,
         [NOT_REFERRED]),
        ({"referral": REFERRAL_BLOCK}, make_member(), HOME, "level3", "ZZ-1", 205000, []),
        # a level the referral rule does not list: (500,000 - 60,000) x 0.55 = 242,000
        ({"referral": REFERRAL_BLOCK}, make_member(), HOME, "level2", None, 242000, []),
        # a reduction that would go below 0 stops at 0
        ({"out_of_region": {**OUT_OF_REGION_BLOCK, "unregistered_ratio_reduction": "0.60"}},
         make_member(), AWAY, "level3", None, 0, [OUT_OF_REGION]),
        # without the block, out of region settles as at home, with no note
        ({}, make_member(), AWAY, "level3", None, 205000, []),
        # a client registered without a region is taken as local
        ({"out_of_region": OUT_OF_REGION_BLOCK}, make_member(), None, "level3", None, 205000,
         []),
    ],
)  # fmt: skip
def test_out_of_region_and_referral_reduce_the_ratio(
    policy_blocks: dict[str, Any],
    member: Member,
    region: str | None,
    level: str,
    referral_no: str | None,
    basic: int,
    notes: list[str],
) -> None:
    result = settle(
        stay(referral_no=referral_no),
        make_policy(**policy_blocks),
        member,
        region=region,
        level=HospitalLevel(level),
    )
    assert result.amounts.basic_fund == basic
    assert codes(result) == notes
    assert result.amounts.cash == 500000 - basic


def test_the_reduction_applies_after_the_continuous_bonus() -> None:
    # enrolled 2015: 11 years, m = 1 + min(0.02 x 9, 0.20) = 1.18; 0.50 x 1.18 = 0.59;
    # registered: 0.59 - 0.05 = 0.54; (500,000 - 90,000) x 0.54 = 221,400
    policy = make_policy(
        out_of_region=OUT_OF_REGION_BLOCK,
        continuous_bonus={"from_years": 3, "step": "0.02", "max": "0.20"},
    )
    result = settle(stay(), policy, registered(AWAY, "2026-01-01"), region=AWAY)
    assert result.amounts.basic_fund == 221400


@pytest.mark.parametrize(("pooling", "paid"), [(False, 0), (True, 2350)])
def test_general_outpatient_pooling_out_of_region_pays_only_when_allowed(
    pooling: bool, paid: int
) -> None:
    policy = make_policy(
        out_of_region={**OUT_OF_REGION_BLOCK, "pooling": pooling},
        outpatient_pooling={"ratio": "0.50", "annual_cap": 5000},
    )
    visit = make_visit(line(4700), visit_type=VisitType.OUTPATIENT, diagnoses=("J06.9",))
    result = settle(visit, policy, region=AWAY)
    assert result.amounts.basic_fund == paid
    assert result.delta.outpatient_pooling == paid
    assert codes(result) == [OUT_OF_REGION]
    # at home, pooling pays whatever the block says
    assert settle(visit, policy, region=HOME).amounts.basic_fund == 2350


def test_a_covered_special_disease_visit_out_of_region_is_reduced_too() -> None:
    # MT003 at 0.60, unregistered out of region: 0.45; (45,000 - 20,000) x 0.45 = 11,250
    policy = make_policy(out_of_region=OUT_OF_REGION_BLOCK, outpatient_special=DISEASES)
    visit = make_visit(line(45000), visit_type=VisitType.OUTPATIENT_SPECIAL, diagnoses=("Z94.0",))
    result = settle(visit, policy, region=AWAY)
    assert result.amounts.basic_fund == 11250
    assert result.delta.diseases == (("MT003", 11250),)


# -- section 10: assistance for everyone, and for outpatients apart ----------------------------

GENERAL = {"threshold": 1000000, "ratio": "0.50", "annual_cap": 2000000}
DIBAO_WITH_OUTPATIENT = {
    "threshold": 300000,
    "ratio": "0.70",
    "annual_cap": 2000000,
    "outpatient": {"threshold": 0, "ratio": "0.50", "annual_cap": 15000},
}


@pytest.mark.parametrize(
    ("category", "table", "visit_type", "amount", "state", "paid", "outpatient"),
    [
        # no category: the general entry; B = 3,090,000 - 1,500,000 = 1,590,000 above
        # 1,000,000 at 50 % = 295,000 (basic (3,090,000 - 90,000) x 0.50 = 1,500,000)
        (None, {"general": GENERAL}, "inpatient", 3090000, YearToDate(), 295000, False),
        # a category the table lacks gets nothing, general or not
        ("youfu", {"general": GENERAL}, "inpatient", 3090000, YearToDate(), 0, False),
        # dibao outpatient: its own terms, from 0 at 50 %: 4,700 -> 2,350
        ("dibao", {"dibao": DIBAO_WITH_OUTPATIENT}, "outpatient", 4700, YearToDate(), 2350,
         True),
        # ... within their own cap: 13,600 paid already, 2,350 capped at 1,400
        ("dibao", {"dibao": DIBAO_WITH_OUTPATIENT}, "pharmacy", 4700,
         YearToDate(assistance_outpatient=13600, assistance_outpatient_base=27200), 1400, True),
        # ... whatever the inpatient figures say (their threshold is not the outpatient one)
        ("dibao", {"dibao": DIBAO_WITH_OUTPATIENT}, "outpatient", 4700,
         YearToDate(assistance=2000000, assistance_base=9000000), 2350, True),
        # a stay of the same member uses the entry's terms on fresh figures: B = 1,090,000 -
        # 500,000 = 590,000, above 300,000 at 70 % = 203,000
        ("dibao", {"dibao": DIBAO_WITH_OUTPATIENT}, "inpatient", 1090000,
         YearToDate(assistance_outpatient=15000, assistance_outpatient_base=31900), 203000,
         False),
    ],
)  # fmt: skip
def test_assistance_general_and_outpatient_terms(
    category: str | None,
    table: dict[str, Any],
    visit_type: str,
    amount: int,
    state: YearToDate,
    paid: int,
    outpatient: bool,
) -> None:
    kind = VisitType(visit_type)
    visit = make_visit(line(amount), visit_type=kind, diagnoses=("K35.8",))
    result = settle(
        visit, make_policy(assistance=table), make_member(assistance_category=category), state=state
    )
    assert result.amounts.assistance == paid
    delta = result.delta
    if outpatient:
        assert (delta.assistance_outpatient, delta.assistance_outpatient_base) == (
            paid,
            amount - result.amounts.basic_fund,
        )
        assert (delta.assistance, delta.assistance_base) == (0, 0)
    else:
        assert (delta.assistance_outpatient, delta.assistance_outpatient_base) == (0, 0)
        assert delta.assistance == paid


# -- section 11: registered chronic and special diseases --------------------------------------


def dialysis(day: date = DAY) -> Visit:
    return make_visit(
        line(45000, day=day), visit_type=VisitType.OUTPATIENT_SPECIAL, first=day,
        diagnoses=("N18.5",),
    )  # fmt: skip


def test_a_disease_cap_is_reached_mid_visit() -> None:
    # 45,000 x 0.80 = 36,000 a session; the third has 100,000 - 72,000 = 28,000 left
    policy = make_policy(outpatient_special=DISEASES)
    member = make_member(registered_diseases=[{"code": "MT002", "from": "2026-01-01"}])
    state = YearToDate()
    paid = []
    for _ in range(4):
        result = settle(dialysis(), policy, member, state=state)
        paid.append(result.amounts.basic_fund)
        state = state.plus(result.delta)
    assert paid == [36000, 36000, 28000, 0]
    assert state.diseases == (("MT002", 100000),)
    assert state.basic_fund == 100000
    assert codes(result) == [BASIC_CAP_REACHED]
    assert "MT002" in result.notes[0].message


@pytest.mark.parametrize(
    ("registration", "covered_by", "basic", "notes"),
    [
        # registered from the visit day itself: MT002 covers it
        ({"code": "MT002", "from": "2026-03-01"}, "MT002", 36000, []),
        # registered from the next day: MT002 does not qualify, MT003 (no registration
        # needed, N18 listed second) does: (45,000 - 20,000) x 0.60 = 15,000
        ({"code": "MT002", "from": "2026-03-02"}, "MT003", 15000, []),
        # registered for another disease: the same
        ({"code": "MT001", "from": "2026-01-01"}, "MT003", 15000, []),
    ],
)
def test_the_first_disease_that_matches_and_qualifies_covers_the_visit(
    registration: dict[str, Any], covered_by: str, basic: int, notes: list[str]
) -> None:
    member = make_member(registered_diseases=[registration])
    result = settle(dialysis(), make_policy(outpatient_special=DISEASES), member)
    assert result.amounts.basic_fund == basic
    assert result.delta.diseases == ((covered_by, basic),)
    assert codes(result) == notes


def test_a_disease_needing_registration_without_one_settles_as_general_outpatient() -> None:
    # only MT001 matches C34.9 and it needs a registration: general outpatient pooling, 50 %
    policy = make_policy(
        outpatient_special=DISEASES, outpatient_pooling={"ratio": "0.50", "annual_cap": 5000}
    )
    visit = make_visit(line(4700), visit_type=VisitType.OUTPATIENT_SPECIAL, diagnoses=("C34.9",))
    result = settle(visit, policy)
    assert codes(result) == [DISEASE_NOT_REGISTERED]
    assert result.amounts.basic_fund == 2350
    assert (result.delta.outpatient_pooling, result.delta.basic_fund) == (2350, 0)
    assert result.delta.diseases == ()
    # a diagnosis no disease lists is the round-1 note
    other = make_visit(line(4700), visit_type=VisitType.OUTPATIENT_SPECIAL, diagnoses=("J45.9",))
    assert codes(settle(other, policy)) == [DIAGNOSIS_NOT_COVERED]


def test_the_shared_cap_and_the_disease_cap_both_hold() -> None:
    # 2,480,000 of the shared 2,500,000 paid: 20,000 left though MT002 has 100,000
    policy = make_policy(outpatient_special=DISEASES)
    member = make_member(registered_diseases=[{"code": "MT002", "from": "2026-01-01"}])
    result = settle(dialysis(), policy, member, state=YearToDate(basic_fund=2480000))
    assert result.amounts.basic_fund == 20000
    assert result.delta.diseases == (("MT002", 20000),)


def test_beyond_cap_also_pays_what_a_disease_cap_cut_off() -> None:
    # 36,000 uncapped; MT002 has 8,000 left; beyond_cap pays the other 28,000
    policy = make_policy(
        outpatient_special=DISEASES,
        supplementary={"kind": "beyond_cap", "requires_enrollment": False, "annual_cap": 3500000},
    )
    member = make_member(registered_diseases=[{"code": "MT002", "from": "2026-01-01"}])
    state = YearToDate(basic_fund=92000, diseases=(("MT002", 92000),))
    result = settle(dialysis(), policy, member, state=state)
    assert (result.amounts.basic_fund, result.amounts.supplementary) == (8000, 28000)
    assert result.amounts.cash == 9000


def test_the_one_block_form_has_no_disease_figure() -> None:
    policy = make_policy(
        outpatient_special={"diagnoses": ["N18"], "ratio": "0.50", "deductible": 0}
    )
    result = settle(dialysis(), policy)
    assert result.amounts.basic_fund == 22500
    assert result.delta.diseases == ()
    assert result.year_to_date.diseases == {}


# -- section 12: single-disease fixed prices --------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "amounts"),
    [
        # above the price: base 450,000, the hospital bears 70,000; the patient
        # round(450,000 x 0.30) = 135,000, the basic fund 315,000; C items play no part
        ((line(461750), line(58250, "C1", line_no=2)),
         {"total": 520000, "full_self_pay": 58250, "in_scope": 461750, "deductible": 0,
          "basic_fund": 315000, "cash": 135000, "hospital_part": 70000}),
        # below it: base = total = 380,000; patient 114,000, basic 266,000, hospital 0
        ((line(380000),),
         {"total": 380000, "deductible": 0, "basic_fund": 266000, "cash": 114000,
          "hospital_part": 0}),
        # exactly the price
        ((line(450000),), {"basic_fund": 315000, "cash": 135000, "hospital_part": 0}),
    ],
)  # fmt: skip
def test_a_single_disease_price_settles_the_stay(
    lines: tuple[Any, ...], amounts: dict[str, int]
) -> None:
    policy = make_policy(single_disease=[APPENDICITIS])
    visit = make_visit(*lines, first=DAY, last=date(2026, 3, 5), diagnoses=("K35.8", "I10"))
    result = settle(visit, policy, level=HospitalLevel.LEVEL2)
    assert asdict(result.amounts) | amounts == asdict(result.amounts)
    assert codes(result) == [SINGLE_DISEASE]
    assert result.delta.basic_fund == amounts["basic_fund"]


def test_only_the_first_diagnosis_chooses_a_single_disease_price() -> None:
    policy = make_policy(single_disease=[APPENDICITIS])
    visit = make_visit(line(520000), first=DAY, last=date(2026, 3, 5), diagnoses=("I10", "K35.8"))
    result = settle(visit, policy)
    assert result.amounts.hospital_part == 0
    assert result.amounts.basic_fund == (520000 - 90000) // 2  # the ratio, as ever
    assert SINGLE_DISEASE not in codes(result)


def test_a_single_disease_price_within_the_annual_cap_with_assistance_and_account() -> None:
    # basic: min(315,000, 2,500,000 - 2,400,000) = 100,000; assistance (dibao, from 0 at
    # 100 %) on base - basic = 350,000; nothing for cash, even with C items in the bill
    policy = make_policy(
        single_disease=[APPENDICITIS],
        assistance={"dibao": {"threshold": 0, "ratio": "1.00", "annual_cap": None}},
    )
    visit = make_visit(line(461750), line(58250, "C1", line_no=2), first=DAY, last=date(2026, 3, 5))
    member = make_member(assistance_category="dibao")
    result = settle(visit, policy, member, state=YearToDate(basic_fund=2400000))
    assert (result.amounts.basic_fund, result.amounts.assistance) == (100000, 350000)
    assert (result.amounts.cash, result.amounts.hospital_part) == (0, 70000)
    assert codes(result) == [SINGLE_DISEASE, BASIC_CAP_REACHED]


def test_in_the_waiting_period_a_single_disease_price_still_sets_what_is_owed() -> None:
    # the basic fund pays nothing; the patient owes the base, 450,000, the account pays
    # what it holds (a single-disease price lets it pay every item)
    policy = make_policy(single_disease=[APPENDICITIS], waiting_period_months=6)
    member = make_member(enrolled_since="2026-01-01")
    visit = make_visit(line(520000), first=DAY, last=date(2026, 3, 5), use_personal_account=True)
    result = settle(visit, policy, member, balance=50000)
    assert codes(result) == [WAITING_PERIOD, SINGLE_DISEASE]
    assert result.amounts.basic_fund == 0
    assert (result.amounts.personal_account, result.amounts.cash) == (50000, 400000)
    assert result.amounts.hospital_part == 70000


def test_a_single_disease_price_is_not_reduced_out_of_region() -> None:
    policy = make_policy(
        single_disease=[APPENDICITIS], out_of_region=OUT_OF_REGION_BLOCK, referral=REFERRAL_BLOCK
    )
    visit = make_visit(line(520000), first=DAY, last=date(2026, 3, 5))
    result = settle(visit, policy, region=AWAY)
    assert result.amounts.basic_fund == 315000
    assert codes(result) == [OUT_OF_REGION, NOT_REFERRED, SINGLE_DISEASE]
