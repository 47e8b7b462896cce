from __future__ import annotations

import json
import subprocess
import sys

import pytest

from onestop.cli import main


def test_bench_engine_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "engine", "--lines", "20", "--iterations", "30", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["lines"] == 20
    assert figures["iterations"] == 30
    assert figures["engine_median_us"] > 0
    assert figures["check_median_us"] > 0


def test_the_command_is_installed_as_a_module() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "onestop", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in completed.stdout
    assert "bench" in completed.stdout


def test_unknown_commands_are_refused() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["settle-everything"])
    assert caught.value.code == 2


@pytest.mark.slow
def test_bench_memory_measures_bytes_per_member(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "memory", "--members", "2000", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["members"] == 2000
    assert 0 < figures["record_bytes_per_member"] < figures["record_and_year_bytes_per_member"]
    history = [figures["history_bytes_per_member"][str(n)] for n in (1, 12, 52, 156, 400)]
    assert history[0] > 0
    assert history == sorted(history), history


@pytest.mark.slow
def test_bench_export_runs_the_real_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "export", "--settlements", "500", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["rows"] == 500
    assert figures["verified"] is True
    assert figures["gateway_peak_mb"] > 0


@pytest.mark.slow
def test_bench_stack_prints_the_contracted_json(capsys: pytest.CaptureFixture[str]) -> None:
    """The whole bench once, on a Redis Cluster of two, with the controls' phases too.

    Once, not per Redis kind: each run costs half a minute of the suite, and the stack on one
    Redis server is what every other test of ``onestop serve`` runs.
    """
    arguments = ["bench", "--seconds", "1", "--members-loaded", "400", "--redis-shards", "2"]
    assert main([*arguments, "--controls", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["settings"]["redis_shards"] == 2
    assert figures["settings"]["controls"] is True
    for phase in ("discharge", "pharmacy"):
        measured = figures["controls"][phase]
        assert measured["ratio_on"] > 0
        assert measured["ratio_off"] > 0
        assert measured["errors_on"] == 0, measured["error_codes_on"]
    for phase in ("discharge", "pharmacy"):
        costs = figures["cost_per_request"][phase]
        assert costs["gateway_cpu_ms"] > 0
        assert costs["adjudicator_cpu_ms"] > 0
        assert costs["redis_cpu_ms"] > 0
    for phase in ("discharge", "pharmacy"):
        assert set(figures[phase]) >= {"throughput_per_s", "p50_ms", "p99_ms", "errors"}
        assert figures[phase]["throughput_per_s"] > 0
        assert figures[phase]["errors"] == 0
    assert set(figures["baseline"]) == {"discharge_throughput_per_s", "pharmacy_throughput_per_s"}
    assert set(figures["ratio"]) == {"discharge", "pharmacy"}
    assert figures["engine_us_per_discharge"] > 0
    assert figures["discharge_at_70_percent"]["errors"] == 0
    # What a scrape of the services shows afterwards agrees with the load generator: every
    # settlement it saw answered was counted once, and the fen add up per fund.
    scraped = figures["scrape"]
    settled = scraped["adjudicator"]["settlements_by_kind"]["settled"]
    assert settled == scraped["settled_per_the_load_generator"] > 0
    assert scraped["gateway"]["answers_by_outcome"].get("ok", 0) >= settled, scraped
    assert scraped["adjudicator"]["fen_by_fund"]["cash"] > 0
    assert (
        0 < scraped["gateway"]["settle_p50_bucket_ms"] <= scraped["gateway"]["settle_p99_bucket_ms"]
    )
    assert set(scraped["adjudicator"]["stage_mean_ms"]) >= {"snapshot", "compute", "commit"}
