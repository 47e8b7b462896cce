"""The patient's statement over HTTP: who may read it, HTML or PDF, its seal, no font."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from gateway.routers.settlements import StatementFormat, choose_statement_format
from onestop.cli import main
from onestop.client import SignedClient
from onestop.statement.seal import check_seal
from tests.support.adjudicator import Adjudicator
from tests.support.gateway import Gateway, open_gateway
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

MEMBER = member_record("M730001", name="李小英")
CLEAR_ID = MEMBER["id_number"]


async def _settled(gateway: Gateway, visit_id: str) -> tuple[dict[str, SignedClient], str]:
    """The demo's clients after settling one stay at ZZH3; the settlement's id."""
    clients = await load_demo_over_http(gateway, [MEMBER])
    answer = await clients["ZZH3"].request(
        "POST",
        "/v1/settlements",
        json_body=stay_body(visit_id, "M730001", date(2026, 3, 1), 3, 250_000),
    )
    assert answer.status_code == 201, answer.text
    return clients, answer.json()["settlement_id"]


def _seal_of(page: str) -> str:
    found = re.search(r"<code>(onestop-statement:1\|[^<]+)</code>", page)
    assert found, "no seal on the page"
    return found.group(1)


async def test_the_statement_as_html_and_pdf_to_whoever_may_read_the_settlement(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clients, settlement_id = await _settled(gateway, "ST1")
    hospital = clients["ZZH3"]
    path = f"/v1/settlements/{settlement_id}/statement"

    answer = await hospital.request("GET", path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    page = answer.text
    for shown in (
        "省人民医院",
        "李* 4101*********",
        "01 床位费 Bed",
        "06 手术费 Surgery",
        "小计 Subtotal",
        "统筹基金 Basic fund",
        "个人现金 Cash to pay",
        "已结算 settled",
        settlement_id,
    ):
        assert shown in page, shown
    assert CLEAR_ID not in page
    assert "李小英" not in page
    receipt = (await hospital.request("GET", f"/v1/settlements/{settlement_id}")).json()
    assert receipt["signature"]["value"] in page

    # The seal verifies with the published receipt keys, and says what it vouches for.
    keys = (await hospital.request("GET", "/v1/keys")).json()["keys"]
    seal = _seal_of(page)
    check = check_seal(seal, keys)
    assert check.valid, check.reason
    assert check.seal is not None
    assert (check.seal.total, check.seal.cash) == (
        receipt["amounts"]["total"],
        receipt["amounts"]["cash"],
    )
    saved_keys = tmp_path / "keys.json"
    saved_keys.write_text(json.dumps({"keys": keys}))
    assert main(["verify-receipt", "--seal", seal, "--keys", str(saved_keys)]) == 0
    assert f"vouches for settlement {settlement_id}, settled" in capsys.readouterr().out
    scanned = tmp_path / "qr.txt"
    scanned.write_text(seal.replace("|settled|", "|reversed|") + "\n")
    assert main(["verify-receipt", str(scanned), "--keys", str(saved_keys)]) == 1
    assert "NOT VALID" in capsys.readouterr().err
    # Not a seal at all (a QR code of something else): said so before any key is read.
    assert main(["verify-receipt", "--seal", "https://example.com/", "--keys", "nowhere"]) == 2
    assert "not a statement seal" in capsys.readouterr().err

    for params, headers in (({"format": "pdf"}, {}), ({}, {"Accept": "application/pdf"})):
        answer = await hospital.request("GET", path, params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.headers["content-disposition"] == (
            f'inline; filename="statement-{settlement_id}.pdf"'
        )
        assert answer.content.startswith(b"%PDF-")

    # The agency reads any statement; another client's answers as GET does: 404.
    assert (await gateway.agency.request("GET", path)).status_code == 200
    other = await clients["ZZP1"].request("GET", path)
    assert (other.status_code, other.json()["code"]) == (404, "NOT_FOUND")
    missing = await hospital.request("GET", "/v1/settlements/S" + "0" * 31 + "/statement")
    assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
    wrong = await hospital.request("GET", path, params={"format": "docx"})
    assert (wrong.status_code, wrong.json()["code"]) == (422, "INVALID")

    # Reversed, the statement says so; its new seal vouches for that.
    assert (await hospital.request("POST", f"/v1/settlements/{settlement_id}/reversal")).is_success
    page = (await hospital.request("GET", path)).text
    assert "已撤销 reversed" in page
    assert "|reversed|" in _seal_of(page)


async def test_without_a_cjk_font_the_pdf_is_refused_and_the_html_served(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-font.ttf"
    async with open_gateway(
        adjudicator, redis_url, tmp_path / "keys", statement_font=missing
    ) as gateway:
        clients, settlement_id = await _settled(gateway, "ST2")
        path = f"/v1/settlements/{settlement_id}/statement"
        answer = await clients["ZZH3"].request("GET", path, params={"format": "pdf"})
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["code"] == "NO_STATEMENT_FONT"
        assert str(missing) in problem["detail"]
        assert "fonts-wqy-microhei" in problem["detail"]
        assert "Retry-After" not in answer.headers  # retrying will not install a font
        html = await clients["ZZH3"].request("GET", path)
        assert html.status_code == 200
        assert settlement_id in html.text


@pytest.mark.parametrize(
    ("chosen", "accept", "answered"),
    [
        (None, "", StatementFormat.HTML),
        (None, "*/*", StatementFormat.HTML),
        (None, "application/pdf", StatementFormat.PDF),
        (None, "application/pdf, text/html;q=0.9", StatementFormat.PDF),
        (None, "text/html, application/pdf", StatementFormat.HTML),
        (None, "text/html;q=0.5, application/pdf;q=0.8", StatementFormat.PDF),
        (None, "application/pdf;q=oops", StatementFormat.HTML),
        (StatementFormat.HTML, "application/pdf", StatementFormat.HTML),
    ],
)
def test_format_wins_else_accept_chooses(
    chosen: StatementFormat | None, accept: str, answered: StatementFormat
) -> None:
    assert choose_statement_format(chosen, accept) is answered
