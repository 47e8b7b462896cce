"""The examples of ``docs/formats.md`` are documents the loaders accept, as they stand.

Each block marked ``<!-- example: KIND -->`` (policy, catalog, mapping, members) is parsed by
the same function that loads that kind over HTTP and from files: an example a reader copies
never fails to load.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from onestop.domain.catalog import parse_catalog_csv
from onestop.domain.documents import parse_document_text
from onestop.domain.mapping import parse_mapping_csv
from onestop.domain.member import AcceptedLine, parse_members_jsonl
from onestop.domain.policy import parse_policy

FORMATS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
_BLOCK = re.compile(
    r"<!-- example: (?P<kind>[a-z]+) -->\n```(?P<language>[a-z]+)\n(?P<text>.*?)```", re.DOTALL
)


def _examples() -> list[tuple[str, str, str]]:
    text = FORMATS.read_text(encoding="utf-8")
    return [(m["kind"], m["language"], m["text"]) for m in _BLOCK.finditer(text)]


def test_every_kind_has_an_example() -> None:
    assert {kind for kind, _, _ in _examples()} == {"policy", "catalog", "mapping", "members"}


@pytest.mark.parametrize(
    ("kind", "language", "text"),
    _examples(),
    ids=[f"{kind}-{index}" for index, (kind, _, _) in enumerate(_examples())],
)
def test_the_example_loads(kind: str, language: str, text: str) -> None:
    if kind == "policy":
        parse_policy(parse_document_text(text, f"policy.{language}"))
    elif kind == "catalog":
        assert parse_catalog_csv(text)
    elif kind == "mapping":
        assert parse_mapping_csv(text, None).rows_by_his_code
    else:
        parsed = list(parse_members_jsonl(text.splitlines()))
        assert parsed
        assert all(isinstance(line, AcceptedLine) for line in parsed), parsed
