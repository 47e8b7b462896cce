"""The load driver of ``onestop bench``: signed requests, closed loop or at a fixed rate.

It runs in its own process so that its work is not counted against the server's event loop;
it still shares the machine's cores with the servers, as a load generator on the same host
does.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from onestop.client import signature_headers
from onestop.domain.mapping import parse_mapping_csv
from onestop.signing import load_private_key
from onestop.tooling.synthetic import BillFactory


@dataclass(frozen=True, slots=True)
class Phase:
    """One measured phase."""

    url: str
    client_id: str
    key_file: str
    templates: list[list[bytes]]  # per month slot: bodies with __VISIT__ and __MEMBER__
    members: list[str]
    seconds: float
    concurrency: int
    rate: float | None = None  # requests per second; None: as fast as answers come
    signed: bool = True
    tag: str = "run"
    first: int = 0  # number of the first request (continues an earlier phase's members)


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """What one phase measured."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    error_codes: dict[str, int]

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def distribution(self) -> list[list[float]]:
        """``[percent, milliseconds]`` pairs from 1 % to 99.9 %, for plotting."""
        points = [*range(1, 100), 99.5, 99.9]
        return [[point, round(self.percentile(point / 100), 2)] for point in points]

    def summary(self) -> dict[str, Any]:
        """Throughput, p50, p99, errors."""
        return {
            "throughput_per_s": round(self.throughput, 1),
            "p50_ms": round(self.percentile(0.50), 1),
            "p99_ms": round(self.percentile(0.99), 1),
            "errors": self.errors,
            "requests": self.requests,
            "mean_ms": round(statistics.fmean(self.latencies_ms), 1) if self.latencies_ms else 0,
        }


def _body(phase: Phase, number: int) -> bytes:
    members = len(phase.members)
    member = phase.members[number % members]
    # A member's next visit comes from the next month's templates: no two stays overlap.
    slot = phase.templates[(number // members) % len(phase.templates)]
    template = slot[number % len(slot)]
    return template.replace(b"__VISIT__", f"{phase.tag}-{number:08d}".encode()).replace(
        b"__MEMBER__", member.encode()
    )


async def run_phase(phase: Phase) -> PhaseResult:
    """Drive one phase and measure it."""
    key = load_private_key(Path(phase.key_file))
    latencies: list[float] = []
    errors = 0
    codes: dict[str, int] = {}
    counter = phase.first
    limits = httpx.Limits(
        max_connections=phase.concurrency, max_keepalive_connections=phase.concurrency
    )
    async with httpx.AsyncClient(base_url=phase.url, timeout=60, limits=limits) as http:

        async def one() -> None:
            nonlocal counter, errors
            number = counter
            counter += 1
            body = _body(phase, number)
            headers = {"Content-Type": "application/json"}
            if phase.signed:
                headers.update(
                    signature_headers(key, phase.client_id, "POST", "/v1/settlements", body)
                )
            started = time.perf_counter()
            try:
                answer = await http.post("/v1/settlements", content=body, headers=headers)
                ok = answer.status_code in (200, 201)
                code = "" if ok else str(answer.json().get("code", answer.status_code))
            except httpx.HTTPError as error:
                ok, code = False, type(error).__name__
            latencies.append((time.perf_counter() - started) * 1000)
            if not ok:
                errors += 1
                codes[code] = codes.get(code, 0) + 1

        deadline = time.perf_counter() + phase.seconds
        started = time.perf_counter()
        if phase.rate is None:

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    await one()

            await asyncio.gather(*(worker() for _ in range(phase.concurrency)))
        else:
            interval = 1.0 / phase.rate
            tasks: set[asyncio.Task[None]] = set()
            next_at = time.perf_counter()
            while next_at < deadline:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                next_at += interval
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return PhaseResult(counter - phase.first, errors, elapsed, latencies, codes)


def run_phase_in_process(phase: Phase) -> dict[str, Any]:
    """Entry point for a worker process: the result as plain data."""
    result = asyncio.run(run_phase(phase))
    return {
        "requests": result.requests,
        "errors": result.errors,
        "seconds": result.seconds,
        "latencies_ms": result.latencies_ms,
        "error_codes": result.error_codes,
    }


def result_of(data: dict[str, Any]) -> PhaseResult:
    """A phase result from :func:`run_phase_in_process`'s data."""
    return PhaseResult(
        data["requests"], data["errors"], data["seconds"], data["latencies_ms"], data["error_codes"]
    )


def template_of(body: dict[str, Any]) -> bytes:
    """A request body with placeholders for the visit and the member."""
    return json.dumps(
        {**body, "visit_id": "__VISIT__", "member_id": "__MEMBER__"}, ensure_ascii=False
    ).encode()


def bill_templates(
    data: Path,
    client_id: str,
    kind: str,
    lines: int | tuple[int, int] | None,
    *,
    seed: int = 3,
    per_month: int = 8,
) -> list[list[bytes]]:
    """Bills in a generated region's client's own codes, as templates, per month of the year.

    Args:
        data: a directory written by ``onestop gen``.
        client_id: whose mapping the bills use.
        kind: ``discharge``, or anything else for a pharmacy swipe.
        lines: a fixed count, a ``(least, most)`` range drawn for each bill, or ``None`` for
            the bill factory's own draw.
        seed: of the bill factory.
        per_month: templates for each month.
    """
    mapping = parse_mapping_csv((data / "mappings" / f"{client_id}.csv").read_text(), None)
    factory = BillFactory.of(client_id, mapping, seed=seed)

    def bill(start: date) -> dict[str, Any]:
        count = factory.rng.randint(*lines) if isinstance(lines, tuple) else lines
        if kind == "discharge":
            return factory.discharge("x", "x", start, count)
        return factory.swipe("x", "x", start, count)

    return [[template_of(bill(start)) for _ in range(per_month)] for start in month_starts()]


def month_starts() -> list[date]:
    """The first days of the twelve months of the policy year.

    Bills last at most 28 days, so a stay never reaches into the next month's.
    """
    return [date(2026, month, 1) for month in range(1, 13)]
