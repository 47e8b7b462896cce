"""The plotting script draws both figures from recorded bench results."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.cases import REPO_ROOT


def test_plots_are_drawn_from_bench_results(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    (root / "docs" / "data").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "plot_performance.py", root / "scripts")
    distribution = [[percent, float(percent)] for percent in (*range(1, 100), 99.5, 99.9)]
    for lines, product, baseline in ((20, 280.0, 330.0), (200, 150.0, 330.0), (2000, 18.0, 64.0)):
        figures = {
            "settings": {"lines": lines},
            "discharge": {"throughput_per_s": product},
            "baseline": {"discharge_throughput_per_s": baseline},
            "discharge_at_70_percent": {"throughput_per_s": 0.7 * product},
            "latency_distribution_at_70_percent_ms": distribution,
        }
        (root / "docs" / "data" / f"bench-lines-{lines:04d}.json").write_text(json.dumps(figures))
        if lines == 200:
            (root / "docs" / "data" / "bench-200.json").write_text(json.dumps(figures))
    subprocess.run([sys.executable, str(root / "scripts" / "plot_performance.py")], check=True)
    for name in ("throughput-vs-lines.png", "latency-at-70-percent.png"):
        image = root / "docs" / "img" / name
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.stat().st_size > 10_000
