"""``onestop bench engine``: how long the pure engine takes for one discharge.

Timing is for benchmarks only: the test suite never asserts on speed.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from datetime import date

from onestop.domain.bill import VisitRequest
from onestop.domain.engine import adjudicate
from onestop.domain.mapping import map_bill
from onestop.domain.member import Member
from onestop.domain.state import YearToDate
from onestop.domain.types import HospitalLevel, MemberStatus, Scheme
from onestop.tooling.demo.regions import demo_policy
from onestop.tooling.synthetic import inpatient_bill, make_world


@dataclass(frozen=True, slots=True)
class EngineTiming:
    """Per-discharge timings in microseconds, over ``iterations`` runs."""

    lines: int
    iterations: int
    engine_median_us: float
    engine_p90_us: float
    check_median_us: float

    def as_dict(self) -> dict[str, float | int]:
        """The figures as a JSON-ready dictionary."""
        return {
            "lines": self.lines,
            "iterations": self.iterations,
            "engine_median_us": round(self.engine_median_us, 1),
            "engine_p90_us": round(self.engine_p90_us, 1),
            "check_median_us": round(self.check_median_us, 1),
        }


def time_engine(lines: int = 200, iterations: int = 2_000, seed: int = 11) -> EngineTiming:
    """Time :func:`adjudicate` (and, apart, :func:`map_bill`) on one ``lines``-line discharge.

    The bill is drawn once from a seeded synthetic catalog of 2,000 items; each iteration
    settles it from the same year-to-date state, so every run does identical work.
    """
    world = make_world(seed=seed)
    rng = random.Random(seed)
    policy = demo_policy("410100")
    member = Member(
        member_id="BENCH1",
        id_number="410102198001011234",
        name="基准",
        birth_date=date(1980, 1, 1),
        sex="F",
        region=policy.region,
        scheme=Scheme.RESIDENT,
        status=MemberStatus.ACTIVE,
        enrolled_since=date(2015, 1, 1),
        supplementary_enrolled=True,
        personal_account_balance=0,
    )
    body = inpatient_bill(
        world,
        lines=lines,
        visit_id="BENCH",
        member_id=member.member_id,
        admission=date(policy.year, 3, 1),
        rng=rng,
    )
    request = VisitRequest.model_validate(body)
    visit = map_bill(request, world.mapping, world.catalog)
    state = YearToDate()
    engine_ns: list[int] = []
    check_ns: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        started = clock()
        map_bill(request, world.mapping, world.catalog)
        checked = clock()
        adjudicate(visit, HospitalLevel.LEVEL3, member, policy, world.catalog, state, 0)
        done = clock()
        check_ns.append(checked - started)
        engine_ns.append(done - checked)
    engine_us = [ns / 1000 for ns in engine_ns]
    return EngineTiming(
        lines=lines,
        iterations=iterations,
        engine_median_us=statistics.median(engine_us),
        engine_p90_us=statistics.quantiles(engine_us, n=10)[-1],
        check_median_us=statistics.median(ns / 1000 for ns in check_ns),
    )
