"""The demo region loaded through the real HTTP API."""

from __future__ import annotations

import json
from typing import Any

from onestop.client import SignedClient
from onestop.domain.mapping import mapping_csv
from onestop.domain.policy import policy_to_document
from onestop.tooling.demo.regions import DEMO_CLIENTS, demo_catalog_csv, demo_mapping, demo_policies
from tests.support.gateway import Gateway


async def load_demo_over_http(
    gateway: Gateway, members: list[dict[str, Any]]
) -> dict[str, SignedClient]:
    """Register the demo clients and load the demo data and ``members``; the clients."""
    agency = gateway.agency
    clients = {}
    for client in DEMO_CLIENTS:
        clients[client.client_id] = await gateway.register(
            client.client_id, client.kind.value, client.name, client.level.value, client.region
        )
    for policy in demo_policies():
        answer = await agency.request(
            "PUT", "/v1/admin/policies", json_body=policy_to_document(policy)
        )
        assert answer.status_code == 200, answer.text
    answer = await agency.request(
        "PUT", "/v1/admin/catalog", content=demo_catalog_csv().encode(), content_type="text/csv"
    )
    assert answer.status_code == 200, answer.text
    for client in DEMO_CLIENTS:
        answer = await agency.request(
            "PUT",
            f"/v1/admin/clients/{client.client_id}/mappings",
            content=mapping_csv(demo_mapping(client)).encode(),
            content_type="text/csv",
        )
        assert answer.status_code == 200, answer.text
    if members:
        lines = "\n".join(json.dumps(member, ensure_ascii=False) for member in members)
        answer = await agency.request(
            "POST", "/v1/admin/members", content=lines.encode(), content_type="application/x-ndjson"
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["rejected"] == [], answer.text
    return clients
