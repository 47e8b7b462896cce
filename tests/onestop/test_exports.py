from __future__ import annotations

import csv
import hashlib
import json
import warnings
import zipfile
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.cli import main
from onestop.domain.engine import Amounts
from onestop.domain.reconciliation import UNRECORDED_VISIT, EntryKind, JournalEntry, VisitFacts
from onestop.domain.settlement import PolicyRef
from onestop.domain.types import HospitalLevel, Scheme, VisitType
from onestop.exports import (
    MANIFEST,
    RECOVERIES,
    SETTLEMENTS,
    SUMMARY,
    Signer,
    unzip_export,
    verify_export,
    write_export,
    zip_export,
)
from onestop.signing import canonical_json, key_id, public_pem, sign


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
        PolicyRef("410100", Scheme.RESIDENT, 2026, "v1", date(2026, 1, 1)),
        UNRECORDED_VISIT,
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
    policy = PolicyRef("r", Scheme.EMPLOYEE, 2026, "v", date(2026, 1, 1))
    visit = VisitFacts(
        VisitType.INPATIENT, date(2026, 2, 20), date(2026, 2, 28), HospitalLevel.LEVEL2
    )
    entries = (
        JournalEntry(
            EntryKind.SETTLEMENT, "S1", "H1", "M1", "V1", 1_772_000_000_000, amounts, policy, visit
        ),
        JournalEntry(
            EntryKind.REVERSAL, "S1", "H1", "M1", "V1", 1_772_000_100_000, amounts, policy, visit
        ),
    )
    manifest = await write_export(_entries(*entries), date(2026, 3, 1), tmp_path, _signer())
    with (tmp_path / SETTLEMENTS).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["cash"] for row in rows] == ["300", "-300"]
    # the visit's facts on both rows, the reversal's copied from its settlement
    assert {
        (row["visit_type"], row["first_day"], row["last_day"], row["hospital_level"])
        for row in rows
    } == {("inpatient", "2026-02-20", "2026-02-28", "level2")}
    assert manifest["files"]["summary.csv"]["rows"] == 1
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert summary[1] == "H1,1,1,0,0,0,0,0,0,0"


def _published(signer: Signer) -> dict[str, str]:
    """The key as ``GET /v1/keys`` lists it."""
    return {"key_id": signer.key_id, "algorithm": "ed25519", "public_key": signer.public_key_pem}


async def _one_day(directory: Path, signer: Signer) -> dict[str, Any]:
    entry = JournalEntry(
        EntryKind.SETTLEMENT,
        "S1",
        "H1",
        "M1",
        "V1",
        1_772_000_000_000,
        _amounts(900, 600),
        PolicyRef("410100", Scheme.RESIDENT, 2026, "v1", date(2026, 1, 1)),
        VisitFacts(VisitType.PHARMACY, date(2026, 3, 1), date(2026, 3, 1), None),
    )
    return await write_export(_entries(entry), date(2026, 3, 1), directory, signer)


async def test_a_manifest_re_signed_with_another_key_under_the_gateways_id_is_refused(
    tmp_path: Path,
) -> None:
    gateway = _signer()
    manifest = await _one_day(tmp_path, gateway)
    published = [
        {"key_id": gateway.key_id, "algorithm": "ed25519", "public_key": gateway.public_key_pem}
    ]
    assert verify_export(tmp_path, published_keys=published).ok

    # The forger changes a figure, fixes the hash, embeds its own key and re-signs, keeping
    # the gateway's key id.
    forger = Ed25519PrivateKey.generate()
    settlements = (tmp_path / SETTLEMENTS).read_text().replace(",900,", ",90,")
    (tmp_path / SETTLEMENTS).write_text(settlements)
    forged = {name: value for name, value in manifest.items() if name != "signature"}
    forged["files"][SETTLEMENTS]["sha256"] = hashlib.sha256(settlements.encode()).hexdigest()
    forged["public_key"] = public_pem(forger.public_key())
    forged["signature"] = sign(forger, canonical_json(forged))
    (tmp_path / MANIFEST).write_text(json.dumps(forged))

    for result in (
        verify_export(tmp_path),
        verify_export(tmp_path, published_keys=published),
        verify_export(tmp_path, gateway.public_key_pem),
    ):
        assert not result.ok
    assert any(
        f"names key '{gateway.key_id}'" in failure for failure in verify_export(tmp_path).failures
    )


async def test_the_day_asked_for_is_checked(tmp_path: Path) -> None:
    await _one_day(tmp_path, _signer())
    assert verify_export(tmp_path, day=date(2026, 3, 1)).ok
    wrong = verify_export(tmp_path, day=date(2026, 3, 2))
    assert wrong.failures == ["date: the export is of '2026-03-01', not of 2026-03-02"]


async def test_a_zip_must_hold_the_three_files_each_once(tmp_path: Path) -> None:
    await _one_day(tmp_path / "files", _signer())
    good = tmp_path / "good.zip"
    zip_export(tmp_path / "files", good)
    assert verify_export(good).ok
    unzip_export(good, tmp_path / "out")
    assert verify_export(tmp_path / "out").ok

    twice = tmp_path / "twice.zip"
    extra = tmp_path / "extra.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it is told to write
        with zipfile.ZipFile(twice, "w") as archive:
            for name in (SETTLEMENTS, SUMMARY, MANIFEST):
                archive.write(tmp_path / "files" / name, arcname=name)
            archive.writestr(SETTLEMENTS, "event,at\n")
    with zipfile.ZipFile(extra, "w") as archive:
        for name in (SETTLEMENTS, SUMMARY, MANIFEST, "../notes.txt"):
            archive.writestr(name, "x")
    for bad in (twice, extra):
        result = verify_export(bad)
        assert not result.ok
        assert "each once" in result.failures[0]
        with pytest.raises(ValueError, match="each once"):
            unzip_export(bad, tmp_path / bad.stem)
        assert not (tmp_path / bad.stem).exists()


async def test_the_command_checks_key_date_and_zip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = _signer()
    await _one_day(tmp_path / "files", gateway)
    zip_export(tmp_path / "files", tmp_path / "day.zip")
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "key_id": gateway.key_id,
                        "algorithm": "ed25519",
                        "public_key": gateway.public_key_pem,
                    }
                ]
            }
        )
    )
    day_zip = str(tmp_path / "day.zip")
    assert main(["verify-export", day_zip, "--keys", str(keys), "--date", "2026-03-01"]) == 0
    assert "verifies with the gateway's published key" in capsys.readouterr().out
    assert main(["verify-export", day_zip, "--keys", str(keys), "--date", "2026-03-02"]) == 1
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"keys": []}))
    assert main(["verify-export", day_zip, "--keys", str(other)]) == 1
    assert "not among the published keys" in capsys.readouterr().out


async def test_the_summary_sums_what_single_disease_prices_left_to_the_hospital(
    tmp_path: Path,
) -> None:
    # a 5,200-yuan appendectomy at a 4,500-yuan price: the hospital bears 700 (section 12)
    amounts = Amounts(
        total=520000,
        full_self_pay=58250,
        over_limit_self_pay=0,
        pre_self_pay=0,
        in_scope=461750,
        deductible=0,
        basic_fund=315000,
        supplementary=0,
        assistance=0,
        personal_account=0,
        cash=135000,
        hospital_part=70000,
    )
    entry = JournalEntry(
        EntryKind.SETTLEMENT,
        "S1",
        "FGH2",
        "F2",
        "ZY1601",
        1_772_000_000_000,
        amounts,
        PolicyRef("610822", Scheme.RESIDENT, 2026, "v1", date(2026, 1, 1)),
        VisitFacts(VisitType.INPATIENT, date(2026, 3, 1), date(2026, 3, 5), HospitalLevel.LEVEL2),
    )
    await write_export(_entries(entry), date(2026, 3, 5), tmp_path, _signer())
    with (tmp_path / SETTLEMENTS).open(newline="") as handle:
        row = next(csv.DictReader(handle))
    assert row["hospital_part"] == "70000"
    with (tmp_path / "summary.csv").open(newline="") as handle:
        summary = next(csv.DictReader(handle))
    assert summary["hospital_part"] == "70000"
    # every fen of the total is accounted for, the hospital's part included
    assert int(summary["total"]) == sum(
        int(summary[name])
        for name in ("basic_fund", "supplementary", "assistance", "personal_account", "cash")
    ) + int(summary["hospital_part"])
    assert verify_export(tmp_path).ok


async def test_a_recoveries_file_a_format_2_manifest_does_not_sign_is_refused(
    tmp_path: Path,
) -> None:
    """A file of format 3 slipped into an export of format 2 is not signed by its manifest."""
    signer = _signer()
    files = tmp_path / "files"
    await _one_day(files, signer)
    (files / RECOVERIES).unlink()
    manifest = json.loads((files / MANIFEST).read_text())
    manifest["format"] = "onestop-export-2"
    del manifest["files"][RECOVERIES]
    del manifest["signature"]
    manifest["signature"] = signer.sign(canonical_json(manifest))
    (files / MANIFEST).write_text(json.dumps(manifest))
    assert verify_export(files, signer.public_key_pem).ok, "a genuine format-2 export"
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        for name in (SETTLEMENTS, SUMMARY, MANIFEST):
            archive.write(files / name, arcname=name)
    assert verify_export(tmp_path / "two.zip", signer.public_key_pem).ok

    (files / RECOVERIES).write_text("decided_at,settlement_id,recovered\nforged,S1,999999\n")
    forged = verify_export(files, signer.public_key_pem)
    assert not forged.ok
    assert any(failure.startswith(RECOVERIES) for failure in forged.failures)
    with zipfile.ZipFile(tmp_path / "forged.zip", "w") as archive:
        for name in (SETTLEMENTS, SUMMARY, RECOVERIES, MANIFEST):
            archive.write(files / name, arcname=name)
    assert not verify_export(tmp_path / "forged.zip", signer.public_key_pem).ok
