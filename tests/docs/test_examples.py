"""The integration guide's examples, run in order against a real ``onestop serve``.

Every shell and Python block of the guide that is marked ``<!-- run: NAME -->`` runs here, in
the order of the pages, in one working directory, with the environment variables the guide
defines at its top. A command, a field or an answer that changes breaks this test before it
breaks a vendor's integration. A marker may name a file (``<!-- run: NAME file=FILE -->``): the
block is saved under that name, as the guide tells the reader to, and run from it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.cases import REPO_ROOT
from tests.support.serve import Served, start_serve

DOCS = REPO_ROOT / "docs"
PAGES = (
    "integration.md",
    "integration-signing.md",
    "integration-settling.md",
    "integration-recovery.md",
    "integration-reconciliation.md",
)
"""The guide's pages in reading order: a later page's examples read what earlier ones wrote."""

MIN_EXAMPLES = 28
"""Fewer marked examples than this means markers were lost, and examples silently not run."""

SETUP = ("keys", "register", "sandbox-data")
"""The examples that register the clients and load the sandbox's data (nothing settled)."""

TOOLS = ("bash", "curl", "openssl", "jq")
"""What the guide's shell examples need on the PATH (it says so at its top)."""

_MARKER = re.compile(r"<!-- run: (?P<name>[a-z0-9-]+)(?: file=(?P<file>[\w.-]+))? -->")
_FENCE = re.compile(r"```(?P<language>\S*)")
_LANGUAGES = ("sh", "python")

EXPECTED: dict[str, tuple[str, ...]] = {
    "keys": (r"private key H0001\.key",),
    "register": (r'"client_id": "H0001"', r'"client_id": "P0001"'),
    "sandbox-data": (r'"loaded": 6', r'"loaded": 7', r'"loaded": 2', r'"rejected": \[\]'),
    "python-helper": (r"^200 \{'items': \[\], 'next_cursor': None\}$",),
    "curl-helper": (r'\{"items":\[\],"next_cursor":null\}', r"HTTP 200"),
    "bad-signature": (r"^401$", r"^path_and_query: '/v1/settlements\?visit_id=ZY20260301001'"),
    "preview": (r'"status":"preview","settlement_id":null', r"HTTP 200"),
    "settle": (r'"status":"settled","replayed":false', r"HTTP 201"),
    "settle-again": (r'"status":"settled","replayed":true', r"HTTP 200"),
    "identical-python": (r"^200 S\w+ replayed: True$",),
    "read": (r'\{"status":"settled"\}',),
    "statement": (
        r"^%PDF-1\.\d$",
        r"^the statement's seal verifies with key \w+ \(http\S+/v1/keys\): it vouches for "
        r"settlement S\w+, settled,",
    ),
    "statement-openssl": (r"Signature Verified Successfully",),
    "reverse": (r'"status":"reversed","reversed_at":"\d{4}-\d\d-\d\dT[^"]+\+08:00"',),
    "late-retry": (r'"status":"reversed","replayed":true', r"HTTP 200"),
    "resettle-python": (r"^422 INVALID resettle_of$", r"^201 settled new settlement: True$"),
    "other-member": (r"settled for another member", r"HTTP 409"),
    "pharmacy-python": (r"^201 settled \{",),
    "eligibility": (r'"name":"张\*"', r'"id_number":"4101\*+1234"'),
    "nonce-reuse": (r"^first: 2 settlements$", r"^second: 401 this nonce was used", r"HTTP 200"),
    "retry-python": (r"^settled False True True$",),
    "find-visit": (r'\[\{"settlement_id":"S\w+","status":"settled"',),
    "day-list-python": (r"^\d{4}-\d\d-\d\d: \d+ events, \d+ settlements, \d+ reversals$",),
    "reconcile-sh": (r'"result":"balanced"',),
    "reconcile-python": (
        r"^200 result balanced \d+ settlements$",
        r"^groups: inpatient/resident balanced",
    ),
    "reconcile-cli": (r"^result: balanced",),
    "reconciliations-agency": (r'^\{"client_id":"H0001","status":"balanced","answers":\d+\}$',),
    "console-agency": (r'^id="settlements">[1-9]\d*<$',),
    "verify-receipt": (r"the signature verifies with key \w+ \(http", r"\(keys\.json\)$"),
    "verify-openssl": (r"Signature Verified Successfully",),
    "verify-python": (r"\(settled\): the signature verifies", r"\(reversed\): the signature"),
}
"""What an example must print (regular expressions, searched line by line in its output)."""


@dataclass(frozen=True, slots=True)
class Example:
    """One marked block of the guide.

    Attributes:
        name: the marker's name.
        language: ``sh`` or ``python``.
        code: the block's text.
        page: the page it is on (under ``docs/``).
        line: the marker's line number on the page.
        file: the file the guide saves the block as, if it names one.
    """

    name: str
    language: str
    code: str
    page: str
    line: int
    file: str | None

    @property
    def where(self) -> str:
        """Where the block is, for a failure's message."""
        return f"docs/{self.page}:{self.line}"


def examples(pages: tuple[str, ...] = PAGES) -> list[Example]:
    """Every marked block of ``pages``, in order.

    Raises:
        ValueError: a marker that is not of the form above, or not followed at once by a
            closed ``sh`` or ``python`` block.
    """
    found: list[Example] = []
    for page in pages:
        lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
        for number, text in enumerate(lines):
            marker = _MARKER.fullmatch(text)
            if marker is None:
                if text.lstrip().startswith("<!-- run"):
                    raise ValueError(f"docs/{page}:{number + 1}: a malformed marker: {text!r}")
                continue
            fence = _FENCE.fullmatch(lines[number + 1]) if number + 1 < len(lines) else None
            if fence is None or fence["language"] not in _LANGUAGES:
                raise ValueError(
                    f"docs/{page}:{number + 1}: a marker must be followed by a ```sh or "
                    "```python block"
                )
            end = next((i for i in range(number + 2, len(lines)) if lines[i] == "```"), None)
            if end is None:
                raise ValueError(f"docs/{page}:{number + 1}: the block is never closed")
            code = "\n".join(lines[number + 2 : end]) + "\n"
            found.append(
                Example(marker["name"], fence["language"], code, page, number + 1, marker["file"])
            )
    return found


def guide_environment(served: Served) -> dict[str, str]:
    """The variables the guide defines at its top, for the sandbox ``served`` runs.

    The ``onestop`` command and ``python`` are this environment's (the guide's readers install
    them); variables of the developer's own shell that the examples read are left out, so that
    nothing but the guide's values reaches them.
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ONESTOP_", "HIS_", "PYTHON"))
    }
    return {
        **inherited,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "ONESTOP_URL": str(served.addresses["gateway"]),
        "ONESTOP_DATA_DIR": str(served.data_dir),
        "HIS_CLIENT_ID": "H0001",
        "HIS_KEY": "H0001.key",
    }


def run_example(
    example: Example, workdir: Path, environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run one example in ``workdir`` as a reader would: bash strict mode, or Python."""
    if example.file is not None:
        (workdir / example.file).write_text(example.code, encoding="utf-8")
    if example.language == "sh":
        script = [example.file] if example.file else ["-c", example.code]
        command = ["bash", "-euo", "pipefail", *script]
    else:
        command = [sys.executable, *([example.file] if example.file else ["-c", example.code])]
    return subprocess.run(
        command,
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def start_sandbox(tmp_path: Path) -> tuple[Served, Path, dict[str, str]]:
    """A fresh ``onestop serve`` on a free port, an empty working directory, the environment."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"the guide's examples need {', '.join(missing)} on the PATH"
    served = start_serve(tmp_path / "data")
    workdir = tmp_path / "work"
    workdir.mkdir()
    return served, workdir, guide_environment(served)


def check_example(example: Example, workdir: Path, environment: dict[str, str]) -> float:
    """Run an example; fail unless it exits 0 and prints what :data:`EXPECTED` says.

    Returns:
        How long it ran, in seconds.
    """
    started = time.monotonic()
    completed = run_example(example, workdir, environment)
    elapsed = time.monotonic() - started
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, (
        f"{example.name} ({example.where}) exited {completed.returncode}:\n{output}"
    )
    for pattern in EXPECTED.get(example.name, ()):
        assert re.search(pattern, output, flags=re.MULTILINE), (
            f"{example.name} ({example.where}) did not print {pattern!r}:\n{output}"
        )
    return elapsed


def test_the_guide_marks_its_examples() -> None:
    found = examples()
    names = [example.name for example in found]
    assert len(found) >= MIN_EXAMPLES, f"only {len(found)} marked examples: markers were lost"
    assert len(set(names)) == len(names), "two examples share a name"
    assert {example.language for example in found} == set(_LANGUAGES)
    assert set(EXPECTED) <= set(names), f"expected, not marked: {set(EXPECTED) - set(names)}"
    assert names[: len(SETUP)] == list(SETUP), "the guide no longer starts with its set-up"
    unlisted = [
        path.relative_to(DOCS).as_posix()
        for path in sorted(DOCS.rglob("*.md"))
        if path.relative_to(DOCS).as_posix() not in PAGES
        and re.search(r"^\s*<!-- run", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    ]
    assert not unlisted, f"pages with examples this test does not run: {unlisted}"


def test_every_example_of_the_guide_runs_against_a_real_gateway(tmp_path: Path) -> None:
    served, workdir, environment = start_sandbox(tmp_path)
    timings = [
        (example.name, check_example(example, workdir, environment)) for example in examples()
    ]
    print(", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings))
    assert served.terminate() == 0
