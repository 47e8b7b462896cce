"""The command line against a real ``onestop serve``: keys, clients, loading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from onestop.domain.mapping import mapping_csv
from onestop.tooling.demo.members import crowd
from onestop.tooling.demo.regions import DEMO_CLIENTS, demo_catalog_csv, demo_mapping
from tests.support.cases import REPO_ROOT
from tests.support.serve import start_serve


def onestop(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onestop", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_keys_clients_and_loading_from_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    served = start_serve(data_dir)
    assert (data_dir / "agency.key").stat().st_mode & 0o777 == 0o600

    made = onestop("keys", "new", "--out", tmp_path / "h1")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "h1.key").stat().st_mode & 0o777 == 0o600
    assert "BEGIN PUBLIC KEY" in (tmp_path / "h1.pub").read_text()
    assert onestop("keys", "new", "--out", tmp_path / "h1").returncode == 1  # never overwrites

    added = onestop(
        "clients",
        "add",
        "ZZH3",
        "--kind",
        "hospital",
        "--name",
        "省人民医院",
        "--level",
        "level3",
        "--region",
        "410100",
        "--public-key",
        tmp_path / "h1.pub",
        "--data-dir",
        data_dir,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["client_id"] == "ZZH3"

    policies = sorted((REPO_ROOT / "onestop" / "tooling" / "demo" / "data").glob("policy_*.yaml"))
    loaded = onestop("load", "policy", *policies, "--data-dir", data_dir)
    assert loaded.returncode == 0, loaded.stderr
    assert [entry["region"] for entry in json.loads(loaded.stdout)] == [
        "410100",
        "520100",
        "610822",
    ]

    catalog = tmp_path / "catalog.csv"
    catalog.write_text(demo_catalog_csv(), encoding="utf-8")
    loaded = onestop("load", "catalog", catalog, "--data-dir", data_dir)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["loaded"] == 24

    mapping = tmp_path / "mapping.csv"
    client = next(client for client in DEMO_CLIENTS if client.client_id == "ZZH3")
    mapping.write_text(mapping_csv(demo_mapping(client)), encoding="utf-8")
    loaded = onestop("load", "mapping", mapping, "--for", "ZZH3", "--data-dir", data_dir)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["loaded"] == 25

    members = tmp_path / "members.jsonl"
    generated = onestop("gen-members", "--count", "3000", "--out", members)
    assert generated.returncode == 0, generated.stderr
    with members.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
        handle.write(json.dumps(next(iter(crowd(1)))) + "\n")  # the first member again: fine
    loaded = onestop("load", "members", members, "--data-dir", data_dir)
    assert loaded.returncode == 0, loaded.stderr
    report = json.loads(loaded.stdout)
    assert report["loaded"] == 3001
    assert [(entry["line"], entry["code"]) for entry in report["rejected"]] == [(3001, "MALFORMED")]
    assert "members:" in loaded.stderr
    assert "100 %" in loaded.stderr

    refused = onestop("load", "catalog", mapping, "--data-dir", data_dir)  # not a catalog
    assert refused.returncode == 1
    assert "MALFORMED" in refused.stderr

    # The console, through the gateway's worker processes: a link printed by the agency's
    # signed call opens a session (kept in Redis, so any worker knows it), once.
    login = onestop("console-login", "--page", "/console/mappings", "--data-dir", data_dir)
    assert login.returncode == 0, login.stderr
    link = login.stdout.strip()
    assert link.startswith("http://127.0.0.1:"), link
    with httpx.Client() as browser:
        opened = browser.get(link)
        assert opened.status_code == 200, opened.text
        assert 'content="0; url=/console/mappings"' in opened.text
        for _ in range(4):  # answered by either worker
            page = browser.get(link.split("/console/")[0] + "/console/mappings")
            assert page.status_code == 200, page.text
            assert 'data-his-code="' in page.text
    with httpx.Client() as other:
        assert other.get(link).status_code == 403
    hospital = onestop(
        "console-login", "--data-dir", data_dir, "--client-id", "ZZH3", "--key", tmp_path / "h1.key"
    )
    assert hospital.returncode == 1
    assert "FORBIDDEN" in hospital.stderr
    assert served.terminate() == 0


def test_export_and_verify_from_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    start_serve(data_dir)
    out = tmp_path / "export"
    exported = onestop("export", "--date", "2026-02-01", "--out", out, "--data-dir", data_dir)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["files"]["settlements.csv"]["rows"] == 0
    verified = onestop("verify-export", out)
    assert verified.returncode == 0, verified.stdout
    assert "integrity, not origin" in verified.stdout
    keys = sorted((data_dir / "gateway-keys").glob("receipt-*.pem"))
    assert keys
    (out / "summary.csv").write_text("client_id\nX\n")
    failed = onestop("verify-export", out)
    assert failed.returncode == 1
    assert "FAIL  summary.csv" in failed.stdout
