#!/usr/bin/env python3
"""Draw the performance plots of docs/performance.md from the recorded bench results.

Reads ``docs/data/bench-lines-*.json`` (``onestop bench --lines N --json``, one file per bill
size) and ``docs/data/bench-200.json`` (the reference run), writes
``docs/img/throughput-vs-lines.png`` and ``docs/img/latency-at-70-percent.png``.

Usage: python scripts/plot_performance.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "data"
IMAGES = ROOT / "docs" / "img"


def throughput_against_lines() -> None:
    """Product and baseline throughput for 20, 200 and 2,000-line discharges."""
    runs = []
    for path in sorted(DATA.glob("bench-lines-*.json")):
        figures = json.loads(path.read_text())
        runs.append(
            (
                figures["settings"]["lines"],
                figures["discharge"]["throughput_per_s"],
                figures["baseline"]["discharge_throughput_per_s"],
            )
        )
    runs.sort()
    lines = [run[0] for run in runs]
    figure, axes = plt.subplots(figsize=(7, 4.2))
    axes.plot(lines, [run[1] for run in runs], marker="o", label="onestop (settle, signed)")
    axes.plot(
        lines,
        [run[2] for run in runs],
        marker="s",
        linestyle="--",
        label="baseline (validate + Redis INCR)",
    )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(lines, [str(line) for line in lines])
    axes.set_xlabel("lines per discharge bill")
    axes.set_ylabel("discharges per second")
    axes.set_title("Settlement throughput against bill size (2 cores, one process each)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(IMAGES / "throughput-vs-lines.png", dpi=110)
    plt.close(figure)


def latency_at_70_percent() -> None:
    """The latency distribution of 200-line discharges at 70 % of peak throughput."""
    figures = json.loads((DATA / "bench-200.json").read_text())
    points = figures["latency_distribution_at_70_percent_ms"]
    rate = figures["discharge_at_70_percent"]["throughput_per_s"]
    figure, axes = plt.subplots(figsize=(7, 4.2))
    axes.plot([point[1] for point in points], [point[0] for point in points])
    for percent in (50, 99):
        value = next(point[1] for point in points if point[0] == percent)
        axes.axvline(value, linestyle=":", alpha=0.6)
        axes.annotate(
            f"p{percent} {value:.0f} ms",
            (value, percent),
            textcoords="offset points",
            xytext=(5, -12),
        )
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("percent of requests answered within")
    axes.set_title(f"200-line discharges at 70 % of peak ({rate:.0f}/s)")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(IMAGES / "latency-at-70-percent.png", dpi=110)
    plt.close(figure)


def main() -> None:
    """Draw both plots."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    throughput_against_lines()
    latency_at_70_percent()


if __name__ == "__main__":
    main()
