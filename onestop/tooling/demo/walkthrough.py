"""``onestop demo``: start everything, load the demo region, settle at the windows, print.

Everything is real: a Redis server, the adjudicator and the HTTP gateway are started on a
temporary data directory by the same supervisor as ``onestop serve``; the agency loads the
region over the signed HTTP API, and each hospital and pharmacy settles with its own key.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.refusals import FLUSH_SECONDS as REFUSAL_FLUSH_SECONDS
from onestop.client import SignedClient
from onestop.clock import now_ms, settlement_day
from onestop.domain.mapping import mapping_csv
from onestop.domain.money import format_yuan
from onestop.domain.policy import Policy, policy_to_document
from onestop.signing import public_pem
from onestop.statement import render_refusal, render_statement
from onestop.tooling.demo.members import FEATURED, crowd
from onestop.tooling.demo.regions import (
    DEMO_CLIENTS,
    controlled_policy,
    demo_catalog_csv,
    demo_mapping,
    demo_policies,
)
from onestop.tooling.demo.scenarios import scenarios
from onestop.tooling.serve import ServeSettings, Supervisor

CROWD = 300
CONTROLLED_REGION = "410100"
"""The demo region whose policy runs the controls across visits (the others do not)."""


def _expect(answer: Any, status: int = 200) -> Any:
    if answer.status_code != status:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text}"
        )
    return answer.json()


async def load_region(
    base_url: str, agency: SignedClient, write: Callable[[str], None]
) -> dict[str, SignedClient]:
    """Register the demo clients and load policies, catalog, mappings and members."""
    clients = {}
    for client in DEMO_CLIENTS:
        key = Ed25519PrivateKey.generate()
        _expect(
            await agency.request(
                "PUT",
                f"/v1/admin/clients/{client.client_id}",
                json_body={
                    "kind": client.kind.value,
                    "name": client.name,
                    "level": client.level.value,
                    "region": client.region,
                    "public_key": public_pem(key.public_key()),
                },
            )
        )
        clients[client.client_id] = SignedClient(base_url, client.client_id, key)
    for policy in demo_policies():
        controlled = policy.region == CONTROLLED_REGION
        if controlled:
            policy = controlled_policy(policy)
        loaded = _expect(
            await agency.request("PUT", "/v1/admin/policies", json_body=policy_to_document(policy))
        )
        write(
            f"policy {policy.name} ({loaded['region']}, {loaded['year']}) "
            f"version {loaded['version']}"
            + (f", controls across visits: {_controls_of(policy)}" if controlled else "")
        )
    catalog = _expect(
        await agency.request(
            "PUT", "/v1/admin/catalog", content=demo_catalog_csv().encode(), content_type="text/csv"
        )
    )
    write(f"catalog: {catalog['loaded']} items")
    for client in DEMO_CLIENTS:
        mapping = _expect(
            await agency.request(
                "PUT",
                f"/v1/admin/clients/{client.client_id}/mappings",
                content=mapping_csv(demo_mapping(client)).encode(),
                content_type="text/csv",
            )
        )
        write(f"mapping of {client.name} ({client.client_id}): {mapping['loaded']} codes")
    members = "\n".join(
        json.dumps(record, ensure_ascii=False) for record in (*FEATURED, *crowd(CROWD))
    )
    loaded = _expect(
        await agency.request(
            "POST",
            "/v1/admin/members",
            content=members.encode(),
            content_type="application/x-ndjson",
        )
    )
    write(f"members: {loaded['loaded']} loaded, {len(loaded['rejected'])} rejected")
    return clients


def _controls_of(policy: Policy) -> str:
    """The controls a policy runs, by name."""
    controls = policy.controls
    return "" if controls is None else ", ".join(controls.model_dump(exclude_none=True))


async def save_statement(client: SignedClient, settlement_id: str, directory: Path) -> Path:
    """Fetch a settlement's statement as PDF (``GET .../statement``) into ``directory``."""
    answer = await client.request(
        "GET", f"/v1/settlements/{settlement_id}/statement", params={"format": "pdf"}
    )
    if answer.status_code != 200:
        raise RuntimeError(f"the statement of {settlement_id}: {answer.status_code} {answer.text}")
    path = directory / f"statement-{settlement_id}.pdf"
    path.write_bytes(answer.content)
    return path


async def settle_walkthrough(
    agency: SignedClient,
    clients: dict[str, SignedClient],
    write: Callable[[str], None],
    statements: Path,
) -> int:
    """Settle every scenario and print what the cashier hands over; the number settled.

    Each settled visit's statement is also written as a PDF into ``statements``.
    """
    names = {client.client_id: client.name for client in DEMO_CLIENTS}
    settled = 0
    for scenario in scenarios():
        client = clients[scenario.client_id]
        member_id = scenario.body["member_id"]
        day = scenario.body.get("service_date") or scenario.body["discharge_date"]
        identity = _expect(
            await agency.request(
                "GET", f"/v1/members/{member_id}/eligibility", params={"date": day}
            )
        )
        patient = f"{identity['name']}  {identity['id_number']}"
        write("")
        write(scenario.title)
        answer = await client.request("POST", "/v1/settlements", json_body=scenario.body)
        if answer.status_code >= 400:
            write(render_refusal(answer.json(), client_name=names[scenario.client_id]))
            continue
        result = answer.json()
        settled += 1
        write(render_statement(result, client_name=names[scenario.client_id], patient=patient))
        write(
            f"  receipt signed with key {result['signature']['key_id']} "
            f"(GET /v1/keys), settled at {result['settled_at']}"
        )
        saved = await save_statement(client, result["settlement_id"], statements)
        write(f"  statement (PDF, GET .../statement?format=pdf): {saved}")
    await _show_review_queue(agency, write)
    await _show_the_day(agency, write)
    return settled


async def _show_review_queue(agency: SignedClient, write: Callable[[str], None]) -> None:
    """What the agency's review queue holds of today: the flagged settlements."""
    day = settlement_day(now_ms()).isoformat()
    reviews = _expect(
        await agency.request("GET", "/v1/admin/reviews", params={"date": day, "status": "open"})
    )
    write("")
    write(f"The agency's review queue of {day} (GET /v1/admin/reviews): {len(reviews)} open")
    for review in reviews:
        for finding in review["findings"]:
            write(
                f"  {review['client_id']} visit {review['visit_id']}: {finding['control']} "
                f"({finding['action']}) {finding['message']}"
            )


async def _show_the_day(agency: SignedClient, write: Callable[[str], None]) -> None:
    """The agency's day, by the API and as its console shows it (opened by a one-time link)."""
    day = settlement_day(now_ms()).isoformat()
    figures = _expect(await agency.request("GET", "/v1/admin/day-totals", params={"date": day}))
    # Each gateway process adds its refusal counts to the day's a second after the answers.
    await asyncio.sleep(REFUSAL_FLUSH_SECONDS + 0.5)
    refused = _expect(await agency.request("GET", "/v1/admin/refusals", params={"date": day}))
    total = figures["total"]
    write("")
    write(
        f"The agency's day {day} (GET /v1/admin/day-totals): {total['settlements']} settlements, "
        f"{total['reversals']} reversals, total {format_yuan(total['amounts']['total'])} yuan"
    )
    for client in figures["clients"]:
        if client["settlements"] or client["reversals"]:
            amounts = client["amounts"]
            write(
                f"  {client['client_id']} {client['name']}: {client['settlements']} settled, "
                f"basic fund {format_yuan(amounts['basic_fund'])}, cash "
                f"{format_yuan(amounts['cash'])}"
            )
    codes = ", ".join(f"{code} {count}" for code, count in refused["by_code"].items())
    write(f"  refused: {refused['total']} ({codes or 'none'})")
    # The console is opened as a person opens it: a one-time link the agency signed for.
    issued = _expect(await agency.request("POST", "/v1/admin/console/sessions"), 201)
    async with httpx.AsyncClient(base_url=agency.http.base_url, timeout=30) as browser:
        opened = await browser.get(issued["login_path"])  # sets the session's cookie
        opened.raise_for_status()
        page = await browser.get("/console")
    shown = re.search(r'id="settlements">(\d+)<', page.text)
    write(
        f"The agency console (onestop console-login) showed {shown.group(1) if shown else '?'} "
        "settlements for the day; with `onestop serve` running, open the link "
        "`onestop console-login --data-dir DIR` prints."
    )


async def _walk(
    base_url: str, agency_key: Path, write: Callable[[str], None], statements: Path
) -> int:
    async with SignedClient.from_key_file(base_url, "agency", agency_key) as agency:
        clients = await load_region(base_url, agency, write)
        try:
            return await settle_walkthrough(agency, clients, write, statements)
        finally:
            for client in clients.values():
                await client.close()


def run_demo(write: Callable[[str], None] = print, statements: Path | None = None) -> int:
    """Start everything on a temporary directory, walk through, stop; the exit status.

    Args:
        write: where the walkthrough is printed.
        statements: where the settled visits' statements are written as PDF files (made if
            needed); by default a new directory under the system's temporary one, kept after
            the demo (the data directory is not).
    """
    if statements is None:
        statements = Path(tempfile.mkdtemp(prefix="onestop-demo-statements-"))
    statements.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="onestop-demo-") as scratch:
        supervisor = Supervisor(ServeSettings(data_dir=Path(scratch), port=0))
        try:
            addresses = supervisor.start()
            write(f"onestop demo: gateway {addresses['gateway']}, data {scratch}")
            settled = asyncio.run(
                _walk(
                    str(addresses["gateway"]),
                    Path(str(addresses["agency_key"])),
                    write,
                    statements,
                )
            )
        finally:
            supervisor.stop()
    write(f"\n{settled} visits settled; everything stopped.")
    write(f"Their statements, as PDF files: {statements}")
    return 0
