"""The shared acceptance cases (``../shared/cases/*.json``), read as the contract defines them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def cases_dir() -> Path:
    """Where the acceptance cases live: ``$ONESTOP_CASES_DIR`` or ``../shared/cases``."""
    configured = os.environ.get("ONESTOP_CASES_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "cases"


@dataclass(frozen=True)
class Case:
    """One acceptance case file."""

    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def steps(self) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self.data["steps"]
        return steps


def load_cases() -> list[Case]:
    """Every case file, in name order. An empty or missing directory is an error, not a skip."""
    directory = cases_dir()
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no acceptance cases in {directory}")
    return [
        Case(path, json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal))
        for path in paths
    ]


def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Assert that ``actual`` contains ``expected`` (the case format's ``expect`` is a subset)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path or 'answer'}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key}: missing from the answer"
            assert_subset(value, actual[key], f"{path}.{key}")
    else:
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"
