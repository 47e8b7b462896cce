"""Every shared acceptance case through the real HTTP API, real adjudicator, real Redis.

Each answer's money must add up, and each receipt's signature must verify with a key from
``GET /v1/keys``.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from gateway.schemas import EligibilityResult, Problem, SettlementResult
from onestop.domain.catalog import catalog_csv, parse_catalog_items
from onestop.domain.mapping import MappingRow, MappingTable, mapping_csv
from onestop.receipts import signed_part
from onestop.signing import canonical_json, load_public_key, verify
from tests.support.cases import Case, assert_subset, case_params, load_cases, step_request
from tests.support.gateway import Gateway
from tests.support.redis import ON_BOTH, dump_everything, state_of

CASES = load_cases()


def _decimal(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


async def load_case(gateway: Gateway, case: Case) -> None:
    """Load a case's data through the agency's HTTP API."""
    data = case.data
    agency = gateway.agency
    for client in data["clients"]:
        await gateway.register(
            client["client_id"],
            client["kind"],
            client["name"],
            client.get("level"),
            client.get("region"),
        )
    for policy in data["policies"]:
        answer = await agency.request(
            "PUT",
            "/v1/admin/policies",
            content=json.dumps(policy, default=_decimal).encode(),
            content_type="application/json",
        )
        assert answer.status_code == 200, answer.text
    items = parse_catalog_items(enumerate(data["catalog"], start=2))
    answer = await agency.request(
        "PUT", "/v1/admin/catalog", content=catalog_csv(items).encode(), content_type="text/csv"
    )
    assert answer.status_code == 200, answer.text
    for client_id, rows in data["mappings"].items():
        table = MappingTable.from_rows(MappingRow.model_validate(row) for row in rows)
        answer = await agency.request(
            "PUT",
            f"/v1/admin/clients/{client_id}/mappings",
            content=mapping_csv(table).encode(),
            content_type="text/csv",
        )
        assert answer.status_code == 200, answer.text
    members = "\n".join(
        json.dumps(member, ensure_ascii=False, default=_decimal) for member in data["members"]
    )
    answer = await agency.request(
        "POST", "/v1/admin/members", content=members.encode(), content_type="application/x-ndjson"
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"] == []


def check_receipt(result: dict[str, Any], keys: dict[str, str]) -> None:
    """The money adds up and the signature verifies."""
    money = result["amounts"]
    assert money["total"] == (
        money["full_self_pay"]
        + money["over_limit_self_pay"]
        + money["pre_self_pay"]
        + money["in_scope"]
    )
    assert money["total"] == (
        money["basic_fund"]
        + money["supplementary"]
        + money["assistance"]
        + money["personal_account"]
        + money["cash"]
        + money["hospital_part"]  # round 2 (domain.md section 12)
    )
    assert all(value >= 0 for value in money.values())
    assert sum(line["amount"] for line in result["lines"]) == money["total"]
    signature = result["signature"]
    assert signature["algorithm"] == "ed25519"
    key = load_public_key(keys[signature["key_id"]])
    # exactly the contract's serialization, made here with the standard library
    unsigned = {
        name: value for name, value in result.items() if name not in ("signature", "replayed")
    }
    message = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert message.encode() == canonical_json(signed_part(result))
    assert verify(key, message.encode(), signature["value"])
    tampered = {**signed_part(result), "amounts": {**money, "cash": money["cash"] + 1}}
    assert not verify(key, canonical_json(tampered), signature["value"])
    base64.b64decode(signature["value"], validate=True)


@ON_BOTH
@pytest.mark.parametrize("case", case_params(CASES))
async def test_case_over_http(case: Case, gateway: Gateway, redis_url: str) -> None:
    await load_case(gateway, case)
    keys_answer = await gateway.agency.request("GET", "/v1/keys")
    keys = {entry["key_id"]: entry["public_key"] for entry in keys_answer.json()["keys"]}
    settlement_of_step: dict[int, str] = {}
    for index, step in enumerate(case.steps):
        where = f"{case.name} step {index} ({step['action']})"
        client = gateway.client(step["client_id"])
        before = dump_everything(redis_url)
        if step["action"] == "settle":
            answer = await client.request(
                "POST", "/v1/settlements", json_body=step_request(step, settlement_of_step)
            )
        elif step["action"] == "preview":
            answer = await client.request(
                "POST", "/v1/settlements/preview", json_body=step_request(step, settlement_of_step)
            )
        elif step["action"] == "reverse":
            settlement_id = settlement_of_step[step["reverse_step"]]
            answer = await client.request("POST", f"/v1/settlements/{settlement_id}/reversal")
        elif step["action"] == "eligibility":
            request = step["request"]
            answer = await client.request(
                "GET",
                f"/v1/members/{request['member_id']}/eligibility",
                params={"date": request["date"]},
            )
        else:
            pytest.fail(f"{where}: no action {step['action']}")
        body = answer.json()
        # Every answer is exactly a response model of the API (unknown fields refused).
        if answer.status_code >= 400:
            Problem.model_validate(body)
        elif step["action"] == "eligibility":
            EligibilityResult.model_validate(body)
        else:
            SettlementResult.model_validate(body)
        if answer.status_code >= 400:
            assert answer.headers["content-type"].startswith("application/problem+json"), where
            assert body["status"] == answer.status_code, where
            # refusals change nothing (what records the attempt aside: a spent nonce, the
            # count of unknown member ids, the lookup audit trail)
            assert state_of(dump_everything(redis_url)) == state_of(before), (
                f"{where}: a refusal changed Redis"
            )
        elif step["action"] != "eligibility":
            check_receipt(body, keys)
            if step["action"] == "settle" and answer.status_code == 201:
                settlement_of_step[index] = body["settlement_id"]
            if step["action"] == "preview":
                assert body["status"] == "preview"
        try:
            assert_subset(step["expect"], {**body, "status": answer.status_code})
        except AssertionError as failure:
            raise AssertionError(f"{where}: {failure}\n{answer.text[:2000]}") from None
