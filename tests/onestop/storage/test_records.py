"""Stored records read by name: a field added later reads as 0, a missing one says so."""

from __future__ import annotations

import os

import pytest

from onestop.domain.member import Member
from onestop.domain.reconciliation import EntryKind
from onestop.storage.crypto import MemberCipher
from onestop.storage.layout import AMOUNT_FIELDS, JournalField
from onestop.storage.records import (
    CorruptRecord,
    decode_delta,
    decode_journal_entry,
    decode_member,
    member_fields,
)
from tests.support.scenario import member_record

ENTRY: dict[str, str] = {
    JournalField.KIND: "settlement",
    JournalField.SETTLEMENT_ID: "S1",
    JournalField.CLIENT_ID: "H1",
    JournalField.MEMBER_ID: "M1",
    JournalField.VISIT_ID: "V1",
    JournalField.AT_MS: "1772323200000",
    JournalField.POLICY_REGION: "410100",
    JournalField.POLICY_SCHEME: "resident",
    JournalField.POLICY_YEAR: "2026",
    JournalField.POLICY_VERSION: "v",
}


def _raw(values: dict[str, str]) -> dict[bytes, bytes]:
    return {name.encode(): value.encode() for name, value in values.items()}


def test_an_amount_missing_from_an_older_entry_reads_as_zero() -> None:
    amounts = {name: str(index + 1) for index, name in enumerate(AMOUNT_FIELDS)}
    del amounts["cash"]
    entry = decode_journal_entry(_raw({**ENTRY, **amounts}))
    assert entry.kind is EntryKind.SETTLEMENT
    assert entry.amounts.cash == 0
    assert entry.amounts.total == 1


def test_a_field_every_entry_has_is_never_guessed() -> None:
    broken = {name: value for name, value in ENTRY.items() if name != JournalField.CLIENT_ID}
    with pytest.raises(CorruptRecord, match="client_id"):
        decode_journal_entry(_raw(broken))


def test_a_delta_reads_by_name_whatever_the_order() -> None:
    delta = decode_delta('{"personal_account": 7, "basic_fund": 3}')
    assert (delta.basic_fund, delta.personal_account, delta.admissions) == (3, 7, 0)


def test_profile_fields_are_stored_apart_whatever_they_hold() -> None:
    # Round 1 joined the profile with "|" and groups with ",": a region "410100|x" shifted
    # every later field. Each field is its own hash field now, groups a JSON list.
    cipher = MemberCipher(os.urandom(32))
    member = Member.model_validate(
        member_record(
            "M1",
            region="410100|x",
            groups=["a,b", "c|d", '"]'],
            name="欧阳|娜娜,1",
        )
    )
    fields = member_fields(member, cipher)
    raw = {
        str(name).encode(): str(value).encode() if not isinstance(value, bytes) else value
        for name, value in fields.items()
    }
    record = decode_member("M1", raw, cipher)
    assert record is not None
    assert record.member == member.model_copy(update={"personal_account_balance": None})
    assert record.balance == member.personal_account_balance
