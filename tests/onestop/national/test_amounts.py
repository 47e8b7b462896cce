"""Yuan and fen convert exactly, or not at all."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from onestop.national.amounts import (
    NationalFieldError,
    fen_of,
    parse_body,
    price_fen_of,
    quantity_of,
    yuan,
)


def test_json_numbers_are_read_as_decimals_never_floats() -> None:
    body = parse_body(b'{"a": 0.1, "b": 1234567890123.45, "c": 3}')
    assert body["a"] == Decimal("0.1")
    assert fen_of(body["b"], "b") == 123456789012345
    assert fen_of(body["c"], "c") == 300


@pytest.mark.parametrize(
    ("value", "fen"),
    [("4.52", 452), (Decimal("4.50"), 450), ("-25.10", -2510), (7, 700), ("0.010", 1)],
)
def test_amounts_convert_exactly(value: object, fen: int) -> None:
    assert fen_of(value, "x") == fen


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("4.525", "more than 2 decimals"),
        ("1e3", "plain decimal"),
        ("abc", "not a number"),
        (True, "not a number"),
        ("NaN", "finite"),
        ("100000000000000", "out of range"),
    ],
)
def test_an_amount_that_does_not_convert_exactly_is_refused(value: object, says: str) -> None:
    with pytest.raises(NationalFieldError, match=says) as refused:
        fen_of(value, "input.data.medfee_sumamt")
    assert refused.value.field == "input.data.medfee_sumamt"


def test_absent_amounts_are_absent_unless_required() -> None:
    assert fen_of("", "x", required=False) is None
    assert fen_of(None, "x", required=False) is None
    with pytest.raises(NationalFieldError, match="required"):
        fen_of(None, "x")


def test_prices_keep_six_places_and_quantities_four() -> None:
    assert price_fen_of(Decimal("0.123456"), "p") == Decimal("12.3456")
    with pytest.raises(NationalFieldError, match="more than 6 decimals"):
        price_fen_of("0.1234567", "p")
    assert quantity_of("2.5000", "q") == Decimal("2.5")
    with pytest.raises(NationalFieldError, match="more than 4 decimals"):
        quantity_of("0.00001", "q")


def test_answers_write_two_decimals() -> None:
    assert orjson.dumps([yuan(0), yuan(5), yuan(-2510), yuan(123456)]) == (
        b"[0.00,0.05,-25.10,1234.56]"
    )
