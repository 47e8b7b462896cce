"""What must hold in Redis after any fault: nothing acknowledged lost, nothing twice."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from onestop.domain.reconciliation import EntryKind
from onestop.storage.layout import (
    SettlementField,
    group_of_settlement,
    member_key,
    settlement_key,
    year_field,
)
from tests.support.redis import sync_client
from tests.support.serve import journal_entries


def assert_ledger_consistent(
    redis_url: str, acknowledged: Iterable[str], member_ids: Iterable[str], year: int = 2026
) -> None:
    """Check that nothing acknowledged was lost and nothing was half-written or doubled.

    Every acknowledged settlement is journaled exactly once, its record's status agrees with
    the journal, and each member's year-to-date basic fund equals the sum of its journal
    entries (settlements minus reversals).
    """
    entries = journal_entries(redis_url)
    settlements = Counter(
        entry.settlement_id for entry in entries if entry.kind is EntryKind.SETTLEMENT
    )
    reversed_ids = {entry.settlement_id for entry in entries if entry.kind is EntryKind.REVERSAL}
    duplicated = [settlement_id for settlement_id, count in settlements.items() if count > 1]
    assert not duplicated, f"journaled twice: {duplicated}"
    missing = set(acknowledged) - set(settlements)
    assert not missing, f"acknowledged but not journaled: {sorted(missing)}"
    basic_by_member: dict[str, int] = defaultdict(int)
    for entry in entries:
        basic_by_member[entry.member_id] += entry.signed_amounts()["basic_fund"]
    client = sync_client(redis_url)
    try:
        for member_id in member_ids:
            state = int(client.hget(member_key(member_id), year_field(year, "basic_fund")) or 0)
            assert state == basic_by_member[member_id], member_id
        for settlement_id in settlements:
            group = group_of_settlement(settlement_id)
            assert group is not None
            status = client.hget(settlement_key(group, settlement_id), SettlementField.STATUS)
            expected = b"reversed" if settlement_id in reversed_ids else b"settled"
            assert status == expected, settlement_id
    finally:
        client.close()
