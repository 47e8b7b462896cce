"""Traces across gateway, adjudicator and Redis, sent to a real OTLP/HTTP receiver.

``onestop serve`` runs with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a receiver of this
test's own (plain HTTP, the protobuf the exporters send); one settlement is made, the services
stop (sending what they hold), and the spans received must form one trace: the gateway's
request, its stages, the adjudicator's call continuing it, and the adjudicator's stages (the
Redis scripts) under that.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from onestop import tracing
from onestop.client import SignedClient
from onestop.tooling.demo.scenarios import scenarios
from onestop.tooling.demo.walkthrough import load_region
from tests.support.serve import start_serve


class _Receiver(BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            self.received.append(body)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def _spans(received: list[bytes]) -> list[dict[str, Any]]:
    spans = []
    for body in received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = next(
                attribute.value.string_value
                for attribute in resource.resource.attributes
                if attribute.key == "service.name"
            )
            for scope in resource.scope_spans:
                for span in scope.spans:
                    spans.append(
                        {
                            "service": service,
                            "name": span.name,
                            "trace": span.trace_id.hex(),
                            "id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attributes": {a.key: a.value for a in span.attributes},
                        }
                    )
    return spans


def test_a_settlement_is_one_trace_across_both_services(
    tmp_path: Path, receiver: tuple[str, list[bytes]]
) -> None:
    endpoint, received = receiver
    served = start_serve(
        tmp_path / "data",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    base_url = served.addresses["gateway"]
    agency_key = Path(served.addresses["agency_key"])
    first = next(iter(scenarios()))

    async def settle() -> str:
        async with SignedClient.from_key_file(base_url, "agency", agency_key) as agency:
            clients = await load_region(base_url, agency, lambda _: None)
            try:
                answer = await clients[first.client_id].request(
                    "POST", "/v1/settlements", json_body=first.body
                )
                assert answer.status_code == 201, answer.text
                return str(answer.json()["settlement_id"])
            finally:
                for client in clients.values():
                    await client.close()

    settlement_id = asyncio.run(settle())
    assert served.terminate() == 0

    spans = _spans(received)
    requests = [s for s in spans if s["name"] == "POST /v1/settlements"]
    assert len(requests) == 1, sorted((s["service"], s["name"]) for s in spans)
    [request] = requests
    assert request["service"] == "onestop-gateway"
    assert request["attributes"]["http.response.status_code"].int_value == 201
    trace = [s for s in spans if s["trace"] == request["trace"]]
    by_id = {s["id"]: s for s in trace}
    [call] = [s for s in trace if s["name"] == "Settle"]
    assert call["service"] == "onestop-adjudicator"

    def ancestors(span: dict[str, Any]) -> list[str]:
        names = []
        while span["parent"] in by_id:
            span = by_id[span["parent"]]
            names.append(span["name"])
        return names

    # The adjudicator's call continues the gateway's trace, under its adjudication stage.
    assert ancestors(call)[:2] == ["gateway.adjudication", "POST /v1/settlements"]
    for stage in ("adjudicator.snapshot", "adjudicator.compute", "adjudicator.commit"):
        [found] = [s for s in trace if s["name"] == stage]
        assert found["service"] == "onestop-adjudicator"
        assert "Settle" in ancestors(found), stage
    for stage in ("gateway.validation", "gateway.mapping", "gateway.signing"):
        [found] = [s for s in trace if s["name"] == stage]
        assert ancestors(found)[-1] == "POST /v1/settlements", stage
    # No id of a settlement, member or visit in any span.
    for span in spans:
        for value in span["attributes"].values():
            assert settlement_id not in str(value)
            assert first.body["member_id"] not in str(value)


def test_without_an_endpoint_nothing_is_traced(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert tracing.configure("onestop-test") is None
    assert not tracing.enabled()
    with tracing.span("nothing") as current:
        assert current is None
