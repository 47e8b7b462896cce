"""``GET /metrics``: what the gateway and the adjudicator count, scraped over real HTTP.

The gateway and the adjudicator run in this test's process, so the gateway's exposition holds
both services' figures; the adjudicator's own port is scraped too. Counters only grow, so each
check compares a scrape after the requests with one before.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx

from onestop.domain.errors import ErrorCode
from onestop.settlement.v1 import adjudicator_pb2 as pb
from tests.support.adjudicator import Adjudicator, open_adjudicator
from tests.support.gateway import Gateway, open_gateway
from tests.support.metrics import scrape, total, value
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


async def test_a_settlement_and_a_refusal_are_counted_by_route_code_stage_and_fund(
    gateway: Gateway, adjudicator: Adjudicator
) -> None:
    clients = await load_demo_over_http(gateway, [member_record("MX00001")])
    hospital = clients["ZZH3"]
    url = f"{gateway.base_url}/metrics"
    _, before = await scrape(url)

    body = stay_body("MX-1", "MX00001", date(2026, 3, 1), 3, 200_000)
    settled = (await hospital.request("POST", "/v1/settlements", json_body=body)).json()
    unknown = {**body, "visit_id": "MX-2", "member_id": "MX99999"}
    refused = await hospital.request("POST", "/v1/settlements", json_body=unknown)
    assert refused.json()["code"] == ErrorCode.UNKNOWN_MEMBER
    read = await hospital.request("GET", f"/v1/settlements/{settled['settlement_id']}")
    assert read.status_code == 200

    text, after = await scrape(url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/v1/settlements"
    assert (
        grew("onestop_http_requests_total", route=route, method="POST", outcome="ok", code="") == 1
    )
    assert (
        grew(
            "onestop_http_requests_total",
            route=route,
            method="POST",
            outcome="refused",
            code="UNKNOWN_MEMBER",
        )
        == 1
    )
    # A path with an id in it counts under its template, never the id.
    template = "/v1/settlements/{settlement_id}"
    assert (
        grew("onestop_http_requests_total", route=template, method="GET", outcome="ok", code="")
        == 1
    )
    assert settled["settlement_id"] not in text
    assert "MX00001" not in text, "no member id in a label"
    assert "MX-1" not in text, "no visit id in a label"
    for stage in ("validation", "mapping", "adjudication", "signing"):
        count = "onestop_stage_duration_seconds_count"
        assert grew(count, service="gateway", stage=stage) >= 1, stage
    for stage in ("snapshot", "compute", "commit"):
        count = "onestop_stage_duration_seconds_count"
        assert grew(count, service="adjudicator", stage=stage) >= 1, stage
    settled_count = total(after, "onestop_settlements_total", client="ZZH3", kind="settled")
    assert (
        settled_count - total(before, "onestop_settlements_total", client="ZZH3", kind="settled")
        == 1
    )
    for fund in ("basic_fund", "cash"):
        paid = settled["amounts"][fund]
        labels = {"fund": fund, "visit_type": "inpatient", "client": "ZZH3"}
        assert grew("onestop_funds_fen_total", **labels) == paid, fund
    assert grew("onestop_grpc_requests_total", method="Settle", code="") == 1
    assert grew("onestop_grpc_requests_total", method="Settle", code="UNKNOWN_MEMBER") == 1

    # The reversal gives the fen back, counted apart.
    await hospital.request("POST", f"/v1/settlements/{settled['settlement_id']}/reversal")
    _, reversed_ = await scrape(url)
    labels = {"fund": "basic_fund", "visit_type": "inpatient", "client": "ZZH3"}
    given_back = value(reversed_, "onestop_funds_reversed_fen_total", **labels)
    assert (
        given_back - value(after, "onestop_funds_reversed_fen_total", **labels)
        == (settled["amounts"]["basic_fund"])
    )


async def test_metrics_are_not_answered_to_other_networks(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    async with (
        open_gateway(
            adjudicator, redis_url, tmp_path / "keys", metrics_networks=["10.99.0.0/16"]
        ) as gateway,
        httpx.AsyncClient(timeout=10) as http,
    ):
        answer = await http.get(f"{gateway.base_url}/metrics")
    assert answer.status_code == 404
    assert answer.json()["code"] == ErrorCode.NOT_FOUND
    assert "onestop_" not in answer.text


async def test_the_adjudicator_serves_its_metrics_on_its_own_port(redis_url: str) -> None:
    async with open_adjudicator(redis_url, metrics_port=0) as running:
        scrapes = running.running.metrics
        assert scrapes is not None
        url = f"http://127.0.0.1:{scrapes.port}/metrics"
        _, before = await scrape(url)
        await running.stub.GetVersions(pb.GetVersionsRequest())
        _, after = await scrape(url)
    labels = {"method": "GetVersions", "code": ""}
    assert (
        value(after, "onestop_grpc_requests_total", **labels)
        - value(before, "onestop_grpc_requests_total", **labels)
        == 1
    )
