"""The command line says what is wrong and how to fix it: no tracebacks, nothing sent in vain."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from onestop.domain.policy import policy_to_document
from onestop.signing import write_secret_file
from onestop.tooling.demo.regions import demo_policies
from onestop.tooling.redis_server import free_port
from tests.support.gateway import Gateway
from tests.support.scenario import member_record, stay_body
from tests.support.world import load_demo_over_http


def onestop(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onestop", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def onestop_async(*args: str | Path) -> tuple[int, str, str]:
    """The command, run while this test's event loop serves the gateway."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "onestop",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: a call would fail to connect


def _key(tmp_path: Path) -> Path:
    made = onestop("keys", "new", "--out", tmp_path / "agency")
    assert made.returncode == 0, made.stderr
    return tmp_path / "agency.key"


def test_a_private_key_given_as_the_public_one_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    key = _key(tmp_path)
    added = onestop(
        "clients", "add", "H1", "--kind", "hospital", "--name", "一院", "--level", "level3",
        "--region", "410100", "--public-key", key, "--url", _nowhere(), "--key", key,
    )  # fmt: skip
    assert added.returncode == 2
    assert "holds a private key" in added.stderr
    assert "agency.pub" in added.stderr  # the file to give instead
    assert "could not reach" not in added.stderr  # refused before any connection
    assert "Traceback" not in added.stderr
    assert "PRIVATE" not in added.stdout + added.stderr.replace("holds a private key", "")


def test_an_invalid_policy_file_names_the_field_and_loads_nothing(tmp_path: Path) -> None:
    key = _key(tmp_path)
    good = policy_to_document(demo_policies()[0])
    bad = json.loads(json.dumps(good))
    del bad["assistance"]["tekun"]["annual_cap"]
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    loaded = onestop(
        "load", "policy", tmp_path / "good.json", tmp_path / "bad.json",
        "--url", _nowhere(), "--key", key,
    )  # fmt: skip
    assert loaded.returncode == 2
    assert "Traceback" not in loaded.stderr
    assert "bad.json" in loaded.stderr
    assert "assistance.tekun.annual_cap: required" in loaded.stderr
    assert "nothing was loaded" in loaded.stderr
    assert "could not reach" not in loaded.stderr  # the good file was not sent either


def test_an_unreachable_gateway_and_a_missing_file_are_one_line_each(tmp_path: Path) -> None:
    key = _key(tmp_path)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(policy_to_document(demo_policies()[0])))
    unreachable = onestop("load", "policy", good, "--url", _nowhere(), "--key", key)
    assert unreachable.returncode == 2
    assert "could not reach" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    missing = onestop("load", "catalog", tmp_path / "nope.csv", "--url", _nowhere(), "--key", key)
    assert missing.returncode == 2
    assert "nope.csv" in missing.stderr
    assert "Traceback" not in missing.stderr
    two = onestop("load", "catalog", good, good, "--url", _nowhere(), "--key", key)
    assert two.returncode == 2
    assert "takes one file" in two.stderr


async def test_verify_receipt_needs_no_client_key(gateway: Gateway, tmp_path: Path) -> None:
    clients = await load_demo_over_http(gateway, [member_record("M720001")])
    answer = await clients["ZZH3"].request(
        "POST",
        "/v1/settlements",
        json_body=stay_body("VR1", "M720001", date(2026, 3, 1), 2, 10_000),
    )
    assert answer.status_code == 201
    receipt = tmp_path / "receipt.json"
    receipt.write_bytes(answer.content)
    status, out, err = await onestop_async("verify-receipt", receipt, "--url", gateway.base_url)
    assert status == 0, err
    assert "the signature verifies" in out

    tampered = answer.json()
    tampered["amounts"]["cash"] -= 100
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(tampered, ensure_ascii=False))
    status, out, err = await onestop_async("verify-receipt", forged, "--url", gateway.base_url)
    assert status == 1
    assert "NOT VALID" in err
    assert "changed after signing" in err

    # Offline, with a saved GET /v1/keys answer.
    keys = tmp_path / "keys.json"
    write_secret_file(keys, (await clients["ZZH3"].request("GET", "/v1/keys")).content)
    status, out, err = await onestop_async("verify-receipt", receipt, "--keys", keys)
    assert status == 0, err
