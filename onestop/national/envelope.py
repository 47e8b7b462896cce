"""The national message envelope: the request's fields checked, the answer's built.

national.md section 2. A request's business payload is ``input`` (named nodes); the answer's
is ``output``. Every refusal is ``infcode -1`` with an ``err_msg`` that names the field and
the fix (:class:`NationalRefusal`); onestop adds nothing to the envelope the interface lacks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from onestop.clock import SHANGHAI
from onestop.domain.documents import plain_message
from onestop.domain.errors import DomainError
from onestop.national.codes import OPTER_TYPES

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""日期时间型: ``yyyy-MM-dd HH:mm:ss``."""

_PLAIN = re.compile(
    r"[^\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff]+"
)


class NationalRefusal(Exception):
    """A message refused: answered ``infcode -1`` with ``err_msg`` (names the field, the fix).

    Attributes:
        err_msg: the answer's ``err_msg``.
    """

    def __init__(self, err_msg: str) -> None:
        super().__init__(err_msg)
        self.err_msg = err_msg


def _text(value: str, field: str) -> str:
    if not _PLAIN.fullmatch(value):
        raise ValueError(f"{field} holds control or invisible characters")
    return value


class RequestEnvelope(BaseModel):
    """The top-level fields of a national request (national.md section 2.1).

    Fields a province adds (``fixmedins_soft_fcty``, ...) are ignored; ``cainfo``,
    ``signtype``, ``dev_no`` and ``dev_safe_info`` are accepted and not used (onestop
    authenticates every message by its signature, contract section 2).
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    infno: str = Field(min_length=4, max_length=6, pattern=r"^[0-9]{4}[0-9A-Z]{0,2}$")
    msgid: str = Field(min_length=1, max_length=30)
    mdtrtarea_admvs: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")
    insuplc_admdvs: str | None = Field(default=None, max_length=6)
    recer_sys_code: str = Field(min_length=1, max_length=10)
    dev_no: str | None = Field(default=None, max_length=100)
    dev_safe_info: str | None = Field(default=None, max_length=2000)
    cainfo: str | None = Field(default=None, max_length=1024)
    signtype: str | None = Field(default=None, max_length=10)
    infver: str = Field(min_length=1, max_length=6)
    opter_type: str
    opter: str = Field(min_length=1, max_length=30)
    opter_name: str = Field(min_length=1, max_length=50)
    inf_time: str
    fixmedins_code: str = Field(min_length=1, max_length=30)
    fixmedins_name: str = Field(min_length=1, max_length=200)
    sign_no: str | None = Field(default=None, max_length=30)
    input: dict[str, Any]

    @field_validator("msgid", "opter", "opter_name", "fixmedins_code", "fixmedins_name")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _text(value, "the value")

    @field_validator("opter_type")
    @classmethod
    def _opter_type(cls, value: str) -> str:
        if value not in OPTER_TYPES:
            raise ValueError("must be 1 (经办人), 2 (自助终端) or 3 (移动终端)")
        return value

    @field_validator("inf_time")
    @classmethod
    def _inf_time(cls, value: str) -> str:
        try:
            datetime.strptime(value, DATETIME_FORMAT)
        except ValueError:
            raise ValueError("must be yyyy-MM-dd HH:mm:ss") from None
        return value

    @field_validator("insuplc_admdvs")
    @classmethod
    def _insured_region(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not re.fullmatch(r"[0-9]{6}", value):
            raise ValueError("must be a 6-digit region code")
        return value


def validation_refusal(error: ValidationError, prefix: str = "") -> NationalRefusal:
    """A pydantic failure as one ``err_msg`` naming each field at fault and what it needs."""
    parts = []
    for detail in error.errors():
        path = ".".join(str(part) for part in detail.get("loc", ()))
        field = f"{prefix}{path}" if path else prefix.rstrip(".") or "the message"
        parts.append(f"{field}: {plain_message(detail)}")
    return NationalRefusal("; ".join(parts))


def refusal_of(error: DomainError, serials: Sequence[str] = ()) -> NationalRefusal:
    """A refusal of onestop's in the national dialect: its message and each problem's place.

    Args:
        error: the refusal.
        serials: the message's ``feedetl_sn`` in line order, when the bill's line numbers are
            the message's lines (a pharmacy sale): a line is then named by its serial.
    """
    parts = [error.message]
    for problem in error.problems[:20]:
        where = []
        if problem.line_no is not None and 0 < problem.line_no <= len(serials):
            where.append(f"feedetl_sn {serials[problem.line_no - 1]}")
        elif problem.line_no is not None:
            where.append(f"feedetl line {problem.line_no}")
        if problem.his_code:
            where.append(problem.his_code)
        if problem.field:
            where.append(problem.field)
        parts.append(f"{' '.join(where)}: {problem.message}" if where else problem.message)
    if len(error.problems) > 20:
        parts.append(f"... {len(error.problems) - 20} more")
    return NationalRefusal(f"[{error.code.value}] " + "; ".join(parts))


def node(payload: Mapping[str, Any], name: str, *, many: bool = False) -> Any:
    """A named node of ``input``: an object, or with ``many`` a list of objects.

    Raises:
        NationalRefusal: the node is missing or of the wrong shape.
    """
    value = payload.get(name)
    if many:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise NationalRefusal(f"input.{name}: required, a list of objects")
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]  # some builds send a one-element array where an object is due
    if not isinstance(value, dict):
        raise NationalRefusal(f"input.{name}: required, an object")
    return value


@dataclass(frozen=True, slots=True)
class Timing:
    """When a message was received and answered (epoch ms) and the answer's receiver id."""

    received_ms: int
    answered_ms: int
    refmsgid: str


def _stamp(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, SHANGHAI)
    return moment.strftime("%Y%m%d%H%M%S") + f"{epoch_ms % 1000:03d}"


def refmsgid(region: str, epoch_ms: int, serial: int) -> str:
    """``inf_refmsgid``: region (6) + ``yyyyMMddHHmmss`` (14) + a 10-digit serial."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, SHANGHAI).strftime("%Y%m%d%H%M%S")
    return f"{region[:6]:0>6}{moment}{serial % 10**10:010d}"


def answer(
    timing: Timing,
    *,
    output: Mapping[str, Any] | None = None,
    err_msg: str | None = None,
    warn_msg: str | None = None,
) -> dict[str, Any]:
    """The answer's envelope (national.md section 2.2): ``infcode`` 0, or -1 with ``err_msg``."""
    return {
        "infcode": -1 if err_msg is not None else 0,
        "inf_refmsgid": timing.refmsgid,
        "refmsg_time": _stamp(timing.received_ms),
        "respond_time": _stamp(timing.answered_ms),
        "err_msg": err_msg,
        "warn_msg": warn_msg,
        "cainfo": None,
        "signtype": None,
        "output": dict(output) if output is not None else {},
    }


def national_datetime(epoch_ms: int) -> str:
    """A moment as 日期时间型, Asia/Shanghai."""
    return datetime.fromtimestamp(epoch_ms / 1000, SHANGHAI).strftime(DATETIME_FORMAT)


def parse_datetime(value: Any, field: str) -> datetime:
    """A 日期时间型 field (a 日期型 ``yyyy-MM-dd`` is read as its midnight).

    Raises:
        NationalRefusal: missing or not a date and time.
    """
    if not isinstance(value, str) or not value:
        raise NationalRefusal(f"{field}: required, yyyy-MM-dd HH:mm:ss")
    for pattern in (DATETIME_FORMAT, "%Y-%m-%d"):
        try:
            moment = datetime.strptime(value, pattern)
        except ValueError:
            continue
        if not 1900 <= moment.year <= 2999:
            raise NationalRefusal(f"{field}: {value[:19]!r} is not a date of this era")
        return moment
    raise NationalRefusal(f"{field}: {value[:40]!r} is not yyyy-MM-dd HH:mm:ss")


def text_field(
    data: Mapping[str, Any], name: str, where: str, *, max_length: int = 30, required: bool = False
) -> str | None:
    """A text field of a node: present (when required), a string, plain, not too long.

    Raises:
        NationalRefusal: naming ``where.name``.
    """
    value = data.get(name)
    field = f"{where}.{name}"
    if value is None or value == "":
        if required:
            raise NationalRefusal(f"{field}: required")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a code sent as a number (``"med_type": 11``)
    if not isinstance(value, str):
        raise NationalRefusal(f"{field}: must be text")
    if len(value) > max_length:
        raise NationalRefusal(f"{field}: at most {max_length} characters")
    if not _PLAIN.fullmatch(value) or value.strip() != value:
        raise NationalRefusal(f"{field}: control, invisible or outer blank characters")
    return value


def required_text(data: Mapping[str, Any], name: str, where: str, max_length: int = 30) -> str:
    """A required text field (see :func:`text_field`)."""
    value = text_field(data, name, where, max_length=max_length, required=True)
    assert value is not None
    return value


def codes_in(values: Sequence[str | None]) -> list[str]:
    """Distinct non-empty codes in first-seen order."""
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return list(seen)
