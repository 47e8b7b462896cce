"""The Node.js example client (``examples/node``), run against a real ``onestop serve``.

The client was written from the integration guide alone; it runs here after the guide's own
set-up examples (keys, registration, the sandbox's data), as its README tells a reader to.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.docs.test_examples import SETUP, check_example, examples, start_sandbox
from tests.support.cases import REPO_ROOT

CLIENT = REPO_ROOT / "examples" / "node" / "onestop-client.mjs"
NODE = shutil.which("node")
MIN_NODE = 20
"""The built-in ``fetch`` and ``AbortSignal.timeout`` the client uses are stable from here."""


def _node_major() -> int:
    if NODE is None:
        return 0
    version = subprocess.run(
        [NODE, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    found = re.match(r"v(\d+)\.", version)
    return int(found[1]) if found else 0


@pytest.mark.skipif(
    NODE is None, reason="node is not on the PATH: the Node.js example client is not run"
)
def test_the_node_client_settles_recovers_reverses_verifies_and_reconciles(
    tmp_path: Path,
) -> None:
    if _node_major() < MIN_NODE:
        pytest.skip(f"node {MIN_NODE} or newer is needed by examples/node; this one is older")
    assert NODE is not None  # for the type checker: skipped above otherwise
    served, workdir, environment = start_sandbox(tmp_path)
    for example in examples():
        if example.name in SETUP:
            check_example(example, workdir, environment)
    completed = subprocess.run(
        [NODE, str(CLIENT)],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    settlement = re.search(r"^settled (S\w+) \(HTTP 201\)", output, flags=re.MULTILINE)
    assert settlement, output
    for line in (
        f"replayed {settlement[1]} (HTTP 200, replayed: true)",
        f"found {settlement[1]} by visit id MZ-NODE-",
        f"reversed {settlement[1]} at ",
        f"receipts of {settlement[1]}: the signature verifies",
        ": balanced",
    ):
        assert line in output, output
    assert served.terminate() == 0
