"""The demo region: three plans built from the seeds' parameters, their catalog and clients.

The same data serves the demonstration (``onestop demo``) and the engine benchmark, so the
figures a newcomer sees are those of a recognisable plan, not of random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from onestop.domain.catalog import CatalogItem, parse_catalog_csv
from onestop.domain.documents import parse_yaml
from onestop.domain.mapping import MappingRow, MappingTable
from onestop.domain.policy import Policy, parse_policy, policy_to_document
from onestop.domain.types import ClientKind, HospitalLevel, ItemKind

DEMO_REGIONS = ("410100", "520100", "610822")


@dataclass(frozen=True, slots=True)
class DemoClient:
    """A hospital or pharmacy of the demo region, with the prefix of its own HIS codes."""

    client_id: str
    kind: ClientKind
    name: str
    level: HospitalLevel
    region: str
    his_prefix: str


DEMO_CLIENTS = (
    DemoClient("ZZH3", ClientKind.HOSPITAL, "省人民医院", HospitalLevel.LEVEL3, "410100", "RMYY-"),
    DemoClient(
        "ZZC1", ClientKind.HOSPITAL, "金水社区卫生服务中心", HospitalLevel.COMMUNITY, "410100", "JS"
    ),
    DemoClient("ZZP1", ClientKind.PHARMACY, "康泰大药房", HospitalLevel.COMMUNITY, "410100", "KT."),
    DemoClient(
        "GYH3", ClientKind.HOSPITAL, "市第一人民医院", HospitalLevel.LEVEL3, "520100", "SY1-"
    ),
    DemoClient(
        "FGH2", ClientKind.HOSPITAL, "府谷县人民医院", HospitalLevel.LEVEL2, "610822", "FGX"
    ),
    DemoClient(
        "FGT1", ClientKind.HOSPITAL, "新民中心卫生院", HospitalLevel.LEVEL1, "610822", "XM-"
    ),
)


def _data_text(name: str) -> str:
    return (
        resources.files("onestop.tooling.demo").joinpath("data", name).read_text(encoding="utf-8")
    )


@cache
def demo_policies() -> tuple[Policy, ...]:
    """The three demo plans for 2026."""
    return tuple(
        parse_policy(parse_yaml(_data_text(f"policy_{region}_resident.yaml")))
        for region in DEMO_REGIONS
    )


DEMO_CONTROLS: dict[str, Any] = {
    "duplicate_bill": {"action": "refuse"},
    "split_admission": {"action": "flag", "within_days": 15},
    "quantity": {
        "action": "deduct",
        # Dialysis three times a week at most, a year's worth (the catalog has no limit).
        "limits": [{"code": "FA04", "per_year": "156"}],
    },
    "patient": {"action": "refuse"},
    "paper_bed": {"action": "flag", "bed_items": ["FA02"], "min_days": 5},
    "concurrent_visit": {"action": "flag"},
}
"""A region's controls across visits (domain section 18) as the demo and the bench set them:
duplicates and restricted items refused, the rest settled and flagged for review."""


def controlled_policy(policy: Policy, controls: dict[str, Any] | None = None) -> Policy:
    """``policy`` with a ``controls`` block (:data:`DEMO_CONTROLS` unless given)."""
    document = policy_to_document(policy)
    document["controls"] = DEMO_CONTROLS if controls is None else controls
    return parse_policy(document)


def demo_policy(region: str) -> Policy:
    """The demo plan of ``region``."""
    for policy in demo_policies():
        if policy.region == region:
            return policy
    raise KeyError(region)


def demo_catalog_csv() -> str:
    """The demo catalog as the contract's CSV."""
    return _data_text("catalog.csv")


@cache
def demo_catalog() -> dict[str, CatalogItem]:
    """The demo catalog by code."""
    return {item.code: item for item in parse_catalog_csv(demo_catalog_csv())}


def demo_mapping_rows(client: DemoClient) -> list[MappingRow]:
    """A client's mapping: each catalog item under the client's own code; pharmacies map drugs.

    Hospitals also bill cefuroxime per tablet (ten to a box: factor 0.1), the seeds' classic
    source of unit errors.
    """
    rows = []
    for number, item in enumerate(demo_catalog().values(), start=1):
        if client.kind is ClientKind.PHARMACY and item.kind is not ItemKind.DRUG:
            continue
        rows.append(
            MappingRow(
                his_code=f"{client.his_prefix}{number:04d}",
                his_name=item.name,
                catalog_code=item.code,
                factor=Decimal(1),
                valid_from=date(2020, 1, 1),
            )
        )
        if item.code == "XB02" and client.kind is ClientKind.HOSPITAL:
            rows.append(
                MappingRow(
                    his_code=f"{client.his_prefix}{number:04d}T",
                    his_name=f"{item.name}(片)",
                    catalog_code=item.code,
                    factor=Decimal("0.1"),
                    valid_from=date(2020, 1, 1),
                )
            )
    return rows


def demo_mapping(client: DemoClient) -> MappingTable:
    """A client's mapping, indexed."""
    return MappingTable.from_rows(demo_mapping_rows(client))


def his_code(client: DemoClient, catalog_code: str, *, per_tablet: bool = False) -> str:
    """The client's own HIS code for a catalog item."""
    for number, code in enumerate(demo_catalog(), start=1):
        if code == catalog_code:
            return f"{client.his_prefix}{number:04d}{'T' if per_tablet else ''}"
    raise KeyError(catalog_code)
