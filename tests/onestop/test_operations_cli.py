"""Commands an operator runs around a deployment: keys, agency bootstrap, container probe."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adjudicator.settings import decode_member_key
from gateway.receipts import ReceiptKeyError, ReceiptSigner
from onestop.cli import main
from onestop.client import SignedClient
from onestop.signing import private_pem, public_pem, write_secret_file
from onestop.tooling.redis_server import free_port
from tests.support.adjudicator import Adjudicator
from tests.support.gateway import Gateway, start_gateway


def test_member_and_receipt_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    member_key = tmp_path / "member.key"
    assert main(["keys", "member", "--out", str(member_key)]) == 0
    assert member_key.stat().st_mode & 0o777 == 0o600
    assert len(decode_member_key(member_key.read_text())) == 32
    before = member_key.read_bytes()
    assert main(["keys", "member", "--out", str(member_key)]) == 1  # never replaced
    assert member_key.read_bytes() == before

    receipts = tmp_path / "receipts"
    assert main(["keys", "receipt", "--dir", str(receipts)]) == 0
    assert main(["keys", "receipt", "--dir", str(receipts)]) == 0
    files = sorted(receipts.glob("receipt-*.pem"))
    assert len(files) == 2
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files)
    output = capsys.readouterr().out
    assert files[0].stem.removeprefix("receipt-") in output


def test_receipt_keys_from_a_read_only_secret(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    for name in ("current", "previous"):
        write_secret_file(secret / f"receipt-{name}.pem", private_pem(Ed25519PrivateKey.generate()))
    ids = [entry["key_id"] for entry in ReceiptSigner(secret).published()]
    secret.chmod(0o500)  # as a mounted Secret: nothing may be written
    try:
        for key_id in ids:
            signer = ReceiptSigner(secret, key_id)
            assert signer.current.key_id == key_id
            assert {entry["key_id"] for entry in signer.published()} == set(ids)
        with pytest.raises(ReceiptKeyError):
            ReceiptSigner(secret, "0" * 16)
    finally:
        secret.chmod(0o700)


async def test_bootstrap_agency_registers_its_key(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    agency_key = Ed25519PrivateKey.generate()
    public_file = tmp_path / "agency.pub"
    public_file.write_text(public_pem(agency_key.public_key()))
    code = await asyncio.to_thread(
        main,
        ["bootstrap-agency", "--adjudicator", adjudicator.target, "--public-key", str(public_file)],
    )
    assert code == 0
    server, task, settings = await start_gateway(adjudicator, redis_url, tmp_path / "keys")
    try:
        async with SignedClient(
            f"http://127.0.0.1:{settings.port}", "agency", agency_key
        ) as agency:
            answer = await agency.request("GET", "/v1/admin/clients")
            assert answer.status_code == 200, answer.text
            assert "agency" in answer.text
    finally:
        server.should_exit = True
        await task

    not_a_key = tmp_path / "not-a-key.pub"
    not_a_key.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert (
        main(
            [
                "bootstrap-agency",
                "--adjudicator",
                adjudicator.target,
                "--public-key",
                str(not_a_key),
            ]
        )
        == 1
    )


async def test_probe_tells_up_from_down(
    gateway: Gateway, adjudicator: Adjudicator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def probe(*arguments: str) -> int:
        return await asyncio.to_thread(main, ["probe", "--timeout", "2", *arguments])

    assert await probe("--http", gateway.base_url) == 0
    assert await probe("--grpc", adjudicator.target) == 0
    live = ("--grpc", adjudicator.target, "--grpc-service", "onestop.liveness")
    assert await probe(*live) == 0
    assert await probe("--grpc", adjudicator.target, "--grpc-service", "no.such.service") == 1
    dead = f"127.0.0.1:{free_port()}"
    assert await probe("--http", f"http://{dead}") == 1
    assert await probe("--grpc", dead) == 1

    # in a container: found from the service's own settings
    for name in ("ONESTOP_GATEWAY_ADJUDICATOR", "ONESTOP_ADJUDICATOR_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert await probe() == 2
    monkeypatch.setenv("ONESTOP_GATEWAY_ADJUDICATOR", adjudicator.target)
    monkeypatch.setenv("ONESTOP_GATEWAY_PORT", str(gateway.settings.port))
    assert await probe() == 0
    monkeypatch.delenv("ONESTOP_GATEWAY_ADJUDICATOR")
    monkeypatch.setenv("ONESTOP_ADJUDICATOR_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("ONESTOP_ADJUDICATOR_PORT", adjudicator.target.rsplit(":", 1)[1])
    assert await probe() == 0


async def test_a_dns_name_balances_over_its_addresses(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> None:
    port = adjudicator.target.rsplit(":", 1)[1]
    server, task, settings = await start_gateway(
        adjudicator, redis_url, tmp_path / "keys", target=f"dns:///localhost:{port}"
    )
    try:
        async with SignedClient(
            f"http://127.0.0.1:{settings.port}", "nobody", Ed25519PrivateKey.generate()
        ) as stranger:
            answer = await stranger.request("GET", "/health")
            assert answer.status_code == 200, answer.text
    finally:
        server.should_exit = True
        await task
