"""Mutual TLS between gateway and adjudicator: only a certificate of the CA gets a word in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from pydantic import ValidationError

from adjudicator.settings import AdjudicatorSettings
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.tls import TlsFiles, aio_channel, make_tls_material
from tests.support.adjudicator import member_key_text, open_adjudicator


def _tls_settings(directory: Path) -> dict[str, Any]:
    files = TlsFiles.of(directory, "adjudicator")
    return {"tls_ca_file": files.ca, "tls_cert_file": files.cert, "tls_key_file": files.key}


def test_the_material_is_private_and_never_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    written = make_tls_material(directory, ["adjudicator.onestop.svc"])
    assert directory.stat().st_mode & 0o777 == 0o700
    keys = [path for path in written if path.suffix == ".key"]
    assert len(keys) == 4
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in keys)
    with pytest.raises(FileExistsError):
        make_tls_material(directory)
    assert b"adjudicator.onestop.svc" not in (directory / "gateway.pem").read_bytes()


async def test_only_clients_with_a_certificate_of_the_ca_are_answered(
    redis_url: str, tmp_path: Path
) -> None:
    make_tls_material(tmp_path / "tls")
    make_tls_material(tmp_path / "other")  # another authority: a stranger's certificates
    async with open_adjudicator(redis_url, **_tls_settings(tmp_path / "tls")) as adjudicator:
        target = adjudicator.target

        async def clients_over(channel: grpc.aio.Channel) -> list[str]:
            async with channel:
                stub = pb_grpc.AdjudicatorStub(channel)
                answer = await stub.ListClients(pb.ListClientsRequest(), timeout=5)
            return [client.client_id for client in answer.clients]

        gateway = aio_channel(target, TlsFiles.of(tmp_path / "tls", "gateway"))
        assert await clients_over(gateway) == []  # answered: no client registered yet
        no_certificate = grpc.ssl_channel_credentials((tmp_path / "tls" / "ca.pem").read_bytes())
        stranger = TlsFiles(
            tmp_path / "tls" / "ca.pem",
            tmp_path / "other" / "gateway.pem",
            tmp_path / "other" / "gateway.key",
        )
        for refused in (
            grpc.aio.insecure_channel(target),
            grpc.aio.secure_channel(target, no_certificate),
            aio_channel(target, stranger),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await clients_over(refused)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_an_adjudicator_beyond_loopback_needs_tls(tmp_path: Path) -> None:
    common: dict[str, Any] = {"redis_url": "redis://127.0.0.1:1", "member_key": member_key_text()}
    with pytest.raises(ValidationError, match="without TLS"):
        AdjudicatorSettings(host="0.0.0.0", **common)
    make_tls_material(tmp_path)
    with pytest.raises(ValidationError, match="all of tls_cert_file"):
        AdjudicatorSettings(host="0.0.0.0", tls_ca_file=tmp_path / "ca.pem", **common)
    settings = AdjudicatorSettings(host="0.0.0.0", **_tls_settings(tmp_path), **common)
    assert settings.tls() == TlsFiles.of(tmp_path, "adjudicator")
    mesh = AdjudicatorSettings(host="0.0.0.0", insecure_transport=True, **common)
    assert mesh.tls() is None
