"""Vocabulary of the domain: enumerations and the validated scalar types documents use.

The annotated types refuse what would make money inexact: a binary float never becomes a
ratio, a fen amount is a true ``int`` (not ``"100"``, not ``100.0``, not ``True``), and a date
is exactly ``YYYY-MM-DD``.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, Strict, StringConstraints


class HospitalLevel(StrEnum):
    """Hospital level (医院等级), lowest first."""

    COMMUNITY = "community"
    LEVEL1 = "level1"
    LEVEL2 = "level2"
    LEVEL3 = "level3"

    @property
    def rank(self) -> int:
        """Position in the order community < level1 < level2 < level3."""
        return _LEVEL_RANK[self]


_LEVEL_RANK = {level: index for index, level in enumerate(HospitalLevel)}


class Scheme(StrEnum):
    """Insurance scheme (险种)."""

    RESIDENT = "resident"
    EMPLOYEE = "employee"


class Category(StrEnum):
    """Catalog category: A in scope, B in scope after self-pay-first, C fully self-paid."""

    A = "A"
    B = "B"
    C = "C"


class ItemKind(StrEnum):
    """What a catalog item is."""

    DRUG = "drug"
    SERVICE = "service"
    MATERIAL = "material"


class FeeCategory(StrEnum):
    """医疗收费项目类别: the fee category a line is billed and printed under.

    The national interface's ``med_chrgitm_type`` codes (docs/spec/national.md section 8.10),
    in the order a statement lists them.
    """

    BED = "01"  # 床位费
    CONSULTATION = "02"  # 诊察费
    EXAMINATION = "03"  # 检查费
    LABORATORY = "04"  # 化验费
    TREATMENT = "05"  # 治疗费
    SURGERY = "06"  # 手术费
    NURSING = "07"  # 护理费
    MATERIAL = "08"  # 卫生材料费
    WESTERN_DRUG = "09"  # 西药费
    HERBAL_PIECES = "10"  # 中药饮片费
    PATENT_DRUG = "11"  # 中成药费
    GENERAL_CONSULTATION = "12"  # 一般诊疗费
    REGISTRATION = "13"  # 挂号费
    OTHER = "14"  # 其他费


class VisitType(StrEnum):
    """Kind of visit being settled."""

    INPATIENT = "inpatient"
    OUTPATIENT_SPECIAL = "outpatient_special"
    OUTPATIENT = "outpatient"
    PHARMACY = "pharmacy"


class MemberStatus(StrEnum):
    """Enrolment status of a member."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    DECEASED = "deceased"


class AssistanceCategory(StrEnum):
    """Medical-assistance categories (医疗救助对象)."""

    DIBAO = "dibao"
    TEKUN = "tekun"
    YOUFU = "youfu"
    LOW_INCOME = "low_income"


class ClientKind(StrEnum):
    """Who calls the gateway."""

    HOSPITAL = "hospital"
    PHARMACY = "pharmacy"
    AGENCY = "agency"


_DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_decimal(value: Any) -> Decimal:
    """Turn a decimal string, ``int`` or ``Decimal`` into a finite ``Decimal``.

    Binary floats are refused: ``0.1`` as a float is not one tenth, and a ratio or quantity
    that is not what its author wrote would move money.

    Args:
        value: the raw value from a document.

    Returns:
        The exact decimal.

    Raises:
        ValueError: for floats, booleans, non-numeric text, NaN and infinities.
    """
    if isinstance(value, bool | float):
        raise ValueError('must be a decimal string such as "0.55", not a binary float')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite decimal")
        return value
    if isinstance(value, str):
        if len(value) <= _CACHED_TEXT:
            return _decimal_of_short_text(value)
        return _decimal_of_text(value)
    raise ValueError('must be a decimal number written as a string, such as "0.55"')


def _decimal_of_text(value: str) -> Decimal:
    if _DECIMAL_TEXT.fullmatch(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid text
            pass
    raise ValueError('must be a decimal number written as a string, such as "0.55"')


# A bill's 200 lines repeat the same few quantities ("1", "2", "0.5") and dates: each distinct
# text is parsed once per process, not once per line (a refusal is raised anew each time, as
# an exception is never cached). Only short texts: a long one could fill the cache with junk.
_CACHED_TEXT = 24
_decimal_of_short_text = lru_cache(maxsize=4096)(_decimal_of_text)


def parse_iso_date(value: Any) -> date:
    """Accept a ``date`` or exactly ``YYYY-MM-DD``; refuse timestamps and other shapes."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == _ISO_DATE_LENGTH:
        return _date_of_text(value)
    raise ValueError("must be a date written YYYY-MM-DD")


_ISO_DATE_LENGTH = len("YYYY-MM-DD")


@lru_cache(maxsize=4096)
def _date_of_text(value: str) -> date:
    """A ``YYYY-MM-DD`` text's date, parsed once per distinct text (see :data:`_CACHED_TEXT`)."""
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError as error:
            raise ValueError(f"not a calendar date: {value}") from error
    raise ValueError("must be a date written YYYY-MM-DD")


def decimal_places(value: Decimal) -> int:
    """How many decimal places a finite decimal needs (``1.50`` needs 1, ``12E+3`` none).

    Read off the digits, so that no context can round or overflow, however long the value.
    """
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError("not a finite decimal")
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros)) if any(digits) else 0


_QUANTITY_LIMIT = 10**17
"""No quantity beyond it can match a line's amount (at most 10^13 fen, a unit price at least
0.0001 fen): refused at once, before anything is computed from it (``1E+999999999``)."""


def _at_most_four_places(value: Decimal) -> Decimal:
    if value.copy_abs() > _QUANTITY_LIMIT:
        raise ValueError(f"a quantity is at most {_QUANTITY_LIMIT:,} either way")
    exponent = value.as_tuple().exponent
    # Most quantities are written with four places or fewer: no need to count trailing zeros
    # (validated for every line of every bill; "1.50000" still needs the count).
    if isinstance(exponent, int) and exponent >= -4:
        return value
    if decimal_places(value) > 4:
        raise ValueError("a quantity has at most 4 decimal places")
    return value


def _quantity_input(value: Any) -> Decimal:
    # The contract lets a HIS send a quantity as a JSON number. Where a parser has already
    # turned it into a float, its shortest repr is what the sender wrote.
    if isinstance(value, float) and not isinstance(value, bool):
        value = repr(value)
    return parse_decimal(value)


_PRICE_LIMIT = 10**12


def _unit_price_input(value: Any) -> int | Decimal:
    """A unit price in fen: a decimal with at most 4 places, string or JSON number (s14, s17)."""
    if isinstance(value, int) and not isinstance(value, bool):
        # Whole fen, the common case: only the bound applies (no places to count).
        if -_PRICE_LIMIT <= value <= _PRICE_LIMIT:
            return value
        raise ValueError(f"a unit price is at most {_PRICE_LIMIT} fen either way")
    if isinstance(value, str):
        number = parse_decimal(value)
    elif isinstance(value, float):
        # As for quantities: a JSON number the parser made a float reads as written.
        number = parse_decimal(repr(value))
    else:
        raise ValueError(
            "a unit price is a number of fen with at most 4 decimal places, as a JSON number "
            'or a string ("3.4500")'
        )
    # Bounded before anything is computed from it: 1E+999999999 is never written out.
    if number.copy_abs() > _PRICE_LIMIT:
        raise ValueError(f"a unit price is at most {_PRICE_LIMIT} fen either way")
    if decimal_places(number) > 4:
        raise ValueError("a unit price in fen has at most 4 decimal places")
    return int(number) if number == number.to_integral_value() else number


UnitPrice = Annotated[
    int | Decimal,
    BeforeValidator(_unit_price_input),
    Field(
        json_schema_extra={
            "description": 'fen, at most 4 decimal places: a JSON number or a string ("3.4500")'
        }
    ),
]
"""A line's unit price in fen: whole, or below one fen's precision (domain section 14).
Whole prices stay ``int``; a fractional one is an exact ``Decimal``."""

Fen = Annotated[int, Strict(), Field(ge=0)]
"""A non-negative amount of money in fen, as a true integer."""

PositiveFen = Annotated[int, Strict(), Field(gt=0)]
"""A positive amount of money in fen."""

Ratio = Annotated[Decimal, BeforeValidator(parse_decimal), Field(ge=0, le=1)]
"""An exact ratio in [0, 1]."""

PositiveDecimal = Annotated[Decimal, BeforeValidator(parse_decimal), Field(gt=0)]
"""An exact decimal above zero (mapping factors, daily quantity limits)."""

Quantity = Annotated[
    Decimal, BeforeValidator(_quantity_input), AfterValidator(_at_most_four_places)
]
"""A billed quantity: a decimal with at most four places and at most 10^17 either way (its sign
is checked per line)."""

IsoDate = Annotated[date, BeforeValidator(parse_iso_date)]
"""A calendar date written ``YYYY-MM-DD``."""

# Characters no code, id or name may hold: C0 and C1 controls, DEL; bidirectional controls
# (U+061C, U+200E/F, U+202A-E, U+2066-9), which make text display in another order than it is
# stored; zero-width characters (U+200B-D, U+2060, U+FEFF), which make two codes look alike;
# line and paragraph separators (U+2028/9), which split a line in logs and files.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\u2028\u2029\ufeff]"
)
_FORMULA_START = ("=", "+", "-", "@")


def _unsafe_character(value: str) -> str | None:
    found = _UNSAFE.search(value)
    if found is None:
        return None
    return (
        f"holds U+{ord(found.group()):04X} at position {found.start() + 1}: control, "
        "bidirectional, zero-width and line-separator characters are not allowed"
    )


def _plain_code(value: str) -> str:
    problem = _unsafe_character(value)
    if problem is not None:
        raise ValueError(problem)
    if value != value.strip():
        raise ValueError("starts or ends with white space")
    if value.startswith(_FORMULA_START):
        raise ValueError(f"starts with {value[0]!r}, which a spreadsheet would run as a formula")
    return value


def _plain_name(value: str) -> str:
    problem = _unsafe_character(value)
    if problem is not None:
        raise ValueError(problem)
    if value.startswith(_FORMULA_START):
        # Names come back in CSV files (mappings, catalogs) that are opened in spreadsheets.
        raise ValueError(
            f"starts with {value[0]!r}, which a spreadsheet would run as a formula; write it "
            "without, e.g. with a leading space removed or a word first"
        )
    return value


# Codes are compared byte for byte: a stray tab or NUL from a HIS export, or an invisible
# character, must not create a second code. No code starts like a spreadsheet formula: codes
# end up in the agency's exports. The pattern is the same rule for the OpenAPI schema.
_CODE_PATTERN = (
    r"^[^\s\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069"
    r"\u2028\u2029\ufeff=+\-@](?:[^\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e"
    r"\u2060\u2066-\u2069\u2028\u2029\ufeff]*[^\s\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f"
    r"\u202a-\u202e\u2060\u2066-\u2069\u2028\u2029\ufeff])?$"
)

Code = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_plain_code),
    Field(json_schema_extra={"pattern": _CODE_PATTERN}),
]
"""A code or identifier: 1 to 64 characters, no control, bidirectional, zero-width or line
separator characters, no outer white space, no leading ``=``, ``+``, ``-`` or ``@``."""

NationalCode = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=30),
    AfterValidator(_plain_code),
    Field(json_schema_extra={"pattern": _CODE_PATTERN}),
]
"""An identifier of the national interface (``fixmedins_code``, ``mdtrt_id`` ...): a code of
at most 30 characters, the interface's longest."""

Name = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_plain_name),
]
"""A human-readable name: no control, bidirectional, zero-width or line separator characters,
no leading ``=``, ``+``, ``-`` or ``@``."""
