"""``onestop bench export``: a busy day's export through the real stack, time and memory.

Starts ``onestop serve`` on a temporary directory, writes a day of N synthetic journal
entries straight into its Redis (the field layout the commit script writes, spread over the
slot groups), then downloads the day's export as the agency (``GET /v1/admin/exports``),
verifies it, and reads the peak resident memory of the gateway and the adjudicator.

It also times one hospital's reconciliation by detail (``settlement_ids``) of the day before
and after the other clients' N entries were written: the ratio shows that a hospital's
reconciliation does not pay for the rest of the region's day.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.admin import Connection, download_export, register_client
from onestop.client import SignedClient
from onestop.domain.engine import Amounts
from onestop.domain.reconciliation import RECONCILED_FUNDS, EntryKind, JournalEntry, VisitFacts
from onestop.domain.settlement import PolicyRef
from onestop.domain.types import HospitalLevel, Scheme, VisitType
from onestop.exports import verify_export
from onestop.signing import public_pem
from onestop.storage.layout import journal_key, member_group, new_settlement_id
from onestop.storage.records import journal_fields
from onestop.tooling.serve import ServeSettings, Supervisor

DAY = date(2026, 3, 9)


@dataclass(frozen=True, slots=True)
class ExportFigures:
    """What one export of a busy day cost."""

    settlements: int
    seconds: float
    rows: int
    gateway_peak_mb: float
    adjudicator_peak_mb: float
    verified: bool
    reconcile_quiet_seconds: float
    reconcile_busy_seconds: float

    def as_dict(self) -> dict[str, float | int | bool]:
        """JSON-ready."""
        return {
            "settlements": self.settlements,
            "export_seconds": round(self.seconds, 1),
            "rows": self.rows,
            "gateway_peak_mb": round(self.gateway_peak_mb, 1),
            "adjudicator_peak_mb": round(self.adjudicator_peak_mb, 1),
            "verified": self.verified,
            "reconcile_quiet_ms": round(self.reconcile_quiet_seconds * 1000, 1),
            "reconcile_busy_ms": round(self.reconcile_busy_seconds * 1000, 1),
            "reconcile_busy_over_quiet": round(
                self.reconcile_busy_seconds / max(self.reconcile_quiet_seconds, 1e-9), 2
            ),
        }


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fill_journal(url: str, settlements: int, seed: int = 9) -> None:
    """Write ``settlements`` journal entries of :data:`DAY`, as commits would."""
    from adjudicator.journal import day_bounds_ms

    rng = random.Random(seed)
    start, end = day_bounds_ms(DAY)
    step = (end - start) // max(1, settlements)
    client = redis.Redis.from_url(url)
    try:
        pipe = client.pipeline(transaction=False)
        for number in range(settlements):
            member = f"M{rng.randrange(10**7):07d}"
            at_ms = start + number * step
            total = rng.randrange(1000, 5_000_000)
            basic = total // 2
            entry = JournalEntry(
                kind=EntryKind.SETTLEMENT,
                settlement_id=new_settlement_id(member, at_ms),
                client_id=f"H{rng.randrange(50):04d}",
                member_id=member,
                visit_id=f"V{number:09d}",
                at_ms=at_ms,
                amounts=Amounts(
                    total=total,
                    full_self_pay=0,
                    over_limit_self_pay=0,
                    pre_self_pay=0,
                    in_scope=total,
                    deductible=0,
                    basic_fund=basic,
                    supplementary=0,
                    assistance=0,
                    personal_account=0,
                    cash=total - basic,
                ),
                policy=PolicyRef("410100", Scheme.RESIDENT, 2026, "bench", date(2026, 1, 1)),
                visit=VisitFacts(
                    VisitType.INPATIENT, DAY - timedelta(days=5), DAY, HospitalLevel.LEVEL3
                ),
            )
            pipe.xadd(
                journal_key(member_group(member)),
                dict(journal_fields(entry)),
                id=f"{at_ms}-{number}",
            )
            if number % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
    finally:
        client.close()


RECONCILING_CLIENT = "BENCHREC1"


async def _register_hospital(connection: Connection, key_dir: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    public = key_dir / f"{RECONCILING_CLIENT}.pub"
    public.write_text(public_pem(key.public_key()))
    await register_client(
        connection,
        RECONCILING_CLIENT,
        kind="hospital",
        name="reconciliation bench",
        level="level3",
        region="410100",
        public_key=public,
    )
    return key


async def _reconcile_seconds(url: str, key: Ed25519PrivateKey, repeats: int = 5) -> float:
    """The fastest of ``repeats`` reconciliations by detail of :data:`DAY` (seconds)."""
    body = {
        "date": DAY.isoformat(),
        "settlements": 0,
        "reversals": 0,
        "amounts": dict.fromkeys(RECONCILED_FUNDS, 0),
        "settlement_ids": [],
    }
    fastest = float("inf")
    async with SignedClient(url, RECONCILING_CLIENT, key) as hospital:
        for _ in range(repeats):
            started = time.perf_counter()
            answer = await hospital.request("POST", "/v1/reconciliation", json_body=body)
            fastest = min(fastest, time.perf_counter() - started)
            if answer.status_code != 200:
                raise RuntimeError(f"reconciliation refused: {answer.status_code} {answer.text}")
    return fastest


def measure_export(settlements: int = 1_000_000) -> ExportFigures:
    """Run the whole measurement (see the module's description)."""
    with tempfile.TemporaryDirectory(prefix="onestop-export-bench-") as scratch:
        supervisor = Supervisor(
            ServeSettings(data_dir=Path(scratch) / "data", port=0, appendfsync="everysec")
        )
        try:
            addresses = supervisor.start()
            connection = Connection(
                str(addresses["gateway"]), "agency", Path(str(addresses["agency_key"]))
            )
            key = asyncio.run(_register_hospital(connection, Path(scratch)))
            quiet = asyncio.run(_reconcile_seconds(connection.url, key))
            fill_journal(str(addresses["redis_admin_url"]), settlements)
            busy = asyncio.run(_reconcile_seconds(connection.url, key))
            out = Path(scratch) / "export"
            started = time.perf_counter()
            manifest = asyncio.run(download_export(connection, DAY.isoformat(), out))
            seconds = time.perf_counter() - started
            pids = addresses["pids"]
            if not isinstance(pids, dict):
                raise TypeError(f"serve reported no process ids: {addresses}")
            return ExportFigures(
                settlements=settlements,
                seconds=seconds,
                rows=int(manifest["files"]["settlements.csv"]["rows"]),
                gateway_peak_mb=_peak_mb(int(pids["gateway"])),
                adjudicator_peak_mb=_peak_mb(int(pids["adjudicator"])),
                verified=verify_export(out, day=DAY).ok,
                reconcile_quiet_seconds=quiet,
                reconcile_busy_seconds=busy,
            )
        finally:
            supervisor.stop()
