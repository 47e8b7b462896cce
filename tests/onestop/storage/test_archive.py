"""The archive's part format, pinned, and its index rebuilt from the parts alone."""

from __future__ import annotations

import gzip
import json
import os
from datetime import date
from pathlib import Path

import pytest

from onestop.storage.archive import (
    ArchiveCorrupt,
    ArchiveIndex,
    ArchiveReader,
    RecordKind,
    VisitBundle,
    day_ids_line,
    day_reversals_line,
    day_totals_line,
    decode_hash,
    encode_hash,
    journal_line,
    part_path,
    read_line,
    read_part,
    settlement_line,
    write_part,
)

GOLDEN = Path(__file__).parent / "golden" / "archive-1.jsonl"
DAY = date(2026, 3, 1)
PROTOBUF = bytes([0x0A, 0x20, 0xFF, 0xFE, 0x00, 0x80])  # not UTF-8: kept in base64


def sample_lines() -> list[dict[str, object]]:
    """One line of each kind, as the job writes them."""
    settlement = {b"record": PROTOBUF, b"status": b"settled", b"client_id": "医院".encode()}
    bundle = VisitBundle(
        "H1",
        "ZY:001",
        {b"member_id": b"M1", b"token": b"t", b"claimed_ms": b"1", b"m:M1": b"1"},
        {"M1": {b"settlement_id": b"S" + b"0" * 31, b"status": b"settled"}},
    )
    return [
        journal_line("1772330400000-0", {b"kind": b"settlement", b"cash": b"100"}),
        settlement_line("S" + "0" * 31, settlement),
        bundle.record(),
        day_totals_line("H1", {b"settlements": b"1"}),
        day_ids_line("H1", ["S" + "0" * 31]),
        day_reversals_line("H1", [("S" + "0" * 31, 1772330500000)]),
    ]


def test_the_part_format_is_the_golden_one(tmp_path: Path) -> None:
    written = write_part(tmp_path, DAY, 7, 0, sample_lines())
    text = gzip.decompress(written.path.read_bytes()).decode()  # zcat reads a part whole
    if os.environ.get("ONESTOP_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the archive's part format changed: parts already written must stay readable; bump "
        "ARCHIVE_FORMAT and read both, then regenerate with ONESTOP_UPDATE_GOLDEN=1"
    )
    assert json.loads(text.splitlines()[-1])["kind"] == RecordKind.END
    assert written.path == part_path(tmp_path, DAY, 7, 0)
    assert written.path.name == "part-000000.jsonl.gz"


def test_values_read_back_byte_for_byte() -> None:
    raw = {b"record": PROTOBUF, b"text": "名".encode(), b"empty": b""}
    assert decode_hash(json.loads(json.dumps(encode_hash(raw)))) == raw


def test_each_line_reads_alone_and_a_damaged_part_is_refused(tmp_path: Path) -> None:
    written = write_part(tmp_path, DAY, 7, 0, sample_lines())
    for placed in written.placed:
        assert read_line(written.path, placed.offset, placed.length) == placed.line
    lines, trailer = read_part(written.path)
    assert [item.line for item in lines] == sample_lines()
    assert trailer["sha256"] == written.sha256
    data = bytearray(written.path.read_bytes())
    data[written.placed[1].offset + 12] ^= 0x01
    written.path.write_bytes(bytes(data))
    with pytest.raises(ArchiveCorrupt):
        read_part(written.path)
    with pytest.raises(ArchiveCorrupt):
        read_line(written.path, written.placed[1].offset, written.placed[1].length)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(bytes(data[: written.placed[-1].offset]))
    with pytest.raises(ArchiveCorrupt):
        read_part(cut)


def test_a_part_is_never_written_twice(tmp_path: Path) -> None:
    write_part(tmp_path, DAY, 7, 0, sample_lines())
    with pytest.raises(FileExistsError):
        write_part(tmp_path, DAY, 7, 0, sample_lines())


def test_the_index_is_rebuilt_from_the_parts_and_the_newest_copy_wins(tmp_path: Path) -> None:
    index = ArchiveIndex(tmp_path, write=True)
    first = write_part(tmp_path, DAY, 7, 0, sample_lines())
    index.add_part(first)
    newer = {b"record": PROTOBUF, b"status": b"reversed"}
    write_part(tmp_path, DAY, 7, 1, [settlement_line("S" + "0" * 31, newer)])  # not indexed
    (part_path(tmp_path, DAY, 7, 2).with_name(".part-000002.jsonl.gz.tmp")).write_bytes(b"x")
    assert index.add_missing_parts() == [part_path(tmp_path, DAY, 7, 1)]
    assert not list(tmp_path.glob("**/*.tmp"))  # a stopped job's leftovers are removed
    reader = ArchiveReader(tmp_path)
    assert reader.settlement("S" + "0" * 31) == newer
    bundle = reader.visit("H1", "ZY:001")
    assert bundle is not None
    assert bundle.indexes["M1"][b"status"] == b"settled"
    assert reader.day_ids(DAY, "H1") == {7: ["S" + "0" * 31]}
    assert reader.day_reversals(DAY, "H1") == {7: [("S" + "0" * 31, 1772330500000)]}
    assert reader.day_hashes(DAY, "H1") == {7: {b"settlements": b"1"}}
    assert list(reader.journal(DAY, 7)) == [
        ("1772330400000-0", {b"kind": b"settlement", b"cash": b"100"})
    ]
    assert index.next_part(DAY, 7) == 2
    reader.close()
    index.close()


def test_a_part_found_on_disk_is_indexed_from_its_own_bytes(tmp_path: Path) -> None:
    index = ArchiveIndex(tmp_path, write=True)
    write_part(tmp_path, DAY, 7, 0, sample_lines())
    assert index.next_part(DAY, 7) == 0  # on disk, not indexed (a run stopped there)
    index.add_part_file(DAY, 7, 0)
    assert index.next_part(DAY, 7) == 1
    assert index.locate(RecordKind.SETTLEMENT, "S" + "0" * 31) is not None
    index.close()
