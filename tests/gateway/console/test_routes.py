"""The agency console over HTTP: who gets in, what the pages show, what a form may change.

Real gateway, adjudicator and Redis. The figures on the pages are compared with the API's
answers (``GET /v1/admin/day-totals``, ``/refusals``, ``/reviews``, the mapping audit) and
with the settlements the test made itself.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.settings import GatewaySettings
from onestop.clock import today
from onestop.domain.policy import policy_to_document
from onestop.signing import public_pem
from onestop.tooling.demo.regions import demo_policy
from tests.support.adjudicator import Adjudicator
from tests.support.console import (
    COOKIE,
    attribute_values,
    console_client,
    csrf_of,
    landing_of,
    login_link,
)
from tests.support.gateway import Gateway, open_gateway
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http

PAYERS = ("basic_fund", "supplementary", "assistance", "personal_account", "cash")
FUNDS = ("total", *PAYERS)


def _outpatient(visit_id: str, member_id: str, his_code: str, amount: int) -> dict[str, Any]:
    return {
        "visit_id": visit_id,
        "member_id": member_id,
        "visit_type": "outpatient",
        "service_date": today().isoformat(),
        "diagnoses": ["J06.9"],
        "lines": [
            {
                "line_no": 1,
                "his_code": his_code,
                "quantity": "1",
                "unit_price": amount,
                "amount": amount,
                "date": today().isoformat(),
            }
        ],
    }


async def test_only_the_agencys_signed_call_opens_a_session_and_only_once(
    gateway: Gateway,
) -> None:
    clients = await load_demo_over_http(gateway, [])
    refused = await clients["ZZH3"].request("POST", "/v1/admin/console/sessions")
    assert refused.status_code == 403, refused.text

    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        # No session: every page sends the browser to the login page, and back after it.
        away = await http.get("/console/reviews?date=2026-03-09")
        assert away.status_code == 303
        assert (
            away.headers["location"] == "/console/login?next=/console/reviews%3Fdate%3D2026-03-09"
        )
        page = await http.get("/console/login")
        assert page.status_code == 200
        assert "onestop console-login" in page.text

        link = await login_link(gateway, "/console/reviews")
        opened = await http.get(link)
        assert opened.status_code == 200, opened.text
        # On by a meta refresh from the console's own page (same-site: the Strict cookie goes).
        assert landing_of(opened.text) == "/console/reviews"
        cookie = opened.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        for attribute in ("HttpOnly", "Path=/console", "SameSite=strict"):
            assert attribute.lower() in cookie.lower(), cookie
        # Plain http on the machine itself (a browser allows no Secure cookie over it).
        assert "secure" not in cookie.lower().replace("samesite", ""), cookie

        shown = await http.get("/console")
        assert shown.status_code == 200, shown.text
        policy = shown.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert shown.headers["cache-control"] == "no-store"
        assert "<script" not in shown.text

        # The link worked once: used again (a copy in a chat, a browser's history) it is refused.
        async with httpx.AsyncClient(base_url=gateway.base_url) as other:
            again = await other.get(link)
            assert again.status_code == 403
            assert "used already or expired" in again.text
            assert COOKIE not in other.cookies
            assert (await other.get("/console")).status_code == 303

        # A landing page elsewhere is never followed.
        for elsewhere in ("//evil.example/x", "https://evil.example/", "/console/../v1/keys"):
            fresh = await login_link(gateway)
            async with httpx.AsyncClient(base_url=gateway.base_url) as other:
                landed = await other.get(fresh, params={"next": elsewhere})
                assert landing_of(landed.text) == "/console", elsewhere

        # A form without the session's token, or from another site's page, changes nothing.
        assert (await http.post("/console/logout", data={})).status_code == 403
        assert (await http.post("/console/logout", data={"csrf": "令牌"})).status_code == 403
        # A day out of any range is today's page, not a failure.
        for odd in ("0001-01-01", "9999-12-31", "2026-02-30"):
            assert (
                await http.get("/console/reconciliation", params={"date": odd})
            ).status_code == 200
        csrf = csrf_of(shown.text)
        foreign = await http.post(
            "/console/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert (await http.get("/console")).status_code == 200

        # A new key for the agency ends the sessions opened under the old one.
        new_key = Ed25519PrivateKey.generate()
        answer = await gateway.agency.request(
            "PUT",
            "/v1/admin/clients/agency",
            json_body={
                "kind": "agency",
                "name": "医保经办机构",
                "public_key": public_pem(new_key.public_key()),
            },
        )
        assert answer.status_code == 200, answer.text
        assert (await http.get("/console")).status_code == 303
        gateway.keys["agency"] = new_key
        gateway.agency.key = new_key

        async with httpx.AsyncClient(base_url=gateway.base_url) as other:
            assert (await other.get(await login_link(gateway))).status_code == 200
            home = await other.get("/console")
            assert home.status_code == 200
            out = await other.post("/console/logout", data={"csrf": csrf_of(home.text)})
            assert out.status_code == 303
            assert out.headers["location"] == "/console/login"
            assert (await other.get("/console")).status_code == 303


async def test_the_overview_shows_the_apis_figures_of_the_day(gateway: Gateway) -> None:
    members = [member_record(f"CN{number:05d}") for number in range(1, 4)]
    clients = await load_demo_over_http(gateway, members)
    hospital, community = clients["ZZH3"], clients["ZZC1"]
    day = today()
    settled: list[dict[str, Any]] = []
    body = stay_body("CN-STAY", "CN00001", day - timedelta(days=4), 5, 180_000)
    answer = await hospital.request("POST", "/v1/settlements", json_body=body)
    assert answer.status_code == 201, answer.text
    settled.append(answer.json())
    for number, (client, code) in enumerate(
        [(hospital, "RMYY-0020"), (community, "JS0020"), (community, "JS0020")], start=2
    ):
        visit = _outpatient(f"CN-OP{number}", f"CN{min(number, 3):05d}", code, 900 * number)
        answer = await client.request("POST", "/v1/settlements", json_body=visit)
        assert answer.status_code == 201, answer.text
        settled.append(answer.json())
    reversed_one = settled.pop()
    answer = await community.request(
        "POST", f"/v1/settlements/{reversed_one['settlement_id']}/reversal"
    )
    assert answer.status_code == 200, answer.text
    # Two refusals: a code the hospital never mapped, and a member nobody knows.
    unmapped = _outpatient("CN-BAD", "CN00002", "RMYY-NOPE", 500)
    answer = await hospital.request("POST", "/v1/settlements", json_body=unmapped)
    assert answer.json()["code"] == "UNMAPPED_CODES", answer.text
    stranger = _outpatient("CN-WHO", "CN99999", "RMYY-0020", 500)
    refused_code = (await hospital.request("POST", "/v1/settlements", json_body=stranger)).json()
    await gateway.refusals_settled()

    api = await gateway.agency.request(
        "GET", "/v1/admin/day-totals", params={"date": day.isoformat()}
    )
    assert api.status_code == 200, api.text
    figures = api.json()
    # The API's own figures are what was settled, less what was reversed.
    assert figures["total"]["settlements"] == 4
    assert figures["total"]["reversals"] == 1
    for fund in FUNDS:
        assert figures["total"]["amounts"][fund] == sum(s["amounts"][fund] for s in settled)
    by_client = {row["client_id"]: row for row in figures["clients"]}
    assert by_client["ZZH3"]["settlements"] == 2
    assert by_client["ZZC1"]["settlements"] == 2
    assert by_client["ZZC1"]["reversals"] == 1
    assert by_client["ZZP1"]["settlements"] == 0
    assert "agency" not in by_client
    by_type = {row["visit_type"]: row for row in figures["by_visit_type"]}
    assert by_type["inpatient"]["amounts"]["total"] == settled[0]["amounts"]["total"]
    refusals = await gateway.agency.request(
        "GET", "/v1/admin/refusals", params={"date": day.isoformat()}
    )
    assert refusals.status_code == 200, refusals.text
    counted = refusals.json()["by_code"]
    assert counted["UNMAPPED_CODES"] == 1
    assert counted[refused_code["code"]] >= 1
    assert (await hospital.request("GET", "/v1/admin/refusals")).status_code == 403

    async with console_client(gateway) as http:
        page = await http.get("/console", params={"date": day.isoformat()})
    assert page.status_code == 200, page.text
    html = page.text
    assert re.search(r'id="settlements">4<', html), html
    assert re.search(r'id="reversals">1<', html)
    for fund in FUNDS:
        [shown] = attribute_values(html, rf'id="fund-{fund}" data-fen="(-?\d+)"')
        assert int(shown) == figures["total"]["amounts"][fund], fund
    for client_id, row in by_client.items():
        cells = re.search(rf'<tr data-client="{client_id}">(.*?)</tr>', html, re.S)
        assert cells, client_id
        for fund in FUNDS:
            [shown] = re.findall(rf'data-fund="{fund}" data-fen="(-?\d+)"', cells.group(1))
            assert int(shown) == row["amounts"][fund], (client_id, fund)
    for code, count in counted.items():
        assert re.search(
            rf'<tr data-code="{code}"><td><code>{code}</code></td><td class="n">{count}</td>', html
        ), code
    # The charts carry the same figures: each bar's value, and one bar per payer.
    funds_chart = re.search(r'data-chart="chart-funds">(.*?)</svg>', html, re.S)
    assert funds_chart
    values = [int(v) for v in re.findall(r'data-value="(-?\d+)"', funds_chart.group(1))]
    assert values == [figures["total"]["amounts"][fund] for fund in PAYERS]


async def test_a_review_is_decided_in_the_console_once_and_with_its_token(
    gateway: Gateway,
) -> None:
    clients = await load_demo_over_http(gateway, [member_record("CR00001")])
    hospital, agency = clients["ZZH3"], gateway.agency
    controls = {"paper_bed": {"action": "flag", "bed_items": ["FA02"], "min_days": 3}}
    policy = {**policy_to_document(demo_policy("410100")), "controls": controls}
    assert (await agency.request("PUT", "/v1/admin/policies", json_body=policy)).status_code == 200
    body = stay_body("CR-1", "CR00001", today() - timedelta(days=6), 7, 300_000)
    settled = (await hospital.request("POST", "/v1/settlements", json_body=body)).json()
    settlement_id = settled["settlement_id"]
    day = {"date": today().isoformat()}

    async with console_client(gateway) as http:
        queue = await http.get("/console/reviews", params=day)
        assert queue.status_code == 200
        assert f'data-settlement="{settlement_id}"' in queue.text
        assert "PAPER_BED" in queue.text
        csrf = csrf_of(queue.text)
        path = f"/console/reviews/{settlement_id}/decision"
        form = {"decision": "recover", "amount": "240.00", "reviewer": "LI-01", "reason": "no care"}

        no_token = await http.post(path, data=form)
        assert no_token.status_code == 403
        foreign = await http.post(
            path, data={**form, "csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert foreign.status_code == 403
        listed = await agency.request("GET", "/v1/admin/reviews", params=day)
        [review] = listed.json()
        assert review["status"] == "open"

        too_much = {**form, "csrf": csrf, "amount": f"{review['funds_paid'] / 100 + 1:.2f}"}
        refused = await http.post(path, data=too_much)
        assert refused.status_code == 422, refused.text
        assert 'class="problem"' in refused.text
        not_money = await http.post(path, data={**form, "csrf": csrf, "amount": "12.345"})
        assert not_money.status_code == 422
        assert "amount" in not_money.text
        [review] = (await agency.request("GET", "/v1/admin/reviews", params=day)).json()
        assert review["status"] == "open"

        decided = await http.post(path, data={**form, "csrf": csrf}, params=day)
        assert decided.status_code == 303, decided.text
        assert decided.headers["location"].startswith("/console/reviews?decided=")
        [review] = (await agency.request("GET", "/v1/admin/reviews", params=day)).json()
        assert review["status"] == "recovered"
        assert review["recovered"] == 24_000
        assert review["decided_by"] == "agency:LI-01"
        shown = await http.get("/console/reviews", params=day)
        assert 'data-fen="24000"' in shown.text
        other = await http.post(
            path, data={"decision": "accept", "reason": "fine", "csrf": csrf}, params=day
        )
        assert other.status_code == 409
        assert "REVIEW_DECIDED" in other.text


async def test_the_audit_trail_and_the_search_show_what_the_api_answers(
    gateway: Gateway,
) -> None:
    clients = await load_demo_over_http(gateway, [member_record("CS00001")])
    hospital = clients["ZZH3"]
    visit = _outpatient("CS-1", "CS00001", "RMYY-0020", 1_800)
    settled = (await hospital.request("POST", "/v1/settlements", json_body=visit)).json()

    audit = await gateway.agency.request("GET", "/v1/admin/clients/ZZH3/mappings/audit")
    assert audit.status_code == 200
    entries = audit.json()
    assert entries

    async with console_client(gateway) as http:
        page = await http.get("/console/mappings", params={"client_id": "ZZH3"})
        assert page.status_code == 200
        codes = attribute_values(page.text, r'data-his-code="([^"]+)"')
        assert codes == [entry["his_code"] for entry in reversed(entries)]

        by_id = await http.get("/console/settlements", params={"id": settled["settlement_id"]})
        by_visit = await http.get(
            "/console/settlements", params={"client_id": "ZZH3", "visit_id": "CS-1"}
        )
        for found in (by_id, by_visit):
            assert found.status_code == 200
            assert f'data-settlement="{settled["settlement_id"]}"' in found.text
            for name, fen in settled["amounts"].items():
                row = rf'<tr data-amount="{name}"><th>[^<]*</th><td class="n" data-fen="{fen}">'
                assert re.search(row, found.text), name
        missing = await http.get("/console/settlements", params={"id": "S" + "0" * 31})
        assert missing.status_code == 200
        assert 'class="problem"' in missing.text
        # An injected tag is shown as text, never as markup.
        odd = await http.get("/console/settlements", params={"visit_id": "<b>x</b>"})
        assert "<b>x</b>" not in odd.text
        assert "&lt;b&gt;x&lt;/b&gt;" in odd.text


async def test_behind_a_proxy_that_ends_tls_the_configured_origin_is_the_consoles(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with (
        open_gateway(
            adjudicator, redis_url, tmp_path / "keys", console_origin="https://console.example"
        ) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url) as http,
    ):
        opened = await http.get(await login_link(gateway))
        assert "; secure" in opened.headers["set-cookie"].lower()
        # httpx keeps a Secure cookie for https only: sent here as the proxy would.
        token = opened.cookies[COOKIE]
        home = await http.get("/console", cookies={COOKIE: token})
        assert home.status_code == 200, home.text
        form = {"csrf": csrf_of(home.text)}
        own = {"Origin": gateway.base_url}
        refused = await http.post(
            "/console/logout", data=form, headers=own, cookies={COOKIE: token}
        )
        assert refused.status_code == 403
        proxied = {"Origin": "https://console.example"}
        out = await http.post(
            "/console/logout", data=form, headers=proxied, cookies={COOKIE: token}
        )
        assert out.status_code == 303


def test_a_console_origin_in_plain_http_beyond_this_machine_is_refused(tmp_path: Path) -> None:
    common = {"adjudicator": "127.0.0.1:1", "redis_url": "redis://127.0.0.1:1", "key_dir": tmp_path}
    with pytest.raises(ValueError, match="plain http"):
        GatewaySettings(console_origin="http://console.example", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="console_origin"):
        GatewaySettings(console_origin="https://console.example/path", **common)  # type: ignore[arg-type]
    assert GatewaySettings(console_origin="http://127.0.0.1:8080", **common)  # type: ignore[arg-type]
