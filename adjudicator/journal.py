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


async def day_entries(
    client: RedisClient, day: date, client_id: str = ""
) -> AsyncIterator[JournalEntry]:
    """Every entry of ``day`` (of ``client_id``, or of all clients), in commit-time order.

    Each group's stream is read a page at a time and the groups are merged with a heap, so
    memory stays bounded (groups x page) however busy the day was.
    """
    start, end = day_bounds_ms(day)
    # stream ids start at 0: a day before 1970 (only ever asked by mistake) reads nothing
    low, high = str(max(start, 0)), str(max(end + CLOCK_SLACK_MS, 0))
    async with redis_calls():
        pipe = client.pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.xrange(journal_key(group), min=low, max=high, count=PAGE)
        first_pages = cast(list[Page], await pipe.execute())

    buffers: dict[int, Page] = {}
    heap: list[tuple[int, str, int, int, JournalEntry]] = []

    async def advance(group: int) -> None:
        page = buffers[group]
        while page:
            stream_id, fields = page.pop(0)
            if not page:
                async with redis_calls():
                    buffers[group] = page = cast(
                        Page,
                        await client.xrange(
                            journal_key(group), min=b"(" + stream_id, max=high, count=PAGE
                        ),
                    )
            entry = decode_journal_entry(fields)
            if start <= entry.at_ms < end and (not client_id or entry.client_id == client_id):
                order = 0 if entry.kind is EntryKind.SETTLEMENT else 1
                heapq.heappush(heap, (entry.at_ms, entry.settlement_id, order, group, entry))
                return

    for group, page in enumerate(first_pages):
        if page:
            buffers[group] = page
            await advance(group)
    while heap:
        *_, group, entry = heapq.heappop(heap)
        yield entry
        await advance(group)


async def day_settlement_ids(client: RedisClient, client_id: str, day: date) -> list[str]:
    """Ids of the settlements ``client_id`` committed on ``day``, from the per-client lists.

    One read per group of the caller's own list: the cost does not grow with other clients'
    settlements of the day.
    """
    text = day_text(day)
    async with redis_calls():
        pipe = client.pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.lrange(day_settlements_key(group, text, client_id), 0, -1)
        lists = cast(list[list[bytes]], await pipe.execute())
    return [settlement_id.decode() for ids in lists for settlement_id in ids]


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


async def day_events(client: RedisClient, client_id: str, day: date) -> list[DayEvent]:
    """A client's settlements and reversals committed on ``day``, in commit order.

    Reads the client's per-group day lists (never the journal): the cost follows the client's
    own volume of the day.
    """
    text = day_text(day)
    async with redis_calls():
        pipe = client.pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.lrange(day_settlements_key(group, text, client_id), 0, -1)
            pipe.zrange(day_reversals_key(group, text, client_id), 0, -1, withscores=True)
        answers: list[Any] = await pipe.execute()
    events: list[DayEvent] = []
    for index in range(0, len(answers), 2):
        for raw_id in answers[index]:
            settlement_id = raw_id.decode()
            ms = settlement_id_ms(settlement_id)
            if ms is None:
                raise CorruptRecord(f"day list entry {settlement_id!r} is not a settlement id")
            events.append(DayEvent(ms, False, settlement_id))
        for raw_id, score in answers[index + 1]:
            events.append(DayEvent(int(score), True, raw_id.decode()))
    events.sort()
    return events


async def day_totals(client: RedisClient, client_id: str, day: date) -> DayTotals:
    """A client's day and its split by visit type and scheme.

    Read from the per-group day totals the commit and reversal scripts keep.
    """
    text = day_text(day)
    async with redis_calls():
        pipe = client.pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.hgetall(day_totals_key(group, text, client_id))
        totals = cast(list[dict[bytes, bytes]], await pipe.execute())
    return sum_day_totals(totals)
