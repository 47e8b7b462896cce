"""The day's files for the agency: settlements, summary, recoveries, and a signed manifest.

``settlements.csv`` has a row per settlement or reversal (a reversal's amounts with a minus
sign, so a column sums to the day's net); ``summary.csv`` a row per client;
``recoveries.csv`` a row per recovery the agency decided that day (format 3, 0.2.0: never
part of the settlements' figures); ``manifest.json``
the SHA-256 and row count of each, the signing key, and an Ed25519 signature over the rest of
the manifest (sorted keys, no spaces, UTF-8). Text cells a spreadsheet would run as a formula
are neutralised. Everything is written row by row: a busy day never sits in memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from onestop.clock import iso_from_ms, now_ms
from onestop.domain.reconciliation import (
    AMOUNT_FIELDS,
    RECONCILED_FUNDS,
    EntryKind,
    JournalEntry,
    VisitFacts,
)
from onestop.domain.reviews import Review
from onestop.domain.tables import neutralise_formula
from onestop.signing import canonical_json, key_id, load_public_key, verify

FORMAT = "onestop-export-3"
"""Version 2 (0.2.0) added the visit's columns at the end of ``settlements.csv``; version 3
(0.2.0) the file ``recoveries.csv``."""
SETTLEMENTS = "settlements.csv"
SUMMARY = "summary.csv"
RECOVERIES = "recoveries.csv"
MANIFEST = "manifest.json"
FILES = (SETTLEMENTS, SUMMARY, RECOVERIES)
"""The files an export of the current format holds, besides its manifest."""
FILES_OF_FORMAT = {
    "onestop-export-1": (SETTLEMENTS, SUMMARY),
    "onestop-export-2": (SETTLEMENTS, SUMMARY),
    FORMAT: FILES,
}
"""The files of each format :func:`verify_export` checks."""
READABLE_FORMATS = tuple(FILES_OF_FORMAT)
"""Formats :func:`verify_export` checks."""
CHUNK_BYTES = 1 << 20

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
    "visit_type",
    "first_day",
    "last_day",
    "hospital_level",
)
"""Columns of ``settlements.csv``; the visit's four are empty for an entry written before
onestop recorded them (and ``hospital_level`` for a pharmacy)."""
SUMMARY_FUNDS = (*RECONCILED_FUNDS, "hospital_part")
"""The amounts ``summary.csv`` sums per client: the reconciled funds, and what single-disease
prices left to the hospital (added at the end in 0.2.0, within ``onestop-export-2``)."""
SUMMARY_COLUMNS = ("client_id", "settlements", "reversals", *SUMMARY_FUNDS)
RECOVERY_COLUMNS = (
    "decided_at",
    "settlement_id",
    "client_id",
    "visit_id",
    "member_id",
    "visit_type",
    "flagged_at",
    "controls",
    "recovered",
    "decided_by",
    "reason",
)
"""Columns of ``recoveries.csv``: ``controls`` lists the findings' codes, space-separated;
``recovered`` is fen, to be recovered from the client apart from the day's settlements."""


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


def _visit_cells(visit: VisitFacts) -> list[str]:
    return [
        visit.visit_type or "",
        visit.first_day.isoformat() if visit.first_day else "",
        visit.last_day.isoformat() if visit.last_day else "",
        visit.hospital_level or "",
    ]


@dataclass
class _ClientDay:
    settlements: int = 0
    reversals: int = 0
    amounts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMARY_FUNDS, 0))


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signs the manifest: a key id, its public key (PEM), and a signing function."""

    key_id: str
    public_key_pem: str
    sign: Callable[[bytes], str]


async def write_export(
    entries: AsyncIterator[JournalEntry],
    day: date,
    directory: Path,
    signer: Signer,
    *,
    final: bool = True,
    recoveries: Sequence[Review] = (),
) -> dict[str, Any]:
    """Write the four files of ``day`` into ``directory``; the manifest.

    Args:
        entries: the day's journal entries, in time order.
        day: the settlement day.
        directory: where to write.
        signer: signs the manifest.
        final: the day had closed (``False``: a provisional file of a day still open, whose
            figures may yet change; the manifest says so, under the signature).
        recoveries: the recoveries decided that day, in the order decided.
    """
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
                + _visit_cells(entry.visit)
            )
            rows += 1
            day_of_client = per_client.setdefault(entry.client_id, _ClientDay())
            if entry.kind is EntryKind.SETTLEMENT:
                day_of_client.settlements += 1
            else:
                day_of_client.reversals += 1
            for fund in SUMMARY_FUNDS:
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
                + [figures.amounts[fund] for fund in SUMMARY_FUNDS]
            )

    with (directory / RECOVERIES).open("wb") as handle:
        recoveries_sink = _HashingWriter(handle)
        writer = csv.writer(recoveries_sink, lineterminator="\n")
        writer.writerow(RECOVERY_COLUMNS)
        for review in recoveries:
            writer.writerow(
                [
                    neutralise_formula(cell)
                    for cell in (
                        iso_from_ms(review.decided_ms or 0),
                        review.settlement_id,
                        review.client_id,
                        review.visit_id,
                        review.member_id,
                        review.visit_type.value,
                        iso_from_ms(review.flagged_ms),
                        " ".join(dict.fromkeys(f.control.value for f in review.findings)),
                    )
                ]
                + [review.recovered]
                + [
                    neutralise_formula(review.decided_by or ""),
                    neutralise_formula(review.reason or ""),
                ]
            )

    manifest: dict[str, Any] = {
        "format": FORMAT,
        "date": day.isoformat(),
        "final": final,
        "generated_at": iso_from_ms(now_ms()),
        "files": {
            SETTLEMENTS: {"sha256": settlements_digest, "rows": rows},
            SUMMARY: {"sha256": summary_sink.digest.hexdigest(), "rows": len(per_client)},
            RECOVERIES: {"sha256": recoveries_sink.digest.hexdigest(), "rows": len(recoveries)},
        },
        "key_id": signer.key_id,
        "algorithm": "ed25519",
        "public_key": signer.public_key_pem,
    }
    manifest["signature"] = signer.sign(canonical_json(manifest))
    (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return manifest


def zip_export(directory: Path, target: Path) -> None:
    """The files and the manifest at the top level of one zip."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in (*FILES, MANIFEST):
            archive.write(directory / name, arcname=name)


def _check_members(names: list[str]) -> list[str]:
    """Refuse a zip whose members are not exactly one format's files, each once; the files."""
    formats = {tuple(sorted((*files, MANIFEST))) for files in FILES_OF_FORMAT.values()}
    if tuple(sorted(names)) not in formats:
        expected = " or ".join(str(list(members)) for members in sorted(formats))
        raise ValueError(
            f"the zip holds {sorted(names)}; an export holds exactly {expected}, each once"
        )
    return names


def unzip_export(archive_path: Path, directory: Path) -> None:
    """Extract an export zip, refusing anything but the three files, each exactly once.

    Raises:
        ValueError: a member is missing, repeated (a second ``settlements.csv`` would shadow
            the first) or unexpected.
        zipfile.BadZipFile: not a zip.
    """
    with zipfile.ZipFile(archive_path) as archive:
        members = _check_members(archive.namelist())
        directory.mkdir(parents=True, exist_ok=True)
        for name in members:
            with archive.open(name) as source, (directory / name).open("wb") as target:
                shutil.copyfileobj(source, target, CHUNK_BYTES)


@dataclass
class Verification:
    """What :func:`verify_export` found."""

    failures: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    final: bool | None = None
    """The manifest says its day had closed (``False``: provisional; ``None``: a manifest
    made before the field existed says nothing)."""

    @property
    def ok(self) -> bool:
        """Every check held."""
        return not self.failures


class _Files:
    """The export's files, in a directory or in a zip, read as streams."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.directory = source if source.is_dir() else None
        self.archive = None if source.is_dir() else zipfile.ZipFile(source)
        if self.archive is not None:
            try:
                _check_members(self.archive.namelist())
            except ValueError:
                self.archive.close()
                raise

    def exists(self, name: str, *, listed_only: bool = True) -> bool:
        """Whether the file is there.

        In a zip the members were checked on opening: a file of a format's set is there,
        unless ``listed_only`` is false, which asks the zip itself.
        """
        if self.directory is not None:
            return (self.directory / name).is_file()
        if self.archive is not None and not listed_only:
            return name in self.archive.namelist()
        return True

    def open(self, name: str) -> IO[bytes]:
        if self.archive is not None:
            return self.archive.open(name)
        return (self.source / name).open("rb")

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _digest_and_rows(handle: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    lines = io.TextIOWrapper(
        io.BufferedReader(_Tee(handle, digest), CHUNK_BYTES), encoding="utf-8", newline=""
    )
    rows = max(0, sum(1 for _ in csv.reader(lines)) - 1)
    return digest.hexdigest(), rows


class _Tee(io.RawIOBase):
    """Reads through ``source``, hashing every byte on the way."""

    def __init__(self, source: IO[bytes], digest: Any) -> None:
        self.source = source
        self.digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


def _trusted_key(
    manifest: dict[str, Any],
    public_key_pem: str | None,
    published: Sequence[Mapping[str, str]] | None,
    result: Verification,
) -> tuple[Ed25519PublicKey, str] | None:
    """The key to check the signature with, bound to the manifest's ``key_id``, and whence."""
    named = str(manifest.get("key_id", ""))
    if public_key_pem is not None:
        candidates, origin = [public_key_pem], "the given public key"
    elif published is not None:
        candidates = [key["public_key"] for key in published if key.get("key_id") == named]
        origin = "the gateway's published key " + named
        if not candidates:
            result.failures.append(f"signature: key {named!r} is not among the published keys")
            return None
    else:
        candidates, origin = [str(manifest.get("public_key", ""))], "the key in the manifest"
    try:
        key = load_public_key(candidates[0])
    except ValueError:
        result.failures.append("signature: no usable public key")
        return None
    # The key id is the key's fingerprint: a manifest re-signed with another key cannot
    # keep the gateway's id, and a given key that is not the named one is not trusted.
    if key_id(key) != named:
        result.failures.append(
            f"signature: the manifest names key {named!r}, but {origin} is {key_id(key)!r}"
        )
        return None
    return key, origin


def verify_export(
    source: Path,
    public_key_pem: str | None = None,
    *,
    published_keys: Sequence[Mapping[str, str]] | None = None,
    day: date | None = None,
) -> Verification:
    """Check every hash, row count, the date, and the manifest's signature.

    Args:
        source: the directory with the three files, or the export's zip (which must hold
            exactly the three files, each once).
        public_key_pem: the gateway key to trust.
        published_keys: the gateway's keys as ``GET /v1/keys`` lists them; the one named by
            the manifest's ``key_id`` is used.
        day: the day asked for; the manifest must be of that day.

    Without a key (given or published) the key in the manifest is used, bound to its
    ``key_id``: that proves the files are intact, not who made them.
    """
    result = Verification()
    try:
        files = _Files(source)
    except (ValueError, zipfile.BadZipFile, OSError) as error:
        result.failures.append(f"{source.name}: {error}")
        return result
    try:
        _verify(files, public_key_pem, published_keys, day, result)
    finally:
        files.close()
    return result


def _verify(
    files: _Files,
    public_key_pem: str | None,
    published: Sequence[Mapping[str, str]] | None,
    day: date | None,
    result: Verification,
) -> None:
    try:
        with files.open(MANIFEST) as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError, KeyError) as error:
        result.failures.append(f"{MANIFEST}: unreadable ({error})")
        return
    if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
        result.failures.append(f"{MANIFEST}: not an {' or '.join(READABLE_FORMATS)} manifest")
        return
    final = manifest.get("final")
    result.final = final if isinstance(final, bool) else None
    if result.final is False:
        result.checks.append("provisional: made while the day was open; its figures may yet change")
    if day is not None:
        if manifest.get("date") != day.isoformat():
            result.failures.append(
                f"date: the export is of {manifest.get('date')!r}, not of {day.isoformat()}"
            )
        else:
            result.checks.append(f"date: {day.isoformat()}")
    listed = manifest.get("files")
    listed = listed if isinstance(listed, dict) else {}
    format_files = FILES_OF_FORMAT[manifest["format"]]
    for name in FILES:
        # A file of another format beside the manifest's is not signed by it: refused.
        if name not in format_files and files.exists(name, listed_only=False):
            result.failures.append(
                f"{name}: not part of an {manifest['format']} export, not signed by its manifest"
            )
    for name in format_files:
        expected = listed.get(name)
        if not isinstance(expected, dict):
            result.failures.append(f"{name}: not in the manifest")
            continue
        if not files.exists(name):
            result.failures.append(f"{name}: missing")
            continue
        try:
            with files.open(name) as handle:
                digest, rows = _digest_and_rows(handle)
        except (UnicodeDecodeError, csv.Error) as error:
            result.failures.append(f"{name}: not a UTF-8 CSV file ({error})")
            continue
        if digest != expected.get("sha256"):
            result.failures.append(f"{name}: SHA-256 {digest} is not the manifest's")
        else:
            result.checks.append(f"{name}: SHA-256 matches")
        if rows != expected.get("rows"):
            result.failures.append(f"{name}: {rows} rows, the manifest says {expected.get('rows')}")
        else:
            result.checks.append(f"{name}: {rows} rows")
    trusted = _trusted_key(manifest, public_key_pem, published, result)
    if trusted is None:
        return
    key, origin = trusted
    signed = {name: value for name, value in manifest.items() if name != "signature"}
    if not verify(key, canonical_json(signed), str(manifest.get("signature", ""))):
        result.failures.append("signature: does not verify")
    elif public_key_pem is None and published is None:
        result.checks.append(
            f"signature: verifies with {origin}, whose fingerprint is its key id (integrity, "
            "not origin: give --public-key or --keys to prove who signed)"
        )
    else:
        result.checks.append(f"signature: verifies with {origin}")
