"""``onestop bench archive``: Redis memory before and after archiving a generated month.

Starts a private Redis, loads the demo region and synthetic members through the real loading
path, settles a month of visits through the real settlement service (its clock set to each
past day: 90 % pharmacy swipes of 1 to 5 lines and 10 % discharges of 200 lines, 1 % of them
reversed), then runs the archive job keeping no closed day. It reports Redis's ``used_memory``
for the members alone, with the month, and after the job, and the archive's size on disk:
Redis bytes per settlement kept, and what a settlement leaves behind once archived.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adjudicator.archiving import ArchiveJob
from adjudicator.loading import LoadingService
from adjudicator.members import MemberLoader, lines_of
from adjudicator.reference import Reference
from adjudicator.service import SettleCommand, SettlementService
from adjudicator.store import Store
from onestop.clock import SHANGHAI, now_ms, settlement_day
from onestop.domain import VisitRequest, map_bill
from onestop.domain.bill import request_identity
from onestop.domain.catalog import catalog_csv
from onestop.domain.clients import Client
from onestop.domain.errors import DomainError
from onestop.domain.mapping import MappingTable, mapping_csv
from onestop.domain.policy import policy_to_document
from onestop.redis_client import connect
from onestop.signing import public_pem
from onestop.storage.crypto import MemberCipher
from onestop.tooling.bench.memory import node_info, used_memory
from onestop.tooling.demo.members import crowd
from onestop.tooling.demo.regions import (
    DEMO_CLIENTS,
    demo_catalog,
    demo_mapping,
    demo_policies,
)
from onestop.tooling.redis_server import RedisServer
from onestop.tooling.synthetic import BillFactory

HOSPITAL, PHARMACY = "ZZH3", "ZZP1"
DISCHARGE_LINES = 200


@dataclass(frozen=True, slots=True)
class ArchiveFigures:
    """Redis memory around one archive run of a generated month."""

    days: int
    settlements: int
    discharges: int
    reversals: int
    redis_members_bytes: int
    redis_with_month_bytes: int
    redis_after_archive_bytes: int
    archive_disk_bytes: int
    archive_seconds: float
    redis_version: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the per-settlement figures."""
        month = self.redis_with_month_bytes - self.redis_members_bytes
        left = self.redis_after_archive_bytes - self.redis_members_bytes
        return {
            "days": self.days,
            "settlements": self.settlements,
            "discharges": self.discharges,
            "reversals": self.reversals,
            "redis_used_memory": {
                "members_only": self.redis_members_bytes,
                "with_the_month": self.redis_with_month_bytes,
                "after_archiving": self.redis_after_archive_bytes,
            },
            "redis_bytes_per_settlement_kept": round(month / self.settlements, 1),
            "redis_bytes_per_settlement_after_archiving": round(left / self.settlements, 1),
            "archive_bytes_on_disk": self.archive_disk_bytes,
            "archive_bytes_per_settlement": round(self.archive_disk_bytes / self.settlements, 1),
            "archive_seconds": round(self.archive_seconds, 2),
            "archive_settlements_per_second": round(self.settlements / self.archive_seconds, 1),
            "redis_version": self.redis_version,
        }


def _moment(day: date, second: int) -> int:
    start = datetime(day.year, day.month, day.day, 8, tzinfo=SHANGHAI)
    return int(start.timestamp() * 1000) + second * 1000


async def _load(service: SettlementService, store: Store, members: int) -> list[str]:
    loading = LoadingService(service.reference)
    for policy in demo_policies():
        await loading.put_policy(json.dumps(policy_to_document(policy)).encode())
    await loading.put_catalog(catalog_csv(demo_catalog().values()))
    for demo in DEMO_CLIENTS:
        await loading.put_client(
            Client.model_validate(
                {
                    "client_id": demo.client_id,
                    "kind": demo.kind.value,
                    "name": demo.name,
                    "level": demo.level.value,
                    "region": demo.region,
                    # Never used to sign here: the service is called directly.
                    "public_key": public_pem(Ed25519PrivateKey.generate().public_key()),
                }
            )
        )
        await loading.put_mapping(
            demo.client_id, mapping_csv(demo_mapping(demo)), confirm=False, changed_by="bench"
        )
    people = [person for person in crowd(members, seed=41) if person["region"] == "410100"]

    async def lines() -> AsyncIterator[bytes]:
        for person in people:
            yield json.dumps(person, ensure_ascii=False).encode() + b"\n"

    await MemberLoader(store).load(lines_of(lines()))
    return [person["member_id"] for person in people]


async def _settle_month(
    service: SettlementService, member_ids: list[str], days: list[date], per_day: int
) -> tuple[int, int, int]:
    catalog = demo_catalog()
    clients = {demo.client_id: demo for demo in DEMO_CLIENTS}
    mappings = {client_id: demo_mapping(clients[client_id]) for client_id in (HOSPITAL, PHARMACY)}
    # Bills drawn from the items without a daily maximum: random quantities of a bed a day
    # would be refused as implausible, and a refused bill measures nothing.
    factories = {
        client_id: BillFactory.of(
            client_id,
            MappingTable.from_rows(
                row for row in mapping.rows() if catalog[row.catalog_code].max_daily_qty is None
            ),
            seed=11,
        )
        for client_id, mapping in mappings.items()
    }
    rng = random.Random(17)
    settled = discharges = reversals = 0
    for day in days:
        for number in range(per_day):
            member_id = rng.choice(member_ids)
            visit_id = f"B{day:%Y%m%d}-{number:06d}"
            if rng.random() < 0.1:
                client_id = HOSPITAL
                admission = date(day.year, 1, 1) + timedelta(days=rng.randrange(300))
                body = factories[client_id].discharge(
                    visit_id, member_id, admission, DISCHARGE_LINES
                )
            else:
                client_id = PHARMACY
                body = factories[client_id].swipe(visit_id, member_id, day)
            request = VisitRequest.model_validate(body)
            visit = map_bill(request, mappings[client_id], catalog)
            service.clock = functools.partial(_moment, day, number)
            try:
                settlement, _ = await service.settle(
                    SettleCommand(client_id, visit_id, member_id, visit, request_identity(request))
                )
            except DomainError:
                continue  # an overlapping stay, a member past eligibility: not settled
            settled += 1
            discharges += client_id == HOSPITAL
            if rng.random() < 0.01 and settlement.settlement_id is not None:
                await service.reverse(settlement.settlement_id, client_id)
                reversals += 1
    return settled, discharges, reversals


async def _measure(
    url: str, server: RedisServer, root: Path, days: int, per_day: int, members: int
) -> ArchiveFigures:
    client = await connect(url, timeout_seconds=30, wait_seconds=10)
    try:
        store = Store(client, MemberCipher(os.urandom(32)))
        service = SettlementService(store, Reference(store))
        member_ids = await _load(service, store, members)
        members_only = used_memory([server])
        last = settlement_day(now_ms()) - timedelta(days=2)
        month = [last - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
        settled, discharges, reversals = await _settle_month(service, member_ids, month, per_day)
        with_month = used_memory([server])
        started = time.perf_counter()
        await ArchiveJob(client, root, keep_days=0, restored_grace_seconds=0).run()
        seconds = time.perf_counter() - started
        after = used_memory([server])
        version = str(node_info([server], "server")[0]["redis_version"])
    finally:
        await client.aclose()
    disk = sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
    return ArchiveFigures(
        days=days,
        settlements=settled,
        discharges=discharges,
        reversals=reversals,
        redis_members_bytes=members_only,
        redis_with_month_bytes=with_month,
        redis_after_archive_bytes=after,
        archive_disk_bytes=disk,
        archive_seconds=seconds,
        redis_version=version,
    )


def measure_archive(days: int = 30, per_day: int = 500, members: int = 3_000) -> ArchiveFigures:
    """Generate ``days`` days of ``per_day`` settlements in a private Redis, archive, measure."""
    with tempfile.TemporaryDirectory(prefix="onestop-archive-") as scratch:
        server = RedisServer(Path(scratch) / "redis", appendfsync="everysec")
        url = server.start()
        try:
            return asyncio.run(
                _measure(url, server, Path(scratch) / "archive", days, per_day, members)
            )
        finally:
            server.stop()
