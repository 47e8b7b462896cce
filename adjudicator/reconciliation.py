"""对账: a client's day against onestop's, and the record the agency reads of every answer.

onestop's side of a day comes from what the commit and reversal scripts keep beside the
journal: the day totals (split by visit type and scheme), the per-client lists of the day's
settlements, and each settlement's record for its amounts. Every cost follows the caller's own
volume of the day, never the other clients'.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import cast

from adjudicator import journal
from onestop import metrics
from onestop.domain.reconciliation import (
    NO_RECOVERIES,
    ClientDay,
    GatewayDay,
    HospitalDay,
    Reconciliation,
    ReconciliationSummary,
    Recoveries,
    funds_of,
    reconcile,
    summarise,
)
from onestop.redis_client import RedisClient, RedisPipeline, redis_calls, run_pipeline
from onestop.storage import layout
from onestop.storage.archive import ArchiveReader
from onestop.storage.layout import SettlementField
from onestop.storage.records import (
    CorruptRecord,
    decode_reconciliation,
    reconciliation_fields,
    stored_answer,
)
from onestop.wire import amounts_of, stored_message

_RECORD_FIELDS = (SettlementField.PACKED.value, SettlementField.RECORD.value)
"""Either form of a settlement's record (:func:`onestop.storage.records.stored_answer`)."""

AMOUNTS_PAGE = 512
"""Settlement records read per round trip when amounts are compared."""


async def settlement_amounts(
    client: RedisClient, settlement_ids: Sequence[str], archive: ArchiveReader | None = None
) -> dict[str, dict[str, int]]:
    """Each settlement's reconciled funds, from its record, a page at a time.

    A settlement Redis no longer holds is read from the archive.

    Raises:
        CorruptRecord: an id the day lists names no stored settlement.
    """
    found: dict[str, dict[str, int]] = {}
    for start in range(0, len(settlement_ids), AMOUNTS_PAGE):
        page = settlement_ids[start : start + AMOUNTS_PAGE]
        keys = []
        for settlement_id in page:
            group = layout.group_of_settlement(settlement_id)
            if group is None:
                raise CorruptRecord(f"day list entry {settlement_id!r} is not a settlement id")
            keys.append(layout.settlement_key(group, settlement_id))

        def build(pipe: RedisPipeline, keys: list[str] = keys) -> None:
            for key in keys:
                pipe.hmget(key, _RECORD_FIELDS)

        async with redis_calls():
            answers = cast(list[list[bytes | None]], await run_pipeline(client, build))
        for settlement_id, values in zip(page, answers, strict=True):
            raw = {
                name.encode(): value
                for name, value in zip(_RECORD_FIELDS, values, strict=True)
                if value is not None
            }
            if not raw and archive is not None:
                raw = archive.settlement(settlement_id) or {}
            record = stored_answer(raw)
            if record is None:
                raise CorruptRecord(f"settlement {settlement_id} is listed but not stored")
            found[settlement_id] = funds_of(amounts_of(stored_message(record).amounts))
    return found


async def gateway_day(
    client: RedisClient,
    client_id: str,
    day: date,
    hospital: HospitalDay,
    archive: ArchiveReader | None = None,
    recoveries: Recoveries = NO_RECOVERIES,
) -> GatewayDay:
    """Onestop's side of the day, as finely as the client's report asks.

    ``recoveries``: what the agency decided that day to recover from the client, shown
    beside the day (:meth:`adjudicator.service.SettlementService.recoveries`).
    """
    totals = await journal.day_totals(client, client_id, day, archive)
    ids: list[str] = []
    amounts: dict[str, dict[str, int]] = {}
    if hospital.reported_ids() is not None:
        ids = await journal.day_settlement_ids(client, client_id, day, archive)
    if hospital.settlement_amounts is not None:
        wanted = [
            settlement_id for settlement_id in ids if settlement_id in hospital.settlement_amounts
        ]
        amounts = await settlement_amounts(client, wanted, archive)
    return GatewayDay(
        totals.figures(),
        totals.group_figures(),
        ids,
        amounts,
        recoveries,
    )


async def client_days(
    client: RedisClient,
    client_ids: Sequence[str],
    day: date,
    archive: ArchiveReader | None = None,
) -> list[ClientDay]:
    """What each of ``client_ids`` settled on ``day``: the figures a reconciliation compares.

    One read of the day totals per client (each slot group's hash), as a reconciliation makes.
    """
    found = []
    for client_id in client_ids:
        totals = await journal.day_totals(client, client_id, day, archive)
        found.append(ClientDay(client_id, totals.figures(), totals.group_figures()))
    return found


async def reconcile_day(
    client: RedisClient,
    client_id: str,
    day: date,
    hospital: HospitalDay,
    *,
    at_ms: int,
    provisional: bool,
    archive: ArchiveReader | None = None,
    recoveries: Recoveries = NO_RECOVERIES,
) -> Reconciliation:
    """Compare the client's day with onestop's and keep the verdict for the agency.

    The verdict is kept before it is answered: an answer the client received is on record.
    """
    answer = reconcile(
        await gateway_day(client, client_id, day, hospital, archive, recoveries), hospital
    )
    summary = summarise(answer, client_id, day, at_ms, provisional)
    metrics.RECONCILIATIONS.labels(answer.outcome.value, str(provisional).lower()).inc()
    async with redis_calls():
        await client.xadd(
            layout.reconciliations_key(layout.day_text(day)),
            reconciliation_fields(summary),  # type: ignore[arg-type]
        )
    return answer


async def reconciliations(
    client: RedisClient, day: date, client_id: str = ""
) -> list[ReconciliationSummary]:
    """The reconciliations answered for ``day`` (of ``client_id``, or all), in order."""
    async with redis_calls():
        raw = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await client.xrange(layout.reconciliations_key(layout.day_text(day))),
        )
    kept = [decode_reconciliation(fields, day) for _, fields in raw]
    return [summary for summary in kept if not client_id or summary.client_id == client_id]
