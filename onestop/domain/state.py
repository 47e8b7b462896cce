"""A member's year-to-date state, and the exact increments a settlement adds to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DiseaseFigures = tuple[tuple[str, int], ...]
"""Per-disease figures as ``(code, fen)`` pairs, sorted by code, none of them 0: a frozen value
that compares equal whenever the figures are."""


def _disease_sum(*parts: DiseaseFigures, sign: int = 1) -> DiseaseFigures:
    totals: dict[str, int] = dict(parts[0]) if parts else {}
    for part in parts[1:]:
        for code, value in part:
            totals[code] = totals.get(code, 0) + sign * value
    return tuple(sorted((code, value) for code, value in totals.items() if value))


def disease_figures(values: Mapping[str, int]) -> DiseaseFigures:
    """Per-disease figures from a mapping (zero entries left out)."""
    return tuple(sorted((code, value) for code, value in values.items() if value))


@dataclass(frozen=True, slots=True)
class YearToDate:
    """What a member has accumulated in one policy year (all money in fen).

    Attributes:
        basic_fund: paid by the basic fund for inpatient and outpatient-special visits; counts
            against the annual cap.
        outpatient_pooling: paid by general outpatient pooling; counts against its own cap.
        supplementary: paid by the supplementary layer.
        critical_illness_base: in-scope personal share accumulated toward critical illness.
        assistance: paid by medical assistance (under the terms of inpatient stays, or of every
            visit when the member's assistance entry has no ``outpatient`` terms).
        assistance_base: in-scope personal share accumulated toward the assistance threshold.
        admissions: inpatient settlements.
        assistance_outpatient: paid by assistance under an entry's ``outpatient`` terms
            (domain section 10).
        assistance_outpatient_base: the share accumulated toward their threshold.
        diseases: basic fund paid per registered disease code (domain section 11).
    """

    basic_fund: int = 0
    outpatient_pooling: int = 0
    supplementary: int = 0
    critical_illness_base: int = 0
    assistance: int = 0
    assistance_base: int = 0
    admissions: int = 0
    assistance_outpatient: int = 0
    assistance_outpatient_base: int = 0
    diseases: DiseaseFigures = ()

    def disease(self, code: str) -> int:
        """The basic fund paid this year for one disease."""
        for listed, value in self.diseases:
            if listed == code:
                return value
        return 0

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
            assistance_outpatient=self.assistance_outpatient + delta.assistance_outpatient,
            assistance_outpatient_base=(
                self.assistance_outpatient_base + delta.assistance_outpatient_base
            ),
            diseases=(
                _disease_sum(self.diseases, delta.diseases) if delta.diseases else self.diseases
            ),
        )

    def minus(self, delta: StateDelta) -> YearToDate:
        """The state after reversing a settlement that added ``delta``."""
        return self.plus(delta.negated())


YEAR_COUNTERS = tuple(figure.name for figure in fields(YearToDate) if figure.name != "diseases")
"""The year's single-number figures (everything but the per-disease ones)."""


@dataclass(frozen=True, slots=True)
class StateDelta:
    """Exactly what one settlement adds to the year-to-date state and takes from the account.

    A reversal subtracts exactly these figures, so the state returns to what it would have
    been without the settlement.

    Attributes:
        personal_account: fen taken from the personal account balance.
        diseases: what it adds per disease code (one disease at most).
    """

    basic_fund: int = 0
    outpatient_pooling: int = 0
    supplementary: int = 0
    critical_illness_base: int = 0
    assistance: int = 0
    assistance_base: int = 0
    admissions: int = 0
    personal_account: int = 0
    assistance_outpatient: int = 0
    assistance_outpatient_base: int = 0
    diseases: DiseaseFigures = ()

    def negated(self) -> StateDelta:
        """The delta that undoes this one."""
        return StateDelta(
            **{name: -getattr(self, name) for name in DELTA_COUNTERS},
            diseases=tuple((code, -value) for code, value in self.diseases),
        )

    def as_dict(self) -> dict[str, Any]:
        """Field name to value, for storage and transport.

        The figures added after round 1 (outpatient assistance, diseases) appear only when
        not 0, so that a settlement without them is written as before they existed.
        """
        values: dict[str, Any] = {
            name: getattr(self, name)
            for name in DELTA_COUNTERS
            if name not in ADDED_DELTA_FIELDS or getattr(self, name)
        }
        if self.diseases:
            values["diseases"] = dict(self.diseases)
        return values

    @classmethod
    def of_dict(cls, values: Mapping[str, Any]) -> StateDelta:
        """The delta :meth:`as_dict` wrote (a figure it lacks is 0)."""
        diseases = values.get("diseases") or {}
        return cls(
            **{name: int(values.get(name, 0)) for name in DELTA_COUNTERS},
            diseases=disease_figures({str(code): int(value) for code, value in diseases.items()}),
        )


DELTA_COUNTERS = tuple(name.name for name in fields(StateDelta) if name.name != "diseases")
"""The single-number fields of a :class:`StateDelta`."""

ADDED_DELTA_FIELDS = frozenset({"assistance_outpatient", "assistance_outpatient_base", "diseases"})
"""Delta fields added after round 1: written only when not 0."""


@dataclass(frozen=True, slots=True)
class YearToDateView:
    """The year-to-date block of a result or an eligibility answer (contract section 4, §9)."""

    basic_fund: int
    basic_cap_remaining: int
    outpatient_pooling: int
    supplementary: int
    critical_illness_base: int
    assistance: int
    assistance_base: int
    personal_account_balance: int
    assistance_outpatient: int = 0
    assistance_outpatient_base: int = 0
    diseases: dict[str, int] = field(default_factory=dict)
    """Basic fund paid this year per disease code (contract §9); a disease with none is left
    out."""

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
            assistance_outpatient=state.assistance_outpatient,
            assistance_outpatient_base=state.assistance_outpatient_base,
            diseases=dict(state.diseases),
        )
