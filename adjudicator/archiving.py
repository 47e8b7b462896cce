"""The archive job: move closed days out of Redis into the archive, crash-safely.

For each slot group, the journal is the work queue: the oldest entry's day, if it is older
than the retention, is archived and trimmed, then the next day. One (day, group) goes in
batches of journal entries; each batch is:

1. read: the entries, the settlements they commit, and each visit whose latest settlement is
   one of them (claim and every claimant's visit index);
2. written as a new part (temporary file, flushed, renamed) and indexed;
3. trimmed from Redis, each key only if it still holds exactly what was written
   (``trim_unchanged.lua``).

Then the day's per-client keys (totals, settlement ids, reversals) are written and trimmed the
same way, and last the journal entries themselves are deleted. A job stopped anywhere (kill
-9) is run again from the start: whatever Redis still holds is read again, what the archive
holds already is not written twice, and nothing leaves Redis before it is on disk.

Keys put back from the archive (:func:`onestop.storage.layout.restored_key`) go back to it
once they have been quiet for the grace period.

One job at a time per archive folder (a lock on ``job.lock``); a second is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

from adjudicator.journal import CLOCK_SLACK_MS, day_bounds_ms
from adjudicator.store import lua_script
from onestop.clock import now_ms, settlement_day
from onestop.domain.reconciliation import EntryKind
from onestop.redis_client import RedisClient, RedisPipeline, redis_calls, run_pipeline
from onestop.storage import layout
from onestop.storage.archive import (
    LOCK_FILE,
    ArchiveIndex,
    ArchiveReader,
    RecordKind,
    VisitBundle,
    day_ident,
    day_ids_line,
    day_reversals_line,
    day_totals_line,
    decode_hash,
    journal_line,
    part_path,
    settlement_line,
    value_digests,
    write_part,
)
from onestop.storage.layout import JournalField, MemberField, VisitField
from onestop.storage.records import decode_claimants

log = logging.getLogger("onestop.archive")

KILL_AT_ENV = "ONESTOP_ARCHIVE_KILL_AT"
"""For the crash tests: ``STEP`` or ``STEP:N`` makes the job kill itself (SIGKILL) the Nth
time it reaches ``STEP`` (:data:`STEPS`). Never set in production."""

STEPS = (
    "part-on-disk",
    "part-renamed",
    "part-indexed",
    "batch-trimmed",
    "day-keys-indexed",
    "day-keys-trimmed",
    "journal-trimmed",
    "restored-indexed",
)
"""Where the job may be stopped by :data:`KILL_AT_ENV`, in the order a day reaches them."""

BATCH = 500
"""Journal entries per batch (and per part)."""

RawHash = dict[bytes, bytes]


class ArchiveBusy(RuntimeError):
    """Another archive job holds this archive folder."""


@dataclass
class ArchiveReport:
    """What one run did."""

    days: list[str] = field(default_factory=list)
    """``YYYY-MM-DD/gGGG`` of every (day, group) archived."""
    parts: int = 0
    settlements: int = 0
    visits: int = 0
    journal_entries: int = 0
    day_records: int = 0
    restored_back: int = 0
    """Keys put back from the archive and moved there again."""
    kept: int = 0
    """Keys that changed between being read and being trimmed: left for the next run."""

    def as_json(self) -> dict[str, Any]:
        """The report by name."""
        return {
            "units": len(self.days),
            "parts": self.parts,
            "settlements": self.settlements,
            "visits": self.visits,
            "journal_entries": self.journal_entries,
            "day_records": self.day_records,
            "restored_back": self.restored_back,
            "kept": self.kept,
        }


class _KillSwitch:
    def __init__(self) -> None:
        spec = os.environ.get(KILL_AT_ENV, "")
        step, _, count = spec.partition(":")
        if step and step not in STEPS:
            raise ValueError(f"{KILL_AT_ENV}={spec}: the steps are {', '.join(STEPS)}")
        self.step = step
        self.remaining = int(count or 1)

    def reached(self, step: str) -> None:
        if step == self.step:
            self.remaining -= 1
            if self.remaining == 0:
                os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def _job_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise ArchiveBusy(f"another archive job is running on {root}") from error
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def last_archived_day(now: int, keep_days: int) -> date:
    """The newest day a run at ``now`` archives: closed, and older than ``keep_days`` days.

    Redis keeps today and the ``keep_days`` days before it. A day counts as closed only once
    the journal's clock slack has passed after its end (late entries may still arrive).
    """
    return settlement_day(now - CLOCK_SLACK_MS) - timedelta(days=keep_days + 1)


@dataclass
class _Unit:
    """One (day, group) being archived, and the journal entries on disk for it."""

    day: date
    group: int
    index: ArchiveIndex
    on_disk: set[str] = field(default_factory=set)
    """Stream ids of the unit's journal entries in its parts (read at the start of the unit,
    then added to as this run writes)."""
    archived_before: bool = False
    """An earlier, stopped run wrote parts for this unit: what Redis holds may be on disk
    already. Otherwise nothing of it is (a unit's settlements and day records are written to
    its own parts only), and the archive need not be asked."""


class ArchiveJob:
    """Moves what Redis need no longer hold to the archive folder (see the module)."""

    def __init__(
        self,
        client: RedisClient,
        root: Path,
        *,
        keep_days: int,
        restored_grace_seconds: float = 3600,
        clock: Any = now_ms,
        batch: int = BATCH,
    ) -> None:
        self.client = client
        self.root = root
        self.keep_days = keep_days
        self.restored_grace_ms = int(restored_grace_seconds * 1000)
        self.clock = clock
        self.batch = batch
        self.reader = ArchiveReader(root)
        self._trim_unchanged = lua_script("trim_unchanged.lua")
        self._kill = _KillSwitch()

    async def run(self, stopping: asyncio.Event | None = None) -> ArchiveReport:
        """One run: every closed day past the retention, then the restored keys.

        Args:
            stopping: once set, the run ends after the (day, group) it is in.

        Raises:
            ArchiveBusy: another job holds the folder.
            Unavailable: Redis failed; run again (nothing is lost).
        """
        report = ArchiveReport()
        with _job_lock(self.root):
            index = ArchiveIndex(self.root, write=True)
            try:
                recovered = index.add_missing_parts()
                if recovered:
                    log.warning("indexed parts a stopped job left", extra={"parts": len(recovered)})
                self.reader.close()
                last = last_archived_day(self.clock(), self.keep_days)
                for group in range(layout.GROUPS):
                    if stopping is not None and stopping.is_set():
                        return report
                    await self._group(index, group, last, report)
                await self._restored(index, last, report)
            finally:
                index.close()
                self.reader.close()
        return report

    # -- days ---------------------------------------------------------------------------------

    async def _oldest(self, group: int) -> tuple[date, bytes] | None:
        """The day and stream id of the group's oldest journal entry, if any."""
        async with redis_calls():
            first = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self.client.xrange(layout.journal_key(group), count=1),
            )
        if not first:
            return None
        stream_id, fields = first[0]
        return settlement_day(int(fields[JournalField.AT_MS.value.encode()])), stream_id

    async def _group(
        self, index: ArchiveIndex, group: int, last: date, report: ArchiveReport
    ) -> None:
        seen: bytes | None = None
        while (oldest := await self._oldest(group)) is not None and oldest[0] <= last:
            day, stream_id = oldest
            if stream_id == seen:
                # Its id lies past its day (a clock far behind the others when it was
                # written): archiving that day did not reach it. Leave it for an operator.
                log.error(
                    "archive: a journal entry is far from its day; the group stops there",
                    extra={"group": group, "stream_id": stream_id.decode()},
                )
                return
            seen = stream_id
            left = await self._day(_Unit(day, group, index), report)
            report.days.append(f"{day.isoformat()}/g{group:03x}")
            if left:
                # The journal kept entries it should have lost: stop rather than loop.
                log.error(
                    "archive: journal entries of an archived day remain",
                    extra={"day": day.isoformat(), "group": group, "entries": left},
                )
                return

    async def _day_entries(
        self, unit: _Unit
    ) -> AsyncIterator[list[tuple[bytes, dict[bytes, bytes]]]]:
        """The unit's journal entries a page at a time (those whose time is in its day)."""
        start, end = day_bounds_ms(unit.day)
        journal = layout.journal_key(unit.group)
        low, high = str(start), str(end + CLOCK_SLACK_MS)
        while True:
            async with redis_calls():
                page = cast(
                    list[tuple[bytes, dict[bytes, bytes]]],
                    await self.client.xrange(journal, min=low, max=high, count=self.batch),
                )
            if not page:
                return
            low = "(" + page[-1][0].decode()
            yield [
                (stream_id, fields)
                for stream_id, fields in page
                if start <= int(fields[JournalField.AT_MS.value.encode()]) < end
            ]

    async def _day(self, unit: _Unit, report: ArchiveReport) -> int:
        unit.archived_before = bool(unit.index.parts(unit.day, unit.group))
        if unit.archived_before:
            unit.on_disk.update(
                stream_id for stream_id, _ in self.reader.journal(unit.day, unit.group)
            )
        clients: set[str] = set()
        pending: _Batch | None = None
        async for page in self._day_entries(unit):
            entries = [(stream_id.decode(), fields) for stream_id, fields in page]
            clients.update(
                fields[JournalField.CLIENT_ID.value.encode()].decode() for _, fields in entries
            )
            if pending is not None:
                await self._finish(unit, pending, report, "part-indexed", "batch-trimmed")
            pending = await self._batch(unit, entries, report)
        # The day's per-client keys go with its last batch: one part for a quiet day.
        last = await self._day_keys(unit, sorted(clients), report)
        if pending is not None:
            last = pending.then(last)
        await self._finish(unit, last, report, "day-keys-indexed", "day-keys-trimmed")
        return await self._trim_journal(unit)

    async def _batch(
        self, unit: _Unit, entries: list[tuple[str, dict[bytes, bytes]]], report: ArchiveReport
    ) -> _Batch:
        """What one page of journal entries takes to the archive, and out of Redis."""
        batch = _Batch()
        batch.lines = [
            journal_line(stream_id, fields)
            for stream_id, fields in entries
            if stream_id not in unit.on_disk
        ]
        batch.journal = [line["stream_id"] for line in batch.lines]
        settled = [
            fields
            for _, fields in entries
            if fields[JournalField.KIND.value.encode()].decode() == EntryKind.SETTLEMENT.value
        ]
        settlement_ids = [
            fields[JournalField.SETTLEMENT_ID.value.encode()].decode() for fields in settled
        ]
        hashes = await self._hashes(
            [layout.settlement_key(unit.group, settlement_id) for settlement_id in settlement_ids]
        )
        for settlement_id, raw in zip(settlement_ids, hashes, strict=True):
            if not raw:
                continue  # archived and trimmed by an earlier run
            if not unit.archived_before or self.reader.settlement(settlement_id) != raw:
                batch.lines.append(settlement_line(settlement_id, raw))
                report.settlements += 1
            batch.trims.append(
                _Trim("hash", layout.settlement_key(unit.group, settlement_id), value_digests(raw))
            )
        visits = [
            (
                fields[JournalField.CLIENT_ID.value.encode()].decode(),
                fields[JournalField.VISIT_ID.value.encode()].decode(),
                fields[JournalField.MEMBER_ID.value.encode()].decode(),
            )
            for fields in settled
        ]
        bundles = await self._bundles(visits)
        for settlement_id, bundle in zip(settlement_ids, bundles, strict=True):
            if bundle is None or _latest_settlement(bundle) != settlement_id:
                continue  # archived already, or a later settlement of the visit takes it along
            merged = self._merged(bundle)
            if merged != self.reader.visit(bundle.client_id, bundle.visit_id):
                batch.lines.append(merged.record())
                report.visits += 1
            batch.add_bundle(bundle)
        return batch

    async def _day_keys(self, unit: _Unit, clients: list[str], report: ArchiveReport) -> _Batch:
        """What the day's per-client keys of the group take to the archive, and out of Redis."""
        text = layout.day_text(unit.day)
        group = unit.group
        batch = _Batch()

        def build(pipe: RedisPipeline) -> None:
            for client_id in clients:
                pipe.hgetall(layout.day_totals_key(group, text, client_id))
                pipe.lrange(layout.day_settlements_key(group, text, client_id), 0, -1)
                pipe.zrange(
                    layout.day_reversals_key(group, text, client_id), 0, -1, withscores=True
                )

        async with redis_calls():
            answers = await run_pipeline(self.client, build) if clients else []
        for position, client_id in enumerate(clients):
            totals, ids, reversals = answers[3 * position : 3 * position + 3]
            ident = day_ident(unit.day, group, client_id)
            if totals:
                if self._day_line(unit, RecordKind.DAY_TOTALS, ident) != totals:
                    batch.lines.append(day_totals_line(client_id, totals))
                batch.trims.append(
                    _Trim(
                        "hash", layout.day_totals_key(group, text, client_id), value_digests(totals)
                    )
                )
            if ids:
                id_texts = [item.decode() for item in ids]
                if self._day_line(unit, RecordKind.DAY_IDS, ident) != id_texts:
                    batch.lines.append(day_ids_line(client_id, id_texts))
                batch.trims.append(
                    _Trim(
                        "list",
                        layout.day_settlements_key(group, text, client_id),
                        [_sha1(item) for item in ids],
                    )
                )
            if reversals:
                pairs = [(item.decode(), int(score)) for item, score in reversals]
                if self._day_line(unit, RecordKind.DAY_REVERSALS, ident) != [
                    list(p) for p in pairs
                ]:
                    batch.lines.append(day_reversals_line(client_id, pairs))
                flat: list[bytes] = []
                for settlement_id, ms in pairs:
                    flat += [settlement_id.encode(), str(ms).encode()]
                batch.trims.append(
                    _Trim("zset", layout.day_reversals_key(group, text, client_id), flat)
                )
        report.day_records += sum(1 for line in batch.lines if line["kind"] != RecordKind.JOURNAL)
        return batch

    async def _finish(
        self, unit: _Unit, batch: _Batch, report: ArchiveReport, written: str, trimmed: str
    ) -> None:
        """Write a batch's part (if it has lines), then trim what it took, in two pipelines."""
        if batch.lines:
            await self._write(unit, batch.lines, report, written)
        unit.on_disk.update(batch.journal)
        report.journal_entries += len(batch.journal)
        done = await self._trim_all(batch.trims, report)
        # A visit's claim goes only once every index of it went: whoever finds the claim
        # finds what it names, in Redis or in the archive.
        claims = [
            claim for claim, needs in batch.claims if all(done[position] for position in needs)
        ]
        await self._trim_all(claims, report)
        self._kill.reached(trimmed)

    def _day_line(self, unit: _Unit, kind: RecordKind, ident: str) -> Any:
        line = self.reader.line(kind, ident) if unit.archived_before else None
        if line is None:
            return None
        if kind == RecordKind.DAY_TOTALS:
            return decode_hash(line["hash"])
        if kind == RecordKind.DAY_IDS:
            return line["ids"]
        return line["reversals"]

    async def _trim_journal(self, unit: _Unit) -> int:
        """Delete the unit's journal entries that are on disk; how many are not."""
        left = 0
        async for page in self._day_entries(unit):
            # Only what is on disk leaves Redis.
            gone = [stream_id for stream_id, _ in page if stream_id.decode() in unit.on_disk]
            left += len(page) - len(gone)
            if gone:
                async with redis_calls():
                    await self.client.xdel(layout.journal_key(unit.group), *gone)
                self._kill.reached("journal-trimmed")
        return left

    # -- visits -------------------------------------------------------------------------------

    async def _bundle(
        self, client_id: str, visit_id: str, members: tuple[str, ...]
    ) -> VisitBundle | None:
        """What Redis holds of a (client, visit), ``None`` when it holds nothing."""
        (bundle,) = await self._bundles([(client_id, visit_id, *members)])
        return bundle

    async def _bundles(self, visits: Sequence[tuple[str, ...]]) -> list[VisitBundle | None]:
        """What Redis holds of each (client, visit, member...), in two round trips."""
        claims = await self._hashes([layout.visit_claim_key(c, v) for c, v, *_ in visits])
        claimants = [
            list(dict.fromkeys([*decode_claimants(claim), *members]))
            for claim, (_, _, *members) in zip(claims, visits, strict=True)
        ]
        keys = [
            layout.visit_key(member, client_id, visit_id)
            for (client_id, visit_id, *_), members in zip(visits, claimants, strict=True)
            for member in members
        ]
        indexes = iter(await self._hashes(keys))
        found: list[VisitBundle | None] = []
        for (client_id, visit_id, *_), claim, members in zip(
            visits, claims, claimants, strict=True
        ):
            present = {member: raw for member in members if (raw := next(indexes))}
            if not claim and not present:
                found.append(None)
            else:
                found.append(VisitBundle(client_id, visit_id, claim or None, present))
        return found

    def _merged(self, bundle: VisitBundle) -> VisitBundle:
        """The bundle with what the archive holds and Redis no longer does (a stopped run)."""
        archived = self.reader.visit(bundle.client_id, bundle.visit_id)
        if archived is None:
            return bundle
        return VisitBundle(
            bundle.client_id,
            bundle.visit_id,
            bundle.claim if bundle.claim is not None else archived.claim,
            {**archived.indexes, **bundle.indexes},
        )

    async def _trim_bundle(self, bundle: VisitBundle, report: ArchiveReport) -> bool:
        """Trim a visit's indexes, then its claim; whether all of it left Redis."""
        batch = _Batch()
        batch.add_bundle(bundle)
        done = await self._trim_all(batch.trims, report)
        if not all(done):
            return False
        return all(await self._trim_all([claim for claim, _ in batch.claims], report))

    # -- restored keys ------------------------------------------------------------------------

    async def _restored(self, index: ArchiveIndex, last: date, report: ArchiveReport) -> None:
        quiet_before = self.clock() - self.restored_grace_ms

        def build(pipe: RedisPipeline) -> None:
            for group in range(layout.GROUPS):
                pipe.zrangebyscore(layout.restored_key(group), "-inf", quiet_before)

        async with redis_calls():
            answers = cast(list[list[bytes]], await run_pipeline(self.client, build))
        settlements: list[str] = []
        visits: dict[tuple[str, str], list[str]] = {}
        for group, restored in enumerate(answers):
            for raw_key in restored:
                key = raw_key.decode()
                kind, _, rest = key.partition("}:")[2].partition(":")
                if kind == "s":
                    settlements.append(rest)
                elif kind in ("v", "vc"):
                    client_id, _, visit_id = rest.partition(":")
                    visits.setdefault((client_id, visit_id), []).append(key)
                else:
                    await self._forget_restored(group, key)
        for settlement_id in settlements:
            await self._settlement_back(index, settlement_id, last, report)
        for (client_id, visit_id), visit_keys in visits.items():
            await self._visit_back(index, client_id, visit_id, visit_keys, last, report)

    async def _forget_restored(self, group: int, key: str) -> None:
        async with redis_calls():
            await self.client.zrem(layout.restored_key(group), key)

    async def _settlement_back(
        self, index: ArchiveIndex, settlement_id: str, last: date, report: ArchiveReport
    ) -> None:
        group = layout.group_of_settlement(settlement_id)
        ms = layout.settlement_id_ms(settlement_id)
        if group is None or ms is None:
            return
        key = layout.settlement_key(group, settlement_id)
        (raw,) = await self._hashes([key])
        day = settlement_day(ms)
        if raw and day <= last:
            if self.reader.settlement(settlement_id) != raw:
                await self._write(
                    _Unit(day, group, index),
                    [settlement_line(settlement_id, raw)],
                    report,
                    "restored-indexed",
                )
            if not await self._trim_hash(key, raw, report):
                return  # changed meanwhile: next run
            report.restored_back += 1
        await self._forget_restored(group, key)

    async def _visit_back(
        self,
        index: ArchiveIndex,
        client_id: str,
        visit_id: str,
        keys: list[str],
        last: date,
        report: ArchiveReport,
    ) -> None:
        bundle = await self._bundle(client_id, visit_id, ())
        if bundle is not None:
            latest = _latest_settlement(bundle)
            ms = layout.settlement_id_ms(latest) if latest else None
            group = layout.group_of_settlement(latest) if latest else None
            if ms is not None and group is not None and settlement_day(ms) <= last:
                merged = self._merged(bundle)
                if merged != self.reader.visit(client_id, visit_id):
                    await self._write(
                        _Unit(settlement_day(ms), group, index),
                        [merged.record()],
                        report,
                        "restored-indexed",
                    )
                if not await self._trim_bundle(bundle, report):
                    return
                report.restored_back += 1
            # else: a settlement since the restore keeps it live: its own day takes it along
        for key in keys:
            group_of = layout.group_of_key(key)
            if group_of is not None:
                await self._forget_restored(group_of, key)

    # -- writing and trimming -----------------------------------------------------------------

    async def _write(
        self, unit: _Unit, lines: list[dict[str, Any]], report: ArchiveReport, step: str
    ) -> None:
        part = unit.index.next_part(unit.day, unit.group)
        while part_path(self.root, unit.day, unit.group, part).exists():
            # Renamed into place by a run stopped before indexing it: index it, write the next.
            unit.index.add_part_file(unit.day, unit.group, part)
            part += 1
        written = write_part(
            self.root,
            unit.day,
            unit.group,
            part,
            lines,
            before_rename=lambda: self._kill.reached("part-on-disk"),
        )
        self._kill.reached("part-renamed")
        unit.index.add_part(written)
        self.reader.close()  # see the new part
        report.parts += 1
        self._kill.reached(step)

    async def _hashes(self, keys: list[str]) -> list[RawHash]:
        if not keys:
            return []

        def build(pipe: RedisPipeline) -> None:
            for key in keys:
                pipe.hgetall(key)

        async with redis_calls():
            return cast(list[RawHash], await run_pipeline(self.client, build))

    async def _trim_hash(self, key: str, raw: RawHash, report: ArchiveReport) -> bool:
        (done,) = await self._trim_all([_Trim("hash", key, value_digests(raw))], report)
        return done

    async def _trim_all(self, trims: list[_Trim], report: ArchiveReport) -> list[bool]:
        """Delete each key that is unchanged, in one pipeline; which of them are gone."""
        if not trims:
            return []
        script = self._trim_unchanged

        def build(pipe: RedisPipeline) -> None:
            for trim in trims:
                script.queue(
                    pipe,
                    [trim.key, trim.version_of or trim.key],
                    [
                        trim.kind,
                        MemberField.VERSION.value if trim.version_of else "",
                        *trim.expected,
                    ],
                )

        async with redis_calls():
            answers = await run_pipeline(self.client, build, (script,))
        done = []
        for trim, answer in zip(trims, answers, strict=True):
            if int(answer) == 0:
                report.kept += 1
                log.info("archive: key changed since it was read; kept", extra={"key": trim.key})
            done.append(int(answer) != 0)
        return done


@dataclass(frozen=True, slots=True)
class _Trim:
    """A key to delete if it still holds what was archived (``trim_unchanged.lua``)."""

    kind: str
    key: str
    expected: list[bytes]
    version_of: str | None = None
    """A member hash whose version moves when the key goes (a visit index)."""


@dataclass
class _Batch:
    """One part's lines, and what leaves Redis once the part is on disk."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    """Stream ids of the journal lines."""
    trims: list[_Trim] = field(default_factory=list)
    claims: list[tuple[_Trim, list[int]]] = field(default_factory=list)
    """Visit claims, each with the positions in :attr:`trims` of its visit's indexes."""

    def add_bundle(self, bundle: VisitBundle) -> None:
        """Trim a visit's indexes, then (if they all went) its claim."""
        positions = []
        for member, raw in bundle.indexes.items():
            positions.append(len(self.trims))
            self.trims.append(
                _Trim(
                    "hash",
                    layout.visit_key(member, bundle.client_id, bundle.visit_id),
                    value_digests(raw),
                    layout.member_key(member),
                )
            )
        if bundle.claim is not None:
            claim_key = layout.visit_claim_key(bundle.client_id, bundle.visit_id)
            self.claims.append((_Trim("hash", claim_key, value_digests(bundle.claim)), positions))

    def then(self, other: _Batch) -> _Batch:
        """This batch and ``other`` as one part."""
        offset = len(self.trims)
        return _Batch(
            self.lines + other.lines,
            self.journal + other.journal,
            self.trims + other.trims,
            self.claims + [(claim, [p + offset for p in needs]) for claim, needs in other.claims],
        )


def _version_field(trim: _Trim) -> str:
    return MemberField.VERSION.value if trim.version_of else ""


def _sha1(value: bytes) -> bytes:
    return hashlib.sha1(value).hexdigest().encode()


def _latest_settlement(bundle: VisitBundle) -> str:
    """The newest settlement a visit's indexes name (by the time its id carries)."""
    named: set[str] = set()
    prefix = layout.REQUEST_FIELD_PREFIX.encode()
    for raw in bundle.indexes.values():
        current = raw.get(VisitField.SETTLEMENT_ID.value.encode())
        if current:
            named.add(current.decode())
        named.update(value.decode() for name, value in raw.items() if name.startswith(prefix))
    if not named:
        return ""
    return max(
        named,
        key=lambda settlement_id: (layout.settlement_id_ms(settlement_id) or 0, settlement_id),
    )


__all__ = [
    "KILL_AT_ENV",
    "STEPS",
    "ArchiveBusy",
    "ArchiveJob",
    "ArchiveReport",
    "last_archived_day",
]
