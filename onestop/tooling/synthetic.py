"""Reproducible synthetic catalogs, clients, mappings and bills for benchmarks and load tests.

Everything is drawn from a seeded :class:`random.Random`, so the same seed gives the same
data on every machine. Shapes follow what hospitals send: discharge bills of about 200 lines
(log-normal, 5 to 2,000), pharmacy swipes of 1 to 5 lines.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
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
_QUANTITIES = ("1", "1", "1", "2", "3", "0.5", "1.25", "10")


def catalog_code(kind: ItemKind, category: Category, number: int) -> str:
    """A national-catalog-shaped code such as ``XB05123450001`` (kind, category, digits)."""
    return f"{_KIND_PREFIX[kind]}{category.value}{number:011d}"


def make_catalog(items: int, seed: int = 7) -> dict[str, CatalogItem]:
    """Draw a catalog of ``items`` items.

    Mostly drugs, about half category B, a tenth C, caps on most services and materials, a
    few level-restricted drugs, daily limits on per-day services.
    """
    rng = random.Random(seed)
    catalog: dict[str, CatalogItem] = {}
    for number in range(items):
        kind = rng.choices(list(ItemKind), weights=(70, 22, 8))[0]
        category = rng.choices(list(Category), weights=(40, 50, 10))[0]
        code = catalog_code(kind, category, number)
        list_price = unit_price_of(code)
        cap = None
        if kind is not ItemKind.DRUG or rng.random() < 0.3:
            cap = int(list_price * rng.uniform(0.85, 1.2))
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
            max_daily_qty=Decimal(1000) if per_day else None,
        )
    return catalog


def unit_price_of(code: str) -> int:
    """A stable list price in fen for a catalog code (log-normal around 18 yuan)."""
    rng = random.Random(code)
    return int(rng.lognormvariate(7.5, 1.3)) + 10


def make_mapping(
    client_id: str,
    catalog: dict[str, CatalogItem],
    rows: int,
    *,
    drugs_only: bool = False,
    seed: int = 11,
) -> MappingTable:
    """A client's mapping of ``rows`` catalog items under its own codes (``CLIENT-NNNNNN``)."""
    rng = random.Random(f"{seed}:{client_id}")
    codes = [code for code, item in catalog.items() if not drugs_only or item.kind is ItemKind.DRUG]
    chosen = rng.sample(codes, min(rows, len(codes)))
    return MappingTable.from_rows(
        MappingRow(
            his_code=f"{client_id}-{number:06d}",
            his_name=f"{client_id} item {number}",
            catalog_code=code,
            factor=Decimal(1),
            valid_from=_EPOCH,
        )
        for number, code in enumerate(chosen)
    )


def discharge_lines(rng: random.Random) -> int:
    """Lines of a discharge bill: log-normal around 200, within 5 and 2,000."""
    return max(5, min(2000, int(rng.lognormvariate(math.log(200), 0.6))))


@dataclass
class BillFactory:
    """Draws bills in one client's own codes."""

    client_id: str
    his_codes: list[str]
    catalog_codes: dict[str, str]  # his code -> catalog code
    rng: random.Random

    @classmethod
    def of(cls, client_id: str, mapping: MappingTable, seed: int = 3) -> BillFactory:
        """A factory for a client whose mapping is ``mapping``."""
        rows = mapping.rows()
        return cls(
            client_id,
            [row.his_code for row in rows],
            {row.his_code: row.catalog_code for row in rows},
            random.Random(f"{seed}:{client_id}"),
        )

    def _lines(self, count: int, first: date, days: int) -> list[dict[str, Any]]:
        lines = []
        for line_no in range(1, count + 1):
            his_code = self.rng.choice(self.his_codes)
            quantity = self.rng.choice(_QUANTITIES)
            price = unit_price_of(self.catalog_codes[his_code])
            amount = int((Decimal(quantity) * price).to_integral_value())
            day = first + timedelta(days=self.rng.randrange(days))
            lines.append(
                {
                    "line_no": line_no,
                    "his_code": his_code,
                    "quantity": quantity,
                    "unit_price": price,
                    "amount": amount,
                    "date": day.isoformat(),
                }
            )
        return lines

    def discharge(
        self, visit_id: str, member_id: str, admission: date, lines: int | None = None
    ) -> dict[str, Any]:
        """An inpatient discharge bill (``lines`` lines, or drawn)."""
        count = lines or discharge_lines(self.rng)
        # At most 28 days: stays that start on the first of a month never reach the next.
        days = max(1, min(28, count // 25))
        return {
            "visit_id": visit_id,
            "member_id": member_id,
            "visit_type": "inpatient",
            "admission_date": admission.isoformat(),
            "discharge_date": (admission + timedelta(days=days - 1)).isoformat(),
            "diagnoses": [self.rng.choice(("K35.8", "I25.1", "J18.9", "C34.9", "N18.5"))],
            "use_personal_account": False,
            "lines": self._lines(count, admission, days),
        }

    def outpatient(self, visit_id: str, member_id: str, day: date) -> dict[str, Any]:
        """A general outpatient visit of 2 to 12 lines."""
        return {
            "visit_id": visit_id,
            "member_id": member_id,
            "visit_type": "outpatient",
            "service_date": day.isoformat(),
            "diagnoses": ["J06.9"],
            "use_personal_account": self.rng.random() < 0.5,
            "lines": self._lines(self.rng.randint(2, 12), day, 1),
        }

    def swipe(
        self, visit_id: str, member_id: str, day: date, lines: int | None = None
    ) -> dict[str, Any]:
        """A pharmacy card swipe of 1 to 5 lines."""
        return {
            "visit_id": visit_id,
            "member_id": member_id,
            "visit_type": "pharmacy",
            "service_date": day.isoformat(),
            "diagnoses": [],
            "use_personal_account": True,
            "lines": self._lines(lines or self.rng.randint(1, 5), day, 1),
        }


@dataclass(frozen=True, slots=True)
class SyntheticWorld:
    """A catalog and one client's mapping of all of it (for the engine benchmark)."""

    catalog: dict[str, CatalogItem]
    mapping: MappingTable
    unit_prices: dict[str, int]


def make_world(items: int = 2_000, seed: int = 7) -> SyntheticWorld:
    """A catalog of ``items`` items, all mapped under ``H`` + catalog code (factor 1)."""
    catalog = make_catalog(items, seed)
    mapping = MappingTable.from_rows(
        MappingRow(
            his_code=f"H{code}",
            his_name=f"his {code}",
            catalog_code=code,
            factor=Decimal(1),
            valid_from=_EPOCH,
        )
        for code in catalog
    )
    return SyntheticWorld(catalog, mapping, {code: unit_price_of(code) for code in catalog})


def inpatient_bill(
    world: SyntheticWorld,
    *,
    lines: int,
    visit_id: str,
    member_id: str,
    admission: date,
    rng: random.Random,
) -> dict[str, Any]:
    """A discharge bill with exactly ``lines`` lines over the world's mapping."""
    factory = BillFactory(
        "H",
        [f"H{code}" for code in world.catalog],
        {f"H{code}": code for code in world.catalog},
        rng,
    )
    return factory.discharge(visit_id, member_id, admission, lines)


def hospital_levels(count: int, seed: int = 5) -> Iterator[HospitalLevel]:
    """Levels for ``count`` hospitals: mostly level 2 and 3, some community and level 1."""
    rng = random.Random(seed)
    for _ in range(count):
        yield rng.choices(list(HospitalLevel), weights=(15, 20, 35, 30))[0]
