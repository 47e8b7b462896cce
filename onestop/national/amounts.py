"""Exact conversion between the national interface's yuan and onestop's fen.

The interface writes money as yuan with two decimals (``num(16,2)``), prices with six
(``num(16,6)``) and quantities with four (``num(16,4)``), as JSON numbers or numeric strings
(national.md section 9.1). Nothing is rounded here: a value with more places than its kind
allows, or one that is not a plain decimal, is refused naming its field. Bodies are parsed
with decimal numbers (:func:`parse_body`), never binary floats.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from onestop.domain.errors import ErrorCode, InvalidDocument, MalformedDocument, Problem
from onestop.domain.types import decimal_places

MONEY_PLACES = 2
PRICE_PLACES = 6
QUANTITY_PLACES = 4
_HUNDRED = Decimal(100)
_LIMIT = Decimal(10) ** 14
"""Sixteen digits with two decimals: the interface's ``num(16,2)``."""


class NationalFieldError(InvalidDocument):
    """A national field that is missing, malformed or out of range; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", (Problem(ErrorCode.INVALID, message, field=field),))
        self.field = field


def parse_body(body: bytes) -> Any:
    """A national request body, numbers with a fraction as :class:`~decimal.Decimal`.

    Raises:
        MalformedDocument: not UTF-8 JSON.
    """
    try:
        return json.loads(body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedDocument(f"the body is not UTF-8 JSON: {error}") from None


def shown(value: Any) -> str:
    """A value as a message repeats it: at most 40 characters of it."""
    # str() of a decimal keeps its exponent: 1E+999999999 is not written out digit by digit
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _decimal(value: Any, field: str) -> Decimal | None:
    """A number or numeric string as a decimal; ``None`` for absent, ``null`` or ``""``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise NationalFieldError(field, f"{shown(value)} is not a number")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, str):
        if len(value) > 40:
            raise NationalFieldError(field, f"{shown(value)} is not a number of the interface")
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise NationalFieldError(field, f"{shown(value)} is not a number") from None
        if "e" in value.lower() or value.strip() != value:
            raise NationalFieldError(field, f"{shown(value)} is not a plain decimal number")
    else:
        raise NationalFieldError(field, f"{shown(value)} is not a number")
    if not number.is_finite():
        raise NationalFieldError(field, f"{shown(value)} is not a finite number")
    return number


def _exact(value: Any, field: str, places: int, what: str) -> Decimal | None:
    number = _decimal(value, field)
    if number is None:
        return None
    if number.copy_abs() >= _LIMIT:
        raise NationalFieldError(field, f"{shown(value)} is out of range")
    if decimal_places(number) > places:
        raise NationalFieldError(
            field,
            f"{shown(value)} has more than {places} decimals: {what} is exact to {places} places "
            "and onestop rounds nothing; send the exact value",
        )
    return number


def fen_of(value: Any, field: str, *, required: bool = True) -> int | None:
    """Fen of a yuan amount (two decimals at most), exactly.

    Raises:
        NationalFieldError: missing (when required), not a number, or more than two places.
    """
    number = _exact(value, field, MONEY_PLACES, "an amount in yuan")
    if number is None:
        if required:
            raise NationalFieldError(field, "required: send the amount in yuan, e.g. 12.30")
        return None
    return int(number * _HUNDRED)


def price_fen_of(value: Any, field: str) -> Decimal:
    """A unit price (yuan, six decimals at most) as fen, exactly (up to four places of fen).

    Raises:
        NationalFieldError: missing, not a number, or more than six places.
    """
    number = _exact(value, field, PRICE_PLACES, "a price in yuan")
    if number is None:
        raise NationalFieldError(field, "required: send the unit price in yuan")
    return number * _HUNDRED


def quantity_of(value: Any, field: str) -> Decimal:
    """A quantity (four decimals at most).

    Raises:
        NationalFieldError: missing, not a number, or more than four places.
    """
    number = _exact(value, field, QUANTITY_PLACES, "a quantity")
    if number is None:
        raise NationalFieldError(field, "required: send the quantity")
    return number


def yuan_text(fen: int) -> str:
    """Fen as yuan with two decimals, as the interface writes an amount (``-25.10``)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def yuan(fen: int) -> orjson.Fragment:
    """An amount as the interface writes it: a JSON number of yuan with two decimals."""
    return orjson.Fragment(yuan_text(fen).encode())


def decimal_number(value: Decimal, places: int) -> orjson.Fragment:
    """A decimal as a JSON number with ``places`` decimals (prices, ratios); exact."""
    quantized = value.quantize(Decimal(1).scaleb(-places))
    if quantized != value:
        raise ValueError(f"{value} does not fit {places} decimals")
    return orjson.Fragment(format(quantized, "f").encode())
