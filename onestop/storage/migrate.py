"""``onestop migrate``: convert stored data of an older layout to the current one.

Layout ``os1`` (onestop 0.1.0, round 1) kept several values by position: a member's profile
(``p``, ``|``-separated), a settlement's increments (``d``) and amounts (``a``) as
comma-separated numbers, the state a reversal captured (``ry``), a journal entry's amounts
(``a``) and policy (``p``), and a day's totals as ``s1``..``s11``/``r1``..``r11``. Their
orders are recorded below, once, as the historical facts they are; the current layout
(:mod:`onestop.storage.layout`) stores every one of them by name.

The migration runs with the services stopped (``onestop serve`` runs it before starting
them). It is resumable and crash-safe: each old key is converted to its new key in full and
then deleted, so a run cut short at any point (``kill -9`` included) is finished by running it
again, which converts what is left and rewrites nothing twice. The reference-data keys go last;
while ``os1:versions`` exists the migration has not finished, and the services refuse to
start (:func:`require_current_layout`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from onestop.clock import settlement_day
from onestop.domain.engine import Amounts
from onestop.domain.reconciliation import UNRECORDED_VISIT, EntryKind, JournalEntry
from onestop.domain.settlement import PolicyRef, SettlementStatus
from onestop.domain.state import StateDelta
from onestop.domain.types import Scheme
from onestop.redis_client import RedisClient, RedisLogin, connect
from onestop.storage import layout
from onestop.storage.layout import (
    MemberField,
    SettlementField,
    VisitClaimField,
    VisitField,
    reversed_amount_field,
    settled_amount_field,
)
from onestop.storage.records import (
    SettlementRecord,
    StoredAnswer,
    decode_journal_entry,
    journal_fields,
    settlement_fields,
)

OLD_PREFIX = "os1"
"""The key prefix of layout 1."""

# -- layout 1, as it was ---------------------------------------------------------------------

V1_PROFILE = (
    "birth_date",
    "sex",
    "region",
    "scheme",
    "status",
    "enrolled_since",
    "supplementary_enrolled",
    "assistance_category",
    "groups",
)
"""The ``|``-separated parts of a v1 member's ``p``."""

V1_YEAR_CODES = ("bf", "op", "su", "ci", "as", "ab", "ad")
"""v1 year-figure suffixes: the same names and meanings in layout 2 (``2026:bf``)."""

V1_DELTA = (
    "basic_fund",
    "outpatient_pooling",
    "supplementary",
    "critical_illness_base",
    "assistance",
    "assistance_base",
    "admissions",
    "personal_account",
)
"""The comma-separated parts of a v1 settlement's increments ``d``."""

V1_STATE_AFTER = (
    "basic_fund",
    "outpatient_pooling",
    "supplementary",
    "critical_illness_base",
    "assistance",
    "assistance_base",
    "personal_account_balance",
)
"""The comma-separated parts of a v1 reversal's captured state ``ry``."""

V1_AMOUNTS = (
    "total",
    "full_self_pay",
    "over_limit_self_pay",
    "pre_self_pay",
    "in_scope",
    "deductible",
    "basic_fund",
    "supplementary",
    "assistance",
    "personal_account",
    "cash",
)
"""The comma-separated amounts of a v1 journal entry (``a``); day totals ``s<n>``/``r<n>``
are the n-th of these, from 1."""

V1_SINGLETONS = ("versions", "policies", "catalog", "clients")
"""Reference keys converted last: while ``os1:versions`` exists, the migration is not done."""


class OutdatedLayout(RuntimeError):
    """Redis holds data of an older layout: ``onestop migrate`` must convert it first."""


async def require_current_layout(client: RedisClient) -> None:
    """Refuse to run on data the current code cannot read.

    Raises:
        OutdatedLayout: data of layout 1 is present (fully or partly migrated).
    """
    if await client.exists(f"{OLD_PREFIX}:versions"):
        raise OutdatedLayout(
            f"Redis holds data of layout {OLD_PREFIX} (onestop 0.1.0); this version stores "
            f"layout {layout.PREFIX}. Stop every gateway and adjudicator and run "
            "`onestop migrate --redis-url URL` (onestop serve does it by itself)."
        )


@dataclass
class MigrationReport:
    """What a run converted, by kind of key."""

    converted: dict[str, int] = field(default_factory=dict)
    dropped: int = 0

    def count(self, kind: str, keys: int = 1) -> None:
        """Note converted keys (one by default)."""
        if keys:
            self.converted[kind] = self.converted.get(kind, 0) + keys

    @property
    def total(self) -> int:
        """Keys converted."""
        return sum(self.converted.values())


class Interrupted(RuntimeError):
    """A test asked the migration to stop as if the process had been killed."""


async def migrate(
    client: RedisClient,
    *,
    progress: Callable[[MigrationReport], None] | None = None,
    interrupt_after: int | None = None,
) -> MigrationReport:
    """Convert every key of layout 1 to the current layout.

    Args:
        client: Redis, one server or a cluster.
        progress: called after every thousand keys.
        interrupt_after: for tests: stop as a crash would, after this many keys, between
            writing a key's new form and deleting its old one.

    Returns:
        What was converted (nothing, when there was nothing of layout 1).
    """
    report = MigrationReport()
    singletons: list[str] = []
    async for key in _old_keys(client):
        name = key.removeprefix(f"{OLD_PREFIX}:")
        if name in V1_SINGLETONS:
            singletons.append(key)
            continue
        await _convert(client, key, name, report, interrupt_after)
        if progress is not None and report.total % 1000 == 0:
            progress(report)
    # Order matters for the last one: ``versions`` gone means the migration finished.
    for name in V1_SINGLETONS:
        key = f"{OLD_PREFIX}:{name}"
        if key in singletons:
            await _convert(client, key, name, report, interrupt_after)
    await _claim_settled_visits(client, report)
    await _index_day_reversals(client, report)
    if progress is not None:
        progress(report)
    return report


VISIT_CLAIMS_STEP = "visit-claims"


async def _claim_settled_visits(client: RedisClient, report: MigrationReport) -> None:
    """Give every visit settled before visit claims existed its claim (once per database).

    A visit id names one visit of one client (docs/adr/0008): a request naming another
    member meets the claim, which names the member whose visit index holds the settlement.
    Existing claims are kept, so the step can run again after an interruption.
    """
    if await client.sismember(layout.MIGRATIONS_KEY, VISIT_CLAIMS_STEP):
        return
    await _index_visit_requests(client, report)
    batch: list[str] = []
    async for raw in client.scan_iter(match=f"{layout.PREFIX}:{{g*}}:v:*", count=1000):
        batch.append(raw.decode() if isinstance(raw, bytes) else str(raw))
        if len(batch) >= 500:
            await _claim_visits(client, batch, report)
            batch = []
    if batch:
        await _claim_visits(client, batch, report)
    await client.sadd(layout.MIGRATIONS_KEY, VISIT_CLAIMS_STEP)


async def _index_visit_requests(client: RedisClient, report: MigrationReport) -> None:
    """Record in each visit index every request that settled the visit (``rq:`` fields).

    Before, an index named only its current settlement: a visit reversed and settled again
    kept no trace of the first, which ``GET /v1/settlements?visit_id=`` must list. Each
    settlement keeps its request's fingerprint; settlements are applied oldest first, so the
    newest settlement of a fingerprint is the one named, as the commit script would have.
    """
    found: list[tuple[str, list[bytes | None]]] = []
    names = [
        SettlementField.CLIENT_ID.value,
        SettlementField.MEMBER_ID.value,
        SettlementField.VISIT_ID.value,
        SettlementField.FINGERPRINT.value,
    ]
    async for raw in client.scan_iter(match=f"{layout.PREFIX}:{{g*}}:s:*", count=1000):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        found.append(
            (key.rsplit(":s:", 1)[1], cast(list[bytes | None], await client.hmget(key, names)))
        )
    found.sort(key=lambda item: layout.settlement_id_ms(item[0]) or 0)
    pipe = client.pipeline(transaction=False)
    for settlement_id, (client_id, member_id, visit_id, fingerprint) in found:
        if client_id is None or member_id is None or visit_id is None or not fingerprint:
            continue
        visit = layout.visit_key(member_id.decode(), client_id.decode(), visit_id.decode())
        pipe.hset(visit, layout.request_field(bytes.fromhex(fingerprint.decode())), settlement_id)
        report.count("visit request")
    await pipe.execute()


async def _claim_visits(client: RedisClient, keys: list[str], report: MigrationReport) -> None:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, VisitField.SETTLEMENT_ID.value)
    settlement_ids = [cast(bytes | None, answer) for answer in await pipe.execute()]
    owners: list[tuple[str, str]] = []
    pipe = client.pipeline(transaction=False)
    for key, settlement_id in zip(keys, settlement_ids, strict=True):
        group = layout.group_of_settlement(settlement_id.decode()) if settlement_id else None
        if settlement_id is None or group is None:
            continue
        # "...:v:CLIENT:VISIT": client ids hold no colon, visit ids may.
        client_id, _, visit_id = key.split("}:v:", 1)[1].partition(":")
        owners.append((client_id, visit_id))
        pipe.hget(
            layout.settlement_key(group, settlement_id.decode()), SettlementField.MEMBER_ID.value
        )
    members = [cast(bytes | None, answer) for answer in await pipe.execute()]
    pipe = client.pipeline(transaction=False)
    for (client_id, visit_id), member_id in zip(owners, members, strict=True):
        if member_id is None:
            continue
        claim = layout.visit_claim_key(client_id, visit_id)
        pipe.hsetnx(claim, VisitClaimField.MEMBER_ID.value, member_id)
        pipe.hsetnx(claim, VisitClaimField.TOKEN.value, "migrated")
        pipe.hsetnx(claim, VisitClaimField.CLAIMED_MS.value, 0)
        pipe.hsetnx(claim, layout.claimant_field(member_id.decode()), 0)
        report.count("visit claim")
    await pipe.execute()


async def _old_keys(client: RedisClient) -> AsyncIterator[str]:
    async for key in client.scan_iter(match=f"{OLD_PREFIX}:*", count=1000):
        yield key.decode() if isinstance(key, bytes) else str(key)


async def _convert(
    client: RedisClient, key: str, name: str, report: MigrationReport, interrupt: int | None
) -> None:
    kind, new_key, write = _conversion(name)
    if write is None:
        await client.delete(key)
        report.dropped += 1
        return
    await write(client, key, new_key)
    if interrupt is not None and report.total >= interrupt:
        raise Interrupted(f"stopped after {report.total} keys, before deleting {key}")
    await client.delete(key)
    report.count(kind)


Writer = Callable[[RedisClient, str, str], Any]


def _conversion(name: str) -> tuple[str, str, Writer | None]:
    """What an old key (without its prefix) is, its new key, and how to write it."""
    if name.startswith("{g"):
        tag, _, rest = name.partition("}:")
        group = int(tag.removeprefix("{g"), 16)
        kind, _, ident = rest.partition(":")
        if kind == "m":
            return "member", layout.member_key(ident), _member
        if kind == "stays":
            return "stays", layout.stays_key(ident), _stays
        if kind == "v":
            client_id, _, visit_id = ident.partition(":")
            return "visit", f"{layout.PREFIX}:{tag}}}:v:{client_id}:{visit_id}", _visit
        if kind == "s":
            return "settlement", layout.settlement_key(group, ident), _settlement
        if rest == "journal":
            return "journal", layout.journal_key(group), _journal_of(group)
        if kind == "day":
            day, _, client_id = ident.partition(":")
            return "day totals", layout.day_totals_key(group, day, client_id), _day_totals
    simple = {
        "versions": ("versions", layout.VERSIONS_KEY, _copy_hash),
        "policies": ("policies", layout.POLICIES_KEY, _policies),
        "catalog": ("catalog", layout.CATALOG_KEY, _copy_string),
        "clients": ("clients", layout.CLIENTS_KEY, _copy_hash),
    }
    if name in simple:
        return simple[name]
    kind, _, ident = name.partition(":")
    if kind == "idx":
        return "identity index", layout.identity_index_key(ident), _copy_string
    if kind == "mapping":
        return "mapping", layout.mapping_key(ident), _copy_string
    if kind == "mapaudit":
        return "mapping audit", layout.mapping_audit_key(ident), _copy_stream
    # Nonces expire within minutes and the bench's counter is scratch: neither is data.
    return "dropped", "", None


async def _hash(client: RedisClient, key: str) -> dict[bytes, bytes]:
    return cast(dict[bytes, bytes], await client.hgetall(key))


async def _replace_hash(client: RedisClient, key: str, values: Mapping[str, Any]) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.delete(key)
    if values:
        pipe.hset(key, mapping=dict(values))  # type: ignore[arg-type]
    await pipe.execute()


async def _copy_hash(client: RedisClient, old: str, new: str) -> None:
    await _replace_hash(client, new, {k.decode(): v for k, v in (await _hash(client, old)).items()})


async def _copy_string(client: RedisClient, old: str, new: str) -> None:
    value = await client.get(old)
    if value is not None:
        await client.set(new, value)


async def _copy_stream(client: RedisClient, old: str, new: str) -> None:
    await _rewrite_stream(client, old, new, lambda fields: fields)


async def _rewrite_stream(
    client: RedisClient,
    old: str,
    new: str,
    convert: Callable[[dict[bytes, bytes]], Mapping[Any, Any]],
) -> None:
    # Entries keep their ids (a settlement day is an id range); a run cut short is redone
    # from the start of the stream, so the new stream is rebuilt from empty.
    await client.delete(new)
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(old))
    for start in range(0, len(entries), 500):
        pipe = client.pipeline(transaction=False)
        for stream_id, fields in entries[start : start + 500]:
            pipe.xadd(new, dict(convert(fields)), id=stream_id)
        await pipe.execute()


def _numbers(text: bytes, names: tuple[str, ...]) -> dict[str, int]:
    return dict(zip(names, (int(part) for part in text.split(b",")), strict=True))


async def _member(client: RedisClient, old: str, new: str) -> None:
    raw = await _hash(client, old)
    profile = dict(zip(V1_PROFILE, raw[b"p"].decode().split("|"), strict=True))
    values: dict[str, Any] = {
        MemberField.BIRTH_DATE: profile["birth_date"],
        MemberField.SEX: profile["sex"],
        MemberField.REGION: profile["region"],
        MemberField.SCHEME: profile["scheme"],
        MemberField.STATUS: profile["status"],
        MemberField.ENROLLED_SINCE: profile["enrolled_since"],
        MemberField.SUPPLEMENTARY_ENROLLED: profile["supplementary_enrolled"],
        MemberField.ASSISTANCE_CATEGORY: profile["assistance_category"],
        MemberField.GROUPS: json.dumps(
            [group for group in profile["groups"].split(",") if group], ensure_ascii=False
        ),
        MemberField.IDENTITY: raw[b"e"],
    }
    if b"b" in raw:
        values[MemberField.BALANCE] = raw[b"b"]
    if b"v" in raw:
        values[MemberField.VERSION] = raw[b"v"]
    for name, value in raw.items():
        year, separator, code = name.decode().partition(":")
        if separator and year.isdigit() and code in V1_YEAR_CODES:
            values[name.decode()] = value  # the same field in both layouts
    await _replace_hash(client, new, {str(name): value for name, value in values.items()})


async def _stays(client: RedisClient, old: str, new: str) -> None:
    raw = await _hash(client, old)
    await _replace_hash(
        client, new, {k.decode(): v.decode().replace("|", "/", 1) for k, v in raw.items()}
    )


async def _visit(client: RedisClient, old: str, new: str) -> None:
    raw = await _hash(client, old)
    await _replace_hash(
        client,
        new,
        {
            VisitField.SETTLEMENT_ID: raw[b"id"],
            VisitField.FINGERPRINT: raw[b"fp"],
            VisitField.STATUS: raw[b"st"],
        },
    )


async def _settlement(client: RedisClient, old: str, new: str) -> None:
    raw = await _hash(client, old)
    delta = StateDelta.of_dict(_numbers(raw[b"d"], V1_DELTA))
    record = SettlementRecord(
        settlement_id=new.rsplit(":s:", 1)[1],
        status=SettlementStatus(raw[b"st"].decode()),
        fingerprint=bytes.fromhex(raw[b"fp"].decode()),
        client_id=raw[b"c"].decode(),
        member_id=raw[b"m"].decode(),
        visit_id=raw[b"vi"].decode(),
        policy_year=int(raw[b"y"]),
        committed_ms=int(raw[b"t"]),
        delta=delta,
        # os1 kept the plain message: it stays one (read as every record before packing).
        record=StoredAnswer(raw[b"r"], packed=False),
    )
    values: dict[str, Any] = dict(settlement_fields(record))
    values[record.record.field] = record.record.data
    if b"ra" in raw:
        values[SettlementField.REVERSED_MS] = raw[b"ra"]
    if b"ry" in raw:
        values[SettlementField.STATE_AFTER] = json.dumps(_numbers(raw[b"ry"], V1_STATE_AFTER))
    await _replace_hash(client, new, values)


def _journal_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    region, scheme, year, version = fields[b"p"].decode().split("|")
    entry = JournalEntry(
        kind=EntryKind.SETTLEMENT if fields[b"k"] == b"S" else EntryKind.REVERSAL,
        settlement_id=fields[b"id"].decode(),
        client_id=fields[b"c"].decode(),
        member_id=fields[b"m"].decode(),
        visit_id=fields[b"v"].decode(),
        at_ms=int(fields[b"t"]),
        amounts=Amounts(**_numbers(fields[b"a"], V1_AMOUNTS)),
        policy=PolicyRef(region, Scheme(scheme), int(year), version, date(int(year), 1, 1)),
        visit=UNRECORDED_VISIT,
    )
    return dict(journal_fields(entry))


def _journal_of(group: int) -> Writer:
    async def journal(client: RedisClient, old: str, new: str) -> None:
        await _rewrite_stream(client, old, new, _journal_entry)
        await _index_day_settlements(client, group, new)

    return journal


async def _index_day_settlements(client: RedisClient, group: int, journal: str) -> None:
    """Build the group's per-client lists of a day's settlements and reversals from its journal.

    Each list is written whole (delete, then push), so a run cut short and done again
    leaves the same lists; reversals go to sorted sets, where adding again changes nothing.
    """
    entries = await _journal_entries(client, journal)
    lists: dict[str, list[str]] = {}
    for entry in entries:
        if entry.kind is EntryKind.SETTLEMENT:
            day = layout.day_text(settlement_day(entry.at_ms))
            key = layout.day_settlements_key(group, day, entry.client_id)
            lists.setdefault(key, []).append(entry.settlement_id)
    pipe = client.pipeline(transaction=False)
    for key, ids in lists.items():
        pipe.delete(key)
        pipe.rpush(key, *ids)
    await pipe.execute()
    await _add_day_reversals(client, group, entries)


DAY_REVERSALS_STEP = "day-reversals"


async def _index_day_reversals(client: RedisClient, report: MigrationReport) -> None:
    """Give days written before the per-client reversal sets existed their sets (once).

    Reads every group's journal; adding a reversal already in its set changes nothing, so the
    step can run again after an interruption.
    """
    if await client.sismember(layout.MIGRATIONS_KEY, DAY_REVERSALS_STEP):
        return
    for group in range(layout.GROUPS):
        entries = await _journal_entries(client, layout.journal_key(group))
        report.count("day reversal", await _add_day_reversals(client, group, entries))
    await client.sadd(layout.MIGRATIONS_KEY, DAY_REVERSALS_STEP)


async def _journal_entries(client: RedisClient, journal: str) -> list[JournalEntry]:
    raw = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(journal))
    return [decode_journal_entry(fields) for _, fields in raw]


async def _add_day_reversals(client: RedisClient, group: int, entries: list[JournalEntry]) -> int:
    """Add a group's reversals to their day's per-client sets; how many there were."""
    reversals: dict[str, dict[str, int]] = {}
    for entry in entries:
        if entry.kind is EntryKind.REVERSAL:
            day = layout.day_text(settlement_day(entry.at_ms))
            key = layout.day_reversals_key(group, day, entry.client_id)
            reversals.setdefault(key, {})[entry.settlement_id] = entry.at_ms
    if reversals:
        pipe = client.pipeline(transaction=False)
        for key, scores in reversals.items():
            pipe.zadd(key, scores)
        await pipe.execute()
    return sum(len(scores) for scores in reversals.values())


async def _day_totals(client: RedisClient, old: str, new: str) -> None:
    raw = await _hash(client, old)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        text = name.decode()
        if text in ("settlements", "reversals"):
            values[text] = value
        elif text[:1] in ("s", "r") and text[1:].isdigit():
            amount = V1_AMOUNTS[int(text[1:]) - 1]
            named = settled_amount_field if text[0] == "s" else reversed_amount_field
            values[named(amount)] = value
    await _replace_hash(client, new, values)


async def _policies(client: RedisClient, old: str, new: str) -> None:
    raw = await _hash(client, old)
    values = {}
    for name, value in raw.items():
        region, scheme, year = name.decode().split("|")
        values[layout.policy_field(region, scheme, int(year))] = value
    await _replace_hash(client, new, values)


async def run_migration(
    redis_url: str,
    *,
    write: Callable[[str], None] | None = None,
    wait_seconds: float = 30,
    login: RedisLogin | None = None,
) -> MigrationReport:
    """Connect to ``redis_url`` (as ``login``) and migrate, reporting as it goes."""
    client = await connect(redis_url, timeout_seconds=10, wait_seconds=wait_seconds, login=login)

    def progress(report: MigrationReport) -> None:
        if write is not None:
            write(f"migrate: {report.total} keys converted")

    try:
        report = await migrate(client, progress=progress)
    finally:
        await client.aclose()
    if write is not None:
        if report.total or report.dropped:
            done = ", ".join(f"{count} {kind}" for kind, count in sorted(report.converted.items()))
            write(
                f"migrate: layout {OLD_PREFIX} -> {layout.PREFIX}: {done or 'nothing'}; "
                f"{report.dropped} expiring keys dropped"
            )
        else:
            write(f"migrate: nothing to convert; the data is in layout {layout.PREFIX}")
    return report
