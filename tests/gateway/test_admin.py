"""The agency's loading calls over HTTP: policies, catalog, mappings (with audit), members."""

from __future__ import annotations

import json
from datetime import date

import httpx

from onestop.domain.policy import policy_to_document
from onestop.tooling.demo.regions import demo_policy
from tests.support.gateway import Gateway
from tests.support.scenario import member_record
from tests.support.world import load_demo_over_http

MAPPING_HEADER = "his_code,his_name,catalog_code,factor,valid_from,valid_to\n"


async def test_policy_field_paths_and_versions(gateway: Gateway) -> None:
    document = policy_to_document(demo_policy("410100"))
    answer = await gateway.agency.request("PUT", "/v1/admin/policies", json_body=document)
    assert answer.status_code == 200
    first = answer.json()
    assert (first["region"], first["scheme"], first["year"]) == ("410100", "resident", 2026)
    assert (await gateway.agency.request("PUT", "/v1/admin/policies", json_body=document)).json()[
        "version"
    ] == first["version"]
    document["inpatient"]["ratio"]["level3"] = "1.5"
    document["inpatient"]["copay"] = 1
    answer = await gateway.agency.request("PUT", "/v1/admin/policies", json_body=document)
    assert answer.status_code == 422
    fields = {error["field"] for error in answer.json()["errors"]}
    assert {"inpatient.ratio.level3", "inpatient.copay"} <= fields
    document = policy_to_document(demo_policy("410100"))
    document["inpatient"]["ratio"]["level3"] = 0.5  # a binary float is not a ratio
    answer = await gateway.agency.request("PUT", "/v1/admin/policies", json_body=document)
    assert answer.status_code == 422


async def test_catalog_rows_at_fault(gateway: Gateway) -> None:
    csv = (
        "\ufeffcode,name,kind,category,self_pay_ratio,price_cap,unit,max_level,max_daily_qty\n"
        "A1,ok,drug,A,,,box,,\nB1,no ratio,drug,B,,,box,,\n=CMD(),formula,drug,A,,,box,,\n"
    )
    answer = await gateway.agency.request(
        "PUT", "/v1/admin/catalog", content=csv.encode(), content_type="text/csv"
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert [error["row"] for error in problem["errors"]] == [3, 4]
    answer = await gateway.agency.request(
        "PUT", "/v1/admin/catalog", content=b"a,b\n1,2\n", content_type="text/csv"
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "MALFORMED")


async def test_mapping_windows_factors_risk_and_audit(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M700001")])
    agency = gateway.agency
    # windows and factors: the tablet code maps at 0.1 box; the bed code changes price item in July
    csv = (
        MAPPING_HEADER
        + "T1,头孢(片),XB02,0.1,2020-01-01,\n"
        + "BED,床位,FA02,1,2020-01-01,2026-06-30\n"
        + "BED,床位(新),FA05,1,2026-07-01,\n"
        + "STENT,支架,CB01,1,2020-01-01,\n"
    )
    answer = await agency.request(
        "PUT", "/v1/admin/clients/ZZH3/mappings", content=csv.encode(), content_type="text/csv"
    )
    assert answer.status_code == 200, answer.text
    loaded = answer.json()
    assert loaded["loaded"] == 4

    def bill(visit_id: str, day: date, lines: list[tuple[str, str, int]]) -> dict[str, object]:
        return {
            "visit_id": visit_id,
            "member_id": "M700001",
            "visit_type": "inpatient",
            "admission_date": day.isoformat(),
            "discharge_date": day.isoformat(),
            "lines": [
                {
                    "line_no": n,
                    "his_code": code,
                    "quantity": qty,
                    "unit_price": price,
                    "amount": int(float(qty) * price),
                    "date": day.isoformat(),
                }
                for n, (code, qty, price) in enumerate(lines, start=1)
            ],
        }

    hospital = clients["ZZH3"]
    june = await hospital.request(
        "POST",
        "/v1/settlements/preview",
        json_body=bill("W1", date(2026, 6, 30), [("T1", "5", 520), ("BED", "1", 4000)]),
    )
    assert june.status_code == 200, june.text
    lines = june.json()["lines"]
    assert (lines[0]["catalog_code"], lines[0]["over_limit_self_pay"]) == ("XB02", 100)
    assert lines[1]["catalog_code"] == "FA02"
    july = await hospital.request(
        "POST",
        "/v1/settlements/preview",
        json_body=bill("W2", date(2026, 7, 1), [("BED", "1", 4000)]),
    )
    assert july.json()["lines"][0]["catalog_code"] == "FA05"

    # the covered stent remapped to a self-paid item: refused unless confirmed
    risky = csv.replace("STENT,支架,CB01", "STENT,支架,CC03")
    answer = await agency.request(
        "PUT", "/v1/admin/clients/ZZH3/mappings", content=risky.encode(), content_type="text/csv"
    )
    assert answer.status_code == 409
    problem = answer.json()
    assert problem["code"] == "RISKY_MAPPING_CHANGE"
    assert [error["his_code"] for error in problem["errors"]] == ["STENT"]
    answer = await agency.request(
        "PUT",
        "/v1/admin/clients/ZZH3/mappings",
        content=risky.encode(),
        content_type="text/csv",
        params={"confirm": "true"},
    )
    assert answer.status_code == 200
    assert [(change["his_code"], change["risky"]) for change in answer.json()["changes"]] == [
        ("STENT", True)
    ]
    audit = await agency.request("GET", "/v1/admin/clients/ZZH3/mappings/audit")
    assert audit.status_code == 200
    last = audit.json()[-1]
    assert (last["his_code"], last["changed_by"], last["change"]) == ("STENT", "agency", "changed")
    assert last["old"] == ["STENT,支架,CB01,1,2020-01-01,"]
    assert last["new"] == ["STENT,支架,CC03,1,2020-01-01,"]
    assert last["at"].endswith("+08:00")

    unknown = MAPPING_HEADER + "X,x,NOT-A-CODE,1,2020-01-01,\n"
    answer = await agency.request(
        "PUT", "/v1/admin/clients/ZZH3/mappings", content=unknown.encode(), content_type="text/csv"
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["row"] == 2
    current = await agency.request("GET", "/v1/admin/clients/ZZH3/mappings")
    assert "STENT,支架,CC03" in current.text


async def test_members_upload_reports_each_bad_line(gateway: Gateway) -> None:
    await load_demo_over_http(gateway, [])
    first = member_record("M700010")
    lines = [
        json.dumps(first, ensure_ascii=False),
        json.dumps(member_record("M700011", id_number=first["id_number"])),
        "{broken",
        json.dumps(member_record("M700012", birth_date="1980-13-01")),
        json.dumps(member_record("M700013")),
    ]
    answer = await gateway.agency.request(
        "POST",
        "/v1/admin/members",
        content="\n".join(lines).encode(),
        content_type="application/x-ndjson",
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["loaded"] == 2
    assert [(entry["line"], entry["code"]) for entry in body["rejected"]] == [
        (2, "DUPLICATE_ENROLLMENT"),
        (3, "MALFORMED"),
        (4, "INVALID"),
    ]


async def test_openapi_documents_every_call_with_examples(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        schema = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) >= 14
    for path, method, operation in operations:
        assert operation.get("summary") or operation.get("description"), (path, method)
        if path not in ("/health", "/v1/keys"):
            assert operation["security"], (path, method)
    components = schema["components"]["schemas"]

    def has_example(content: dict[str, object]) -> bool:
        for media in content.values():
            assert isinstance(media, dict)
            if "example" in media or "examples" in media:
                return True
            media_schema = media.get("schema", {})
            assert isinstance(media_schema, dict)
            reference = media_schema.get("$ref") or media_schema.get("items", {}).get("$ref")
            if reference and "example" in components[reference.rsplit("/", 1)[-1]]:
                return True
        return False

    for path, method, operation in operations:
        answers = [
            answer
            for status, answer in operation["responses"].items()
            if status.startswith("2") and "content" in answer
        ]
        assert any(has_example(answer["content"]) for answer in answers), (path, method)
        if method in ("post", "put") and "requestBody" in operation:
            body = operation["requestBody"]["content"]
            assert has_example(body) or any(
                "$ref" in media.get("schema", {}) for media in body.values()
            ), (path, method)
    examples = json.dumps(schema)
    assert "ZY20260301001" in examples  # the settle request example
    assert "UNMAPPED_CODES" in examples  # the problem example
    assert "signature" in examples
