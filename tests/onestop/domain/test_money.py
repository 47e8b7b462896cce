from __future__ import annotations

from decimal import Decimal, Inexact

import pytest

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
