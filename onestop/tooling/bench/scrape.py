"""What Prometheus would read off the services after a bench: a scrape of each, summed up.

The bench's own figures come from its load generator; these come from the services' counters,
so the two can be compared (every settlement the generator saw answered is counted once).
Latency quantiles are read from the histograms' buckets: a quantile is reported as the upper
bound of the bucket it falls in, as Prometheus's ``histogram_quantile`` would bound it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

SETTLE_ROUTE = "/v1/settlements"


def _samples(url: str) -> list[Sample]:
    answer = httpx.get(url, timeout=30)
    answer.raise_for_status()
    return [
        sample
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    ]


def _sum(samples: Iterable[Sample], name: str, by: str | None = None, **labels: str) -> Any:
    """The sum of ``name`` over samples whose labels include ``labels``, split ``by`` a label."""
    split: dict[str, float] = defaultdict(float)
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            split[sample.labels.get(by, "") if by else ""] += sample.value
    if by is None:
        return split.get("", 0.0)
    return {key: _number(value) for key, value in sorted(split.items())}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 6)


def _quantile_bound_ms(samples: Iterable[Sample], name: str, q: float, **labels: str) -> float:
    """The upper bound (ms) of the bucket the ``q`` quantile of a histogram falls in."""
    buckets: dict[float, float] = defaultdict(float)
    for sample in samples:
        if sample.name == f"{name}_bucket" and all(
            sample.labels.get(k) == v for k, v in labels.items()
        ):
            buckets[float(sample.labels["le"])] += sample.value
    if not buckets:
        return 0.0
    ordered = sorted(buckets.items())
    count = ordered[-1][1]
    if count == 0:
        return 0.0
    for bound, cumulative in ordered:
        if cumulative >= q * count:
            return math.inf if math.isinf(bound) else round(bound * 1000, 3)
    return math.inf


def _stage_means_ms(samples: list[Sample], service: str) -> dict[str, float]:
    sums = _sum(samples, "onestop_stage_duration_seconds_sum", "stage", service=service)
    counts = _sum(samples, "onestop_stage_duration_seconds_count", "stage", service=service)
    return {
        stage: round(1000 * sums[stage] / counts[stage], 3) for stage in sums if counts.get(stage)
    }


def scrape_summary(gateway_url: str, adjudicator_urls: list[str]) -> dict[str, Any]:
    """The services' own counts after a run: answers, settlements, fen, stages, conflicts.

    Args:
        gateway_url: the gateway's ``/metrics`` (every worker summed).
        adjudicator_urls: each adjudicator process's ``/metrics``.
    """
    gateway = _samples(gateway_url)
    adjudicators = [sample for url in adjudicator_urls for sample in _samples(url)]
    settle = {"route": SETTLE_ROUTE}
    return {
        "gateway": {
            "answers_by_outcome": _sum(gateway, "onestop_http_requests_total", "outcome"),
            "refusals_by_code": {
                code: count
                for code, count in _sum(gateway, "onestop_http_requests_total", "code").items()
                if code
            },
            "settle_p50_bucket_ms": _quantile_bound_ms(
                gateway, "onestop_http_request_duration_seconds", 0.5, **settle
            ),
            "settle_p99_bucket_ms": _quantile_bound_ms(
                gateway, "onestop_http_request_duration_seconds", 0.99, **settle
            ),
            "stage_mean_ms": _stage_means_ms(gateway, "gateway"),
            "adjudicator_call_errors": _number(
                _sum(gateway, "onestop_adjudicator_call_errors_total")
            ),
        },
        "adjudicator": {
            "settlements_by_kind": _sum(adjudicators, "onestop_settlements_total", "kind"),
            "fen_by_fund": _sum(adjudicators, "onestop_funds_fen_total", "fund"),
            "stage_mean_ms": _stage_means_ms(adjudicators, "adjudicator"),
            "commit_conflicts": _number(_sum(adjudicators, "onestop_commit_conflicts_total")),
            "redis_errors": _number(_sum(adjudicators, "onestop_redis_errors_total")),
            "grpc_calls_by_method": _sum(adjudicators, "onestop_grpc_requests_total", "method"),
        },
    }
