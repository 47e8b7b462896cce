"""The archive: what left Redis, on disk, append-only and checksummed, and its index.

Settlements, visit indexes and journal entries of closed days older than the retention are
moved here by the archive job (:mod:`adjudicator.archiving`) and read back by the adjudicator
whenever Redis no longer holds them. This module owns the archive's formats, as
:mod:`onestop.storage.layout` owns Redis's:

**Parts.** One file set per settlement day and slot group, ``DAY/gGGG/part-NNNNNN.jsonl.gz``:
each part is compressed JSON Lines, one gzip member per line, so that a record is read alone
by its offset and length (its member's CRC-32 checks it) while ``zcat`` reads the whole file.
Every line is a JSON object by name (:class:`RecordKind`); the last line of a part is its
trailer, with the number of records and the SHA-256 of every byte before the trailer. A part
is written to a temporary file, flushed to disk and renamed: it is complete or absent, and
never written again; a later state of a record goes into a later part.

**Values.** Redis values are bytes. A value that is UTF-8 is kept as text, any other (a
settlement's protobuf record) in base64 under ``b64``: both read back to the very bytes.

**The index** (``index.sqlite3`` beside the day folders) says where the newest copy of each
settlement, visit and day record is and which parts exist. It is derived: every part it lacks
is added again from the part itself (:meth:`ArchiveIndex.add_missing_parts`).

Format history: 1 (0.2.0) is the first.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import sqlite3
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import orjson

ARCHIVE_FORMAT = 1
"""The version of the archive's formats (parts and index)."""

INDEX_FILE = "index.sqlite3"
LOCK_FILE = "job.lock"
PART_SUFFIX = ".jsonl.gz"

RawHash = Mapping[bytes, bytes]


class ArchiveCorrupt(ValueError):
    """A part does not match its checksum, or a record is not one this format writes."""


class RecordKind(StrEnum):
    """What one line of a part holds (its ``kind``)."""

    SETTLEMENT = "settlement"
    """``id``, ``hash``: a settlement's hash (``layout.SettlementField``)."""
    VISIT = "visit"
    """``client``, ``visit``, ``claim`` (the claim's hash, or ``null``), ``indexes`` (member
    id -> that member's visit-index hash): everything Redis kept of one (client, visit)."""
    JOURNAL = "journal"
    """``stream_id``, ``hash``: one journal entry of the group, by its stream id."""
    DAY_TOTALS = "day_totals"
    """``client``, ``hash``: one client's day totals in the group."""
    DAY_IDS = "day_ids"
    """``client``, ``ids``: the settlement ids one client committed that day in the group."""
    DAY_REVERSALS = "day_reversals"
    """``client``, ``reversals``: ``[settlement id, reversal epoch ms]`` pairs of the day."""
    END = "end"
    """The trailer: ``format``, ``day``, ``group``, ``part``, ``records``, ``sha256``."""


# -- values ----------------------------------------------------------------------------------


def encode_hash(raw: RawHash) -> dict[str, dict[str, str]]:
    """A Redis hash as a part keeps it: UTF-8 values under ``text``, others under ``b64``."""
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for name, value in raw.items():
        try:
            text[name.decode()] = value.decode()
        except UnicodeDecodeError:
            binary[name.decode()] = base64.b64encode(value).decode()
    encoded = {"text": text}
    if binary:
        encoded["b64"] = binary
    return encoded


def decode_hash(encoded: Mapping[str, Any]) -> dict[bytes, bytes]:
    """The Redis hash :func:`encode_hash` kept, byte for byte."""
    raw = {name.encode(): value.encode() for name, value in encoded.get("text", {}).items()}
    for name, value in encoded.get("b64", {}).items():
        raw[name.encode()] = base64.b64decode(value)
    return raw


def value_digests(raw: RawHash) -> list[bytes]:
    """``field, SHA-1 hex of its value`` pairs, flat: what the trim script compares."""
    flat: list[bytes] = []
    for name, value in raw.items():
        flat.append(name)
        flat.append(hashlib.sha1(value).hexdigest().encode())
    return flat


# -- records ---------------------------------------------------------------------------------


def day_ident(day: date, group: int, client_id: str) -> str:
    """The index's name of one client's day record in one group."""
    return f"{day.isoformat()}|{group}|{client_id}"


def visit_ident(client_id: str, visit_id: str) -> str:
    """The index's name of a (client, visit)."""
    return f"{client_id}\x1f{visit_id}"


@dataclass(frozen=True, slots=True)
class VisitBundle:
    """What Redis kept of one (client, visit): its claim and each claimant's visit index."""

    client_id: str
    visit_id: str
    claim: dict[bytes, bytes] | None
    indexes: dict[str, dict[bytes, bytes]]

    def record(self) -> dict[str, Any]:
        """The bundle as a part's line."""
        return {
            "kind": RecordKind.VISIT.value,
            "client": self.client_id,
            "visit": self.visit_id,
            "claim": None if self.claim is None else encode_hash(self.claim),
            "indexes": {member: encode_hash(raw) for member, raw in self.indexes.items()},
        }

    @classmethod
    def of_record(cls, line: Mapping[str, Any]) -> VisitBundle:
        """The bundle a part's line holds."""
        claim = line["claim"]
        return cls(
            client_id=line["client"],
            visit_id=line["visit"],
            claim=None if claim is None else decode_hash(claim),
            indexes={member: decode_hash(raw) for member, raw in line["indexes"].items()},
        )


def settlement_line(settlement_id: str, raw: RawHash) -> dict[str, Any]:
    """A settlement's hash as a part's line."""
    return {"kind": RecordKind.SETTLEMENT.value, "id": settlement_id, "hash": encode_hash(raw)}


def journal_line(stream_id: str, raw: RawHash) -> dict[str, Any]:
    """A journal entry as a part's line."""
    return {"kind": RecordKind.JOURNAL.value, "stream_id": stream_id, "hash": encode_hash(raw)}


def day_totals_line(client_id: str, raw: RawHash) -> dict[str, Any]:
    """A client's day totals as a part's line."""
    return {"kind": RecordKind.DAY_TOTALS.value, "client": client_id, "hash": encode_hash(raw)}


def day_ids_line(client_id: str, ids: Sequence[str]) -> dict[str, Any]:
    """A client's settlement ids of the day as a part's line."""
    return {"kind": RecordKind.DAY_IDS.value, "client": client_id, "ids": list(ids)}


def day_reversals_line(client_id: str, reversals: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """A client's reversals of the day as a part's line."""
    return {
        "kind": RecordKind.DAY_REVERSALS.value,
        "client": client_id,
        "reversals": [[settlement_id, ms] for settlement_id, ms in reversals],
    }


def index_ident(line: Mapping[str, Any], day: date, group: int) -> str | None:
    """The name the index keeps a line under; ``None`` for lines found by scanning a unit."""
    kind = line["kind"]
    if kind == RecordKind.SETTLEMENT:
        return cast(str, line["id"])
    if kind == RecordKind.VISIT:
        return visit_ident(line["client"], line["visit"])
    if kind in (RecordKind.DAY_TOTALS, RecordKind.DAY_IDS, RecordKind.DAY_REVERSALS):
        return day_ident(day, group, line["client"])
    return None


# -- parts -----------------------------------------------------------------------------------


def unit_dir(root: Path, day: date, group: int) -> Path:
    """The folder of one day's parts of one slot group."""
    return root / day.isoformat() / f"g{group:03x}"


def part_path(root: Path, day: date, group: int, part: int) -> Path:
    """Where part number ``part`` of a (day, group) lives."""
    return unit_dir(root, day, group) / f"part-{part:06d}{PART_SUFFIX}"


@dataclass(frozen=True, slots=True)
class Placed:
    """Where one line landed: its part, byte offset and length (one gzip member)."""

    line: dict[str, Any]
    offset: int
    length: int


@dataclass
class WrittenPart:
    """A part on disk: where, its number, checksum, and where each line landed."""

    day: date
    group: int
    part: int
    path: Path
    sha256: str
    placed: list[Placed] = field(default_factory=list)


def _member(line: Mapping[str, Any]) -> bytes:
    # mtime 0: the same line compresses to the same bytes whenever it is written.
    return gzip.compress(orjson.dumps(line) + b"\n", compresslevel=6, mtime=0)


def _fsync_dir(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_part(
    root: Path,
    day: date,
    group: int,
    part: int,
    lines: Sequence[dict[str, Any]],
    *,
    before_rename: Any = None,
) -> WrittenPart:
    """Write a new part: to a temporary file, flushed to disk, then renamed into place.

    Args:
        root: the archive folder.
        day: the settlement day the part belongs to.
        group: its slot group.
        part: its number (one more than the unit's last).
        lines: its records.
        before_rename: called with no argument once the temporary file is on disk (a test's
            hook to stop the job there).

    Raises:
        FileExistsError: the part exists already (parts are never written twice).
    """
    target = part_path(root, day, group, part)
    if target.exists():
        raise FileExistsError(f"archive part {target} exists: parts are never rewritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    digest = hashlib.sha256()
    written = WrittenPart(day, group, part, target, "")
    offset = 0
    with temporary.open("wb") as handle:
        for line in lines:
            member = _member(line)
            handle.write(member)
            digest.update(member)
            written.placed.append(Placed(line, offset, len(member)))
            offset += len(member)
        written.sha256 = digest.hexdigest()
        trailer = {
            "kind": RecordKind.END.value,
            "format": ARCHIVE_FORMAT,
            "day": day.isoformat(),
            "group": group,
            "part": part,
            "records": len(lines),
            "sha256": written.sha256,
        }
        handle.write(_member(trailer))
        handle.flush()
        os.fsync(handle.fileno())
    if before_rename is not None:
        before_rename()
    os.replace(temporary, target)
    _fsync_dir(target.parent)
    return written


def read_line(path: Path, offset: int, length: int) -> dict[str, Any]:
    """One line of a part by its place (its gzip member's CRC-32 is checked).

    Raises:
        ArchiveCorrupt: the bytes there are not one intact line.
    """
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    try:
        return cast(dict[str, Any], orjson.loads(gzip.decompress(data)))
    except (OSError, EOFError, zlib.error, orjson.JSONDecodeError) as error:
        raise ArchiveCorrupt(f"{path} at {offset}: {error}") from error


def read_part(path: Path) -> tuple[list[Placed], dict[str, Any]]:
    """Every line of a part with its place, and its trailer, checking the checksum.

    Raises:
        ArchiveCorrupt: the part is cut short, altered, or has no trailer.
    """
    data = path.read_bytes()
    placed: list[Placed] = []
    offset = 0
    digest = hashlib.sha256()
    while offset < len(data):
        decompressor = zlib.decompressobj(wbits=31)
        try:
            text = decompressor.decompress(data[offset:])
        except zlib.error as error:
            raise ArchiveCorrupt(f"{path} at {offset}: {error}") from error
        if not decompressor.eof:
            raise ArchiveCorrupt(f"{path} is cut short at {offset}")
        length = len(data) - offset - len(decompressor.unused_data)
        line = cast(dict[str, Any], orjson.loads(text))
        if line.get("kind") == RecordKind.END:
            if offset + length != len(data):
                raise ArchiveCorrupt(f"{path} has bytes after its trailer")
            if line.get("sha256") != digest.hexdigest() or line.get("records") != len(placed):
                raise ArchiveCorrupt(f"{path} does not match its checksum")
            return placed, line
        digest.update(data[offset : offset + length])
        placed.append(Placed(line, offset, length))
        offset += length
    raise ArchiveCorrupt(f"{path} has no trailer")


# -- the index -------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts (
    day TEXT NOT NULL, grp INTEGER NOT NULL, part INTEGER NOT NULL,
    sha256 TEXT NOT NULL, records INTEGER NOT NULL, bytes INTEGER NOT NULL,
    PRIMARY KEY (day, grp, part)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, ident TEXT NOT NULL,
    day TEXT NOT NULL, grp INTEGER NOT NULL, client TEXT NOT NULL,
    part INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
    PRIMARY KEY (kind, ident)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_day ON records (day, kind, client);
"""


@dataclass(frozen=True, slots=True)
class Location:
    """Where the newest copy of a record is."""

    day: date
    group: int
    part: int
    offset: int
    length: int


class ArchiveIndex:
    """The archive's index (SQLite, write-ahead log): one writer (the job), many readers."""

    def __init__(self, root: Path, *, write: bool = False) -> None:
        self.root = root
        path = root / INDEX_FILE
        if write:
            root.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(ARCHIVE_FORMAT),)
            )
        else:
            self._db = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        row = self._db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        if row is None or int(row[0]) != ARCHIVE_FORMAT:
            raise ArchiveCorrupt(f"{path} is not an archive index of format {ARCHIVE_FORMAT}")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # -- writing --

    def add_part(self, written: WrittenPart) -> None:
        """Record a part and point every record it holds to it, in one transaction."""
        day = written.day.isoformat()
        size = written.path.stat().st_size
        rows = []
        for placed in written.placed:
            ident = index_ident(placed.line, written.day, written.group)
            if ident is not None:
                client = placed.line.get("client", "")
                rows.append(
                    (
                        placed.line["kind"],
                        ident,
                        day,
                        written.group,
                        client,
                        written.part,
                        placed.offset,
                        placed.length,
                    )
                )
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?)",
                (day, written.group, written.part, written.sha256, len(written.placed), size),
            )
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?,?)", rows)

    def add_missing_parts(self) -> list[Path]:
        """Index every complete part on disk the index lacks (a job stopped between the two).

        Temporary files a stopped job left are removed. Parts are added in the order they
        were written, so the newest copy of each record wins.

        Raises:
            ArchiveCorrupt: a part on disk fails its checksum.
        """
        known = {
            (row[0], row[1], row[2])
            for row in self._db.execute("SELECT day, grp, part FROM parts").fetchall()
        }
        added: list[Path] = []
        for day_dir in sorted(self.root.iterdir()):
            if not day_dir.is_dir():
                continue
            try:
                day = date.fromisoformat(day_dir.name)
            except ValueError:
                continue
            for group_dir in sorted(day_dir.iterdir()):
                group = int(group_dir.name[1:], 16)
                for path in sorted(group_dir.iterdir()):
                    if path.name.endswith(".tmp"):
                        path.unlink()
                        continue
                    part = int(path.name.removeprefix("part-").removesuffix(PART_SUFFIX))
                    if (day.isoformat(), group, part) in known:
                        continue
                    self.add_part_file(day, group, part)
                    added.append(path)
        return added

    def add_part_file(self, day: date, group: int, part: int) -> None:
        """Index a complete part found on disk (checked against its checksum first).

        Raises:
            ArchiveCorrupt: it fails its checksum.
        """
        path = part_path(self.root, day, group, part)
        placed, trailer = read_part(path)
        self.add_part(WrittenPart(day, group, part, path, trailer["sha256"], placed))

    def _transaction(self) -> Any:
        db = self._db

        class _Transaction:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind: Any, *_: Any) -> None:
                db.execute("ROLLBACK" if kind is not None else "COMMIT")

        return _Transaction()

    # -- reading --

    def next_part(self, day: date, group: int) -> int:
        """The number the unit's next part takes."""
        row = self._db.execute(
            "SELECT MAX(part) FROM parts WHERE day = ? AND grp = ?", (day.isoformat(), group)
        ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def parts(self, day: date, group: int | None = None) -> list[tuple[int, int]]:
        """``(group, part)`` of every part of a day (of one group), in writing order."""
        if group is None:
            rows = self._db.execute(
                "SELECT grp, part FROM parts WHERE day = ? ORDER BY grp, part", (day.isoformat(),)
            )
        else:
            rows = self._db.execute(
                "SELECT grp, part FROM parts WHERE day = ? AND grp = ? ORDER BY part",
                (day.isoformat(), group),
            )
        return [(int(row[0]), int(row[1])) for row in rows.fetchall()]

    def locate(self, kind: RecordKind, ident: str) -> Location | None:
        """Where the newest copy of a record is, ``None`` when it was never archived."""
        row = self._db.execute(
            "SELECT day, grp, part, offset, length FROM records WHERE kind = ? AND ident = ?",
            (kind.value, ident),
        ).fetchone()
        if row is None:
            return None
        return Location(date.fromisoformat(row[0]), row[1], row[2], row[3], row[4])

    def day_records(self, kind: RecordKind, day: date, client_id: str) -> list[Location]:
        """The places of one client's day records of one kind, every group's."""
        rows = self._db.execute(
            "SELECT day, grp, part, offset, length FROM records "
            "WHERE day = ? AND kind = ? AND client = ? ORDER BY grp",
            (day.isoformat(), kind.value, client_id),
        ).fetchall()
        return [Location(date.fromisoformat(row[0]), *row[1:]) for row in rows]

    def totals(self) -> dict[str, int]:
        """Parts, records indexed and bytes on disk."""
        parts, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM parts"
        ).fetchone()
        records = self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        return {"parts": int(parts), "indexed_records": int(records), "bytes": int(size)}


class ArchiveReader:
    """Reads the archive back: what the adjudicator answers when Redis no longer holds it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: ArchiveIndex | None = None

    def _opened(self) -> ArchiveIndex | None:
        if self._index is None:
            if not (self.root / INDEX_FILE).exists():
                return None  # nothing archived yet
            self._index = ArchiveIndex(self.root)
        return self._index

    def close(self) -> None:
        """Close the index."""
        if self._index is not None:
            self._index.close()
            self._index = None

    def _line(self, location: Location) -> dict[str, Any]:
        path = part_path(self.root, location.day, location.group, location.part)
        return read_line(path, location.offset, location.length)

    def line(self, kind: RecordKind, ident: str) -> dict[str, Any] | None:
        """The newest archived line of a record, ``None`` when it was never archived."""
        index = self._opened()
        location = None if index is None else index.locate(kind, ident)
        return None if location is None else self._line(location)

    def settlement(self, settlement_id: str) -> dict[bytes, bytes] | None:
        """A settlement's hash as archived last, ``None`` when it was never archived."""
        line = self.line(RecordKind.SETTLEMENT, settlement_id)
        return None if line is None else decode_hash(line["hash"])

    def visit(self, client_id: str, visit_id: str) -> VisitBundle | None:
        """What was archived of a (client, visit), ``None`` when nothing was."""
        line = self.line(RecordKind.VISIT, visit_ident(client_id, visit_id))
        return None if line is None else VisitBundle.of_record(line)

    def day_hashes(self, day: date, client_id: str) -> dict[int, dict[bytes, bytes]]:
        """One client's archived day totals of ``day``, by group."""
        return {
            location.group: decode_hash(self._line(location)["hash"])
            for location in self._day(RecordKind.DAY_TOTALS, day, client_id)
        }

    def day_ids(self, day: date, client_id: str) -> dict[int, list[str]]:
        """One client's archived settlement ids of ``day``, by group."""
        return {
            location.group: list(self._line(location)["ids"])
            for location in self._day(RecordKind.DAY_IDS, day, client_id)
        }

    def day_reversals(self, day: date, client_id: str) -> dict[int, list[tuple[str, int]]]:
        """One client's archived reversals of ``day``, by group."""
        return {
            location.group: [(item[0], int(item[1])) for item in self._line(location)["reversals"]]
            for location in self._day(RecordKind.DAY_REVERSALS, day, client_id)
        }

    def _day(self, kind: RecordKind, day: date, client_id: str) -> list[Location]:
        index = self._opened()
        return [] if index is None else index.day_records(kind, day, client_id)

    def archived_groups(self, day: date) -> set[int]:
        """The groups with at least one part of ``day``."""
        index = self._opened()
        return set() if index is None else {group for group, _ in index.parts(day)}

    def journal(self, day: date, group: int) -> Iterator[tuple[str, dict[bytes, bytes]]]:
        """The archived journal entries of one (day, group), in stream order, each once."""
        index = self._opened()
        if index is None:
            return iter(())
        entries: dict[str, dict[bytes, bytes]] = {}
        for _, part in index.parts(day, group):
            placed, _trailer = read_part(part_path(self.root, day, group, part))
            for item in placed:
                if item.line["kind"] == RecordKind.JOURNAL:
                    entries[item.line["stream_id"]] = decode_hash(item.line["hash"])
        return iter(sorted(entries.items(), key=lambda pair: stream_order(pair[0])))


def stream_order(stream_id: str | bytes) -> tuple[int, int]:
    """A stream id's place in its stream: ``(ms, sequence)``."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, sequence = text.partition("-")
    return int(ms), int(sequence or 0)


__all__ = [
    "ARCHIVE_FORMAT",
    "INDEX_FILE",
    "LOCK_FILE",
    "ArchiveCorrupt",
    "ArchiveIndex",
    "ArchiveReader",
    "Location",
    "Placed",
    "RecordKind",
    "VisitBundle",
    "WrittenPart",
    "day_ids_line",
    "day_reversals_line",
    "day_totals_line",
    "decode_hash",
    "encode_hash",
    "journal_line",
    "part_path",
    "read_line",
    "read_part",
    "settlement_line",
    "stream_order",
    "unit_dir",
    "value_digests",
    "visit_ident",
    "write_part",
]
