"""The patient's statement as one value, built from a settlement result and the catalog.

The HTML and PDF renderers (:mod:`onestop.statement.html`, :mod:`onestop.statement.pdf`)
only lay out what :func:`build_statement` decided: lines grouped by fee category in code
order, each category's subtotal, the amounts, the notes and the seal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from onestop.domain.catalog import CatalogItem
from onestop.domain.types import Category, FeeCategory
from onestop.national.codes import med_chrgitm_type_of
from onestop.statement import HEADINGS, amount_rows


@dataclass(frozen=True, slots=True)
class Split:
    """An amount and how it divides (fen): ``amount`` is the sum of the four parts."""

    amount: int = 0
    pre_self_pay: int = 0
    over_limit_self_pay: int = 0
    full_self_pay: int = 0
    in_scope: int = 0

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Split:
        """The split of a result's line (``amount`` and the four parts)."""
        return cls(
            amount=int(values["amount"]),
            pre_self_pay=int(values["pre_self_pay"]),
            over_limit_self_pay=int(values["over_limit_self_pay"]),
            full_self_pay=int(values["full_self_pay"]),
            in_scope=int(values["in_scope"]),
        )

    def __add__(self, other: Split) -> Split:
        return Split(
            self.amount + other.amount,
            self.pre_self_pay + other.pre_self_pay,
            self.over_limit_self_pay + other.over_limit_self_pay,
            self.full_self_pay + other.full_self_pay,
            self.in_scope + other.in_scope,
        )


SPLIT_FIELDS = ("amount", "pre_self_pay", "over_limit_self_pay", "full_self_pay", "in_scope")
"""The columns of a line's money, in the order a statement prints them."""


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One bill line as printed: its catalog item and its split."""

    line_no: int
    code: str
    name: str
    category: Category
    split: Split


@dataclass(frozen=True, slots=True)
class FeeGroup:
    """The lines of one fee category and their subtotal."""

    fee_category: FeeCategory
    lines: tuple[StatementLine, ...]
    subtotal: Split


@dataclass(frozen=True, slots=True)
class Statement:
    """Everything a statement shows.

    Attributes:
        hospital: the name of the client that settled.
        patient_name: masked (``张*``).
        patient_id_number: masked (``4101**********1234``).
        groups: the lines by fee category, in code order (categories without lines left out).
        amounts: the result's ``amounts`` (fen), by field.
        summary: the amounts a statement shows, in order: ``(label, fen, indent)``.
        notes: what the cashier should tell the patient.
        key_id: the receipt key that signed the result and the seal.
        signature: the result's signature (standard base64), as the receipt carries it.
        seal: the signed seal the QR code holds (:mod:`onestop.statement.seal`).
    """

    hospital: str
    patient_name: str
    patient_id_number: str
    member_id: str
    settlement_id: str
    visit_id: str
    visit_type: str
    status: str
    settled_at: str
    reversed_at: str | None
    policy: str
    groups: tuple[FeeGroup, ...]
    amounts: Mapping[str, int]
    summary: tuple[tuple[str, int, int], ...]
    notes: tuple[str, ...]
    key_id: str
    signature: str
    seal: str

    @property
    def line_count(self) -> int:
        """How many bill lines the statement lists."""
        return sum(len(group.lines) for group in self.groups)

    @property
    def total(self) -> Split:
        """The sum of every line (equal to the result's amounts)."""
        return sum((group.subtotal for group in self.groups), Split())


def build_statement(
    result: Mapping[str, Any],
    catalog: Mapping[str, CatalogItem],
    *,
    hospital: str,
    patient_name: str,
    patient_id_number: str,
    seal: str,
) -> Statement:
    """The statement of a signed settlement result.

    Args:
        result: the result in the contract's shape, with its ``signature``.
        catalog: the catalog now, for each line's name, and fee category (an item no longer
            in it is printed by its code, under 其他费).
        hospital: the name of the client that settled.
        patient_name: the patient's name, masked.
        patient_id_number: the patient's id number, masked.
        seal: the signed seal text.
    """
    by_category: dict[FeeCategory, list[StatementLine]] = {}
    for line in result["lines"]:
        code = str(line["catalog_code"])
        item = catalog.get(code)
        fee_category = med_chrgitm_type_of(item) if item else FeeCategory.OTHER
        by_category.setdefault(fee_category, []).append(
            StatementLine(
                line_no=int(line["line_no"]),
                code=code,
                name=item.name if item else HEADINGS["unknown_item"],
                category=Category(line["category"]),
                split=Split.of(line),
            )
        )
    groups = []
    for fee_category in FeeCategory:  # in code order: 床位费 first, 其他费 last
        if fee_category in by_category:
            lines = sorted(by_category[fee_category], key=lambda line: line.line_no)
            subtotal = sum((line.split for line in lines), Split())
            groups.append(FeeGroup(fee_category, tuple(lines), subtotal))
    policy = result["policy"]
    signature = result["signature"]
    return Statement(
        hospital=hospital,
        patient_name=patient_name,
        patient_id_number=patient_id_number,
        member_id=str(result["member_id"]),
        settlement_id=str(result["settlement_id"]),
        visit_id=str(result["visit_id"]),
        visit_type=str(result["visit_type"]),
        status=str(result["status"]),
        settled_at=str(result["settled_at"]),
        reversed_at=result.get("reversed_at"),
        policy=f"{policy['region']} {policy['scheme']} {policy['year']} ({policy['version']})",
        groups=tuple(groups),
        amounts={name: int(value) for name, value in result["amounts"].items()},
        summary=tuple(amount_rows(result["amounts"])),
        notes=tuple(str(note["message"]) for note in result.get("notes", ())),
        key_id=str(signature["key_id"]),
        signature=str(signature["value"]),
        seal=seal,
    )
