"""Parsing agency documents exactly: JSON and YAML without binary floats, errors with paths."""

from __future__ import annotations

import json
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
        message = f"the {what} is invalid: {first.field}: {first.message}"
        raise InvalidDocument(message, problems) from None


def validation_problems(error: ValidationError, *, row: int | None = None) -> tuple[Problem, ...]:
    """Turn a pydantic error into problems whose ``field`` is the dotted path at fault."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in detail["loc"]) or "(document)"
        message = detail["msg"]
        if detail["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(Problem(code=ErrorCode.INVALID, message=message, field=path, row=row))
    return tuple(problems)
