"""``onestop bench``: settlement throughput of the real stack against a bare baseline.

Starts ``onestop serve`` on a temporary directory with a generated region (full catalog and
mappings, fewer members than a province), then measures, each for ``seconds``:

1. discharge settlements (200 lines) at full load, then at 70 % of that rate for latency;
2. pharmacy swipes (3 lines) at full load;
3. the baseline (same HTTP server, same worker count: one FastAPI endpoint validating the same
   body with the same pydantic model plus one Redis ``INCR``) with the same bodies;

and reports throughput, p50/p99 latency, errors, the product/baseline ratio for each, and the
engine's microseconds per 200-line discharge.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal, cast

import httpx

from onestop.admin import Connection
from onestop.domain.policy import policy_to_document
from onestop.process import stop_with_parent
from onestop.tooling.bench.driver import (
    Phase,
    bill_templates,
    result_of,
    run_phase_in_process,
)
from onestop.tooling.bench.engine import time_engine
from onestop.tooling.bench.memory import node_info, used_memory
from onestop.tooling.bench.scrape import scrape_summary
from onestop.tooling.dataset import DatasetSize, load_dataset, write_dataset
from onestop.tooling.demo.regions import controlled_policy, demo_policies
from onestop.tooling.redis_server import RedisServer, free_port
from onestop.tooling.serve import ServeSettings, Supervisor

CONCURRENCY = 16


def _run(phase: Phase) -> dict[str, Any]:
    # The load driver runs in a process of its own, which stops if the bench is killed.
    with ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=stop_with_parent
    ) as pool:
        return pool.submit(run_phase_in_process, phase).result()


def summary_ok(raw: dict[str, Any]) -> int:
    """Successful requests of a phase."""
    result = result_of(raw)
    return result.requests - result.errors


def _redis_servers(supervisor: Supervisor) -> list[RedisServer]:
    return supervisor.redis.nodes if supervisor.redis is not None else []


def _redis_cpu_seconds(servers: list[RedisServer]) -> float:
    """CPU time the Redis servers have used so far (user + system, all nodes)."""
    return sum(
        float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
        for cpu in node_info(servers, "cpu")
    )


def _process_tree_cpu_seconds(root_pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes and their descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        # the command name may hold spaces; the fields after its closing parenthesis do not
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / ticks
    wanted = set(root_pids)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in wanted} - wanted
        grew = bool(children)
        wanted |= children
    return sum(times.get(pid, 0.0) for pid in wanted)


def _service_pids(supervisor: Supervisor, prefix: str) -> list[int]:
    return [
        child.process.pid
        for child in supervisor.children
        if child.name.startswith(prefix) and child.process is not None
    ]


def _profile(supervisor: Supervisor, folder: Path, seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each service (its worker processes too) for one phase's length."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    folder.mkdir(parents=True, exist_ok=True)
    started = []
    for service in ("gateway", "adjudicator"):
        pids = _service_pids(supervisor, service)
        if not pids:
            continue
        started.append(
            subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pids[0]),
                    "--subprocesses",
                    "--duration",
                    str(max(1, int(seconds))),
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--format",
                    "flamegraph",
                    "--output",
                    str(folder / f"{service}.svg"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return started


class CostMeter:
    """What each request of a phase cost: CPU of each service and of Redis, Redis memory."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.redis_servers = _redis_servers(supervisor)
        self.gateway = _service_pids(supervisor, "gateway")
        self.adjudicator = _service_pids(supervisor, "adjudicator")
        self._start = self._reading()

    def _reading(self) -> tuple[float, float, float, int]:
        return (
            _process_tree_cpu_seconds(self.gateway),
            _process_tree_cpu_seconds(self.adjudicator),
            _redis_cpu_seconds(self.redis_servers),
            used_memory(self.redis_servers),
        )

    def per_request(self, requests: int) -> dict[str, float]:
        """Costs since the last call, per successful request."""
        now = self._reading()
        gateway, adjudicator, redis_cpu, memory = (
            after - before for after, before in zip(now, self._start, strict=True)
        )
        self._start = now
        count = max(1, requests)
        return {
            "gateway_cpu_ms": round(gateway * 1e3 / count, 3),
            "adjudicator_cpu_ms": round(adjudicator * 1e3 / count, 3),
            "redis_cpu_ms": round(redis_cpu * 1e3 / count, 3),
            "redis_bytes": round(memory / count),
        }


def _wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{url}/v1/settlements", content=b"{}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


def run_bench(
    seconds: float = 20.0,
    members: int = 20_000,
    lines: int = 200,
    write: Any = print,
    appendfsync: Literal["always", "everysec"] = "always",
    gateway_workers: int = 1,
    adjudicator_workers: int = 1,
    redis_shards: int = 1,
    redis_replicas: int = 0,
    controls: bool = False,
    flamegraphs: Path | None = None,
    latency_rate: float | None = None,
) -> dict[str, Any]:
    """Run every phase; the figures (see the module's description).

    ``flamegraphs``: a folder where py-spy's flame graphs of the gateway and the adjudicator
    during the full-load discharge phase are written (``gateway.svg``, ``adjudicator.svg``).
    The sampling costs CPU: that run's figures are not the reference ones.

    ``latency_rate``: the latency phase's rate (discharges a second) instead of 70 % of the
    measured peak, to compare two versions' tails at the same load.

    ``redis_replicas`` runs that many replicas of each Redis primary, every write then
    acknowledged once they hold it (what ``WAIT`` costs). ``controls`` runs the discharge and
    pharmacy phases once more after the region's policies gained the demo's controls across
    visits (:data:`~onestop.tooling.demo.regions.DEMO_CONTROLS`), and once more after they
    lost them again, other members each: what the controls cost, against the same baseline.
    """
    with tempfile.TemporaryDirectory(prefix="onestop-bench-") as scratch:
        root = Path(scratch)
        data = root / "dataset"
        write(f"generating a region: {members} members, 50,000 items, 2 hospitals, 2 pharmacies")
        write_dataset(data, DatasetSize(members=members, hospitals=2, pharmacies=2))
        supervisor = Supervisor(
            ServeSettings(
                data_dir=root / "serve",
                port=0,
                appendfsync=appendfsync,
                gateway_workers=gateway_workers,
                adjudicator_workers=adjudicator_workers,
                redis_shards=redis_shards,
                redis_replicas=redis_replicas,
                # One client drives the whole system's capacity here, far above what one
                # hospital or pharmacy sends: the per-client limit is not what is measured.
                service_environment={
                    "ONESTOP_GATEWAY_RATE_PER_CLIENT": "1000000",
                    "ONESTOP_GATEWAY_BURST_PER_CLIENT": "1000000",
                },
            )
        )
        baseline: subprocess.Popen[bytes] | None = None
        try:
            addresses = supervisor.start()
            url = str(addresses["gateway"])
            connection = Connection(url, "agency", Path(str(addresses["agency_key"])))
            write("loading it through the API")
            asyncio.run(load_dataset(connection, data))
            member_ids = [
                json.loads(line)["member_id"]
                for line in (data / "members.jsonl").read_text().splitlines()
            ]

            discharge = bill_templates(data, "H0001", "discharge", lines)
            swipe = bill_templates(data, "P0001", "pharmacy", 3)

            def phase(
                target: str,
                client: str,
                templates: list[list[bytes]],
                tag: str,
                rate: float | None = None,
                first: int = 0,
            ) -> dict[str, Any]:
                write(f"  {tag}: {seconds:.0f} s" + (f" at {rate:.0f}/s" if rate else ""))
                return _run(
                    Phase(
                        target,
                        client,
                        str(data / "keys" / f"{client}.key"),
                        templates,
                        member_ids,
                        seconds,
                        CONCURRENCY,
                        rate,
                        tag=tag,
                        first=first,
                    )
                )

            meter = CostMeter(supervisor)
            profiling = (
                _profile(supervisor, flamegraphs, seconds) if flamegraphs is not None else []
            )
            results = {"discharge": phase(url, "H0001", discharge, "discharge")}
            for profiler in profiling:
                profiler.wait(60)
            costs = {"discharge": meter.per_request(summary_ok(results["discharge"]))}
            results["pharmacy"] = phase(url, "P0001", swipe, "pharmacy")
            costs["pharmacy"] = meter.per_request(summary_ok(results["pharmacy"]))
            peak = result_of(results["discharge"]).throughput
            # Numbered on from the first phase: other members, so no stay overlaps an earlier one.
            results["discharge_70"] = phase(
                url,
                "H0001",
                discharge,
                "discharge70",
                rate=latency_rate or 0.7 * peak,
                first=results["discharge"]["requests"],
            )

            if controls:
                # On, then off again: the mean of the two runs without controls cancels what
                # drifts over the run (a warmer process, a fuller Redis).
                write("turning the controls across visits on")
                asyncio.run(_put_policies(connection, controlled=True))
                discharged = results["discharge"]["requests"] + results["discharge_70"]["requests"]
                results["discharge_controls"] = phase(
                    url, "H0001", discharge, "discharge-controls", first=discharged
                )
                swiped = results["pharmacy"]["requests"]
                results["pharmacy_controls"] = phase(
                    url, "P0001", swipe, "pharmacy-controls", first=swiped
                )
                write("and off again")
                asyncio.run(_put_policies(connection, controlled=False))
                discharged += results["discharge_controls"]["requests"]
                results["discharge_again"] = phase(
                    url, "H0001", discharge, "discharge-again", first=discharged
                )
                swiped += results["pharmacy_controls"]["requests"]
                results["pharmacy_again"] = phase(
                    url, "P0001", swipe, "pharmacy-again", first=swiped
                )

            port = free_port()
            baseline = subprocess.Popen(
                [sys.executable, "-m", "onestop.tooling.bench.baseline"],
                env={
                    **os.environ,
                    "ONESTOP_BASELINE_REDIS_URL": str(addresses["redis_admin_url"]),
                    "ONESTOP_BASELINE_PORT": str(port),
                    # the same HTTP server and worker count as the gateway
                    "ONESTOP_BASELINE_WORKERS": str(gateway_workers),
                },
            )
            baseline_url = f"http://127.0.0.1:{port}"
            _wait_up(baseline_url)
            results["baseline_discharge"] = phase(
                baseline_url, "H0001", discharge, "baseline-discharge"
            )
            results["baseline_pharmacy"] = phase(baseline_url, "P0001", swipe, "baseline-pharmacy")
            metrics_urls = cast(dict[str, Any], addresses["metrics"])
            scraped = scrape_summary(metrics_urls["gateway"], list(metrics_urls["adjudicators"]))
        finally:
            if baseline is not None:
                baseline.terminate()
                baseline.wait(30)
            supervisor.stop()

    summaries = {name: result_of(raw).summary() for name, raw in results.items()}
    for name, raw in results.items():
        codes = result_of(raw).error_codes
        if codes:
            summaries[name]["error_codes"] = codes
    engine = time_engine(lines=lines, iterations=500)
    base_discharge = summaries["baseline_discharge"]["throughput_per_s"]
    base_pharmacy = summaries["baseline_pharmacy"]["throughput_per_s"]
    controlled: dict[str, Any] = {}
    if controls:
        controlled = {"controls": _controls_figures(summaries, base_discharge, base_pharmacy)}
    # Every answer the load generator counted as settled is one settlement the services
    # counted: the scrape and the bench agree, or one of them is wrong.
    scraped["settled_per_the_load_generator"] = sum(
        summary_ok(raw) for name, raw in results.items() if not name.startswith("baseline")
    )
    return {
        **controlled,
        "scrape": scraped,
        "discharge": summaries["discharge"],
        "pharmacy": summaries["pharmacy"],
        "discharge_at_70_percent": summaries["discharge_70"],
        "baseline": {
            "discharge_throughput_per_s": base_discharge,
            "pharmacy_throughput_per_s": base_pharmacy,
        },
        "ratio": {
            "discharge": round(summaries["discharge"]["throughput_per_s"] / base_discharge, 3)
            if base_discharge
            else 0.0,
            "pharmacy": round(summaries["pharmacy"]["throughput_per_s"] / base_pharmacy, 3)
            if base_pharmacy
            else 0.0,
        },
        "engine_us_per_discharge": round(engine.engine_median_us, 1),
        "cost_per_request": costs,
        "latency_distribution_at_70_percent_ms": result_of(results["discharge_70"]).distribution(),
        "settings": {
            "seconds": seconds,
            "concurrency": CONCURRENCY,
            "lines": lines,
            "members": members,
            "appendfsync": appendfsync,
            "gateway_processes": gateway_workers,
            "adjudicator_processes": adjudicator_workers,
            "redis_shards": redis_shards,
            "redis_replicas": redis_replicas,
            "controls": controls,
        },
    }


async def _put_policies(connection: Connection, *, controlled: bool) -> None:
    """Every demo policy again, with the demo's controls across visits or without."""
    async with connection.client() as client:
        for policy in demo_policies():
            document = policy_to_document(controlled_policy(policy) if controlled else policy)
            answer = await client.request("PUT", "/v1/admin/policies", json_body=document)
            answer.raise_for_status()


def _ratio(value: float, base: float) -> float:
    return round(value / base, 3) if base else 0.0


def _controls_figures(
    summaries: dict[str, Any], base_discharge: float, base_pharmacy: float
) -> dict[str, Any]:
    """Throughput with the controls off and on, as ratios to the baseline, and the cost.

    Off is the mean of the run before the controls were turned on and the one after they
    were turned off again.
    """
    figures: dict[str, Any] = {}
    for kind, base in (("discharge", base_discharge), ("pharmacy", base_pharmacy)):
        before = summaries[kind]["throughput_per_s"]
        after = summaries[f"{kind}_again"]["throughput_per_s"]
        off = _ratio((before + after) / 2, base)
        on = _ratio(summaries[f"{kind}_controls"]["throughput_per_s"], base)
        figures[kind] = {
            "ratio_off_before": _ratio(before, base),
            "ratio_off_after": _ratio(after, base),
            "ratio_off": off,
            "ratio_on": on,
            "cost_percent": round(100 * (off - on) / off, 1) if off else 0.0,
            "p99_ms_on": summaries[f"{kind}_controls"].get("p99_ms"),
            "errors_on": summaries[f"{kind}_controls"].get("errors"),
            "error_codes_on": summaries[f"{kind}_controls"].get("error_codes", {}),
        }
    return figures
