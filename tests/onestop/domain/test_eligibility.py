from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from onestop.domain import entitlement
from onestop.domain.eligibility import add_months, bonus_multiplier, continuous_years
from onestop.domain.policy import ContinuousBonus
from tests.support.builders import make_member, make_policy


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
