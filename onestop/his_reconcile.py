"""A hospital's own records of a day (its HIS export, CSV) reconciled against onestop.

The file has a header row and one row per settlement or reversal the HIS recorded. Columns
(by name, in any order; other columns are ignored, so onestop's own ``settlements.csv`` export
reads as it is):

- ``settlement_id``: onestop's id, as the receipt gave it;
- ``total``, ``basic_fund``, ``supplementary``, ``assistance``, ``personal_account``,
  ``cash``: the settlement's amounts, in fen (or in yuan with two decimals, ``--yuan``);
- ``event`` (optional): ``settlement`` (the default) or ``reversal``; a reversal row carries
  the reversed settlement's amounts, with or without a minus sign, and subtracts them;
- ``visit_type`` and ``scheme`` (or ``policy_scheme``) (optional, together): with them the day
  is also compared per visit type and scheme.

What the gateway answers is printed for a person: what only one side holds (单边账), each
settlement whose amounts differ and by which fen, the totals and groups that differ.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from onestop.domain.errors import ErrorCode, MalformedDocument, Problem
from onestop.domain.money import fen_of_yuan, format_yuan
from onestop.domain.reconciliation import RECONCILED_FUNDS
from onestop.domain.types import Scheme, VisitType

EVENTS = ("settlement", "reversal")
SCHEME_COLUMNS = ("scheme", "policy_scheme")


@dataclass
class _Sums:
    settlements: int = 0
    reversals: int = 0
    amounts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECONCILED_FUNDS, 0))

    def add(self, sign: int, amounts: dict[str, int]) -> None:
        if sign > 0:
            self.settlements += 1
        else:
            self.reversals += 1
        for name in RECONCILED_FUNDS:
            self.amounts[name] += sign * amounts[name]

    def as_body(self) -> dict[str, Any]:
        return {
            "settlements": self.settlements,
            "reversals": self.reversals,
            "amounts": dict(self.amounts),
        }


def _at_row(row: int, message: str) -> Problem:
    return Problem(ErrorCode.MALFORMED, message, row=row)


def _amount_reader(yuan: bool) -> Callable[[str], int]:
    if yuan:
        return fen_of_yuan

    def fen(text: str) -> int:
        stripped = text.strip()
        if not stripped.lstrip("-").isdigit() or not stripped.isascii():
            raise ValueError(f"{text!r} is not a whole number of fen (amounts in yuan: --yuan)")
        return int(stripped)

    return fen


def reconciliation_request(text: str, day: str, *, yuan: bool = False) -> dict[str, Any]:
    """The ``POST /v1/reconciliation`` body for a day of the HIS's records.

    Args:
        text: the HIS export (CSV with a header row).
        day: the settlement day, ``YYYY-MM-DD`` (Asia/Shanghai).
        yuan: amounts are yuan with two decimals (exactly converted), not fen.

    Raises:
        MalformedDocument: a column is missing or a row does not read, each fault listed with
            its row; nothing is sent.
    """
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [name for name in ("settlement_id", *RECONCILED_FUNDS) if name not in header]
    if missing:
        raise MalformedDocument(
            f"the HIS export has no column {', '.join(missing)}: it needs settlement_id and "
            f"{', '.join(RECONCILED_FUNDS)} (event, visit_type and scheme are optional)"
        )
    scheme_column = next((name for name in SCHEME_COLUMNS if name in header), None)
    grouped = "visit_type" in header and scheme_column is not None
    read_amount = _amount_reader(yuan)
    totals = _Sums()
    groups: dict[tuple[str, str], _Sums] = {}
    by_id: dict[str, dict[str, int]] = {}
    problems: list[Problem] = []
    for row_number, row in enumerate(reader, start=2):
        cells = {name: (value or "").strip() for name, value in row.items() if name}
        if not any(cells.values()):
            continue
        faults = len(problems)
        settlement_id = cells["settlement_id"]
        if not settlement_id:
            problems.append(_at_row(row_number, "settlement_id: empty"))
        event = cells.get("event") or "settlement"
        if event not in EVENTS:
            problems.append(_at_row(row_number, f"event: {event!r} is not settlement or reversal"))
        amounts: dict[str, int] = {}
        for name in RECONCILED_FUNDS:
            try:
                amounts[name] = read_amount(cells[name])
            except ValueError as error:
                problems.append(_at_row(row_number, f"{name}: {error}"))
        key: tuple[str, str] | None = None
        if grouped and scheme_column is not None:
            key = (cells["visit_type"], cells[scheme_column])
            if key[0] not in VisitType.__members__.values():
                problems.append(_at_row(row_number, f"visit_type: {key[0]!r} is not a visit type"))
            if key[1] not in Scheme.__members__.values():
                problems.append(_at_row(row_number, f"{scheme_column}: {key[1]!r} is not a scheme"))
        if len(problems) > faults:
            continue
        signs = {value > 0 for value in amounts.values() if value}
        if event == "settlement":
            if False in signs:
                problems.append(_at_row(row_number, "a settlement's amounts are not negative"))
                continue
            if settlement_id in by_id:
                problems.append(_at_row(row_number, f"settlement {settlement_id} is listed twice"))
                continue
            by_id[settlement_id] = amounts
            sign = 1
        else:
            if len(signs) > 1:
                problems.append(
                    _at_row(row_number, "a reversal's amounts are all negative or all positive")
                )
                continue
            amounts = {name: abs(value) for name, value in amounts.items()}
            sign = -1
        totals.add(sign, amounts)
        if key is not None:
            groups.setdefault(key, _Sums()).add(sign, amounts)
    if problems:
        raise MalformedDocument(
            f"the HIS export has {len(problems)} rows that do not read; nothing was sent",
            tuple(problems),
        )
    body: dict[str, Any] = {"date": day, **totals.as_body(), "settlement_amounts": by_id}
    if grouped:
        body["groups"] = [
            {"visit_type": visit_type, "scheme": scheme, **sums.as_body()}
            for (visit_type, scheme), sums in sorted(groups.items())
        ]
    return body


def _money(fen: int) -> str:
    return f"{format_yuan(fen)} yuan ({fen} fen)"


def report_lines(answer: dict[str, Any]) -> Iterable[str]:
    """The gateway's answer for a person at the cashier's office, line by line."""
    provisional = " (provisional: the day is still open)" if answer.get("provisional") else ""
    yield f"result: {answer['result']}{provisional}"
    differences = {name: value for name, value in answer["differences"].items() if value}
    if differences:
        yield "totals that differ (onestop minus the HIS):"
        for name, value in differences.items():
            shown = str(value) if name in ("settlements", "reversals") else _money(value)
            yield f"  {name}: {shown}"
    if answer["only_in_gateway"]:
        yield (
            f"only in onestop ({len(answer['only_in_gateway'])}; the HIS lost the answer: "
            "GET /v1/settlements/ID shows each):"
        )
        yield from (f"  {settlement_id}" for settlement_id in answer["only_in_gateway"])
    if answer["only_in_hospital"]:
        yield (
            f"only in the HIS ({len(answer['only_in_hospital'])}; onestop settled none of "
            "them that day: a settlement the HIS recorded without a 201, or another day's):"
        )
        yield from (f"  {settlement_id}" for settlement_id in answer["only_in_hospital"])
    if answer.get("amount_differences"):
        yield f"settlements whose amounts differ ({len(answer['amount_differences'])}):"
        for item in answer["amount_differences"]:
            parts = ", ".join(
                f"{name} {_money(value)}" for name, value in item["differences"].items() if value
            )
            yield f"  {item['settlement_id']}: {parts} (onestop minus the HIS)"
    for group in answer.get("groups", []):
        if group.get("result") == "unbalanced":
            name = f"{group['visit_type']}/{group['scheme']}"
            parts = ", ".join(
                f"{key} {value}" for key, value in (group["differences"] or {}).items() if value
            )
            yield f"group {name} differs: {parts}"
    for note in answer.get("notes", []):
        yield f"note: {note}"
