"""The repository stands alone: its copy of the shared spec is current, its links stay inside.

A clone with nothing beside it must build, test and explain itself. The spec, the acceptance
cases and the source documents therefore live in ``docs/``; when the shared folder they come
from is beside the clone (``../shared``), the copy must equal it, so that a change of the spec
reaches the repository (``make sync-shared``) before anything is built on it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cases import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared"


@pytest.mark.parametrize("folder", ["docs/spec", "docs/cases", "docs/cases/round2", "docs/seeds"])
def test_the_copy_is_in_the_repository(folder: str) -> None:
    assert any((REPO_ROOT / folder).iterdir()), (
        f"{folder} is empty: the repository must stand alone"
    )


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared beside this clone to compare with")
def test_the_copy_equals_the_shared_folder() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "sync_shared.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# The copies are verbatim (their own relative references resolve inside docs/ too).
_OWN_DOCS = [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", REPO_ROOT / "CHANGELOG.md"]
_OWN_DOCS += [
    path
    for path in sorted((REPO_ROOT / "docs").rglob("*.md"))
    if not path.is_relative_to(REPO_ROOT / "docs/spec")
]
_OWN_DOCS += [*sorted((REPO_ROOT / "deploy").rglob("*.md")), REPO_ROOT / "loadtests/README.md"]


@pytest.mark.parametrize("document", _OWN_DOCS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_documents_link_only_to_files_in_the_repository(document: Path) -> None:
    if not document.exists():
        pytest.fail(f"{document.relative_to(REPO_ROOT)} is missing")
    text = document.read_text(encoding="utf-8")
    # The shared folder may be named (it is where the copy comes from), never read from.
    outside = re.findall(r"\.\./shared/[\w.]+", text)
    assert not outside, f"{document.name} points outside the repository: {outside}"
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        path = (document.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(REPO_ROOT), f"{document.name}: {target} leaves the repository"
        assert path.exists(), f"{document.name}: {target} does not exist"


def test_the_pre_commit_hooks_are_valid_and_local() -> None:
    config = REPO_ROOT / ".pre-commit-config.yaml"
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "pre-commit"), "validate-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # Local hooks only: a hook fetched from the internet fails on a closed network.
    repos = re.findall(r"^\s*- repo: (\S+)$", config.read_text(), flags=re.MULTILINE)
    assert repos == ["local"]
