"""Stored records read by name: a field added later reads as 0, a missing one says so."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date

import pytest

from onestop.domain.clients import Client
from onestop.domain.engine import Amounts
from onestop.domain.member import Member
from onestop.domain.reconciliation import (
    RECONCILED_FUNDS,
    UNRECORDED_GROUP,
    UNRECORDED_VISIT,
    Detail,
    EntryKind,
    GroupKey,
    Outcome,
    ReconciliationSummary,
    VisitFacts,
)
from onestop.domain.types import HospitalLevel, Scheme, VisitType
from onestop.storage.crypto import MemberCipher
from onestop.storage.layout import (
    AMOUNT_FIELDS,
    JournalField,
    ReconciliationField,
    SettlementField,
)
from onestop.storage.records import (
    CorruptRecord,
    StoredAnswer,
    day_total_increments,
    decode_delta,
    decode_journal_entry,
    decode_member,
    decode_reconciliation,
    decode_settlement,
    journal_fields,
    member_fields,
    reconciliation_fields,
    sum_day_totals,
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


def test_an_entry_written_before_visits_were_recorded_reads_as_unrecorded() -> None:
    entry = decode_journal_entry(_raw(ENTRY))
    assert entry.visit == UNRECORDED_VISIT


def test_an_entry_carries_its_visit_by_name() -> None:
    visit = VisitFacts(
        VisitType.INPATIENT, date(2026, 3, 1), date(2026, 3, 9), HospitalLevel.LEVEL3
    )
    written = decode_journal_entry(_raw(ENTRY))
    fields = journal_fields(replace(written, visit=visit))
    raw = {name.encode(): str(value).encode() for name, value in reversed(fields)}
    assert decode_journal_entry(raw).visit == visit


SETTLEMENT_BEFORE_0_2_0: dict[str, str] = {
    SettlementField.STATUS: "settled",
    SettlementField.FINGERPRINT: "00",
    SettlementField.CLIENT_ID: "H1",
    SettlementField.MEMBER_ID: "M1",
    SettlementField.VISIT_ID: "V1",
    SettlementField.POLICY_YEAR: "2026",
    SettlementField.COMMITTED_MS: "1772323200000",
    SettlementField.DELTA: "{}",
}
"""A settlement hash's fields before 0.2.0, but its record (no visit facts)."""


def test_a_settlement_written_before_visits_were_recorded_reads_as_unrecorded() -> None:
    raw = {SettlementField.RECORD.value: "x", **SETTLEMENT_BEFORE_0_2_0}
    record = decode_settlement("S1", _raw(raw))
    assert record is not None
    assert record.visit == UNRECORDED_VISIT
    assert record.record == StoredAnswer(b"x", packed=False)


def test_a_settlement_reads_its_packed_record_before_a_plain_one() -> None:
    # A commit writes "packed" only now; a hash holding both is read by "packed".
    raw = {
        SettlementField.PACKED.value: "p",
        SettlementField.RECORD.value: "r",
        **SETTLEMENT_BEFORE_0_2_0,
    }
    record = decode_settlement("S1", _raw(raw))
    assert record is not None
    assert record.record == StoredAnswer(b"p", packed=True)
    without: dict[str, str] = {
        name: value for name, value in raw.items() if name != SettlementField.PACKED
    }
    record = decode_settlement("S1", _raw(without))
    assert record is not None
    assert record.record == StoredAnswer(b"r", packed=False)
    neither: dict[str, str] = {
        name: value for name, value in without.items() if name != SettlementField.RECORD
    }
    with pytest.raises(CorruptRecord, match="neither field 'packed' nor 'record'"):
        decode_settlement("S1", _raw(neither))


def test_day_totals_split_by_group_and_what_older_totals_leave_out_is_unrecorded() -> None:
    before = _raw(
        {
            "settlements": "1",
            "settled:total": "700",
            "settled:cash": "700",
        }
    )
    after = {
        name.encode(): str(value).encode()
        for name, value in day_total_increments(
            EntryKind.SETTLEMENT,
            Amounts(**{**dict.fromkeys(AMOUNT_FIELDS, 0), "total": 500, "cash": 500}),
            VisitType.PHARMACY,
            Scheme.EMPLOYEE,
        )
    }
    totals = sum_day_totals([before, after])
    assert totals.figures().settlements == 2
    assert totals.figures().amounts["total"] == 1_200
    groups = totals.group_figures()
    assert groups[GroupKey(VisitType.PHARMACY, Scheme.EMPLOYEE)].amounts["cash"] == 500
    assert groups[UNRECORDED_GROUP].settlements == 1
    assert groups[UNRECORDED_GROUP].amounts["total"] == 700
    assert set(groups) == {GroupKey(VisitType.PHARMACY, Scheme.EMPLOYEE), UNRECORDED_GROUP}


def test_a_reconciliation_is_kept_by_name() -> None:
    summary = ReconciliationSummary(
        client_id="H1",
        day=date(2026, 3, 9),
        at_ms=1_773_000_000_000,
        outcome=Outcome.UNBALANCED,
        provisional=True,
        detail=Detail.AMOUNTS,
        differences={
            "settlements": 0,
            "reversals": 1,
            **dict.fromkeys(RECONCILED_FUNDS, 0),
            "cash": -1,
        },
        only_in_gateway=0,
        only_in_hospital=2,
        amount_differences=1,
        unbalanced_groups=[GroupKey(VisitType.INPATIENT, Scheme.RESIDENT), UNRECORDED_GROUP],
    )
    fields = reconciliation_fields(summary)
    assert decode_reconciliation(_raw(fields), summary.day) == summary
    # a fund a later version adds reads as 0 in an older entry
    older = {**fields, ReconciliationField.DIFFERENCES: '{"cash": -1}'}
    assert decode_reconciliation(_raw(older), summary.day).differences["total"] == 0


def test_a_client_stored_before_the_national_interface_reads_with_its_defaults() -> None:
    stored = (
        '{"client_id":"H1","kind":"hospital","name":"N","level":"level3","region":"410100",'
        '"public_key":"-----BEGIN PUBLIC KEY-----\\nx\\n-----END PUBLIC KEY-----\\n"}'
    )
    client = Client.model_validate_json(stored)
    assert client.national_code is None
    assert client.national_codes_allowed is False
    assert client.fixmedins_code() == "H1"
