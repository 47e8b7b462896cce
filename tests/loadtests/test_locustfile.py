"""The Locust users run headless against a real ``onestop serve`` without a single failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cases import REPO_ROOT
from tests.support.serve import start_serve

pytestmark = pytest.mark.slow


def test_locust_users_settle_without_failures(tmp_path: Path) -> None:
    data = tmp_path / "region"
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "onestop",
            "gen",
            "--out",
            str(data),
            "--members",
            "3000",
            "--items",
            "3000",
            "--hospitals",
            "2",
            "--pharmacies",
            "2",
            "--mapping-rows",
            "1500",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr
    served = start_serve(tmp_path / "serve")
    loaded = subprocess.run(
        [
            sys.executable,
            "-m",
            "onestop",
            "load-dataset",
            str(data),
            "--data-dir",
            str(tmp_path / "serve"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["members_loaded"] == 3000

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(REPO_ROOT / "loadtests" / "locustfile.py"),
            "--headless",
            "--users",
            "6",
            "--spawn-rate",
            "6",
            "--run-time",
            "8s",
            "--host",
            str(served.addresses["gateway"]),
            "--only-summary",
            "--csv",
            str(tmp_path / "locust"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ONESTOP_LOAD_DATA": str(data)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    stats = (tmp_path / "locust_stats.csv").read_text().splitlines()
    aggregated = next(line for line in stats if ",Aggregated," in line).split(",")
    requests, failures = int(aggregated[2]), int(aggregated[3])
    assert requests > 20
    assert failures == 0, (tmp_path / "locust_failures.csv").read_text()
    names = {line.split(",")[1] for line in stats[1:]}
    assert {"/v1/settlements [discharge]", "/v1/settlements [pharmacy]"} <= names
