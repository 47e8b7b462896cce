"""HIS code mapping (目录对照) and the gateway's checks of a bill before anything is settled."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import IntEnum
from itertools import pairwise
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from onestop.domain.bill import CodedLine, Visit, VisitRequest
from onestop.domain.catalog import CatalogItem
from onestop.domain.documents import validation_problems
from onestop.domain.errors import BillRejected, ErrorCode, InvalidDocument, Problem
from onestop.domain.money import ONE, ZERO, exact_add, exact_mul, round_half_up
from onestop.domain.tables import csv_records, csv_text
from onestop.domain.types import Code, IsoDate, Name, PositiveDecimal

MAPPING_COLUMNS = ("his_code", "his_name", "catalog_code", "factor", "valid_from", "valid_to")

AMOUNT_TOLERANCE_FEN = 1
"""How far a line's amount may differ from quantity x unit price (rounding by the HIS)."""


# When a bill has faults of several kinds, the answer's top-level code is the first of these
# present; every line still carries its own code.
class _Check(IntEnum):
    """Step 1's checks in the order that picks a refused bill's code (domain section 16)."""

    UNMAPPED = 1
    AMOUNT = 2
    NOT_POSITIVE = 3
    DATE = 4
    DUPLICATE_LINE = 5
    QUANTITY = 6


class MappingRow(BaseModel):
    """One row of a client's mapping: a HIS code to a catalog code, valid in a window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    his_code: Code
    his_name: Name
    catalog_code: Code
    factor: PositiveDecimal
    valid_from: IsoDate
    valid_to: IsoDate | None = None

    @model_validator(mode="after")
    def _window_in_order(self) -> MappingRow:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self

    def valid_on(self, day: date) -> bool:
        """Whether the row applies on ``day`` (both ends inclusive, open end when empty)."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class MappingTable:
    """A client's mapping, indexed by HIS code; windows of one code never overlap."""

    rows_by_his_code: Mapping[str, tuple[MappingRow, ...]]

    @classmethod
    def from_rows(cls, rows: Iterable[MappingRow]) -> MappingTable:
        """Index rows already known not to overlap (see :func:`parse_mapping_rows`)."""
        grouped: dict[str, list[MappingRow]] = defaultdict(list)
        for row in rows:
            grouped[row.his_code].append(row)
        return cls({code: tuple(sorted(group, key=_by_start)) for code, group in grouped.items()})

    def lookup(self, his_code: str, day: date) -> MappingRow | None:
        """The row for ``his_code`` valid on ``day``, if any."""
        for row in self.rows_by_his_code.get(his_code, ()):
            # valid_on, written out: once per bill line, where a call costs more than this.
            if row.valid_from <= day and (row.valid_to is None or day <= row.valid_to):
                return row
        return None

    def rows(self) -> list[MappingRow]:
        """Every row, ordered by HIS code and start of validity."""
        return [
            row for code in sorted(self.rows_by_his_code) for row in self.rows_by_his_code[code]
        ]


class CodeLookup(Protocol):
    """What a bill's codes are mapped through: a client's mapping, or the catalog itself."""

    def lookup(self, his_code: str, day: date) -> MappingRow | None:
        """The row for ``his_code`` valid on ``day``, if any."""


@dataclass(frozen=True, slots=True)
class CatalogCodes:
    """The catalog's own codes, each standing for itself (factor 1).

    For a client allowed to bill in national catalog codes (the national interface's
    ``med_list_codg``): a code the catalog lacks is unmapped, as a HIS code without a row is.
    """

    catalog: Mapping[str, CatalogItem]

    def lookup(self, his_code: str, day: date) -> MappingRow | None:
        """A row mapping a catalog code to itself, ``None`` when the catalog lacks it."""
        item = self.catalog.get(his_code)
        if item is None:
            return None
        return MappingRow(
            his_code=item.code,
            his_name=item.name,
            catalog_code=item.code,
            factor=ONE,
            valid_from=day,
        )


def _by_start(row: MappingRow) -> date:
    return row.valid_from


def parse_mapping_rows(
    records: Iterable[tuple[int, Mapping[str, Any]]],
    catalog: Mapping[str, CatalogItem] | None,
) -> MappingTable:
    """Validate a whole mapping upload, collecting every fault with its row number.

    A row is at fault when a field is invalid, its catalog code is not in the catalog (when a
    catalog is given: a stored mapping is read back without it), or its validity window
    overlaps another row of the same HIS code (the code would map two ways).

    Raises:
        InvalidDocument: listing each row at fault; nothing is returned partially.
    """
    problems: list[Problem] = []
    accepted: list[tuple[int, MappingRow]] = []
    for row_number, record in records:
        try:
            row = MappingRow.model_validate(record)
        except ValidationError as error:
            problems.extend(validation_problems(error, row=row_number))
            continue
        if catalog is not None and row.catalog_code not in catalog:
            problems.append(
                Problem(
                    code=ErrorCode.INVALID,
                    field="catalog_code",
                    row=row_number,
                    his_code=row.his_code,
                    message=f"catalog code {row.catalog_code} is not in the catalog",
                )
            )
            continue
        accepted.append((row_number, row))
    by_code: dict[str, list[tuple[int, MappingRow]]] = defaultdict(list)
    for row_number, row in accepted:
        by_code[row.his_code].append((row_number, row))
    for his_code, group in by_code.items():
        group.sort(key=lambda numbered: numbered[1].valid_from)
        for (earlier_row, earlier), (row_number, later) in pairwise(group):
            if earlier.valid_to is None or later.valid_from <= earlier.valid_to:
                problems.append(
                    Problem(
                        code=ErrorCode.INVALID,
                        field="valid_from",
                        row=row_number,
                        his_code=his_code,
                        message=f"validity overlaps row {earlier_row} of the same HIS code",
                    )
                )
    if problems:
        problems.sort(key=lambda problem: problem.row or 0)
        raise InvalidDocument(f"{len(problems)} problem(s) in the mapping", tuple(problems))
    return MappingTable.from_rows(row for _, row in accepted)


def parse_mapping_csv(
    text: str | Iterable[str], catalog: Mapping[str, CatalogItem] | None
) -> MappingTable:
    """Parse the contract's mapping CSV (see :func:`parse_mapping_rows`).

    Raises:
        MalformedDocument: the header or the CSV shape is wrong.
        InvalidDocument: rows at fault, each with its row number.
    """
    return parse_mapping_rows(csv_records(text, MAPPING_COLUMNS), catalog)


def mapping_row_csv(row: MappingRow) -> str:
    """One mapping row as a CSV line (no header), as the audit trail shows it."""
    return csv_text(MAPPING_COLUMNS, [_row_cells(row)]).split("\n", 1)[1].rstrip("\n")


def _row_cells(row: MappingRow) -> tuple[object, ...]:
    return (row.his_code, row.his_name, row.catalog_code, row.factor, row.valid_from, row.valid_to)


def mapping_csv(table: MappingTable) -> str:
    """The contract's mapping CSV of a whole table."""
    return csv_text(MAPPING_COLUMNS, (_row_cells(row) for row in table.rows()))


@dataclass(frozen=True, slots=True)
class MappingChange:
    """How an upload changes one HIS code's rows.

    Attributes:
        change: ``added``, ``removed`` or ``changed``.
        risky: the code moves to a catalog item of another kind or category (the seed's
            covered coronary stent remapped to a self-paid item); refused unless confirmed.
    """

    his_code: str
    change: str
    old_rows: tuple[MappingRow, ...]
    new_rows: tuple[MappingRow, ...]
    risky: bool
    reason: str


def diff_mappings(
    old: MappingTable, new: MappingTable, catalog: Mapping[str, CatalogItem]
) -> list[MappingChange]:
    """Every HIS code whose rows differ between ``old`` and ``new``, in code order."""
    changes = []
    for his_code in sorted(set(old.rows_by_his_code) | set(new.rows_by_his_code)):
        before = old.rows_by_his_code.get(his_code, ())
        after = new.rows_by_his_code.get(his_code, ())
        if before == after:
            continue
        if not before:
            changes.append(MappingChange(his_code, "added", before, after, False, ""))
            continue
        if not after:
            changes.append(MappingChange(his_code, "removed", before, after, False, ""))
            continue
        reasons = []
        for previous_code in sorted({row.catalog_code for row in before}):
            for next_code in sorted({row.catalog_code for row in after}):
                was, becomes = catalog.get(previous_code), catalog.get(next_code)
                if was is None or becomes is None:
                    continue
                if was.kind is not becomes.kind:
                    reasons.append(
                        f"{previous_code} ({was.kind.value}) becomes {next_code} "
                        f"({becomes.kind.value})"
                    )
                if was.category is not becomes.category:
                    reasons.append(
                        f"{previous_code} (category {was.category.value}) becomes {next_code} "
                        f"(category {becomes.category.value})"
                    )
        changes.append(
            MappingChange(his_code, "changed", before, after, bool(reasons), "; ".join(reasons))
        )
    return changes


def map_bill(
    request: VisitRequest, mapping: CodeLookup, catalog: Mapping[str, CatalogItem]
) -> Visit:
    """Map every line to the catalog and check the bill (domain.md step 1).

    Every line is checked and every fault reported, so the HIS can fix the bill in one go.

    Args:
        request: the bill as the HIS sent it.
        mapping: the sending client's mapping.
        catalog: the catalog, by code.

    Returns:
        The visit with catalog-coded lines.

    Raises:
        BillRejected: listing each offending line; nothing may be settled.
    """
    problems: list[Problem] = []
    failed: list[tuple[_Check, ErrorCode]] = []
    first_day, last_day = request.first_day, request.last_day
    seen_line_nos: set[int] = set()
    coded: list[CodedLine] = []
    daily_qty: dict[tuple[str, date], Decimal] = {}
    daily_lines: dict[tuple[str, date], list[tuple[int, str]]] = defaultdict(list)

    def fault(
        check: _Check, line_no: int, his_code: str, field: str, code: ErrorCode, message: str
    ) -> None:
        problems.append(Problem(code, message, field=field, line_no=line_no, his_code=his_code))
        failed.append((check, code))

    for line in request.lines:
        line_no, his_code = line.line_no, line.his_code
        if line_no in seen_line_nos:
            fault(
                _Check.DUPLICATE_LINE,
                line_no,
                his_code,
                "line_no",
                ErrorCode.INVALID,
                f"line number {line_no} appears twice",
            )
        seen_line_nos.add(line_no)
        positive = True
        if line.quantity <= ZERO:
            fault(
                _Check.NOT_POSITIVE,
                line_no,
                his_code,
                "quantity",
                ErrorCode.INVALID,
                "quantity must be above zero",
            )
            positive = False
        if line.unit_price <= 0:
            fault(
                _Check.NOT_POSITIVE,
                line_no,
                his_code,
                "unit_price",
                ErrorCode.INVALID,
                "unit_price must be above zero",
            )
            positive = False
        if line.amount < 0:
            fault(
                _Check.NOT_POSITIVE,
                line_no,
                his_code,
                "amount",
                ErrorCode.INVALID,
                "amount must not be negative",
            )
            positive = False
        if not first_day <= line.date <= last_day:
            fault(
                _Check.DATE,
                line_no,
                his_code,
                "date",
                ErrorCode.DATE_OUT_OF_VISIT,
                f"line date {line.date} is outside the visit ({first_day} to {last_day})",
            )
        if positive:
            unit_price = line.unit_price
            if type(unit_price) is int:
                # Integers where the price is whole fen, as in the engine (test_money.py).
                numerator, denominator = line.quantity.as_integer_ratio()
                expected = round_half_up(unit_price * numerator, denominator)
            else:
                expected = round_half_up(exact_mul(line.quantity, unit_price))
            if abs(line.amount - expected) > AMOUNT_TOLERANCE_FEN:
                fault(
                    _Check.AMOUNT,
                    line_no,
                    his_code,
                    "amount",
                    ErrorCode.AMOUNT_MISMATCH,
                    f"amount {line.amount} is not quantity x unit_price ({expected})",
                )
        row = mapping.lookup(his_code, line.date)
        if row is None:
            fault(
                _Check.UNMAPPED,
                line_no,
                his_code,
                "his_code",
                ErrorCode.UNMAPPED_CODES,
                f"HIS code {his_code} has no mapping valid on {line.date}",
            )
            continue
        item = catalog.get(row.catalog_code)
        if item is None:
            fault(
                _Check.UNMAPPED,
                line_no,
                his_code,
                "his_code",
                ErrorCode.UNMAPPED_CODES,
                f"HIS code {his_code} maps to {row.catalog_code}, which is not in the catalog",
            )
            continue
        coded_line = CodedLine(
            line_no=line_no,
            catalog_code=item.code,
            catalog_qty=exact_mul(line.quantity, row.factor),
            amount=line.amount,
            service_date=line.date,
        )
        coded.append(coded_line)
        if item.max_daily_qty is not None:
            key = (item.code, line.date)
            daily_qty[key] = exact_add(daily_qty.get(key, ZERO), coded_line.catalog_qty)
            daily_lines[key].append((line_no, his_code))

    for (catalog_code, day), total_qty in daily_qty.items():
        limit = catalog[catalog_code].max_daily_qty
        if limit is not None and total_qty > limit:
            unit = catalog[catalog_code].unit
            for line_no, his_code in daily_lines[(catalog_code, day)]:
                fault(
                    _Check.QUANTITY,
                    line_no,
                    his_code,
                    "quantity",
                    ErrorCode.IMPLAUSIBLE_QUANTITY,
                    f"{total_qty} {unit} of {catalog_code} on {day} exceeds the daily "
                    f"maximum of {limit}",
                )

    if problems:
        _, top = min(failed)
        raise BillRejected(top, f"{len(problems)} problem(s) in the bill", tuple(problems))
    return Visit(
        visit_type=request.visit_type,
        first_day=first_day,
        last_day=last_day,
        diagnoses=request.diagnoses,
        use_personal_account=request.use_personal_account,
        lines=tuple(coded),
        referral_no=request.referral_no,
    )
