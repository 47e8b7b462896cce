from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from onestop.domain import entitlement
from onestop.domain.eligibility import add_months, bonus_multiplier, continuous_years
from onestop.domain.errors import InvalidDocument
from onestop.domain.member import Member
from onestop.domain.policy import ContinuousBonus, parse_policy, policy_to_document
from onestop.tooling.demo.regions import demo_policies
from tests.support.builders import make_member, make_policy
from tests.support.scenario import member_record


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 1, 10), 6, date(2026, 7, 10)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
        (date(2026, 3, 31), 0, date(2026, 3, 31)),
    ],
)
def test_add_months(start: date, months: int, end: date) -> None:
    assert add_months(start, months) == end


@pytest.mark.parametrize(
    ("since", "on", "years"),
    [
        (date(2019, 1, 1), date(2026, 3, 1), 7),
        (date(2019, 3, 2), date(2026, 3, 1), 6),  # the day before the anniversary
        (date(2019, 3, 1), date(2026, 3, 1), 7),
        (date(2026, 1, 10), date(2026, 3, 1), 0),
        (date(2027, 1, 1), date(2026, 3, 1), 0),  # enrolled after the visit: never negative
        (date(2020, 2, 29), date(2021, 2, 28), 0),
        (date(2020, 2, 29), date(2021, 3, 1), 1),
    ],
)
def test_continuous_years(since: date, on: date, years: int) -> None:
    assert continuous_years(since, on) == years


BONUS = ContinuousBonus(from_years=3, step=Decimal("0.02"), max=Decimal("0.20"))


@pytest.mark.parametrize(
    ("years", "multiplier"),
    [(0, "1"), (2, "1"), (3, "1.02"), (7, "1.10"), (11, "1.18"), (12, "1.20"), (30, "1.20")],
)
def test_bonus_multiplier(years: int, multiplier: str) -> None:
    assert bonus_multiplier(BONUS, years) == Decimal(multiplier)
    assert bonus_multiplier(None, years) == 1


def test_entitlement_on_a_day() -> None:
    policy = make_policy(
        waiting_period_months=6,
        continuous_bonus={"from_years": 3, "step": "0.02", "max": "0.20"},
        annual_cap=4000000,
    )
    new = make_member(enrolled_since="2026-01-10")
    waiting = entitlement(policy, new, date(2026, 7, 9))
    assert (waiting.in_waiting_period, waiting.benefits_start) == (True, date(2026, 7, 10))
    assert not entitlement(policy, new, date(2026, 7, 10)).in_waiting_period
    long_standing = entitlement(policy, make_member(enrolled_since="2015-01-01"), date(2026, 5, 1))
    assert (long_standing.continuous_years, long_standing.annual_cap) == (11, 4720000)
    assert long_standing.raised_ratio(Decimal("0.40")) == Decimal("0.4720")
    assert entitlement(make_policy(), new, date(2026, 3, 1)).benefits_start is None


def test_a_higher_cap_after_continuous_years_then_the_bonus_multiplies_it() -> None:
    """Domain section 9: the step reached replaces annual_cap; the bonus multiplies it."""
    document = {
        "region": "331082",
        "scheme": "resident",
        "year": 2026,
        "name": "Linhai",
        "inpatient": {
            "deductible": {"community": 0, "level1": 0, "level2": 0, "level3": 0},
            "ratio": {"community": "0.6", "level1": "0.6", "level2": "0.6", "level3": "0.6"},
        },
        "annual_cap": 6000000,
        "cap_by_continuous_years": [
            {"from_years": 5, "annual_cap": 8000000},
            {"from_years": 3, "annual_cap": 7000000},
        ],
    }

    def cap(enrolled_since: str, on: date, **extra: object) -> int:
        policy = parse_policy({**document, **extra})
        member = Member.model_validate(
            {**member_record("L1", region="331082"), "enrolled_since": enrolled_since}
        )
        return entitlement(policy, member, on).annual_cap

    assert cap("2024-01-01", date(2026, 6, 1)) == 6000000  # 2 years: the policy's cap
    assert cap("2023-06-01", date(2026, 6, 1)) == 7000000  # 3 years exactly, on the day
    assert cap("2023-06-02", date(2026, 6, 1)) == 6000000  # one day short
    assert cap("2020-01-01", date(2026, 6, 1)) == 8000000  # 6 years: the largest step reached
    bonus = {"continuous_bonus": {"from_years": 1, "step": "0.1", "max": "0.1"}}
    assert cap("2020-01-01", date(2026, 6, 1), **bonus) == 8800000  # then x 1.1


def test_a_cap_step_named_twice_is_refused() -> None:

    document = policy_to_document(demo_policies()[0])
    assert "cap_by_continuous_years" not in document  # unused: written as before
    steps = [{"from_years": 3, "annual_cap": 1}, {"from_years": 3, "annual_cap": 2}]
    with pytest.raises(InvalidDocument, match="at most once"):
        parse_policy({**document, "cap_by_continuous_years": steps})
