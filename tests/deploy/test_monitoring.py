"""The Grafana dashboard and the alert rules in deploy/monitoring name only metrics that exist.

Every PromQL expression of both files is read; each ``onestop_*`` series it names must be a
sample (or, for a series with no sample yet, a family of the right type) of a live scrape of
the gateway's ``/metrics``, which in this process holds both services' metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import Gateway

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_SERIES = re.compile(r"\bonestop_[a-z0-9_]+")
_SUFFIXES = {
    "_total": "counter",
    "_bucket": "histogram",
    "_sum": "histogram",
    "_count": "histogram",
}


def _panel_exprs(panels: list[dict[str, Any]]) -> list[str]:
    found = []
    for panel in panels:
        found += [target["expr"] for target in panel.get("targets", ()) if "expr" in target]
        found += _panel_exprs(panel.get("panels", []))  # rows hold panels
    return found


def expressions() -> dict[str, list[str]]:
    """Every PromQL expression, by file."""
    dashboard = json.loads((MONITORING / "grafana-onestop.json").read_text(encoding="utf-8"))
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text(encoding="utf-8"))
    return {
        "grafana-onestop.json": _panel_exprs(dashboard["panels"]),
        "alerts.yaml": [rule["expr"] for group in rules["groups"] for rule in group["rules"]],
    }


def series_named(expr: str) -> set[str]:
    """The ``onestop_*`` series an expression names (not inside a quoted label value)."""
    return set(_SERIES.findall(_QUOTED.sub('""', expr)))


def test_every_file_has_expressions_and_every_rule_is_complete() -> None:
    found = expressions()
    assert all(found.values()), found
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert set(rule) >= {"alert", "expr", "labels", "annotations"}, rule
            assert rule["annotations"].get("summary"), rule["alert"]
    dashboard = json.loads((MONITORING / "grafana-onestop.json").read_text(encoding="utf-8"))
    assert dashboard["uid"]
    assert dashboard["schemaVersion"]
    assert dashboard["panels"]


async def test_every_metric_the_dashboard_and_the_alerts_name_exists(gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{gateway.base_url}/metrics")
    assert answer.status_code == 200
    samples: set[str] = set()
    families: dict[str, str] = {}
    for family in text_string_to_metric_families(answer.text):
        families[family.name] = family.type
        samples.update(sample.name for sample in family.samples)
    missing = []
    for file, exprs in expressions().items():
        for expr in exprs:
            for name in series_named(expr):
                if name in samples or families.get(name) == "gauge":
                    continue
                suffix = next((s for s in _SUFFIXES if name.endswith(s)), None)
                base = name[: -len(suffix)] if suffix else name
                if suffix is not None and families.get(base) == _SUFFIXES[suffix]:
                    continue
                missing.append(f"{file}: {name}")
    assert not missing, missing
