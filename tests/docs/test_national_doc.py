"""docs/national.md lists exactly the transactions the adapter serves, as the contract does."""

from __future__ import annotations

import re

from gateway.national.base import REVERSIBLE
from gateway.national.service import NationalService
from tests.support.cases import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "national.md").read_text(encoding="utf-8")
CONTRACT = (REPO_ROOT / "docs" / "spec" / "contract.md").read_text(encoding="utf-8")


def _served() -> set[str]:
    # The handler table is made per instance; an instance with no parts only lists it.
    service = NationalService(None, None, None, None)  # type: ignore[arg-type]
    return set(service.handlers)


def _documented() -> set[str]:
    table = DOC.split("## Transactions served", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    served: set[str] = set()
    for row in rows[1:]:
        first = row.split("|")[1]
        served.update(re.findall(r"\b\d{4}\b", first))
    return served


def test_the_doc_table_lists_every_served_transaction_and_no_other() -> None:
    assert _documented() == _served()


def test_the_adapter_serves_what_the_contract_lists() -> None:
    listed = CONTRACT.split("Transactions served:", 1)[1].split("Others answer", 1)[0]
    assert set(re.findall(r"\b\d{4}\b", listed)) == _served()


def test_every_reversible_transaction_is_served() -> None:
    assert _served() >= REVERSIBLE
