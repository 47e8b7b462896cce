"""``onestop bench engine``: how long the pure engine takes for one discharge.

Timing is for benchmarks only: the test suite never asserts on speed.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from onestop.domain.bill import Visit, VisitRequest
from onestop.domain.controls import (
    Controls,
    PastVisit,
    check_controls,
    history_entry,
)
from onestop.domain.engine import adjudicate
from onestop.domain.mapping import map_bill
from onestop.domain.member import Member
from onestop.domain.state import YearToDate
from onestop.domain.types import HospitalLevel, MemberStatus, Scheme, VisitType
from onestop.tooling.demo.regions import DEMO_CONTROLS, demo_policy
from onestop.tooling.synthetic import inpatient_bill, make_world


@dataclass(frozen=True, slots=True)
class EngineTiming:
    """Per-discharge timings in microseconds, over ``iterations`` runs."""

    lines: int
    iterations: int
    engine_median_us: float
    engine_p90_us: float
    check_median_us: float
    controls_median_us: float = 0.0
    """The demo's controls across visits on the same discharge, against a history of
    :data:`CONTROLS_HISTORY` earlier visits, and the history entry it adds."""

    def as_dict(self) -> dict[str, float | int]:
        """The figures as a JSON-ready dictionary."""
        return {
            "lines": self.lines,
            "iterations": self.iterations,
            "engine_median_us": round(self.engine_median_us, 1),
            "engine_p90_us": round(self.engine_p90_us, 1),
            "check_median_us": round(self.check_median_us, 1),
            "controls_median_us": round(self.controls_median_us, 1),
            "controls_history_entries": CONTROLS_HISTORY,
        }


CONTROLS_HISTORY = 52
"""Earlier visits in the history the controls are timed against (a weekly visitor)."""


def _history(visit: Visit, entries: int) -> tuple[PastVisit, ...]:
    """``entries`` earlier outpatient visits, each with the bill's first item's quantity."""
    code = visit.lines[0].catalog_code
    return tuple(
        PastVisit(
            settlement_id=f"S{number:031x}",
            client_id="H0002",
            visit_type=VisitType.OUTPATIENT,
            first_day=visit.first_day - timedelta(days=7 * (number + 1)),
            last_day=visit.first_day - timedelta(days=7 * (number + 1)),
            categories=("J06",),
            bill_digest=f"{number:016x}",
            quantities=((code, Decimal(1)),),
        )
        for number in range(entries)
    )


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
    controls = Controls.model_validate(
        {
            **DEMO_CONTROLS,
            # A yearly limit on the bill's first item, met by the history: a finding to make.
            "quantity": {
                "action": "deduct",
                "limits": [
                    {"code": visit.lines[0].catalog_code, "per_year": str(CONTROLS_HISTORY)}
                ],
            },
        }
    )
    history = _history(visit, CONTROLS_HISTORY)
    engine_ns: list[int] = []
    check_ns: list[int] = []
    controls_ns: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        started = clock()
        map_bill(request, world.mapping, world.catalog)
        checked = clock()
        adjudicate(visit, HospitalLevel.LEVEL3, member, policy, world.catalog, state, 0)
        done = clock()
        outcome = check_controls(controls, visit, "H0001", member, world.catalog, history)
        history_entry(
            "S1",
            "H0001",
            visit,
            outcome.bill_digest,
            outcome.limited_codes,
            outcome.deducted,
        )
        controlled = clock()
        check_ns.append(checked - started)
        engine_ns.append(done - checked)
        controls_ns.append(controlled - done)
    engine_us = [ns / 1000 for ns in engine_ns]
    return EngineTiming(
        lines=lines,
        iterations=iterations,
        engine_median_us=statistics.median(engine_us),
        engine_p90_us=statistics.quantiles(engine_us, n=10)[-1],
        check_median_us=statistics.median(ns / 1000 for ns in check_ns),
        controls_median_us=statistics.median(ns / 1000 for ns in controls_ns),
    )
