"""Codes, ids and names refuse characters that hide, reorder or split text, and say which."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from onestop.domain.types import (
    _CODE_PATTERN,
    Code,
    IsoDate,
    Name,
    Quantity,
    UnitPrice,
    parse_decimal,
)

CODES = TypeAdapter(Code)
NAMES = TypeAdapter(Name)

HIDDEN = {
    "\u202e": "U+202E",  # right-to-left override: "ZY\u202e100" displays as "ZY001"
    "\u2066": "U+2066",  # left-to-right isolate
    "\u200f": "U+200F",  # right-to-left mark
    "\u2028": "U+2028",  # line separator: splits a log line
    "\u2029": "U+2029",
    "\x85": "U+0085",  # C1 next line
    "\x9b": "U+009B",  # C1 control sequence introducer
    "\u200b": "U+200B",  # zero width space: two codes that look alike
    "\ufeff": "U+FEFF",
    "\x00": "U+0000",
}


@pytest.mark.parametrize("character", HIDDEN)
def test_codes_and_names_refuse_hidden_characters_naming_them(character: str) -> None:
    for adapter in (CODES, NAMES):
        with pytest.raises(ValidationError) as refused:
            adapter.validate_python(f"ZY{character}001")
        message = refused.value.errors()[0]["msg"]
        assert HIDDEN[character] in message
        assert "position 3" in message


def test_the_schema_pattern_is_the_same_rule() -> None:
    import re

    pattern = re.compile(_CODE_PATTERN)
    for character in HIDDEN:
        assert not pattern.match(f"ZY{character}001")
    for code in ("ZY001", "250101001-a", "中药饮片 01", "A.B_C"):
        assert pattern.match(code)
        assert CODES.validate_python(code) == code


def test_formulas_and_outer_space_are_refused_with_a_reason() -> None:
    for value, reason in (("=1+1", "formula"), ("@SUM(A1)", "formula"), (" ZY1", "white space")):
        with pytest.raises(ValidationError, match=reason):
            CODES.validate_python(value)
    with pytest.raises(ValidationError, match="formula"):
        NAMES.validate_python('=HYPERLINK("http://x","y")')
    assert NAMES.validate_python("阿莫西林胶囊 0.25g*24粒") == "阿莫西林胶囊 0.25g*24粒"
    assert NAMES.validate_python("复方-甘草片") == "复方-甘草片"  # inside a name is fine


# Texts a bill repeats are parsed once per process (a cache): the answers, and the
# refusals, must be what parsing each one anew gives.


@pytest.mark.parametrize("text", ["2026-02-30", "2026-1-01", "２０２６-01-01", "20260101xx"])
def test_a_date_refused_once_is_refused_again(text: str) -> None:
    for _ in range(3):
        with pytest.raises(ValidationError):
            TypeAdapter(IsoDate).validate_python(text)


def test_a_date_parsed_again_is_the_same_date() -> None:
    adapter = TypeAdapter(IsoDate)
    assert adapter.validate_python("2026-03-01") == adapter.validate_python("2026-03-01")
    assert adapter.validate_python("2026-03-01") == date(2026, 3, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", Decimal(1)), (" 0.5 ", Decimal("0.5")), ("1" + "0" * 40, Decimal("1" + "0" * 40))],
)
def test_decimal_texts_short_and_long_parse_alike(text: str, expected: Decimal) -> None:
    for _ in range(3):
        assert parse_decimal(text) == expected


@pytest.mark.parametrize("text", ["1e", "abc", "1" * 30 + "x", "NaN"])
def test_a_decimal_text_refused_once_is_refused_again(text: str) -> None:
    for _ in range(3):
        with pytest.raises(ValueError, match="decimal number"):
            parse_decimal(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (3050, 3050), (10**12, 10**12), (-(10**12), -(10**12)), ("3.4500", Decimal("3.45"))],
)
def test_unit_prices_whole_or_fractional(value: object, expected: object) -> None:
    price = TypeAdapter(UnitPrice).validate_python(value)
    assert price == expected
    assert type(price) is type(expected)


@pytest.mark.parametrize("value", [10**12 + 1, -(10**12) - 1, "1.00001", True])
def test_unit_prices_out_of_bounds_or_too_fine_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(UnitPrice).validate_python(value)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [("100000000000000000", True), ("100000000000000000.0001", False), ("1" + "0" * 70, False)],
)
def test_a_quantity_is_at_most_ten_to_the_17(text: str, accepted: bool) -> None:
    adapter = TypeAdapter(Quantity)
    if accepted:
        assert adapter.validate_python(text) == Decimal(text)
    else:
        with pytest.raises(ValidationError, match="a quantity is at most 100,000,000,000,000,000"):
            adapter.validate_python(text)
