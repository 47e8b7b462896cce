"""The agency console in a real browser: Debian's headless Chromium, on no network but ours.

Each page is opened the way a person opens it: a one-time link from the agency's signed call,
which sets the session's cookie and lands on the page. What the browser rendered is read back
(the figures equal the API's), everything it fetched came from the gateway, and a screenshot
of every page is kept for a person to look at (``.artifacts/console/``, not committed).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from onestop.clock import today
from onestop.domain.policy import policy_to_document
from onestop.tooling.demo.regions import demo_policy
from tests.support.browser import CHROMIUM_NAMES, artifacts, browse, chromium, requested_by_pages
from tests.support.console import login_link
from tests.support.gateway import Gateway
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

FUNDS = ("total", "basic_fund", "supplementary", "assistance", "personal_account", "cash")
PNG = b"\x89PNG\r\n\x1a\n"


async def test_every_console_page_renders_in_a_headless_browser(
    gateway: Gateway, tmp_path: Path
) -> None:
    binary = chromium()
    if binary is None:
        pytest.skip(f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)})")
    members = [member_record(f"CB{number:05d}") for number in range(1, 4)]
    clients = await load_demo_over_http(gateway, members)
    hospital, community = clients["ZZH3"], clients["ZZC1"]
    controls = {"paper_bed": {"action": "flag", "bed_items": ["FA02"], "min_days": 3}}
    policy = {**policy_to_document(demo_policy("410100")), "controls": controls}
    answer = await gateway.agency.request("PUT", "/v1/admin/policies", json_body=policy)
    assert answer.status_code == 200, answer.text
    day = today()
    settled = []
    for number, (client, days) in enumerate([(hospital, 7), (hospital, 2), (community, 1)], 1):
        body = stay_body(
            f"CB-{number}", f"CB{number:05d}", day - timedelta(days=days - 1), days, 80_000
        )
        if client is community:
            body["lines"] = [
                {**line, "his_code": line["his_code"].replace("RMYY-", "JS")}
                for line in body["lines"]
            ]
        answer = await client.request("POST", "/v1/settlements", json_body=body)
        assert answer.status_code == 201, answer.text
        settled.append(answer.json())
    ours = [result for result in settled if result["client_id"] == "ZZH3"]
    claimed = {fund: sum(result["amounts"][fund] for result in ours) for fund in FUNDS}
    claimed["cash"] -= 100  # the hospital's books are one yuan short
    reconciled = await hospital.request(
        "POST",
        "/v1/reconciliation",
        json_body={"date": day.isoformat(), "settlements": 2, "reversals": 0, "amounts": claimed},
    )
    assert reconciled.json()["result"] == "unbalanced", reconciled.text
    unmapped = await hospital.request(
        "POST",
        "/v1/settlements",
        json_body={
            **stay_body("CB-X", "CB00003", day, 1, 100),
            "lines": [
                {
                    "line_no": 1,
                    "his_code": "RMYY-NONE",
                    "quantity": "1",
                    "unit_price": 100,
                    "amount": 100,
                    "date": day.isoformat(),
                }
            ],
        },
    )
    assert unmapped.json()["code"] == "UNMAPPED_CODES", unmapped.text
    await gateway.refusals_settled()
    figures = (
        await gateway.agency.request(
            "GET", "/v1/admin/day-totals", params={"date": day.isoformat()}
        )
    ).json()

    pages = {
        "overview": "/console",
        "reconciliation": "/console/reconciliation",
        "reviews": "/console/reviews",
        "mappings": "/console/mappings?client_id=ZZH3",
        "settlements": f"/console/settlements?id={settled[0]['settlement_id']}",
    }
    kept = artifacts("console")
    for name, page in pages.items():
        dom = await browse(binary, await login_link(gateway, page), tmp_path / name, "--dump-dom")
        # The session's cookie was set on the way in: the page, not the login page.
        assert "退出 Log out" in dom, (name, dom[:2000])
        requested = requested_by_pages(tmp_path / name / "netlog.json")
        assert f"{gateway.base_url}/console/static/console.css" in requested, (name, requested)
        elsewhere = [url for url in requested if not url.startswith(f"{gateway.base_url}/")]
        assert not elsewhere, (name, elsewhere)
        if name == "overview":
            for fund in FUNDS:
                shown = re.search(rf'id="fund-{fund}" data-fen="(-?\d+)"', dom)
                assert shown, fund
                assert int(shown.group(1)) == figures["total"]["amounts"][fund], fund
            assert re.search(r'<tr data-code="UNMAPPED_CODES">', dom)
        elif name == "reconciliation":
            row = re.search(r'<tr data-client="ZZH3">(.*?)</tr>', dom, re.S)
            assert row
            assert f'class="status unbalanced" data-day="{day.isoformat()}"' in row.group(1)
        elif name == "reviews":
            assert f'data-settlement="{settled[0]["settlement_id"]}"' in dom
            assert "PAPER_BED" in dom
        elif name == "settlements":
            assert f'data-fen="{settled[0]["amounts"]["total"]}"' in dom

        screenshot = kept / f"{name}.png"
        screenshot.unlink(missing_ok=True)
        await browse(
            binary,
            await login_link(gateway, page),
            tmp_path / f"{name}-screenshot",
            f"--screenshot={screenshot}",
            "--window-size=1280,1400",
        )
        assert screenshot.read_bytes()[:8] == PNG, name
        assert screenshot.stat().st_size > 20_000, name
