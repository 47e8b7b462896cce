"""Every request example the OpenAPI document shows is accepted when sent as it is shown.

A vendor copies the examples from ``/docs``: an example the gateway refuses (a policy whose
``annual_cap: null`` the document had dropped) costs them a day.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.client import SignedClient
from onestop.signing import public_pem
from tests.support.gateway import Gateway


def _example(schema: dict[str, Any], content: dict[str, Any]) -> tuple[str, Any]:
    """The media type and example of a request body (its own, or its schema's)."""
    ((media, body),) = content.items()
    if "example" in body:
        return media, body["example"]
    name = body["schema"]["$ref"].rsplit("/", 1)[-1]
    return media, schema["components"]["schemas"][name]["example"]


async def test_every_request_example_is_accepted_as_shown(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        schema = (await http.get("/openapi.json")).json()
    examples: dict[tuple[str, str], tuple[str, Any]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                content = operation["requestBody"]["content"]
                examples[(method.upper(), path)] = _example(schema, content)

    def body(method: str, path: str) -> tuple[bytes, str]:
        media, example = examples.pop((method, path))
        data = example.encode() if isinstance(example, str) else json.dumps(example).encode()
        return data, media

    agency = gateway.agency
    # In the order an agency and a hospital would send them; the placeholder key of the
    # registration example is the one thing a sender must replace.
    for method, path in [
        ("PUT", "/v1/admin/policies"),
        ("PUT", "/v1/admin/catalog"),
        ("POST", "/v1/admin/members"),
    ]:
        data, media = body(method, path)
        answer = await agency.request(method, path, content=data, content_type=media)
        assert answer.status_code == 200, (path, answer.text)
        if path == "/v1/admin/members":
            assert answer.json()["rejected"] == []
    hospital_key = Ed25519PrivateKey.generate()
    data, media = body("PUT", "/v1/admin/clients/{client_id}")
    registration = json.loads(data)
    registration["public_key"] = public_pem(hospital_key.public_key())
    answer = await agency.request("PUT", "/v1/admin/clients/H0001", json_body=registration)
    assert answer.status_code == 200, answer.text
    data, media = body("PUT", "/v1/admin/clients/{client_id}/mappings")
    answer = await agency.request(
        "PUT", "/v1/admin/clients/H0001/mappings", content=data, content_type=media
    )
    assert answer.status_code == 200, answer.text

    hospital = SignedClient(gateway.base_url, "H0001", hospital_key)
    try:
        for method, path, status in [
            ("POST", "/v1/settlements/preview", 200),
            ("POST", "/v1/settlements", 201),
            ("POST", "/v1/members/lookup", 200),
            ("POST", "/v1/reconciliation", 200),
        ]:
            data, media = body(method, path)
            answer = await hospital.request(method, path, content=data, content_type=media)
            assert answer.status_code == status, (path, answer.text)
            if path == "/v1/settlements":
                settled = answer.json()
        # The example policy flags the example bill (two boxes where one is the limit).
        data, media = body("POST", "/v1/admin/reviews/{settlement_id}/decision")
        decided = await agency.request(
            "POST",
            f"/v1/admin/reviews/{settled['settlement_id']}/decision",
            content=data,
            content_type=media,
        )
        assert decided.status_code == 200, decided.text
        for path in ("/fsi/api/{infno}", "/fsi/api"):
            data, media = body("POST", path)
            target = path.replace("{infno}", json.loads(data)["infno"])
            answer = await hospital.request("POST", target, content=data, content_type=media)
            assert answer.status_code == 200, answer.text
            assert answer.json()["infcode"] == 0, answer.json()["err_msg"]
    finally:
        await hospital.close()
    assert examples == {}, f"examples this test does not send yet: {sorted(examples)}"
