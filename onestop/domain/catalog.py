"""The national catalog (医保目录): items with category, caps, level and daily limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from onestop.domain.documents import validation_problems
from onestop.domain.errors import ErrorCode, InvalidDocument, Problem
from onestop.domain.tables import csv_records, csv_text, int_cell
from onestop.domain.types import (
    Category,
    Code,
    FeeCategory,
    Fen,
    HospitalLevel,
    ItemKind,
    Name,
    PositiveDecimal,
    Ratio,
)

CATALOG_COLUMNS = (
    "code",
    "name",
    "kind",
    "category",
    "self_pay_ratio",
    "price_cap",
    "unit",
    "max_level",
    "max_daily_qty",
)
"""The catalog CSV's columns (contract section 2)."""

OPTIONAL_CATALOG_COLUMNS = (
    "sex",
    "min_age",
    "max_age",
    "max_visit_qty",
    "max_year_qty",
    "med_chrgitm_type",
)
"""Columns a catalog may add (0.2.0): restrictions and quantity limits (domain section 18),
the fee category a statement groups lines by (``med_chrgitm_type``).

A catalog that uses none of them is written without them, as before they existed."""


class CatalogItem(BaseModel):
    """One catalog item.

    Attributes:
        self_pay_ratio: the self-pay-first share of a category-B item (B only).
        price_cap: the price ceiling in fen per catalog unit, if any.
        max_level: the highest hospital level that may bill the item, if restricted.
        max_daily_qty: the most catalog units one patient can plausibly get in a day.
        sex: the only sex the item is for (``M`` or ``F``), if restricted.
        min_age: the youngest age in whole years the item is for, if restricted.
        max_age: the oldest age in whole years the item is for, if restricted.
        max_visit_qty: the most catalog units one visit may settle (quantity control).
        max_year_qty: the most catalog units one member may settle in a calendar year.
        med_chrgitm_type: the fee category (医疗收费项目类别, national code ``01``..``14``);
            absent, the one its kind implies (:data:`onestop.national.codes.MED_CHRGITM_TYPE`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name: Name
    kind: ItemKind
    category: Category
    self_pay_ratio: Ratio | None = None
    price_cap: Fen | None = None
    unit: Name
    max_level: HospitalLevel | None = None
    max_daily_qty: PositiveDecimal | None = None
    sex: Literal["M", "F"] | None = None
    min_age: Annotated[int, Strict(), Field(ge=0, le=150)] | None = None
    max_age: Annotated[int, Strict(), Field(ge=0, le=150)] | None = None
    max_visit_qty: PositiveDecimal | None = None
    max_year_qty: PositiveDecimal | None = None
    med_chrgitm_type: FeeCategory | None = None

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, its values worked out once (below) worked out again from its own fields."""
        copy = super().model_copy(update=update, deep=deep)
        for derived in _DERIVED:
            copy.__dict__.pop(derived, None)
        return copy

    def __iter__(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """The fields, as pydantic iterates a model, without the values worked out below."""
        for name, value in super().__iter__():
            if name not in _DERIVED:
                yield name, value

    @cached_property
    def self_pay_fraction(self) -> tuple[int, int] | None:
        """:attr:`self_pay_ratio` as an exact fraction, numerator and denominator.

        Worked out once per item (the catalog outlives thousands of bills), for the line
        loop's integer arithmetic (:func:`onestop.domain.money.round_half_up`).
        """
        ratio = self.self_pay_ratio
        return None if ratio is None else ratio.as_integer_ratio()

    @cached_property
    def max_level_rank(self) -> int | None:
        """:attr:`max_level`'s rank (:attr:`HospitalLevel.rank`), worked out once."""
        return None if self.max_level is None else self.max_level.rank

    @model_validator(mode="after")
    def _ages_in_order(self) -> CatalogItem:
        if self.min_age is not None and self.max_age is not None and self.max_age < self.min_age:
            raise ValueError(f"max_age {self.max_age} is below min_age {self.min_age}")
        return self

    @model_validator(mode="after")
    def _ratio_only_for_b(self) -> CatalogItem:
        if self.category is Category.B and self.self_pay_ratio is None:
            raise ValueError("a category-B item needs self_pay_ratio")
        if self.category is not Category.B and self.self_pay_ratio is not None:
            raise ValueError("self_pay_ratio is for category-B items only")
        return self


_DERIVED = ("self_pay_fraction", "max_level_rank")
""":class:`CatalogItem`'s cached values: a copy with other fields must not keep them."""


def parse_catalog_items(records: Iterable[tuple[int, Mapping[str, Any]]]) -> list[CatalogItem]:
    """Validate catalog records, collecting every fault with its row number.

    Args:
        records: ``(row_number, record)`` pairs, from a CSV upload or a case file.

    Raises:
        InvalidDocument: listing each row at fault; nothing is returned partially.
    """
    items: list[CatalogItem] = []
    problems: list[Problem] = []
    first_row: dict[str, int] = {}
    for row_number, record in records:
        try:
            item = CatalogItem.model_validate(record)
        except ValidationError as error:
            problems.extend(validation_problems(error, row=row_number))
            continue
        if item.code in first_row:
            problems.append(
                Problem(
                    code=ErrorCode.INVALID,
                    field="code",
                    row=row_number,
                    message=f"code {item.code} already on row {first_row[item.code]}",
                )
            )
            continue
        first_row[item.code] = row_number
        items.append(item)
    if problems:
        raise InvalidDocument(f"{len(problems)} problem(s) in the catalog", tuple(problems))
    return items


def parse_catalog_csv(text: str | Iterable[str]) -> list[CatalogItem]:
    """Parse the contract's catalog CSV.

    Raises:
        MalformedDocument: the header or the CSV shape is wrong.
        InvalidDocument: rows at fault, each with its row number.
    """

    def records() -> Iterable[tuple[int, dict[str, Any]]]:
        for row_number, record in csv_records(text, CATALOG_COLUMNS, OPTIONAL_CATALOG_COLUMNS):
            cells: dict[str, Any] = {name: value for name, value in record.items() if value}
            for name in ("price_cap", "min_age", "max_age"):
                if name in cells:
                    cells[name] = int_cell(cells[name])
            yield row_number, cells

    return parse_catalog_items(records())


def catalog_csv(items: Iterable[CatalogItem]) -> str:
    """The contract's catalog CSV for ``items`` (the inverse of :func:`parse_catalog_csv`).

    An optional column is written only when an item uses it: a catalog without them is the
    same text (and version) as before they existed.
    """
    items = list(items)
    optional = tuple(
        name
        for name in OPTIONAL_CATALOG_COLUMNS
        if any(getattr(item, name) is not None for item in items)
    )
    return csv_text(
        CATALOG_COLUMNS + optional,
        (
            (
                item.code,
                item.name,
                item.kind.value,
                item.category.value,
                item.self_pay_ratio,
                item.price_cap,
                item.unit,
                item.max_level.value if item.max_level else None,
                item.max_daily_qty,
                *(getattr(item, name) for name in optional),
            )
            for item in items
        ),
    )
