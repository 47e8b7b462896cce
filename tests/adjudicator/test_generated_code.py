"""The generated protobuf code is exactly what scripts/generate_proto.py makes today."""

from __future__ import annotations

import subprocess
import sys

from tests.support.cases import REPO_ROOT


def test_regeneration_would_change_nothing() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate_proto.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
