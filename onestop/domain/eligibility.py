"""Eligibility (domain.md step 3): waiting period, continuous-enrolment bonus, policy year."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from onestop.domain.errors import MemberNotEligible
from onestop.domain.member import Member
from onestop.domain.money import ONE, exact_add, exact_mul, round_half_up
from onestop.domain.policy import ContinuousBonus, Policy
from onestop.domain.types import MemberStatus


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months; the 31st of a shorter month becomes its last day."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def continuous_years(enrolled_since: date, on: date) -> int:
    """Whole years of unbroken enrolment from ``enrolled_since`` to ``on``.

    A year is complete on its anniversary; one begun on 29 February completes on 1 March in a
    common year.
    """
    years = on.year - enrolled_since.year
    if (on.month, on.day) < (enrolled_since.month, enrolled_since.day):
        years -= 1
    return max(0, years)


def bonus_multiplier(bonus: ContinuousBonus | None, years: int) -> Decimal:
    """The continuous-enrolment multiplier ``m`` (1 when there is no bonus yet).

    ``m = 1 + min(step * (years - from_years + 1), max)`` once ``years >= from_years``; the
    bonus is relative to the original ratio and cap (domain.md's chosen reading).
    """
    if bonus is None or years < bonus.from_years:
        return ONE
    raised = exact_mul(bonus.step, years - bonus.from_years + 1)
    return exact_add(ONE, min(raised, bonus.max))


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What a member is entitled to on a given day under a given policy.

    Attributes:
        benefits_start: the first day layers 1 and 2 pay, when there is a waiting period.
        in_waiting_period: whether the day is before ``benefits_start``.
        continuous_years: whole years of unbroken enrolment on that day.
        multiplier: the continuous-enrolment multiplier ``m``.
        annual_cap: the basic fund's annual cap raised by ``m`` (fen).
    """

    benefits_start: date | None
    in_waiting_period: bool
    continuous_years: int
    multiplier: Decimal
    annual_cap: int

    def raised_ratio(self, ratio: Decimal) -> Decimal:
        """``min(1, ratio * m)``: a basic-fund ratio with the bonus."""
        return min(ONE, exact_mul(ratio, self.multiplier))


def require_active(member: Member) -> None:
    """Refuse to settle for a member who is not active.

    Raises:
        MemberNotEligible: the member is suspended or deceased.
    """
    if member.status is not MemberStatus.ACTIVE:
        raise MemberNotEligible(f"member {member.member_id} is {member.status.value}")


def entitlement(policy: Policy, member: Member, on: date) -> Entitlement:
    """Work out the member's entitlement on ``on`` (for a visit, its first day)."""
    benefits_start = None
    if policy.waiting_period_months > 0:
        benefits_start = add_months(member.enrolled_since, policy.waiting_period_months)
    years = continuous_years(member.enrolled_since, on)
    multiplier = bonus_multiplier(policy.continuous_bonus, years)
    return Entitlement(
        benefits_start=benefits_start,
        in_waiting_period=benefits_start is not None and on < benefits_start,
        continuous_years=years,
        multiplier=multiplier,
        annual_cap=round_half_up(exact_mul(policy.annual_cap_after(years), multiplier)),
    )
