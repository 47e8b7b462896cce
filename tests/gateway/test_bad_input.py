"""Malformed bills and uploads, by hand: each gets a clear refusal and changes nothing.

The fuzzing in ``test_fuzz.py`` covers the breadth; these are the cases HIS vendors and
spreadsheets are known to produce, each with the exact answer a terminal should get.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest

from onestop.client import SignedClient
from onestop.domain.mapping import mapping_csv
from onestop.tooling.demo.regions import DEMO_CLIENTS, demo_mapping
from tests.support.gateway import Gateway
from tests.support.redis import dump_state
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


def _refusal(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = answer.json()
    assert problem["code"] == code, problem
    assert problem["status"] == status
    return problem


@pytest.fixture
async def hospital(gateway: Gateway) -> SignedClient:
    clients = await load_demo_over_http(gateway, [member_record("M900001")])
    return clients["ZZH3"]


async def test_deeply_nested_json_is_malformed(
    gateway: Gateway, hospital: SignedClient, redis_url: str
) -> None:
    before = dump_state(redis_url)
    for depth in (100, 10_000, 200_000):
        nested = b"[" * depth + b"]" * depth
        body = b'{"visit_id": "N1", "lines": ' + nested + b"}"
        answer = await hospital.request(
            "POST", "/v1/settlements", content=body, content_type="application/json"
        )
        assert answer.status_code in (400, 422), (depth, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    deep_object = b'{"a": ' * 50_000 + b"1" + b"}" * 50_000
    answer = await hospital.request(
        "POST", "/v1/settlements", content=deep_object, content_type="application/json"
    )
    _refusal(answer, 400, "MALFORMED")
    assert dump_state(redis_url) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "1e309"),
        ("quantity", "1e-400"),
        ("quantity", "0.0000000000000000000001"),
        # 29 digits: checking its places once overflowed a default decimal context (a 500)
        ("quantity", "1234567890123456789012345.12345"),
        ("quantity", "-1"),
        # beyond 10^17 no amount can match it: refused before any product is taken (a 71-digit
        # quantity once overflowed the exact decimal context: a 500)
        ("quantity", "1" + "0" * 70),
        ("quantity", "100000000000000000.0001"),
        ("quantity", "NaN"),
        ("quantity", "Infinity"),
        ("quantity", 1e308),
        ("unit_price", 10**30),
        ("amount", -(10**20)),
        ("amount", 1.5),
        # round 2 (domain sections 14 and 17): fen with at most 4 places, string or number
        ("unit_price", "4000.00001"),
        ("unit_price", 4000.00001),
    ],
)
async def test_huge_tiny_and_odd_numbers_are_invalid(
    hospital: SignedClient, field: str, value: Any
) -> None:
    body = stay_body("NUM1", "M900001", date(2026, 3, 1), 1, 10_000)
    body["lines"][0][field] = value
    answer = await hospital.request(
        "POST",
        "/v1/settlements",
        content=json.dumps(body).encode(),
        content_type="application/json",
    )
    problem = _refusal(answer, 422, "INVALID")
    # named by its path in the body, or as the bill's line 1 and its field
    named = {(error["line_no"], error["field"]) for error in problem["errors"]}
    assert (None, f"lines.0.{field}") in named or (1, field) in named, named


@pytest.mark.parametrize(
    "his_code",
    [
        "RMYY\x000012",  # NUL
        "RMYY-0012\u202e",  # right-to-left override
        "RMYY\u200b-0012",  # zero-width space
        "RMYY-0012 ",  # trailing space
        "ＲＭＹＹ－００１２",  # fullwidth look-alike
        "RMYY-\U0001f48a",  # emoji
        "",
        "x" * 65,
    ],
)
async def test_control_and_look_alike_characters_in_codes(
    hospital: SignedClient, his_code: str
) -> None:
    body = stay_body("UNI1", "M900001", date(2026, 3, 1), 1, 10_000)
    body["lines"][0]["his_code"] = his_code
    answer = await hospital.request("POST", "/v1/settlements", json_body=body)
    # refused either as an invalid code or as a code the hospital never mapped; never settled
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] in ("INVALID", "UNMAPPED_CODES")
    assert problem["errors"][0]["field"] in ("lines.0.his_code", "his_code")


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("visit_id", "ZY\u202e100", "U+202E"),  # displays as ZY001 in a right-to-left run
        ("visit_id", "ZY\u2028100", "U+2028"),  # a line separator: splits log lines
        ("member_id", "M9000\x8501", "U+0085"),  # a C1 control
    ],
)
async def test_ids_with_hidden_characters_are_refused_naming_the_character(
    hospital: SignedClient, redis_url: str, field: str, value: str, named: str
) -> None:
    before = dump_state(redis_url)
    body = stay_body("HID1", "M900001", date(2026, 3, 1), 1, 10_000)
    body[field] = value
    problem = _refusal(
        await hospital.request("POST", "/v1/settlements", json_body=body), 422, "INVALID"
    )
    assert any(error["field"] == field and named in error["message"] for error in problem["errors"])
    assert dump_state(redis_url) == before


async def test_a_body_in_utf16_is_malformed_not_a_server_error(hospital: SignedClient) -> None:
    body = stay_body("U16", "M900001", date(2026, 3, 1), 1, 10_000)
    for encoding in ("utf-16", "utf-32"):
        answer = await hospital.request(
            "POST",
            "/v1/settlements",
            content=json.dumps(body).encode(encoding),
            content_type="application/json",
        )
        assert "UTF-8" in _refusal(answer, 400, "MALFORMED")["detail"]


async def test_unicode_in_free_text_is_kept_exactly(hospital: SignedClient) -> None:
    body = stay_body("UNI-OK-欧阳", "M900001", date(2026, 3, 1), 1, 10_000)
    answer = await hospital.request("POST", "/v1/settlements", json_body=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["visit_id"] == "UNI-OK-欧阳"


async def test_mapping_uploads_as_spreadsheets_save_them(gateway: Gateway) -> None:
    await load_demo_over_http(gateway, [])
    agency = gateway.agency
    client = next(client for client in DEMO_CLIENTS if client.client_id == "ZZH3")
    good = mapping_csv(demo_mapping(client))

    async def put(content: bytes) -> httpx.Response:
        return await agency.request(
            "PUT", "/v1/admin/clients/ZZH3/mappings", content=content, content_type="text/csv"
        )

    # Excel's "CSV UTF-8": a byte-order mark and CRLF line ends, same table: accepted
    answer = await put(("\ufeff" + good.replace("\n", "\r\n")).encode("utf-8"))
    assert answer.status_code == 200, answer.text
    # saved in the legacy Chinese encoding, or as UTF-16: refused, saying why
    problem = _refusal(await put(good.encode("utf-16")), 400, "MALFORMED")
    assert "not UTF-8" in problem["detail"]
    gb = "his_code,his_name,catalog_code,factor,valid_from,valid_to\nX1,床位费,FA02,1,,\n"
    _refusal(await put(gb.encode("gb18030")), 400, "MALFORMED")
    # columns renamed, missing or added
    _refusal(await put(b"code,name\nX1,y\n"), 400, "MALFORMED")
    header = "his_code,his_name,catalog_code,factor,valid_from,valid_to"
    _refusal(await put(f"{header},extra\nX1,a,FA02,1,,,?\n".encode()), 400, "MALFORMED")
    # a quoted cell keeps its commas and doubled quotes
    answer = await put(f'{header}\n"X,1","a ""b"" c",FA02,1,2026-01-01,\n'.encode())
    assert answer.status_code == 200, answer.text
    saved = await agency.request("GET", "/v1/admin/clients/ZZH3/mappings")
    assert '"X,1","a ""b"" c",FA02' in saved.text
    # a line break inside a name and a formula for a code are refused, by row and field
    hostile = (
        f'{header}\nX2,"two\nlines",FA02,1,2026-01-01,\n=HYPERLINK("x"),y,FA02,1,2026-01-01,\n'
    )
    problem = _refusal(await put(hostile.encode()), 422, "INVALID")
    assert {(error["row"], error["field"]) for error in problem["errors"]} == {
        (2, "his_name"),
        (3, "his_code"),
    }
    # a name a spreadsheet would run: refused, so the mapping never serves it back as a formula
    formula = f'{header}\nX3,"=HYPERLINK(""http://x"",""y"")",FA02,1,2026-01-01,\n'
    problem = _refusal(await put(formula.encode()), 422, "INVALID")
    assert [(error["row"], error["field"]) for error in problem["errors"]] == [(2, "his_name")]
    assert "formula" in problem["errors"][0]["message"]
    saved = await agency.request("GET", "/v1/admin/clients/ZZH3/mappings")
    assert "HYPERLINK" not in saved.text


async def test_members_files_with_bom_crlf_and_broken_lines(gateway: Gateway) -> None:
    await load_demo_over_http(gateway, [])
    good = member_record("M900010")
    lines = [
        "\ufeff" + json.dumps(good, ensure_ascii=False),
        '{"member_id": "M900011", ',
        "[]",
        json.dumps(member_record("M900012")).replace(
            '"personal_account_balance": 10000', '"personal_account_balance": 1e400'
        ),
        json.dumps({**member_record("M900013"), "name": "a\x00b"}),
        "",
        json.dumps(member_record("M900014")),
    ]
    content = "\r\n".join(lines).encode("utf-8")
    answer = await gateway.agency.request(
        "POST", "/v1/admin/members", content=content, content_type="application/x-ndjson"
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["loaded"] == 2
    rejected = {entry["line"]: entry["code"] for entry in report["rejected"]}
    assert rejected == {2: "MALFORMED", 3: "MALFORMED", 4: "INVALID", 5: "INVALID"}, report
