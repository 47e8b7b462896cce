"""Plain-value builders for domain objects, so each test states only what it is about."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from onestop.domain import (
    CatalogItem,
    CodedLine,
    Member,
    Policy,
    Visit,
    VisitType,
    parse_policy,
)


def policy_document(**overrides: Any) -> dict[str, Any]:
    """A plain policy (Zhengzhou-like: 900 yuan deductible at level 3, 50 %, 25,000 cap)."""
    document: dict[str, Any] = {
        "region": "410100",
        "scheme": "resident",
        "year": 2026,
        "name": "test plan",
        "inpatient": {
            "deductible": {"community": 20000, "level1": 30000, "level2": 60000, "level3": 90000},
            "ratio": {"community": "0.60", "level1": "0.60", "level2": "0.55", "level3": "0.50"},
            "halved_deductible_groups": [],
        },
        "annual_cap": 2500000,
    }
    document.update(overrides)
    return document


def make_policy(**overrides: Any) -> Policy:
    """A validated policy (see :func:`policy_document`)."""
    return parse_policy(policy_document(**overrides))


def make_item(code: str = "A1", category: str = "A", **fields: Any) -> CatalogItem:
    """A catalog item; B items get a 10 % self-pay-first ratio unless told otherwise."""
    values: dict[str, Any] = {
        "code": code,
        "name": f"item {code}",
        "kind": "drug",
        "category": category,
        "unit": "box",
    }
    if category == "B":
        values["self_pay_ratio"] = "0.10"
    values.update(fields)
    return CatalogItem.model_validate(values)


def make_member(**fields: Any) -> Member:
    """An active 410100 resident enrolled since 2015, in nothing else."""
    values: dict[str, Any] = {
        "member_id": "M1",
        "id_number": "410102198001011234",
        "name": "测试",
        "birth_date": "1980-01-01",
        "sex": "F",
        "region": "410100",
        "scheme": "resident",
        "status": "active",
        "enrolled_since": "2015-01-01",
    }
    values.update(fields)
    return Member.model_validate(values)


def line(
    amount: int, code: str = "A1", qty: str = "1", line_no: int = 1, day: date | None = None
) -> CodedLine:
    """A coded line of ``amount`` fen."""
    return CodedLine(line_no, code, Decimal(qty), amount, day or date(2026, 3, 1))


def make_visit(
    *lines: CodedLine,
    visit_type: VisitType = VisitType.INPATIENT,
    first: date = date(2026, 3, 1),
    last: date = date(2026, 3, 9),
    diagnoses: tuple[str, ...] = ("K35.8",),
    use_personal_account: bool = False,
    referral_no: str | None = None,
) -> Visit:
    """A visit of the given lines (numbered as given)."""
    if visit_type is not VisitType.INPATIENT:
        last = first
    return Visit(
        visit_type, first, last, diagnoses, use_personal_account, tuple(lines), referral_no
    )
