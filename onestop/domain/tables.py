"""Reading CSV and JSON Lines uploads row by row, with the row number of every fault."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from onestop.domain.errors import MalformedDocument

_DIGITS = re.compile(r"[0-9]+")


def csv_records(
    text: str | Iterable[str],
    expected_header: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> Iterator[tuple[int, dict[str, str | None]]]:
    """Yield ``(row_number, record)`` for each data row of a CSV upload.

    The header must name exactly ``expected_header`` and any of ``optional`` (in any order);
    a byte-order mark is ignored; empty cells become ``None``; the header is row 1.

    Raises:
        MalformedDocument: a missing or wrong header, or a row with the wrong number of cells.
    """
    lines: Iterable[str] = io.StringIO(text, newline="") if isinstance(text, str) else text
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise MalformedDocument("the file is empty: a header row is required") from None
    except csv.Error as error:
        raise MalformedDocument(f"row 1: {error}") from None
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    header = [name.strip() for name in header]
    required = [name for name in header if name not in optional]
    if sorted(required) != sorted(expected_header) or len(set(header)) != len(header):
        also = f" (and any of {','.join(optional)})" if optional else ""
        raise MalformedDocument(
            f"the header must be {','.join(expected_header)}{also}; found {','.join(header)}"
        )
    # Rows are counted as a spreadsheet shows them (a cell with line breaks is still one row),
    # not by physical lines.
    row_number = 1
    try:
        for cells in reader:
            row_number += 1
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a trailing blank line is not a record
            if len(cells) != len(header):
                raise MalformedDocument(
                    f"row {row_number}: {len(cells)} cells where the header has {len(header)}"
                )
            yield (
                row_number,
                {name: (cell.strip() or None) for name, cell in zip(header, cells, strict=True)},
            )
    except csv.Error as error:
        raise MalformedDocument(f"row {row_number + 1}: {error}") from None


def int_cell(cell: str | None) -> int | str | None:
    """A whole-number cell as ``int``; anything else is passed on for the model to refuse."""
    if cell is not None and _DIGITS.fullmatch(cell):
        return int(cell)
    return cell


def neutralise_formula(cell: Any) -> Any:
    """Prefix text a spreadsheet would run as a formula with a quote (CSV injection)."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


def csv_text(header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> str:
    """Write rows as CSV with ``header`` (``None`` as an empty cell), one line a row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow("" if cell is None else cell for cell in row)
    return buffer.getvalue()
