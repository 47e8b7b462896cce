"""``onestop soak``: mixed load while Redis and adjudicators crash, then every fen checked.

Starts ``onestop serve`` (two adjudicator and two gateway processes, ``appendfsync always``)
on a temporary directory with a generated region, and drives it with hospital and pharmacy
terminals: discharges (some previewed first), pharmacy swipes, and reversals of earlier
settlements. A terminal that gets ``503`` or loses its connection sends the same request
again, as a cashier's terminal does, until it is answered. Meanwhile Redis and one adjudicator
process are killed (``kill -9``) at random moments; the supervisor starts them again.

At the end each client reconciles every day against the receipts it received
(``POST /v1/reconciliation`` with its own totals and settlement ids), and the agency's export
of each day is compared with all receipts. Lost = a receipt the gateway does not know;
duplicated = a visit settled twice, or a settlement no terminal received. Every receipt's
amounts must add up, the hospital's part of a single-disease price included.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
import signal
import tempfile
import threading
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from onestop.admin import Connection
from onestop.client import SignedClient
from onestop.domain.reconciliation import AMOUNT_FIELDS, RECONCILED_FUNDS
from onestop.exports import SETTLEMENTS
from onestop.receipts import money_adds_up
from onestop.tooling.bench.driver import bill_templates
from onestop.tooling.dataset import DatasetSize, load_dataset, write_dataset
from onestop.tooling.redis_server import LocalRedisCluster
from onestop.tooling.serve import ServeSettings, Supervisor, wait_http_healthy

RETRY_PAUSE_SECONDS = 0.2


@dataclass
class Receipt:
    """What a terminal was told about one settlement."""

    client_id: str
    visit_id: str
    amounts: dict[str, int]
    settled_day: str
    reversed_day: str | None = None


@dataclass
class Tally:
    """Everything the terminals saw."""

    requests: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    receipts: dict[str, Receipt] = field(default_factory=dict)
    visit_settlement: dict[tuple[str, str], str] = field(default_factory=dict)
    previews: int = 0
    visit_settled_twice: int = 0
    identities_broken: list[str] = field(default_factory=list)
    """Receipts whose amounts do not add up (domain section 12's identities)."""

    def answered(self, answer: httpx.Response) -> None:
        """Count an answer by status and contract code."""
        code = ""
        if answer.status_code >= 400:
            try:
                code = str(answer.json().get("code", ""))
            except ValueError:
                code = "not problem+json"
        self.answers[f"{answer.status_code} {code}".strip()] += 1


@dataclass
class Terminal:
    """One hospital or pharmacy terminal."""

    number: int
    client: SignedClient
    kind: str  # discharge | pharmacy
    members: list[str]
    templates: list[list[bytes]]
    rng: random.Random
    settled: list[str] = field(default_factory=list)
    count: int = 0


async def _send(
    terminal: Terminal, tally: Tally, method: str, path: str, body: bytes, give_up_at: float
) -> httpx.Response | None:
    """Send until answered other than 503 (the same request each time)."""
    while time.monotonic() < give_up_at:
        tally.requests += 1
        try:
            answer = await terminal.client.request(
                method, path, content=body, content_type="application/json"
            )
        except httpx.TransportError as error:
            tally.transport_errors[type(error).__name__] += 1
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            continue
        tally.answered(answer)
        if answer.status_code != 503:
            return answer
        await asyncio.sleep(RETRY_PAUSE_SECONDS)
    return None


def _day_of(moment: str) -> str:
    return moment[:10]  # ISO 8601 in Asia/Shanghai, as receipts carry it


async def _terminal_loop(terminal: Terminal, tally: Tally, stop_at: float) -> None:
    give_up_at = stop_at + 600  # a request begun before the end is seen through
    while time.monotonic() < stop_at:
        if terminal.settled and terminal.rng.random() < 0.08:
            settlement_id = terminal.settled.pop(terminal.rng.randrange(len(terminal.settled)))
            answer = await _send(
                terminal,
                tally,
                "POST",
                f"/v1/settlements/{settlement_id}/reversal",
                b"",
                give_up_at,
            )
            if answer is not None and answer.status_code == 200:
                tally.receipts[settlement_id].reversed_day = _day_of(answer.json()["reversed_at"])
            continue
        number = terminal.count
        terminal.count += 1
        member = terminal.members[number % len(terminal.members)]
        month = terminal.templates[(number // len(terminal.members)) % len(terminal.templates)]
        visit_id = f"{terminal.client.client_id}-{terminal.number:03d}-{number:07d}"
        body = (
            terminal.rng.choice(month)
            .replace(b"__VISIT__", visit_id.encode())
            .replace(b"__MEMBER__", member.encode())
        )
        if terminal.kind == "discharge" and terminal.rng.random() < 0.2:
            preview = await _send(
                terminal, tally, "POST", "/v1/settlements/preview", body, give_up_at
            )
            if preview is not None and preview.status_code == 200:
                tally.previews += 1
        answer = await _send(terminal, tally, "POST", "/v1/settlements", body, give_up_at)
        if answer is None or answer.status_code not in (200, 201):
            continue
        result = answer.json()
        settlement_id = str(result["settlement_id"])
        key = (terminal.client.client_id, visit_id)
        known = tally.visit_settlement.setdefault(key, settlement_id)
        if known != settlement_id:
            tally.visit_settled_twice += 1
        if settlement_id not in tally.receipts:
            amounts = {name: int(result["amounts"][name]) for name in AMOUNT_FIELDS}
            if not money_adds_up(amounts):
                tally.identities_broken.append(settlement_id)
            tally.receipts[settlement_id] = Receipt(
                terminal.client.client_id, visit_id, amounts, _day_of(result["settled_at"])
            )
            terminal.settled.append(settlement_id)


@dataclass
class FaultInjector:
    """Kills Redis or one adjudicator process now and then; the supervisor restarts them."""

    supervisor: Supervisor
    rng: random.Random
    every_seconds: tuple[float, float]
    injected: Counter[str] = field(default_factory=Counter)
    failover: bool = False
    """Kill only a Redis Cluster primary each time, so that its replica is promoted."""

    async def run(self, stop_at: float) -> None:
        """Inject faults until ``stop_at``."""
        while True:
            pause = self.rng.uniform(*self.every_seconds)
            if time.monotonic() + pause >= stop_at:
                return
            await asyncio.sleep(pause)
            if self.failover:
                self._kill_primary()
            elif self.rng.random() < 0.5:
                self._kill_redis()
            else:
                self._kill_adjudicator()

    def _kill_primary(self) -> None:
        redis = self.supervisor.redis
        if not isinstance(redis, LocalRedisCluster):
            raise TypeError("a failover soak runs on a Redis Cluster with replicas")
        primaries = [node for node in redis.primaries() if node.process is not None]
        if primaries:
            victim = self.rng.choice(primaries)
            assert victim.process is not None
            os.kill(victim.process.pid, signal.SIGKILL)
            self.injected["primary killed"] += 1

    def _kill_redis(self) -> None:
        redis = self.supervisor.redis
        alive = [
            node.process
            for node in (redis.nodes if redis is not None else [])
            if node.process is not None and node.process.poll() is None
        ]
        if alive:
            os.kill(self.rng.choice(alive).pid, signal.SIGKILL)
            self.injected["redis killed"] += 1

    def _kill_adjudicator(self) -> None:
        alive = [
            child
            for child in self.supervisor.children
            if child.name.startswith("adjudicator")
            and child.process is not None
            and child.process.poll() is None
        ]
        if alive:
            victim = self.rng.choice(alive)
            if victim.process is not None:
                os.kill(victim.process.pid, signal.SIGKILL)
            self.injected["adjudicator killed"] += 1


async def _reconcile(
    url: str, data: Path, agency_key: Path, tally: Tally
) -> tuple[list[dict[str, Any]], int, int]:
    """Each client's days against its receipts; the results, lost and unknown counts."""
    days: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"settlements": 0, "reversals": 0, "amounts": Counter(), "by_id": {}}
    )
    for settlement_id, receipt in tally.receipts.items():
        settled = days[(receipt.client_id, receipt.settled_day)]
        settled["settlements"] += 1
        settled["by_id"][settlement_id] = {name: receipt.amounts[name] for name in RECONCILED_FUNDS}
        for name in RECONCILED_FUNDS:
            settled["amounts"][name] += receipt.amounts[name]
        if receipt.reversed_day is not None:
            reversed_on = days[(receipt.client_id, receipt.reversed_day)]
            reversed_on["reversals"] += 1
            for name in RECONCILED_FUNDS:
                reversed_on["amounts"][name] -= receipt.amounts[name]
    results = []
    lost = unknown = 0
    for (client_id, day), figures in sorted(days.items()):
        key_file = data / "keys" / f"{client_id}.key"
        async with SignedClient.from_key_file(url, client_id, key_file) as client:
            answer = await client.request(
                "POST",
                "/v1/reconciliation",
                json_body={
                    "date": day,
                    "settlements": figures["settlements"],
                    "reversals": figures["reversals"],
                    "amounts": {name: figures["amounts"][name] for name in RECONCILED_FUNDS},
                    # each receipt's amounts: a settlement that differs by a fen is named
                    "settlement_amounts": figures["by_id"],
                },
            )
        answer.raise_for_status()
        result = answer.json()
        lost += len(result["only_in_hospital"])
        unknown += len(result["only_in_gateway"])
        results.append(
            {
                "client_id": client_id,
                "date": day,
                "result": result["result"],
                "settlements": figures["settlements"],
                "reversals": figures["reversals"],
                "differences": result["differences"],
                "amount_differences": [
                    difference["settlement_id"] for difference in result["amount_differences"]
                ],
            }
        )
    # the agency's files of each day hold exactly the settlements the terminals received
    exported: Counter[tuple[str, str]] = Counter()
    exported_ids: set[str] = set()
    async with SignedClient.from_key_file(url, "agency", agency_key) as agency:
        for day in sorted({day for _, day in days}):
            # The soak's days are still open: their files are provisional.
            answer = await agency.request(
                "GET", f"/v1/admin/exports/{day}", params={"provisional": "true"}
            )
            answer.raise_for_status()
            with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
                rows = csv.DictReader(io.StringIO(archive.read(SETTLEMENTS).decode("utf-8")))
                for row in rows:
                    if row["event"] == "settlement":
                        exported[(row["client_id"], row["visit_id"])] += 1
                        exported_ids.add(row["settlement_id"])
    tally.visit_settled_twice += sum(1 for count in exported.values() if count > 1)
    lost += len(set(tally.receipts) - exported_ids)
    unknown += len(exported_ids - set(tally.receipts))
    return results, lost, unknown


def run_soak(
    minutes: float,
    *,
    seed: int = 2026,
    members: int = 5_000,
    terminals: int = 12,
    fault_every_seconds: tuple[float, float] = (15.0, 45.0),
    write: Callable[[str], None] = print,
    failover: bool = False,
) -> dict[str, Any]:
    """Run the soak; its figures (see the module's description).

    With ``failover``, Redis is a Cluster of 3 primaries with a replica each
    (``cluster-node-timeout`` 1 s), the adjudicators acknowledge only what a replica holds, and
    the faults are primaries killed (``kill -9``): their replicas are promoted and each killed
    node rejoins as a replica.
    """
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="onestop-soak-") as scratch:
        root = Path(scratch)
        data = root / "region"
        write(f"generating a region of {members} members")
        write_dataset(
            data,
            DatasetSize(
                members=members, items=5_000, hospitals=2, pharmacies=2, mapping_rows=2_000
            ),
        )
        supervisor = Supervisor(
            ServeSettings(
                data_dir=root / "serve",
                port=0,
                adjudicator_workers=2,
                gateway_workers=2,
                appendfsync="always",
                redis_shards=3 if failover else 1,
                redis_replicas=1 if failover else 0,
                redis_node_timeout_ms=1000,
            )
        )
        addresses = supervisor.start()
        supervising = threading.Thread(target=supervisor.supervise, daemon=True)
        supervising.start()
        try:
            return asyncio.run(
                _drive(
                    supervisor,
                    str(addresses["gateway"]),
                    Path(str(addresses["agency_key"])),
                    data,
                    minutes,
                    rng,
                    terminals,
                    fault_every_seconds,
                    write,
                    failover,
                )
            )
        finally:
            supervisor.request_stop()
            supervising.join(10)
            supervisor.stop()


async def _drive(
    supervisor: Supervisor,
    url: str,
    agency_key: Path,
    data: Path,
    minutes: float,
    rng: random.Random,
    terminals: int,
    fault_every_seconds: tuple[float, float],
    write: Callable[[str], None],
    failover: bool,
) -> dict[str, Any]:
    write("loading it through the API")
    await load_dataset(Connection(url, "agency", agency_key), data)
    member_ids = [
        json.loads(line)["member_id"] for line in (data / "members.jsonl").read_text().splitlines()
    ]
    rng.shuffle(member_ids)
    clients = json.loads((data / "clients.json").read_text())
    hospitals = [client["client_id"] for client in clients if client["kind"] == "hospital"]
    pharmacies = [client["client_id"] for client in clients if client["kind"] == "pharmacy"]
    templates = {
        client_id: (
            bill_templates(data, client_id, "discharge", (5, 60), seed=11)
            if client_id in hospitals
            else bill_templates(data, client_id, "swipe", None, seed=11)
        )
        for client_id in hospitals + pharmacies
    }
    tally = Tally()
    lanes = []
    for number in range(terminals):
        client_id = (hospitals + pharmacies)[number % (len(hospitals) + len(pharmacies))]
        lanes.append(
            Terminal(
                number,
                SignedClient.from_key_file(url, client_id, data / "keys" / f"{client_id}.key"),
                "discharge" if client_id in hospitals else "pharmacy",
                member_ids[number::terminals],
                templates[client_id],
                random.Random(rng.random()),
            )
        )
    injector = FaultInjector(
        supervisor, random.Random(rng.random()), fault_every_seconds, failover=failover
    )
    started = time.monotonic()
    stop_at = started + minutes * 60
    write(f"driving {terminals} terminals for {minutes:g} min, with faults")
    await asyncio.gather(
        injector.run(stop_at), *(_terminal_loop(lane, tally, stop_at) for lane in lanes)
    )
    driven_seconds = time.monotonic() - started
    for lane in lanes:
        await lane.client.close()

    write("reconciling every client's days against the receipts")
    await asyncio.to_thread(wait_http_healthy, url, 120)
    results, lost, unknown = await _reconcile(url, data, agency_key, tally)
    reversals = sum(1 for receipt in tally.receipts.values() if receipt.reversed_day)
    return {
        "minutes": round(driven_seconds / 60, 2),
        "failover": failover,
        "terminals": terminals,
        "requests": tally.requests,
        "answers": dict(sorted(tally.answers.items())),
        "transport_errors": dict(sorted(tally.transport_errors.items())),
        "faults_injected": dict(sorted(injector.injected.items())),
        "settlements": len(tally.receipts),
        "reversals": reversals,
        "previews": tally.previews,
        "days_reconciled": len(results),
        "balanced": all(result["result"] == "balanced" for result in results),
        "unbalanced": [result for result in results if result["result"] != "balanced"],
        "lost": lost,
        "duplicated": tally.visit_settled_twice + unknown,
        "identities_broken": tally.identities_broken,
    }
