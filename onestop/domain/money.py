"""Exact money arithmetic: integer fen, exact decimal ratios, one rounding function.

Money is always an ``int`` number of fen. Ratios and quantities are :class:`~decimal.Decimal`
values that are never rounded by accident: every product and quotient goes through a context
that raises instead of rounding, so a result is either exact or an error. The only place a
value is rounded is :func:`round_half_up`, called at the points ``domain.md`` names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
)

# Sixty digits hold any product of a fen amount (< 10^15), a ratio and a 4-place quantity
# times a mapping factor many times over; if one ever does not fit, Inexact/Rounded trap.
_EXACT = Context(
    prec=60,
    rounding=ROUND_HALF_UP,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact, Rounded],
)
_ROUNDING = Context(prec=60, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])
_ONE = Decimal(1)

ZERO = Decimal(0)
ONE = _ONE


# The exact operations are the context's own C methods, bound once: they sit on the hot path
# of every bill line, where a Python wrapper would cost more than the arithmetic.
exact_mul: Callable[[Decimal | int, Decimal | int], Decimal] = _EXACT.multiply
"""Multiply exactly; raises :class:`decimal.Inexact` if the product would need rounding.

It never does for the values the contract admits; the trap keeps that a checked fact instead
of an assumption."""

exact_add: Callable[[Decimal | int, Decimal | int], Decimal] = _EXACT.add
"""Add exactly (see :data:`exact_mul`)."""

exact_div: Callable[[Decimal | int, Decimal | int], Decimal] = _EXACT.divide
"""Divide exactly; raises :class:`decimal.Inexact` when the quotient does not terminate."""

_quantize = _ROUNDING.quantize


def round_half_up(value: Decimal | int, denominator: int = 1) -> int:
    """Round to whole fen, halves away from zero.

    This is the project's one rounding function. ``domain.md`` says where it is applied:
    price caps times quantities, self-pay-first shares, halved deductibles, bonus-raised caps,
    fund payments, hardship thresholds and assistance, and the gateway's amount check.

    An exact fraction can be given as two integers, ``value / denominator``: the hot line
    loop multiplies a fen amount by a ratio's :meth:`~decimal.Decimal.as_integer_ratio` and
    rounds in integers, half the cost of the decimal product and its quantize, with the same
    answer wherever that product fits the exact context's 60 digits (a property test in
    ``tests/onestop/domain/test_money.py``); beyond, where the product raised, it stays exact.

    Args:
        value: an exact amount in fen, possibly fractional; or, with ``denominator``, the
            numerator of one.
        denominator: a positive integer dividing an integer ``value``.

    Returns:
        The nearest whole fen; ``0.5`` goes up (``2.5 -> 3``, ``-2.5 -> -3``).

    Raises:
        ValueError: a ``denominator`` with a decimal ``value``, or one not positive.
    """
    if type(value) is int:
        if denominator == 1:
            return value
        if denominator < 1:
            raise ValueError(f"denominator {denominator} is not positive")
        whole, rest = divmod(-value if value < 0 else value, denominator)
        if rest * 2 >= denominator:
            whole += 1
        return -whole if value < 0 else whole
    if denominator != 1:
        raise ValueError("a denominator divides an integer numerator only")
    return int(_quantize(value, _ONE))


def format_yuan(fen: int) -> str:
    """Render fen as yuan with two decimals and thousands separators (``123456 -> 1,234.56``)."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"


_YUAN = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?")


def fen_of_yuan(text: str) -> int:
    """Exact fen of a yuan amount written with at most two decimals (``"12.30" -> 1230``).

    Nothing is rounded: a third decimal, an exponent or anything but a plain decimal number
    is refused.

    Raises:
        ValueError: ``text`` is not a plain decimal number of yuan with at most two places.
    """
    match = _YUAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an amount of yuan such as 12.30")
    sign, whole, decimals = match.groups()
    decimals = decimals or ""
    if len(decimals) > 2 and decimals[2:].strip("0"):
        raise ValueError(f"{text!r} has more than two decimals: an amount is exact to the fen")
    fen = int(whole) * 100 + int(decimals[:2].ljust(2, "0"))
    return -fen if sign == "-" else fen
