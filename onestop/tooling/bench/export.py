"""``onestop bench export``: a busy day's export through the real stack, time and memory.

Starts ``onestop serve`` on a temporary directory, writes a day of N synthetic journal
entries straight into its Redis (the field layout the commit script writes, spread over the
slot groups), then downloads the day's export as the agency (``GET /v1/admin/exports``),
verifies it, and reads the peak resident memory of the gateway and the adjudicator.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import redis

from onestop.admin import Connection, download_export
from onestop.domain.engine import Amounts
from onestop.domain.reconciliation import EntryKind, JournalEntry
from onestop.domain.settlement import PolicyRef
from onestop.domain.types import Scheme
from onestop.exports import verify_export
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

    def as_dict(self) -> dict[str, float | int | bool]:
        """JSON-ready."""
        return {
            "settlements": self.settlements,
            "export_seconds": round(self.seconds, 1),
            "rows": self.rows,
            "gateway_peak_mb": round(self.gateway_peak_mb, 1),
            "adjudicator_peak_mb": round(self.adjudicator_peak_mb, 1),
            "verified": self.verified,
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
                policy=PolicyRef("410100", Scheme.RESIDENT, 2026, "bench"),
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


def measure_export(settlements: int = 1_000_000) -> ExportFigures:
    """Run the whole measurement (see the module's description)."""
    with tempfile.TemporaryDirectory(prefix="onestop-export-bench-") as scratch:
        supervisor = Supervisor(
            ServeSettings(data_dir=Path(scratch) / "data", port=0, appendfsync="everysec")
        )
        try:
            addresses = supervisor.start()
            fill_journal(str(addresses["redis_url"]), settlements)
            connection = Connection(
                str(addresses["gateway"]), "agency", Path(str(addresses["agency_key"]))
            )
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
                verified=verify_export(out).ok,
            )
        finally:
            supervisor.stop()
