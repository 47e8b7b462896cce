"""Members (参保人): the agency's JSON Lines records, and how personal data is shown."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from onestop.domain.documents import validation_problems
from onestop.domain.errors import ErrorCode, Problem
from onestop.domain.types import (
    AssistanceCategory,
    Code,
    Fen,
    IsoDate,
    MemberStatus,
    Name,
    Scheme,
)


class _Window(BaseModel):
    """Days from ``from`` to ``to`` (both included; ``to: null``: no end)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    starts: IsoDate = Field(alias="from")
    ends: IsoDate | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> _Window:
        if self.ends is not None and self.ends < self.starts:
            raise ValueError(f"to {self.ends} is before from {self.starts}")
        return self

    def covers(self, day: date) -> bool:
        """Whether ``day`` is inside the window."""
        return self.starts <= day and (self.ends is None or day <= self.ends)


class OutOfRegionRegistration(_Window):
    """A registration for care in another region (异地就医备案, domain section 8)."""

    region: Code


class DiseaseRegistration(_Window):
    """A registration for a chronic or special disease (门诊慢特病认定, domain section 11)."""

    code: Code


def _listed_once(entries: tuple[_Window, ...]) -> tuple[_Window, ...]:
    seen = set()
    for index, entry in enumerate(entries):
        if entry in seen:
            raise ValueError(f"entry {index} repeats an earlier one")
        seen.add(entry)
    return entries


IdNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{17}[0-9X]$")]
"""A resident identity card number: 17 digits and a check character (digit or X)."""


class Member(BaseModel):
    """An insured person.

    ``personal_account_balance`` is optional in an import: a re-import without it keeps the
    balance the member has.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    member_id: Code
    id_number: IdNumber
    name: Name
    birth_date: IsoDate
    sex: Literal["M", "F"]
    region: Code
    scheme: Scheme
    status: MemberStatus
    enrolled_since: IsoDate
    supplementary_enrolled: StrictBool = False
    assistance_category: AssistanceCategory | None = None
    groups: tuple[Code, ...] = Field(default=(), max_length=32)
    personal_account_balance: Fen | None = None
    out_of_region_registrations: tuple[OutOfRegionRegistration, ...] = Field(
        default=(), max_length=32
    )
    registered_diseases: tuple[DiseaseRegistration, ...] = Field(default=(), max_length=32)

    _unrepeated = field_validator("out_of_region_registrations", "registered_diseases")(
        _listed_once
    )

    def registered_in(self, region: str, day: date) -> bool:
        """Whether a registration for care in ``region`` covers ``day`` (domain section 8)."""
        return any(
            entry.region == region and entry.covers(day)
            for entry in self.out_of_region_registrations
        )

    def registered_for(self, disease_code: str, day: date) -> bool:
        """Whether a registration for the disease covers ``day`` (domain section 11)."""
        return any(
            entry.code == disease_code and entry.covers(day) for entry in self.registered_diseases
        )

    def belongs_to_any(self, group_names: Iterable[str]) -> bool:
        """Whether the member's assistance category or one of its groups is listed."""
        names = set(group_names)
        if not names:
            return False
        if self.assistance_category is not None and self.assistance_category.value in names:
            return True
        return any(group in names for group in self.groups)


def mask_id_number(id_number: str) -> str:
    """Show only the first and last four characters (``4101**********1234``)."""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_name(name: str) -> str:
    """Show only the first character of a name (``张三 -> 张*``, ``欧阳娜娜 -> 欧*``).

    One star whatever the name's length: a mask that kept the length would tell it.
    """
    return name[:1] + "*" if name else name


@dataclass(frozen=True, slots=True)
class AcceptedLine:
    """A line of a members file that holds a valid member."""

    line: int
    member: Member


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A line of a members file that does not: its problem (and its member id, if readable)."""

    line: int
    member_id: str | None
    problem: Problem


MemberLine = AcceptedLine | RejectedLine
"""One non-blank line of a members file."""


def parse_members_jsonl(lines: Iterable[str | bytes]) -> Iterator[MemberLine]:
    """Parse a JSON Lines members file line by line, never stopping at a bad line.

    Yields:
        A :class:`MemberLine` per non-blank line (see :func:`parse_member_line`).
    """
    for number, raw in enumerate(lines, start=1):
        parsed = parse_member_line(number, raw)
        if parsed is not None:
            yield parsed


def parse_member_line(number: int, raw: str | bytes) -> MemberLine | None:
    """One line of a members file: the member, or the problem that rejects it.

    Returns:
        ``None`` for a blank line; otherwise the member, or the rejected line with its problem
        (``MALFORMED`` for broken JSON, ``INVALID`` for a record that breaks the rules).
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if number == 1:
        text = text.removeprefix("\ufeff")
    if not text.strip():
        return None
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as error:
        return RejectedLine(
            number, None, Problem(ErrorCode.MALFORMED, f"not JSON: {error}", row=number)
        )
    if not isinstance(data, dict):
        return RejectedLine(
            number, None, Problem(ErrorCode.MALFORMED, "a line must be a JSON object", row=number)
        )
    member_id = data.get("member_id")
    member_id = member_id if isinstance(member_id, str) else None
    try:
        member = Member.model_validate(data)
    except ValidationError as error:
        first = validation_problems(error, row=number)[0]
        message = f"{first.field}: {first.message}" if first.field else first.message
        return RejectedLine(
            number, member_id, Problem(ErrorCode.INVALID, message, first.field, row=number)
        )
    return AcceptedLine(number, member)
