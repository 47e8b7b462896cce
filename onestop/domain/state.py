"""A member's year-to-date state, and the exact increments a settlement adds to it."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class YearToDate:
    """What a member has accumulated in one policy year (all money in fen).

    Attributes:
        basic_fund: paid by the basic fund for inpatient and outpatient-special visits; counts
            against the annual cap.
        outpatient_pooling: paid by general outpatient pooling; counts against its own cap.
        supplementary: paid by the supplementary layer.
        critical_illness_base: in-scope personal share accumulated toward critical illness.
        assistance: paid by medical assistance.
        assistance_base: in-scope personal share accumulated toward the assistance threshold.
        admissions: inpatient settlements.
    """

    basic_fund: int = 0
    outpatient_pooling: int = 0
    supplementary: int = 0
    critical_illness_base: int = 0
    assistance: int = 0
    assistance_base: int = 0
    admissions: int = 0

    def plus(self, delta: StateDelta) -> YearToDate:
        """The state after a settlement that added ``delta``."""
        return YearToDate(
            basic_fund=self.basic_fund + delta.basic_fund,
            outpatient_pooling=self.outpatient_pooling + delta.outpatient_pooling,
            supplementary=self.supplementary + delta.supplementary,
            critical_illness_base=self.critical_illness_base + delta.critical_illness_base,
            assistance=self.assistance + delta.assistance,
            assistance_base=self.assistance_base + delta.assistance_base,
            admissions=self.admissions + delta.admissions,
        )

    def minus(self, delta: StateDelta) -> YearToDate:
        """The state after reversing a settlement that added ``delta``."""
        return self.plus(delta.negated())


@dataclass(frozen=True, slots=True)
class StateDelta:
    """Exactly what one settlement adds to the year-to-date state and takes from the account.

    A reversal subtracts exactly these figures, so the state returns to what it would have
    been without the settlement.

    Attributes:
        personal_account: fen taken from the personal account balance.
    """

    basic_fund: int = 0
    outpatient_pooling: int = 0
    supplementary: int = 0
    critical_illness_base: int = 0
    assistance: int = 0
    assistance_base: int = 0
    admissions: int = 0
    personal_account: int = 0

    def negated(self) -> StateDelta:
        """The delta that undoes this one."""
        return StateDelta(*(-getattr(self, field.name) for field in fields(self)))

    def as_dict(self) -> dict[str, int]:
        """Field name to value, for storage and transport."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True, slots=True)
class YearToDateView:
    """The year-to-date block of a result or an eligibility answer (contract section 4)."""

    basic_fund: int
    basic_cap_remaining: int
    outpatient_pooling: int
    supplementary: int
    critical_illness_base: int
    assistance: int
    assistance_base: int
    personal_account_balance: int

    @classmethod
    def of(cls, state: YearToDate, annual_cap: int, account_balance: int) -> YearToDateView:
        """Show ``state`` against the (bonus-raised) basic ``annual_cap``."""
        return cls(
            basic_fund=state.basic_fund,
            basic_cap_remaining=max(0, annual_cap - state.basic_fund),
            outpatient_pooling=state.outpatient_pooling,
            supplementary=state.supplementary,
            critical_illness_base=state.critical_illness_base,
            assistance=state.assistance,
            assistance_base=state.assistance_base,
            personal_account_balance=account_balance,
        )
