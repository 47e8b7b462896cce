from __future__ import annotations

import math
from decimal import Decimal, Inexact
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.domain.money import exact_div, exact_mul, format_yuan, round_half_up


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.5", 1),
        ("1.5", 2),
        ("2.5", 3),  # half-up, not banker's rounding
        ("2.4999999", 2),
        ("-2.5", -3),  # halves go away from zero
        ("201337.5", 201338),  # case 03's assistance
        ("0", 0),
    ],
)
def test_round_half_up(value: str, expected: int) -> None:
    assert round_half_up(Decimal(value)) == expected


def test_whole_fen_pass_through() -> None:
    assert round_half_up(12345) == 12345


@settings(max_examples=3000, deadline=None)
@given(
    amount=st.integers(min_value=-(10**15), max_value=10**15),
    factor=st.decimals(
        min_value=Decimal("-100000"),
        max_value=Decimal("100000"),
        places=6,
        allow_nan=False,
        allow_infinity=False,
    ),
)
def test_a_product_rounds_the_same_in_integers_as_in_decimals(amount: int, factor: Decimal) -> None:
    # The line loop's integer path against the decimal one it replaced, on any values.
    numerator, denominator = factor.as_integer_ratio()
    assert round_half_up(amount * numerator, denominator) == round_half_up(
        exact_mul(amount, factor)
    )


@settings(max_examples=2000, deadline=None)
@given(
    numerator=st.integers(min_value=-(10**90), max_value=10**90),
    denominator=st.integers(min_value=1, max_value=10**40),
)
def test_a_fraction_of_any_size_rounds_half_away_from_zero_exactly(
    numerator: int, denominator: int
) -> None:
    # Beyond the decimal context's 60 digits too, where the decimal product used to raise.
    value = Fraction(numerator, denominator)
    whole = math.floor(abs(value) + Fraction(1, 2))
    assert round_half_up(numerator, denominator) == (whole if value >= 0 else -whole)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 1), (15, 10, 2), (25, 10, 3), (-25, 10, -3), (24, 10, 2), (-24, 10, -2), (7, 1, 7)],
)
def test_a_fraction_rounds_half_away_from_zero(
    numerator: int, denominator: int, expected: int
) -> None:
    assert round_half_up(numerator, denominator) == expected


def test_a_denominator_is_for_an_integer_numerator_and_positive() -> None:
    with pytest.raises(ValueError, match="not positive"):
        round_half_up(5, 0)
    with pytest.raises(ValueError, match="integer numerator"):
        round_half_up(Decimal("2.5"), 2)


def test_exact_operations_refuse_to_round() -> None:
    assert exact_mul(Decimal("0.55"), 100) == Decimal("55.00")
    assert exact_div(40001, 2) == Decimal("20000.5")
    with pytest.raises(Inexact):
        exact_div(1, 3)


@pytest.mark.parametrize(
    ("fen", "text"), [(0, "0.00"), (5, "0.05"), (123456, "1,234.56"), (-250, "-2.50")]
)
def test_format_yuan(fen: int, text: str) -> None:
    assert format_yuan(fen) == text
