"""``onestop soak``, short: faults are injected, and every fen still reconciles."""

from __future__ import annotations

import json

import pytest

from onestop.cli import main

pytestmark = pytest.mark.slow


def test_a_short_soak_with_faults_reconciles(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "soak",
            "--minutes",
            "0.3",
            "--members",
            "300",
            "--terminals",
            "4",
            "--fault-every",
            "3",
            "6",
            "--json",
        ]
    )
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, figures
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
    code = main(
        [
            "soak",
            "--failover",
            "--minutes",
            "0.2",
            "--members",
            "300",
            "--terminals",
            "4",
            "--fault-every",
            "3",
            "4",
            "--json",
        ]
    )
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, figures
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
