"""The day's files for the agency: settlements, summary, and a signed manifest.

``settlements.csv`` has a row per settlement or reversal (a reversal's amounts with a minus
sign, so a column sums to the day's net); ``summary.csv`` a row per client; ``manifest.json``
the SHA-256 and row count of each, the signing key, and an Ed25519 signature over the rest of
the manifest (sorted keys, no spaces, UTF-8). Text cells a spreadsheet would run as a formula
are neutralised. Everything is written row by row: a busy day never sits in memory.
"""

from __future__ import annotations

import csv
import hashlib
import json
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from onestop.clock import iso_from_ms, now_ms
from onestop.domain.reconciliation import AMOUNT_FIELDS, RECONCILED_FUNDS, EntryKind, JournalEntry
from onestop.domain.tables import neutralise_formula
from onestop.signing import canonical_json, load_public_key, verify

FORMAT = "onestop-export-1"
SETTLEMENTS = "settlements.csv"
SUMMARY = "summary.csv"
MANIFEST = "manifest.json"
FILES = (SETTLEMENTS, SUMMARY)

SETTLEMENT_COLUMNS = (
    "event",
    "at",
    "settlement_id",
    "client_id",
    "visit_id",
    "member_id",
    "policy_region",
    "policy_scheme",
    "policy_year",
    "policy_version",
    *AMOUNT_FIELDS,
)
SUMMARY_COLUMNS = ("client_id", "settlements", "reversals", *RECONCILED_FUNDS)


class _HashingWriter:
    """A text sink that hashes and counts what goes to the file."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.digest.update(data)
        self.handle.write(data)
        return len(text)


@dataclass
class _ClientDay:
    settlements: int = 0
    reversals: int = 0
    amounts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECONCILED_FUNDS, 0))


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signs the manifest: a key id, its public key (PEM), and a signing function."""

    key_id: str
    public_key_pem: str
    sign: Callable[[bytes], str]


async def write_export(
    entries: AsyncIterator[JournalEntry], day: date, directory: Path, signer: Signer
) -> dict[str, Any]:
    """Write the three files of ``day`` into ``directory``; the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    per_client: dict[str, _ClientDay] = {}
    rows = 0
    with (directory / SETTLEMENTS).open("wb") as handle:
        sink = _HashingWriter(handle)
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(SETTLEMENT_COLUMNS)
        async for entry in entries:
            policy = entry.policy
            amounts = entry.signed_amounts()
            writer.writerow(
                [
                    neutralise_formula(cell)
                    for cell in (
                        entry.kind.value,
                        iso_from_ms(entry.at_ms),
                        entry.settlement_id,
                        entry.client_id,
                        entry.visit_id,
                        entry.member_id,
                        policy.region,
                        policy.scheme.value,
                        policy.year,
                        policy.version,
                    )
                ]
                + [amounts[name] for name in AMOUNT_FIELDS]
            )
            rows += 1
            day_of_client = per_client.setdefault(entry.client_id, _ClientDay())
            if entry.kind is EntryKind.SETTLEMENT:
                day_of_client.settlements += 1
            else:
                day_of_client.reversals += 1
            for fund in RECONCILED_FUNDS:
                day_of_client.amounts[fund] += amounts[fund]
    settlements_digest = sink.digest.hexdigest()

    with (directory / SUMMARY).open("wb") as handle:
        summary_sink = _HashingWriter(handle)
        writer = csv.writer(summary_sink, lineterminator="\n")
        writer.writerow(SUMMARY_COLUMNS)
        for client_id in sorted(per_client):
            figures = per_client[client_id]
            writer.writerow(
                [neutralise_formula(client_id), figures.settlements, figures.reversals]
                + [figures.amounts[fund] for fund in RECONCILED_FUNDS]
            )

    manifest: dict[str, Any] = {
        "format": FORMAT,
        "date": day.isoformat(),
        "generated_at": iso_from_ms(now_ms()),
        "files": {
            SETTLEMENTS: {"sha256": settlements_digest, "rows": rows},
            SUMMARY: {"sha256": summary_sink.digest.hexdigest(), "rows": len(per_client)},
        },
        "key_id": signer.key_id,
        "algorithm": "ed25519",
        "public_key": signer.public_key_pem,
    }
    manifest["signature"] = signer.sign(canonical_json(manifest))
    (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return manifest


def zip_export(directory: Path, target: Path) -> None:
    """The three files at the top level of one zip."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in (*FILES, MANIFEST):
            archive.write(directory / name, arcname=name)


def unzip_export(archive_path: Path, directory: Path) -> None:
    """Extract an export zip, refusing any member that is not one of the three files."""
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive_path) as archive:
        names = set(archive.namelist())
        expected = {*FILES, MANIFEST}
        if names != expected:
            raise ValueError(f"the zip holds {sorted(names)}, not {sorted(expected)}")
        for name in sorted(expected):
            (directory / name).write_bytes(archive.read(name))


@dataclass
class Verification:
    """What :func:`verify_export` found."""

    failures: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check held."""
        return not self.failures


def _count_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def verify_export(directory: Path, public_key_pem: str | None = None) -> Verification:
    """Check every hash, row count and the manifest's signature.

    Args:
        directory: where the three files are.
        public_key_pem: the gateway key to trust. Without it the key named in the manifest is
            used: that proves the files are intact, not who made them.
    """
    result = Verification()
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        result.failures.append(f"{MANIFEST}: unreadable ({error})")
        return result
    if manifest.get("format") != FORMAT:
        result.failures.append(f"{MANIFEST}: not an {FORMAT} manifest")
        return result
    for name in FILES:
        path = directory / name
        expected = manifest.get("files", {}).get(name)
        if expected is None:
            result.failures.append(f"{name}: not in the manifest")
            continue
        if not path.exists():
            result.failures.append(f"{name}: missing")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected.get("sha256"):
            result.failures.append(f"{name}: SHA-256 {digest} is not the manifest's")
        else:
            result.checks.append(f"{name}: SHA-256 matches")
        rows = _count_rows(path)
        if rows != expected.get("rows"):
            result.failures.append(f"{name}: {rows} rows, the manifest says {expected.get('rows')}")
        else:
            result.checks.append(f"{name}: {rows} rows")
    key_pem = public_key_pem or manifest.get("public_key", "")
    signed = {key: value for key, value in manifest.items() if key != "signature"}
    try:
        key = load_public_key(key_pem)
    except ValueError:
        result.failures.append("signature: no usable public key")
        return result
    if not verify(key, canonical_json(signed), str(manifest.get("signature", ""))):
        result.failures.append("signature: does not verify")
    elif public_key_pem is None:
        result.checks.append(
            "signature: verifies with the key named in the manifest (integrity, not origin: "
            "give --public-key to prove who signed)"
        )
    else:
        result.checks.append("signature: verifies with the given public key")
    return result
