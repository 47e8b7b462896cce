"""Reproducible synthetic catalogs, mappings and bills for benchmarks and load tests.

Everything is drawn from a seeded :class:`random.Random`, so the same seed gives the same
data on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from onestop.domain.catalog import CatalogItem
from onestop.domain.mapping import MappingRow, MappingTable
from onestop.domain.types import Category, HospitalLevel, ItemKind

_KIND_PREFIX = {ItemKind.DRUG: "X", ItemKind.SERVICE: "F", ItemKind.MATERIAL: "C"}
_UNITS = {
    ItemKind.DRUG: ("box", "vial", "bottle", "tablet", "bag"),
    ItemKind.SERVICE: ("time", "day", "hour", "item"),
    ItemKind.MATERIAL: ("piece", "set", "roll"),
}
_EPOCH = date(2020, 1, 1)


@dataclass(frozen=True, slots=True)
class SyntheticWorld:
    """A catalog and one client's mapping of all of it (HIS code ``H`` + catalog code)."""

    catalog: dict[str, CatalogItem]
    mapping: MappingTable
    unit_prices: dict[str, int]


def catalog_code(kind: ItemKind, category: Category, number: int) -> str:
    """A national-catalog-shaped code such as ``XB05123450001`` (kind, category, digits)."""
    return f"{_KIND_PREFIX[kind]}{category.value}{number:011d}"


def make_world(items: int = 2_000, seed: int = 7) -> SyntheticWorld:
    """Draw a catalog of ``items`` items and a mapping of every item (factor 1).

    The mix follows a typical inpatient catalog: mostly drugs, about half category B, a
    tenth category C, price caps on most services and materials, a few level-restricted
    drugs and daily limits on per-day services.
    """
    rng = random.Random(seed)
    catalog: dict[str, CatalogItem] = {}
    prices: dict[str, int] = {}
    rows: list[MappingRow] = []
    for number in range(items):
        kind = rng.choices(list(ItemKind), weights=(70, 22, 8))[0]
        category = rng.choices(list(Category), weights=(40, 50, 10))[0]
        code = catalog_code(kind, category, number)
        unit_price = int(rng.lognormvariate(7.5, 1.3)) + 10
        cap = None
        if kind is not ItemKind.DRUG or rng.random() < 0.3:
            cap = int(unit_price * rng.uniform(0.85, 1.2))
        per_day = kind is ItemKind.SERVICE and rng.random() < 0.3
        catalog[code] = CatalogItem(
            code=code,
            name=f"item {number}",
            kind=kind,
            category=category,
            self_pay_ratio=Decimal(rng.choice(("0.05", "0.10", "0.15", "0.20")))
            if category is Category.B
            else None,
            price_cap=cap,
            unit=rng.choice(_UNITS[kind]),
            max_level=HospitalLevel.LEVEL1
            if kind is ItemKind.DRUG and rng.random() < 0.03
            else None,
            max_daily_qty=Decimal(24) if per_day else None,
        )
        prices[code] = unit_price
        rows.append(
            MappingRow(
                his_code=f"H{code}",
                his_name=f"his item {number}",
                catalog_code=code,
                factor=Decimal(1),
                valid_from=_EPOCH,
                valid_to=None,
            )
        )
    return SyntheticWorld(catalog, MappingTable.from_rows(rows), prices)


def inpatient_bill(
    world: SyntheticWorld,
    *,
    lines: int,
    visit_id: str,
    member_id: str,
    admission: date,
    rng: random.Random,
) -> dict[str, Any]:
    """A discharge bill (the contract's request body) with exactly ``lines`` lines."""
    stay_days = max(1, min(30, lines // 20))
    codes = list(world.catalog)
    body_lines = []
    for line_no in range(1, lines + 1):
        code = rng.choice(codes)
        quantity = rng.choice(("1", "1", "2", "3", "0.5", "1.25"))
        unit_price = world.unit_prices[code]
        amount = int((Decimal(quantity) * unit_price).to_integral_value())
        body_lines.append(
            {
                "line_no": line_no,
                "his_code": f"H{code}",
                "quantity": quantity,
                "unit_price": unit_price,
                "amount": amount,
                "date": (admission + timedelta(days=rng.randrange(stay_days))).isoformat(),
            }
        )
    return {
        "visit_id": visit_id,
        "member_id": member_id,
        "visit_type": "inpatient",
        "admission_date": admission.isoformat(),
        "discharge_date": (admission + timedelta(days=stay_days - 1)).isoformat(),
        "diagnoses": ["K35.8"],
        "use_personal_account": False,
        "lines": body_lines,
    }
