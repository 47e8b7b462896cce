from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.domain.engine import Amounts
from onestop.domain.reconciliation import EntryKind, JournalEntry
from onestop.domain.settlement import PolicyRef
from onestop.domain.types import Scheme
from onestop.exports import SETTLEMENTS, Signer, verify_export, write_export
from onestop.signing import key_id, public_pem, sign


def _signer() -> Signer:
    key = Ed25519PrivateKey.generate()
    return Signer(
        key_id(key.public_key()), public_pem(key.public_key()), lambda message: sign(key, message)
    )


def _amounts(total: int, basic_fund: int) -> Amounts:
    return Amounts(
        total=total,
        full_self_pay=0,
        over_limit_self_pay=0,
        pre_self_pay=0,
        in_scope=total,
        deductible=0,
        basic_fund=basic_fund,
        supplementary=0,
        assistance=0,
        personal_account=0,
        cash=total - basic_fund,
    )


async def _entries(*entries: JournalEntry) -> AsyncIterator[JournalEntry]:
    for entry in entries:
        yield entry


async def test_cells_a_spreadsheet_would_run_are_neutralised(tmp_path: Path) -> None:
    hostile = JournalEntry(
        EntryKind.SETTLEMENT,
        "S1",
        '=HYPERLINK("x")',
        "@M1",
        "+V1",
        1_772_000_000_000,
        _amounts(100, 50),
        PolicyRef("410100", Scheme.RESIDENT, 2026, "v1"),
    )
    await write_export(_entries(hostile), date(2026, 3, 1), tmp_path, _signer())
    with (tmp_path / SETTLEMENTS).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["client_id"] == '\'=HYPERLINK("x")'
    assert rows[0]["member_id"] == "'@M1"
    assert rows[0]["visit_id"] == "'+V1"
    assert rows[0]["total"] == "100"  # numbers stay numbers
    assert verify_export(tmp_path).ok


async def test_reversal_rows_carry_negative_amounts(tmp_path: Path) -> None:
    amounts = _amounts(500, 200)
    policy = PolicyRef("r", Scheme.EMPLOYEE, 2026, "v")
    entries = (
        JournalEntry(
            EntryKind.SETTLEMENT, "S1", "H1", "M1", "V1", 1_772_000_000_000, amounts, policy
        ),
        JournalEntry(
            EntryKind.REVERSAL, "S1", "H1", "M1", "V1", 1_772_000_100_000, amounts, policy
        ),
    )
    manifest = await write_export(_entries(*entries), date(2026, 3, 1), tmp_path, _signer())
    with (tmp_path / SETTLEMENTS).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["cash"] for row in rows] == ["300", "-300"]
    assert manifest["files"]["summary.csv"]["rows"] == 1
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert summary[1] == "H1,1,1,0,0,0,0,0,0"
