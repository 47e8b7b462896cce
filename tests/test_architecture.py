"""The layering the code promises, checked on what the modules really import.

- The settlement rules (``onestop.domain``) are pure: no transport, no storage, no settings,
  no files.
- The services (``gateway``, ``adjudicator``) never import the tooling that runs and measures
  them (``onestop.tooling``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _modules_loaded_by(*imports: str) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``imports``."""
    program = "\n".join(
        [
            "import json, sys",
            *(f"import {name}" for name in imports),
            "print(json.dumps(sorted(sys.modules)))",
        ]
    )
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def _under(modules: set[str], package: str) -> set[str]:
    return {name for name in modules if name == package or name.startswith(f"{package}.")}


def test_the_domain_imports_no_transport_storage_or_settings() -> None:
    loaded = _modules_loaded_by("onestop.domain")
    for forbidden in (
        "grpc",
        "redis",
        "fastapi",
        "starlette",
        "httpx",
        "pydantic_settings",
        "onestop.settlement",
        "onestop.storage",
        "adjudicator",
        "gateway",
    ):
        assert not _under(loaded, forbidden), f"onestop.domain pulls in {forbidden}"


@pytest.mark.parametrize(
    "service", ["gateway.app", "gateway.__main__", "adjudicator.server", "adjudicator.__main__"]
)
def test_the_services_do_not_import_the_tooling(service: str) -> None:
    loaded = _under(_modules_loaded_by(service), "onestop.tooling")
    assert not loaded, f"{service} imports {sorted(loaded)}"


def test_the_domain_reads_no_files() -> None:
    """The rules get text and values (in-memory streams at most); files are the callers'."""
    import ast

    from tests.support.cases import REPO_ROOT

    forbidden_calls = {"open", "read_text", "read_bytes", "write_text", "write_bytes"}
    for path in sorted((REPO_ROOT / "onestop" / "domain").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for module in modules:
                    assert module.split(".")[0] not in {"os", "pathlib", "shutil", "tempfile"}, (
                        f"{path.name} imports {module}"
                    )
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                assert name not in forbidden_calls, f"{path.name}:{node.lineno} calls {name}"
