"""Every operation of the gateway's OpenAPI, fuzzed by schemathesis, signed as a real client.

The gateway runs as ``onestop serve`` (real processes, real Redis) with the demo region loaded.
Each generated request is signed as the agency (admin and reference calls) or as a hospital
(settlement calls), so it reaches the code behind the signature check. Whatever the input: no
500, no hang (every answer within the timeout), and every refusal is problem+json with a code
from the contract. Examples per operation are bounded so the test stays within the suite's
time budget; ``ONESTOP_FUZZ_EXAMPLES`` raises them for a longer run.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from onestop.client import SignedClient, signature_headers
from onestop.errors import STATUS
from onestop.tooling.demo.members import crowd
from onestop.tooling.demo.walkthrough import load_region
from tests.support.scenario import stay_body
from tests.support.serve import Served, start_serve
from tests.support.strategies import csv_uploads, jsonl_uploads

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("ONESTOP_FUZZ_EXAMPLES", "40"))

# Uploads are not JSON: generate them as the field sends them, hostile cases included.
schemathesis.openapi.media_type("text/csv", csv_uploads())
schemathesis.openapi.media_type("application/x-ndjson", jsonl_uploads())
TIMEOUT_SECONDS = 30.0
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
KNOWN_CODES = {code.value for code in STATUS}


@dataclass
class Fuzzed:
    """The served gateway and who signs."""

    served: Served
    url: str
    keys: dict[str, Ed25519PrivateKey]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    served = start_serve(data_dir, stop_after_test=False)
    url = str(served.addresses["gateway"])

    async def load() -> dict[str, Ed25519PrivateKey]:
        async with SignedClient.from_key_file(url, "agency", data_dir / "agency.key") as agency:
            clients = await load_region(url, agency, lambda _: None)
            keys = {client_id: client.key for client_id, client in clients.items()}
            for client in clients.values():
                await client.close()
            keys["agency"] = agency.key
        return keys

    try:
        keys = asyncio.run(load())
    except BaseException:
        served.terminate()  # a module fixture: the per-test clean-up does not stop it
        raise
    yield Fuzzed(served, url, keys)
    assert served.terminate() == 0


def _signer_of(path: str) -> str:
    if path.startswith("/v1/admin") or path == "/v1/keys":
        return "agency"
    if path.startswith("/v1/reconciliation"):
        return "ZZP1"  # a pharmacy reconciles too
    return "ZZH3"


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the OpenAPI document itself is valid
        operations.append(result.ok())
    return operations


def _send(http: httpx.Client, fuzzed: Fuzzed, case: Any) -> httpx.Response:
    arguments = case.as_transport_kwargs(base_url=fuzzed.url)
    request = http.build_request(
        arguments["method"],
        arguments["url"],
        params=arguments.get("params"),
        headers={
            name: value
            for name, value in (arguments.get("headers") or {}).items()
            if not name.lower().startswith("x-")
        },
        content=_content(arguments),
    )
    target = request.url.raw_path.decode("ascii")
    client_id = _signer_of(request.url.path)
    request.headers.update(
        signature_headers(
            fuzzed.keys[client_id], client_id, request.method, target, request.content
        )
    )
    return http.send(request)


def _content(arguments: dict[str, Any]) -> bytes | None:
    if "json" in arguments:
        return httpx.Request("POST", "http://x", json=arguments["json"]).content
    for name in ("content", "data"):
        value = arguments.get(name)
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bytes):
            return value
    return None


def _fuzz(operation: Any, http: httpx.Client, fuzzed: Fuzzed, seen: Counter[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        answer = _send(http, fuzzed, case)  # a hang fails here, on the timeout
        seen[f"{operation.method.upper()} {operation.path} {answer.status_code}"] += 1
        assert answer.status_code < 500, answer.text
        # The answer is what the OpenAPI document says: a status it lists for this operation,
        # its media type (problem+json for refusals), and a body valid against its schema.
        case.validate_response(answer, checks=CONFORMANCE)
        if answer.status_code >= 400:
            assert answer.headers["content-type"].startswith("application/problem+json")
            problem = answer.json()
            assert problem["status"] == answer.status_code
            assert problem["code"] in KNOWN_CODES, problem

    check()


def test_fuzz_every_operation(fuzzed: Fuzzed) -> None:
    operations = _operations(fuzzed.url)
    assert len(operations) >= 15
    seen: Counter[str] = Counter()
    with httpx.Client(timeout=TIMEOUT_SECONDS) as http:
        for operation in operations:
            _fuzz(operation, http, fuzzed, seen)
    # the fuzzing reached behind the signature check: not everything was refused at the door
    assert any(not key.endswith(" 401") for key in seen), seen
    assert len({key.rsplit(" ", 1)[0] for key in seen}) == len(operations)


def test_the_region_still_settles_after_the_fuzzing(fuzzed: Fuzzed) -> None:
    member = next(iter(crowd(1)))["member_id"]
    body = stay_body("AFTER-FUZZ", member, date(2026, 11, 2), 2, 20_000)

    async def settle() -> httpx.Response:
        # the fuzzing replaced the catalog and mappings (the agency may): load them again
        async with SignedClient(fuzzed.url, "agency", fuzzed.keys["agency"]) as agency:
            clients = await load_region(fuzzed.url, agency, lambda _: None)
        async with clients["ZZH3"] as hospital:
            answer = await hospital.request("POST", "/v1/settlements", json_body=body)
        for client in clients.values():
            await client.close()
        return answer

    answer = asyncio.run(settle())
    assert answer.status_code == 201, answer.text
