"""``onestop gen``: a whole synthetic region on disk, and loading it into a running gateway.

The directory holds what the agency would load (policies, catalog, clients, mappings,
members) and each client's private key, so load tests can sign as hospitals and pharmacies.
Generated data and keys are never committed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.admin import Connection, load_catalog, load_mapping, load_members, register_client
from onestop.domain.catalog import catalog_csv
from onestop.domain.mapping import mapping_csv
from onestop.domain.policy import policy_to_document
from onestop.domain.types import HospitalLevel
from onestop.signing import private_pem, public_pem, write_secret_file
from onestop.tooling.demo.members import crowd
from onestop.tooling.demo.regions import DEMO_REGIONS, demo_policies
from onestop.tooling.synthetic import hospital_levels, make_catalog, make_mapping


@dataclass(frozen=True, slots=True)
class DatasetSize:
    """How big a generated region is."""

    members: int = 1_000_000
    items: int = 50_000
    hospitals: int = 50
    pharmacies: int = 200
    mapping_rows: int = 20_000
    seed: int = 2026


def write_dataset(out: Path, size: DatasetSize) -> dict[str, Any]:
    """Write the region into ``out``; a summary of what was written."""
    (out / "policies").mkdir(parents=True, exist_ok=True)
    (out / "mappings").mkdir(exist_ok=True)
    (out / "keys").mkdir(exist_ok=True)
    for policy in demo_policies():
        path = out / "policies" / f"{policy.region}-{policy.scheme.value}-{policy.year}.json"
        path.write_text(json.dumps(policy_to_document(policy), ensure_ascii=False, indent=2))
    catalog = make_catalog(size.items, size.seed)
    (out / "catalog.csv").write_text(catalog_csv(catalog.values()), encoding="utf-8")

    rng = random.Random(size.seed)
    clients = []
    levels = hospital_levels(size.hospitals, size.seed)
    for number in range(size.hospitals):
        clients.append(
            {
                "client_id": f"H{number + 1:04d}",
                "kind": "hospital",
                "name": f"医院 {number + 1}",
                "level": next(levels).value,
                "region": DEMO_REGIONS[number % len(DEMO_REGIONS)],
            }
        )
    for number in range(size.pharmacies):
        clients.append(
            {
                "client_id": f"P{number + 1:04d}",
                "kind": "pharmacy",
                "name": f"药店 {number + 1}",
                "level": HospitalLevel.COMMUNITY.value,
                "region": rng.choice(DEMO_REGIONS),
            }
        )
    for client in clients:
        key = Ed25519PrivateKey.generate()
        write_secret_file(
            out / "keys" / f"{client['client_id']}.key", private_pem(key), replace=True
        )
        (out / "keys" / f"{client['client_id']}.pub").write_text(public_pem(key.public_key()))
        mapping = make_mapping(
            client["client_id"],
            catalog,
            size.mapping_rows,
            drugs_only=client["kind"] == "pharmacy",
            seed=size.seed,
        )
        (out / "mappings" / f"{client['client_id']}.csv").write_text(
            mapping_csv(mapping), encoding="utf-8"
        )
    (out / "clients.json").write_text(json.dumps(clients, ensure_ascii=False, indent=2))

    with (out / "members.jsonl").open("w", encoding="utf-8") as handle:
        for record in crowd(size.members, seed=size.seed):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = {
        "members": size.members,
        "catalog_items": size.items,
        "hospitals": size.hospitals,
        "pharmacies": size.pharmacies,
        "mapping_rows": size.mapping_rows,
        "seed": size.seed,
    }
    (out / "dataset.json").write_text(json.dumps(summary, indent=2))
    return summary


async def load_dataset(connection: Connection, directory: Path) -> dict[str, Any]:
    """Load a generated region into a running gateway, as the agency."""
    from onestop.admin import load_policies

    policies = await load_policies(connection, sorted((directory / "policies").glob("*.json")))
    catalog = await load_catalog(connection, directory / "catalog.csv")
    clients = json.loads((directory / "clients.json").read_text())
    for client in clients:
        await register_client(
            connection,
            client["client_id"],
            kind=client["kind"],
            name=client["name"],
            level=client["level"],
            region=client["region"],
            public_key=directory / "keys" / f"{client['client_id']}.pub",
        )
        await load_mapping(
            connection,
            client["client_id"],
            directory / "mappings" / f"{client['client_id']}.csv",
            confirm=True,
        )
    members = await load_members(connection, directory / "members.jsonl")
    return {
        "policies": len(policies),
        "catalog_items": catalog["loaded"],
        "clients": len(clients),
        "members_loaded": members["loaded"],
        "members_rejected": len(members["rejected"]),
    }
