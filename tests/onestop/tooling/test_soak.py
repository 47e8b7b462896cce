"""``onestop soak``, short: faults are injected, and every fen still reconciles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from onestop.cli import main

pytestmark = pytest.mark.slow


def short_soak(
    capsys: pytest.CaptureFixture[str],
    *options: str,
    minutes: str,
    faults_every: tuple[str, str],
) -> dict[str, Any]:
    """``onestop soak`` with 300 members and 4 terminals; its figures, once it exited 0."""
    code = main(
        [
            "soak",
            *options,
            "--minutes",
            minutes,
            "--members",
            "300",
            "--terminals",
            "4",
            "--fault-every",
            *faults_every,
            "--json",
        ]
    )
    figures: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, figures
    return figures


def test_a_short_soak_with_faults_reconciles(capsys: pytest.CaptureFixture[str]) -> None:
    figures = short_soak(capsys, minutes="0.3", faults_every=("3", "6"))
    assert sum(figures["faults_injected"].values()) >= 2
    assert figures["settlements"] > 100
    assert figures["reversals"] > 0
    assert figures["balanced"] is True
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert figures["identities_broken"] == []
    assert figures["days_reconciled"] >= 1
    assert not [
        answer
        for answer in figures["answers"]
        if answer.startswith("5") and answer != "503 UNAVAILABLE"
    ]


def test_a_short_failover_soak_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """``onestop soak --failover``: every fen reconciles though primaries die under load.

    A 3+3 cluster: each killed primary's replica is promoted and the node rejoins as a replica.
    """
    figures = short_soak(capsys, "--failover", minutes="0.2", faults_every=("3", "4"))
    assert figures["failover"] is True
    assert figures["faults_injected"].get("primary killed", 0) >= 2
    assert figures["settlements"] > 100
    assert figures["balanced"] is True
    assert (figures["lost"], figures["duplicated"]) == (0, 0)
    assert figures["identities_broken"] == []
    # a lost connection is a 503 to retry, never a 500 (redis-py's transport races)
    assert not [
        answer
        for answer in figures["answers"]
        if answer.startswith("5") and answer != "503 UNAVAILABLE"
    ]
    assert figures["transport_errors"] == {}
