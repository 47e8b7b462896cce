"""Inpatient stays: a patient cannot lie in two beds at once."""

from __future__ import annotations

from datetime import date


def stays_overlap(first: tuple[date, date], second: tuple[date, date]) -> bool:
    """Whether two stays ``(admission, discharge)`` overlap.

    Touching stays do not: a discharge on the day of the next admission is a transfer
    (domain.md, state and lifecycle).
    """
    return first[0] < second[1] and second[0] < first[1]
