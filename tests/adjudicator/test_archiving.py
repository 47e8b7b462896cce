"""The archive job: closed days leave Redis for the archive and every read still answers.

Real gRPC adjudicator, real Redis (one server, and the cluster), real files. Settlements are
committed on past days by setting the service's clock; the job then archives them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from adjudicator.archiving import KILL_AT_ENV, ArchiveBusy, ArchiveJob, _job_lock
from adjudicator.journal import CLOCK_SLACK_MS
from adjudicator.server import _ScheduledArchive
from onestop.clock import SHANGHAI, now_ms, settlement_day
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage import layout
from onestop.storage.archive import ArchiveCorrupt, ArchiveReader, read_part
from tests.support.adjudicator import Adjudicator, error_code, open_adjudicator
from tests.support.redis import ON_BOTH, sync_client
from tests.support.scenario import (
    HOSPITAL,
    load_demo_world,
    member_record,
    settle_request,
    stay_body,
)

MEMBERS = ("AR00001", "AR00002", "AR00003")
DAYS = (date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4))


def noon_ms(day: date, minute: int = 0) -> int:
    """Noon of ``day`` in Asia/Shanghai, plus some minutes, as epoch ms."""
    moment = datetime(day.year, day.month, day.day, 12, minute, tzinfo=SHANGHAI)
    return int(moment.timestamp() * 1000)


@dataclass
class History:
    """What was settled on past days, and what every read answered before archiving."""

    requests: dict[str, pb.SettleRequest]
    receipts: dict[str, pb.Settlement]
    reversed_ids: list[str]
    reads: dict[str, Any]


@pytest.fixture
async def archived_adjudicator(redis_url: str, tmp_path: Path) -> AsyncIterator[Adjudicator]:
    """An adjudicator reading an archive folder (no scheduled job)."""
    async with open_adjudicator(redis_url, archive_dir=tmp_path / "archive") as running:
        yield running


async def settle_history(adjudicator: Adjudicator) -> History:
    """Nine stays over three past days, two reversed (one the same day, one the next)."""
    tables = await load_demo_world(adjudicator.stub, [member_record(m) for m in MEMBERS])
    service = adjudicator.running.service
    requests: dict[str, pb.SettleRequest] = {}
    receipts: dict[str, pb.Settlement] = {}
    reversed_ids: list[str] = []
    for day_number, day in enumerate(DAYS):
        for member_number, member_id in enumerate(MEMBERS):
            visit_id = f"ARV-{day_number}-{member_number}"
            body = stay_body(visit_id, member_id, date(2026, 3 + day_number, 1), 2, 150_000)
            request = settle_request(tables, body)
            service.clock = functools.partial(noon_ms, day, member_number)
            receipt = await adjudicator.stub.Settle(request)
            requests[visit_id] = request
            receipts[visit_id] = receipt
        # the first day reverses one of its own; the last day one of the day before
        undo = {0: "ARV-0-1", 2: "ARV-1-2"}.get(day_number)
        if undo is not None:
            service.clock = functools.partial(noon_ms, day, 30)
            settlement_id = receipts[undo].settlement_id
            await adjudicator.stub.Reverse(
                pb.ReverseRequest(client_id=HOSPITAL, settlement_id=settlement_id)
            )
            reversed_ids.append(settlement_id)
    return History(requests, receipts, reversed_ids, await every_read(adjudicator, receipts))


async def every_read(
    adjudicator: Adjudicator, receipts: dict[str, pb.Settlement]
) -> dict[str, Any]:
    """What each read of the history answers: settlements, visits, days, journal, totals."""
    stub = adjudicator.stub
    reads: dict[str, Any] = {}
    for visit_id, receipt in receipts.items():
        got = await stub.GetSettlement(
            pb.GetSettlementRequest(client_id=HOSPITAL, settlement_id=receipt.settlement_id)
        )
        reads[f"get:{visit_id}"] = got.SerializeToString(deterministic=True)
        listed = await stub.ListSettlements(
            pb.ListSettlementsRequest(client_id=HOSPITAL, visit_id=visit_id)
        )
        reads[f"visit:{visit_id}"] = listed.SerializeToString(deterministic=True)
    for day in DAYS:
        text = day.isoformat()
        listed = await stub.ListSettlements(
            pb.ListSettlementsRequest(client_id=HOSPITAL, date=text)
        )
        reads[f"day:{text}"] = listed.SerializeToString(deterministic=True)
        entries = [
            entry.SerializeToString(deterministic=True)
            async for batch in stub.ReadJournal(pb.ReadJournalRequest(date=text))
            for entry in batch.entries
        ]
        reads[f"journal:{text}"] = entries
        reply = await stub.Reconcile(pb.ReconcileRequest(client_id=HOSPITAL, date=text, by_id=True))
        reads[f"totals:{text}"] = (
            reply.gateway.SerializeToString(deterministic=True),
            sorted(reply.only_in_gateway),
        )
        # by amounts: each settlement of the day reported with no money, so every one of them
        # is compared with its stored record (from Redis, or from the archive)
        day_ids = sorted(reply.only_in_gateway)
        by_amounts = await stub.Reconcile(
            pb.ReconcileRequest(
                client_id=HOSPITAL,
                date=text,
                by_amounts=True,
                settlement_amounts=[
                    pb.SettlementAmounts(settlement_id=settlement_id, amounts=pb.Amounts())
                    for settlement_id in day_ids
                ],
            )
        )
        reads[f"amounts:{text}"] = sorted(
            difference.SerializeToString(deterministic=True)
            for difference in by_amounts.amount_differences
        )
        assert len(by_amounts.amount_differences) == len(day_ids)
    return reads


async def history_and_archive(adjudicator: Adjudicator) -> tuple[History, Path]:
    """The history settled, and the adjudicator's archive folder."""
    history = await settle_history(adjudicator)
    root = adjudicator.settings.archive_dir
    assert root is not None
    return history, root


def job(adjudicator: Adjudicator, root: Path, **options: Any) -> ArchiveJob:
    """The archive job over the adjudicator's Redis, keeping no closed day."""
    return ArchiveJob(
        adjudicator.running.service.store.client,
        root,
        keep_days=options.pop("keep_days", 0),
        restored_grace_seconds=options.pop("grace", 0),
        **options,
    )


def member_data_keys(redis_url: str) -> list[bytes]:
    """Every settlement, visit, claim, journal and day key Redis holds."""
    client = sync_client(redis_url)
    kinds = (b":s:", b":v:", b":vc:", b":day:", b":dayids:", b":dayrev:")
    found = [
        key for key in client.scan_iter(match=f"{layout.PREFIX}:*") if any(k in key for k in kinds)
    ]
    journals = [
        key for key in client.scan_iter(match=f"{layout.PREFIX}:*:journal") if client.xlen(key)
    ]
    return sorted(found + journals)


@ON_BOTH
async def test_archived_days_leave_redis_and_every_read_answers_the_same(
    archived_adjudicator: Adjudicator, redis_url: str
) -> None:
    adjudicator = archived_adjudicator
    history, root = await history_and_archive(adjudicator)

    report = await job(adjudicator, root).run()

    assert report.settlements == 9
    assert report.visits == 9
    assert report.journal_entries == 11  # nine settlements, two reversals
    assert member_data_keys(redis_url) == []  # nothing of those days is left in Redis
    assert await every_read(adjudicator, history.receipts) == history.reads
    # a second run finds nothing to do
    again = await job(adjudicator, root).run()
    assert (again.parts, again.settlements, again.kept) == (0, 0, 0)


@ON_BOTH
async def test_replays_refusals_and_reversals_of_archived_settlements(
    archived_adjudicator: Adjudicator, redis_url: str
) -> None:
    adjudicator = archived_adjudicator
    history, root = await history_and_archive(adjudicator)
    await job(adjudicator, root).run()
    stub = adjudicator.stub
    adjudicator.running.service.clock = lambda: noon_ms(date(2026, 11, 20))

    # the same request again is its settlement, replayed, never a second one
    replay = await stub.Settle(history.requests["ARV-0-0"])
    assert replay.settlement_id == history.receipts["ARV-0-0"].settlement_id
    assert replay.replayed
    # a late retry of a reversed request is answered with its reversal
    late = await stub.Settle(history.requests["ARV-0-1"])
    assert (late.settlement_id, late.status) == (history.reversed_ids[0], "reversed")
    # another request for an archived, settled visit is refused
    other = pb.SettleRequest()
    other.CopyFrom(history.requests["ARV-2-0"])
    other.fingerprint = b"\x01" * 32
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Settle(other)
    assert error_code(refused.value) == "VISIT_ALREADY_SETTLED"
    # reversing an archived settlement takes back exactly what it added, once
    target = history.receipts["ARV-2-1"]
    before = await member_basic_fund(redis_url, "AR00002")
    undone = await stub.Reverse(
        pb.ReverseRequest(client_id=HOSPITAL, settlement_id=target.settlement_id)
    )
    assert undone.status == "reversed"
    assert await member_basic_fund(redis_url, "AR00002") == before - target.amounts.basic_fund
    again = await stub.Reverse(
        pb.ReverseRequest(client_id=HOSPITAL, settlement_id=target.settlement_id)
    )
    assert again.status == "reversed"
    assert await member_basic_fund(redis_url, "AR00002") == before - target.amounts.basic_fund

    # once quiet, what was put back goes back to the archive, and reads show the reversal
    report = await job(adjudicator, root).run()
    assert report.restored_back >= 2
    assert member_data_keys(redis_url) == [] or all(
        b":day" in key or b"journal" in key for key in member_data_keys(redis_url)
    )
    got = await stub.GetSettlement(
        pb.GetSettlementRequest(client_id=HOSPITAL, settlement_id=target.settlement_id)
    )
    assert got.status == "reversed"
    # and the visit, archived again, still refuses another request and replays its own
    with pytest.raises(grpc.aio.AioRpcError) as refused_again:
        await stub.Settle(other)
    assert error_code(refused_again.value) == "VISIT_ALREADY_SETTLED"
    assert (await stub.Settle(history.requests["ARV-0-0"])).replayed


async def member_basic_fund(redis_url: str, member_id: str) -> int:
    """The member's basic fund paid in 2026, from Redis."""
    raw = sync_client(redis_url).hget(
        layout.member_key(member_id), layout.year_field(2026, "basic_fund")
    )
    return int(raw or 0)


async def test_retention_keeps_the_newest_days(
    archived_adjudicator: Adjudicator, redis_url: str
) -> None:
    adjudicator = archived_adjudicator
    history, root = await history_and_archive(adjudicator)
    # Redis keeps today and the days back to DAYS[1]: DAYS[0] alone is archived
    keep = (settlement_day(now_ms() - CLOCK_SLACK_MS) - DAYS[1]).days
    report = await job(adjudicator, root, keep_days=keep).run()
    assert [unit.split("/")[0] for unit in report.days] == [DAYS[0].isoformat()] * len(report.days)
    assert report.settlements == 3
    assert await every_read(adjudicator, history.receipts) == history.reads


async def test_parts_are_checksummed_and_one_job_runs_at_a_time(
    archived_adjudicator: Adjudicator, tmp_path: Path
) -> None:
    adjudicator = archived_adjudicator
    await settle_history(adjudicator)
    root = adjudicator.settings.archive_dir
    assert root is not None
    with _job_lock(root), pytest.raises(ArchiveBusy):
        await job(adjudicator, root).run()
    await job(adjudicator, root).run()
    parts = sorted(root.glob("*/g*/part-*.jsonl.gz"))
    assert parts
    placed, trailer = read_part(parts[0])
    assert trailer["records"] == len(placed)
    assert len(trailer["sha256"]) == 64
    damaged = bytearray(parts[0].read_bytes())
    damaged[len(damaged) // 3] ^= 0xFF
    copy = tmp_path / "damaged.jsonl.gz"
    copy.write_bytes(bytes(damaged))
    with pytest.raises(ArchiveCorrupt):
        read_part(copy)
    assert ArchiveReader(root).archived_groups(DAYS[0])


def archive_command(redis_url: str, root: Path, kill_at: str = "") -> int:
    """``onestop archive`` in its own process (killed at ``kill_at``); its exit status."""
    environment = {**os.environ, KILL_AT_ENV: kill_at}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "onestop",
            "archive",
            "--redis-url",
            redis_url,
            "--archive-dir",
            str(root),
            "--keep-days",
            "0",
            "--restored-grace-seconds",
            "0",
            "--batch",
            "1",  # a journal entry at a time: a day of two entries takes two batches
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if kill_at == "" and done.returncode != 0:
        raise AssertionError(done.stderr)
    return done.returncode


def lines_on_disk(root: Path) -> Counter[tuple[str, str]]:
    """How often each journal entry (group, stream id) and settlement is written in all parts."""
    seen: Counter[tuple[str, str]] = Counter()
    for path in root.glob("*/g*/part-*.jsonl.gz"):
        placed, _ = read_part(path)
        for item in placed:
            if item.line["kind"] == "journal":
                seen[("journal", f"{path.parent.name}:{item.line['stream_id']}")] += 1
            elif item.line["kind"] == "settlement":
                seen[("settlement", item.line["id"])] += 1
    return seen


async def test_a_job_killed_at_any_step_loses_nothing_and_duplicates_nothing(
    archived_adjudicator: Adjudicator, redis_url: str
) -> None:
    adjudicator = archived_adjudicator
    history, root = await history_and_archive(adjudicator)
    # Each run is killed (SIGKILL) at a later step of its work; every read in between answers
    # as before, whatever half-done state the archive and Redis are in.
    # (A day's batches but the last are the two days with two entries in one group: those
    # steps go first.)
    for step in (
        "part-indexed:1",
        "batch-trimmed:1",
        "part-on-disk:2",
        "part-renamed:2",
        "day-keys-indexed:2",
        "day-keys-trimmed:1",
        "journal-trimmed:1",
    ):
        assert archive_command(redis_url, root, step) == -signal.SIGKILL, step
        assert await every_read(adjudicator, history.receipts) == history.reads, step
    archive_command(redis_url, root)
    assert member_data_keys(redis_url) == []
    assert await every_read(adjudicator, history.receipts) == history.reads
    written = lines_on_disk(root)
    assert sum(1 for kind, _ in written if kind == "settlement") == 9
    assert sum(1 for kind, _ in written if kind == "journal") == 11
    assert set(written.values()) == {1}  # nothing written twice

    # a reversal puts a settlement back; the job moving it back is killed, then finishes
    adjudicator.running.service.clock = lambda: noon_ms(date(2026, 11, 20))
    target = history.receipts["ARV-2-2"].settlement_id
    await adjudicator.stub.Reverse(pb.ReverseRequest(client_id=HOSPITAL, settlement_id=target))
    assert archive_command(redis_url, root, "restored-indexed:1") == -signal.SIGKILL
    archive_command(redis_url, root)
    got = await adjudicator.stub.GetSettlement(
        pb.GetSettlementRequest(client_id=HOSPITAL, settlement_id=target)
    )
    assert got.status == "reversed"
    assert not sync_client(redis_url).exists(
        layout.settlement_key(layout.group_of_settlement(target) or 0, target)
    )


async def test_the_adjudicator_runs_the_job_on_its_schedule(
    archived_adjudicator: Adjudicator, redis_url: str
) -> None:
    adjudicator = archived_adjudicator
    history, _ = await history_and_archive(adjudicator)
    # The schedule exactly as the server starts it with ARCHIVE_EVERY_SECONDS set.
    settings = adjudicator.settings.model_copy(
        update={"archive_every_seconds": 0.2, "archive_keep_days": 0}
    )
    scheduled = _ScheduledArchive(settings, asyncio.Event())
    scheduled.start()
    try:
        for _ in range(100):
            if not member_data_keys(redis_url):
                break
            await asyncio.sleep(0.1)
    finally:
        await scheduled.stop()
    assert member_data_keys(redis_url) == []
    assert await every_read(adjudicator, history.receipts) == history.reads
