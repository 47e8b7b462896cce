"""Codes, ids and names refuse characters that hide, reorder or split text, and say which."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from onestop.domain.types import _CODE_PATTERN, Code, Name

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
