"""The acceptance cases (``docs/cases``), read as the contract defines them (contract section 8).

``docs/cases/*.json`` are round 1's cases; they pass. ``docs/cases/round2/*.json`` need the
round-2 rules: until the issue building a rule lands, its cases run as strict expected
failures that name that issue (:data:`PENDING`), so a case that starts passing must lose its
mark in the same change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = REPO_ROOT / "docs" / "cases"

PENDING: dict[str, str] = {}
"""Round-2 cases whose rules are not built yet, with the issue that builds them."""


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
    """Every case file, round 1 then round 2, in name order.

    An empty or missing directory is an error, not a skip: the copy is part of the repository.
    """
    paths = sorted(CASES_DIR.glob("*.json")) + sorted(CASES_DIR.glob("round2/*.json"))
    if not paths:
        raise FileNotFoundError(f"no acceptance cases in {CASES_DIR}")
    return [
        Case(path, json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal))
        for path in paths
    ]


def case_params(cases: list[Case]) -> list[Any]:
    """The cases as pytest parameters, the pending round-2 ones marked as strict failures."""
    params = []
    for case in cases:
        pending = PENDING.get(case.path.stem)
        marks = [pytest.mark.xfail(strict=True, reason=f"needs {pending}")] if pending else []
        params.append(pytest.param(case, id=case.path.stem, marks=marks))
    return params


def step_request(step: dict[str, Any], settlement_of_step: dict[int, str]) -> dict[str, Any]:
    """A settle or preview step's request body, with ``resettle_of_step`` resolved.

    Round 2 (contract section 8): a step may name, in ``resettle_of_step``, the earlier step
    whose settlement id its request's ``resettle_of`` carries; ids are known only at run time.
    """
    request: dict[str, Any] = dict(step["request"])
    if "resettle_of_step" in step:
        request["resettle_of"] = settlement_of_step[step["resettle_of_step"]]
    return request


def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Assert that ``actual`` contains ``expected`` (the case format's ``expect`` is a subset)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path or 'answer'}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key}: missing from the answer"
            assert_subset(value, actual[key], f"{path}.{key}")
    else:
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"
