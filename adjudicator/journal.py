"""Reading the journal for reconciliation and exports.

A day's entries come from every slot group, merged in time order; a client's day figures come
from the totals the commit and reversal scripts keep beside the journal, and its settlement ids
from the per-client lists the commit and reversal scripts keep.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from onestop.clock import SHANGHAI_OFFSET
from onestop.domain.reconciliation import EntryKind, JournalEntry
from onestop.redis_client import RedisClient, redis_calls
from onestop.storage.archive import ArchiveReader, stream_order
from onestop.storage.layout import (
    GROUPS,
    day_reversals_key,
    day_settlements_key,
    day_text,
    day_totals_key,
    journal_key,
    settlement_id_ms,
)
from onestop.storage.records import (
    CorruptRecord,
    DayTotals,
    decode_journal_entry,
    sum_day_totals,
)

# Stream ids follow the adjudicator's clock but never go backwards: when adjudicator processes'
# clocks differ, an id may run a little ahead of its entry's time. Read an hour past the day
# and keep what the entry's own time puts inside it.
CLOCK_SLACK_MS = 3_600_000
PAGE = 64


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000


def day_bounds_ms(day: date) -> tuple[int, int]:
    """The first and the first-after-last millisecond of an Asia/Shanghai day.

    Integer arithmetic, so that any date the calendar has (year 1 to 9999) has bounds, even
    where a timezone-aware datetime would leave the representable range.
    """
    offset_ms = int(SHANGHAI_OFFSET.total_seconds() * 1000)
    start = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_MS - offset_ms
    return start, start + _DAY_MS


Page = list[tuple[bytes, dict[bytes, bytes]]]


class _GroupEntries:
    """One group's entries of a day in stream order: pages read from Redis as needed.

    For a group the archive holds part of the day, every entry Redis still holds is read
    first and then the archive's: an entry trimmed from Redis before that read was on disk
    before it was trimmed, so none is missed; one in both is taken once.
    """

    def __init__(self, client: RedisClient, group: int, first: Page, high: str) -> None:
        self.client, self.group, self.high = client, group, high
        self.page = first
        self.settled: list[tuple[str, dict[bytes, bytes]]] | None = None

    async def with_archive(self, archive: ArchiveReader, day: date) -> None:
        page = self.page
        while page and len(page) % PAGE == 0:
            async with redis_calls():
                more = cast(
                    Page,
                    await self.client.xrange(
                        journal_key(self.group), min=b"(" + page[-1][0], max=self.high, count=PAGE
                    ),
                )
            if not more:
                break
            page = page + more
        merged = dict(archive.journal(day, self.group))
        merged.update((stream_id.decode(), fields) for stream_id, fields in page)
        self.settled = sorted(merged.items(), key=lambda item: stream_order(item[0]), reverse=True)

    async def next(self) -> dict[bytes, bytes] | None:
        if self.settled is not None:
            return self.settled.pop()[1] if self.settled else None
        if not self.page:
            return None
        stream_id, fields = self.page.pop(0)
        if not self.page:
            async with redis_calls():
                self.page = cast(
                    Page,
                    await self.client.xrange(
                        journal_key(self.group), min=b"(" + stream_id, max=self.high, count=PAGE
                    ),
                )
        return fields


async def day_entries(
    client: RedisClient, day: date, client_id: str = "", archive: ArchiveReader | None = None
) -> AsyncIterator[JournalEntry]:
    """Every entry of ``day`` (of ``client_id``, or of all clients), in commit-time order.

    Each group's stream is read a page at a time and the groups are merged with a heap, so
    memory stays bounded (groups x page) however busy the day was; a group whose day is (in
    part) archived is read whole, from Redis and from the archive.
    """
    start, end = day_bounds_ms(day)
    # stream ids start at 0: a day before 1970 (only ever asked by mistake) reads nothing
    low, high = str(max(start, 0)), str(max(end + CLOCK_SLACK_MS, 0))
    async with redis_calls():
        pipe = client.pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.xrange(journal_key(group), min=low, max=high, count=PAGE)
        first_pages = cast(list[Page], await pipe.execute())
    archived = archive.archived_groups(day) if archive is not None else set()

    readers: dict[int, _GroupEntries] = {}
    heap: list[tuple[int, str, int, int, JournalEntry]] = []

    async def advance(group: int) -> None:
        reader = readers[group]
        while (fields := await reader.next()) is not None:
            entry = decode_journal_entry(fields)
            if start <= entry.at_ms < end and (not client_id or entry.client_id == client_id):
                order = 0 if entry.kind is EntryKind.SETTLEMENT else 1
                heapq.heappush(heap, (entry.at_ms, entry.settlement_id, order, group, entry))
                return

    for group, page in enumerate(first_pages):
        if page or group in archived:
            readers[group] = _GroupEntries(client, group, page, high)
            if group in archived and archive is not None:
                await readers[group].with_archive(archive, day)
            await advance(group)
    while heap:
        *_, group, entry = heapq.heappop(heap)
        yield entry
        await advance(group)


async def day_settlement_ids(
    client: RedisClient, client_id: str, day: date, archive: ArchiveReader | None = None
) -> list[str]:
    """Ids of the settlements ``client_id`` committed on ``day``, from the per-client lists.

    One read per group of the caller's own list: the cost does not grow with other clients'
    settlements of the day. A group's list the archive holds instead is read from there.
    """
    text = day_text(day)
    async with redis_calls():
        pipe = client.pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.lrange(day_settlements_key(group, text, client_id), 0, -1)
        lists = cast(list[list[bytes]], await pipe.execute())
    archived = archive.day_ids(day, client_id) if archive is not None else {}
    found: list[str] = []
    for group, ids in enumerate(lists):
        if ids:
            found += [settlement_id.decode() for settlement_id in ids]
        else:
            found += archived.get(group, [])
    return found


@dataclass(frozen=True, slots=True, order=True)
class DayEvent:
    """A settlement or a reversal one client committed on a day, ordered by commit time."""

    ms: int
    """When it was committed (epoch ms; a settlement's is the time its id names)."""
    is_reversal: bool
    """A reversal of the settlement (``False``: the settlement itself)."""
    settlement_id: str

    @property
    def kind(self) -> EntryKind:
        """Settlement or reversal, as the journal names it."""
        return EntryKind.REVERSAL if self.is_reversal else EntryKind.SETTLEMENT


async def day_events(
    client: RedisClient, client_id: str, day: date, archive: ArchiveReader | None = None
) -> list[DayEvent]:
    """A client's settlements and reversals committed on ``day``, in commit order.

    Reads the client's per-group day lists (never the journal): the cost follows the client's
    own volume of the day. A group's lists the archive holds instead are read from there.
    """
    text = day_text(day)
    async with redis_calls():
        pipe = client.pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.lrange(day_settlements_key(group, text, client_id), 0, -1)
            pipe.zrange(day_reversals_key(group, text, client_id), 0, -1, withscores=True)
        answers: list[Any] = await pipe.execute()
    archived_ids = archive.day_ids(day, client_id) if archive is not None else {}
    archived_reversals = archive.day_reversals(day, client_id) if archive is not None else {}
    events: list[DayEvent] = []
    for group in range(GROUPS):
        ids = [raw_id.decode() for raw_id in answers[2 * group]] or archived_ids.get(group, [])
        for settlement_id in ids:
            ms = settlement_id_ms(settlement_id)
            if ms is None:
                raise CorruptRecord(f"day list entry {settlement_id!r} is not a settlement id")
            events.append(DayEvent(ms, False, settlement_id))
        reversals = [
            (raw_id.decode(), int(score)) for raw_id, score in answers[2 * group + 1]
        ] or archived_reversals.get(group, [])
        for settlement_id, ms in reversals:
            events.append(DayEvent(ms, True, settlement_id))
    events.sort()
    return events


async def day_totals(
    client: RedisClient, client_id: str, day: date, archive: ArchiveReader | None = None
) -> DayTotals:
    """A client's day and its split by visit type and scheme.

    Read from the per-group day totals the commit and reversal scripts keep (from the archive
    for a group whose totals it holds instead).
    """
    text = day_text(day)
    async with redis_calls():
        pipe = client.pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.hgetall(day_totals_key(group, text, client_id))
        totals = cast(list[dict[bytes, bytes]], await pipe.execute())
    if archive is not None:
        archived = archive.day_hashes(day, client_id)
        totals = [found or archived.get(group, {}) for group, found in enumerate(totals)]
    return sum_day_totals(totals)
