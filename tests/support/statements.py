"""Settlement results for statements: a long bill over a catalog of every fee category."""

from __future__ import annotations

from typing import Any

from onestop.domain.catalog import CatalogItem
from onestop.domain.types import Category, FeeCategory, ItemKind

_NAMES = ("床位费", "诊查费", "CT平扫", "血常规", "静脉输液", "阑尾切除术", "一级护理")


def long_catalog(count: int) -> dict[str, CatalogItem]:
    """``count`` items, ``T0001``..., cycling through the fee categories and A, B, C."""
    items = {}
    fee_categories = list(FeeCategory)
    for number in range(1, count + 1):
        category = (Category.A, Category.B, Category.C)[number % 3]
        fee_category = fee_categories[number % len(fee_categories)]
        code = f"T{number:04d}"
        items[code] = CatalogItem(
            code=code,
            name=f"{_NAMES[number % len(_NAMES)]}{number}号",
            kind=ItemKind.SERVICE,
            category=category,
            self_pay_ratio="0.10" if category is Category.B else None,
            unit="time",
            # one item in ten leaves the column empty: its kind's, 14 其他费
            med_chrgitm_type=None if number % 10 == 5 else fee_category,
        )
    return items


def long_result(catalog: dict[str, CatalogItem]) -> dict[str, Any]:
    """A settled result in the contract's shape with one line per catalog item, unsigned."""
    lines: list[dict[str, Any]] = []
    for line_no, item in enumerate(catalog.values(), start=1):
        amount = 1000 + 37 * line_no
        over = 100 if line_no % 11 == 0 and item.category is not Category.C else 0
        full = amount if item.category is Category.C else 0
        pre = (amount - over) // 10 if item.category is Category.B else 0
        lines.append(
            {
                "line_no": line_no,
                "catalog_code": item.code,
                "category": item.category.value,
                "amount": amount,
                "full_self_pay": full,
                "over_limit_self_pay": over,
                "pre_self_pay": pre,
                "in_scope": amount - full - over - pre,
                "reasons": [],
            }
        )
    total = sum(line["amount"] for line in lines)
    parts = {
        name: sum(line[name] for line in lines)
        for name in ("full_self_pay", "over_limit_self_pay", "pre_self_pay", "in_scope")
    }
    basic_fund = parts["in_scope"] // 2
    return {
        "settlement_id": "S0123456789abcdef0123456789abcde",
        "client_id": "ZZH3",
        "visit_id": "ZY2026030100200",
        "member_id": "M0001",
        "visit_type": "inpatient",
        "status": "settled",
        "replayed": False,
        "settled_at": "2026-03-09T10:15:02.000+08:00",
        "policy": {
            "region": "410100",
            "scheme": "resident",
            "year": 2026,
            "version": "5b1f0c2e9a7d",
            "effective_from": "2026-01-01",
        },
        "amounts": {
            "total": total,
            **parts,
            "deductible": 90000,
            "basic_fund": basic_fund,
            "supplementary": 0,
            "assistance": 0,
            "personal_account": 0,
            "cash": total - basic_fund,
            "hospital_part": 0,
        },
        "lines": lines,
        "year_to_date": {},
        "notes": [{"code": "DEDUCTIBLE", "message": "起付标准 900.00 yuan <b>paid</b> first"}],
    }
