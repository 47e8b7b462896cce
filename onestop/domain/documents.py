"""Parsing agency documents exactly: JSON and YAML without binary floats, errors with paths."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from onestop.domain.errors import ErrorCode, InvalidDocument, MalformedDocument, Problem

ModelT = TypeVar("ModelT", bound=BaseModel)


class _ExactYamlLoader(yaml.SafeLoader):
    """A safe YAML loader that reads ``0.55`` as ``Decimal("0.55")`` and dates as text."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    return Decimal(text.replace("_", ""))


def _construct_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_ExactYamlLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
# Dates stay text so that one validator (YYYY-MM-DD) judges JSON and YAML alike.
_ExactYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def utf8_text(data: bytes) -> str:
    """An uploaded file as text; it must be UTF-8 (a byte-order mark is dropped).

    Raises:
        MalformedDocument: another encoding (GB18030, UTF-16: what spreadsheets often save).
    """
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise MalformedDocument(
            'the file is not UTF-8 text: save it as "CSV UTF-8" '
            f"(a byte-order mark is fine); byte {error.start} is 0x{data[error.start]:02x}"
        ) from error


def parse_json(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as an exact ``Decimal``.

    Raises:
        InvalidDocument: with code ``MALFORMED`` when the text is not JSON.
    """
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise MalformedDocument(f"not valid JSON: {error}") from error


def parse_yaml(text: str) -> Any:
    """Parse YAML safely, floats as exact ``Decimal``, dates as text.

    Raises:
        InvalidDocument: with code ``MALFORMED`` when the text is not YAML.
    """
    try:
        return yaml.load(text, Loader=_ExactYamlLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise MalformedDocument(f"not valid YAML: {error}") from error


def parse_document_text(text: str, file_name: str) -> Any:
    """Parse a document's text exactly, as the name of its file says: YAML or JSON.

    YAML when the name ends ``.yaml``/``.yml``, JSON otherwise. The caller reads the file;
    nothing here does I/O.

    Raises:
        MalformedDocument: the text is not JSON (or YAML).
    """
    text = text.removeprefix("\ufeff")
    if file_name.lower().endswith((".yaml", ".yml")):
        return parse_yaml(text)
    return parse_json(text)


def validate_document(model: type[ModelT], data: Any, *, what: str) -> ModelT:
    """Validate ``data`` as ``model``; on failure list every field at fault by its path.

    Args:
        model: the pydantic model of the document.
        data: the parsed document.
        what: what the document is, for the message ("policy", "member").

    Raises:
        InvalidDocument: with one :class:`Problem` per field at fault.
    """
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = validation_problems(error)
        first = problems[0]
        where = f"{first.field}: " if first.field else ""
        message = f"the {what} is invalid: {where}{first.message}"
        raise InvalidDocument(message, problems) from None


# Where a request's part is named in a location (FastAPI's check of a request): the field is
# named without it, as the contract names it.
_REQUEST_PARTS = frozenset({"body", "query", "path", "header"})


def validation_problems(error: ValidationError, *, row: int | None = None) -> tuple[Problem, ...]:
    """Turn a validation error into problems in the contract's words (see :func:`problems_of`)."""
    return problems_of(error.errors(include_url=False), row=row)


def problems_of(details: Sequence[Any], *, row: int | None = None) -> tuple[Problem, ...]:
    """Validation failures as problems in the contract's words.

    ``field`` is the dotted path at fault as the contract names it (``lines.0.quantity``, or
    ``None`` for a rule over the whole document); the message says what is wrong and what is
    expected, without the validation library's vocabulary.

    Args:
        details: pydantic's error details (also FastAPI's check of a request: same shape).
        row: the row or line of the document, where it has rows.
    """
    problems = []
    for detail in details:
        loc = [str(part) for part in detail.get("loc", ())]
        if loc and loc[0] in _REQUEST_PARTS:
            loc = loc[1:]
        path = ".".join(loc) or None
        problems.append(Problem(ErrorCode.INVALID, plain_message(detail), field=path, row=row))
    return tuple(problems)


def plain_message(detail: Any) -> str:
    """One validation failure in plain words: what is wrong, and what is expected."""
    kind = str(detail.get("type", ""))
    context = detail.get("ctx") or {}
    message = str(detail.get("msg", "is invalid"))
    if kind == "extra_forbidden":
        return "unknown field: remove it (or check its spelling)"
    if kind == "missing":
        return "required: it is missing"
    if kind in {"value_error", "assertion_error"}:
        # The domain's own rule, already in the contract's words.
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in {"string_too_short", "string_too_long"}:
        limit = context.get("min_length", context.get("max_length"))
        least = "at least" if kind == "string_too_short" else "at most"
        return f"must be {least} {limit} characters long"
    if kind in {"too_short", "too_long"}:
        limit = context.get("min_length", context.get("max_length"))
        least = "at least" if kind == "too_short" else "at most"
        return f"must have {least} {limit} item{'s' if limit != 1 else ''}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "must be a whole number (money in fen: 1 yuan is 100)"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        words = {
            "greater_than": ("more than", "gt"),
            "greater_than_equal": ("at least", "ge"),
            "less_than": ("less than", "lt"),
            "less_than_equal": ("at most", "le"),
        }[kind]
        return f"must be {words[0]} {context.get(words[1])}"
    if kind.startswith("date"):  # date_parsing, datetime_parsing, date_from_datetime_...
        return "must be a date written YYYY-MM-DD (a real day)"
    if kind in {"enum", "literal_error"}:
        return f"must be one of {context.get('expected', 'the values the contract lists')}"
    if kind in {"string_type", "string_sub_type"}:
        return "must be text (a JSON string)"
    if kind in {"bool_type", "bool_parsing"}:
        return "must be true or false"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "must be a JSON object"
    if kind in {"list_type", "tuple_type", "set_type", "frozen_set_type"}:
        return "must be a JSON array"
    if kind.startswith("decimal") or kind in {"float_type", "float_parsing"}:
        return message.replace("Decimal input", "a decimal").replace("Input", "the value")
    if kind == "string_pattern_mismatch":
        return f"has a character or form that is not allowed (expected {context.get('pattern')})"
    return message.replace("Input should be", "must be")
