"""A real gateway (uvicorn on a free port) in front of the test's real adjudicator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from gateway.app import create_app
from gateway.server import GatewayConfig
from gateway.settings import GatewaySettings
from onestop.client import SignedClient
from onestop.redis_users import GATEWAY
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.signing import public_pem
from onestop.tooling.redis_server import free_port
from tests.support.adjudicator import Adjudicator
from tests.support.redis import service_redis

AGENCY = "agency"


@dataclass
class Gateway:
    """A running gateway, the agency's client, and a client per registered key."""

    base_url: str
    settings: GatewaySettings
    agency: SignedClient
    server: uvicorn.Server
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    clients: dict[str, SignedClient] = field(default_factory=dict)

    async def refusals_settled(self) -> None:
        """Wait until the refusals answered so far are counted in Redis.

        Each process writes its counts a second after the answers (or at its stop).
        """
        app = self.server.config.app
        assert isinstance(app, FastAPI)
        await app.state.gateway.refusals.flush()

    def client(self, client_id: str) -> SignedClient:
        """A signed HTTP client for a registered client id."""
        if client_id not in self.clients:
            self.clients[client_id] = SignedClient(self.base_url, client_id, self.keys[client_id])
        return self.clients[client_id]

    async def register(
        self,
        client_id: str,
        kind: str,
        name: str,
        level: str | None = None,
        region: str | None = None,
    ) -> SignedClient:
        """Register a client through the agency API, with a fresh key pair."""
        key = Ed25519PrivateKey.generate()
        answer = await self.agency.request(
            "PUT",
            f"/v1/admin/clients/{client_id}",
            json_body={
                "kind": kind,
                "name": name,
                "level": level,
                "region": region,
                "public_key": public_pem(key.public_key()),
            },
        )
        assert answer.status_code == 200, answer.text
        self.keys[client_id] = key
        self.clients.pop(client_id, None)
        return self.client(client_id)


async def start_gateway(
    adjudicator: Adjudicator,
    redis_url: str,
    key_dir: Path,
    target: str | None = None,
    **overrides: object,
) -> tuple[uvicorn.Server, asyncio.Task[None], GatewaySettings]:
    """Start uvicorn serving the gateway app in this event loop.

    ``target`` is how the gateway names the adjudicator (default: its address).
    """
    settings = GatewaySettings(
        port=free_port(),
        adjudicator=target or adjudicator.target,
        key_dir=key_dir,
        **{**service_redis(redis_url, GATEWAY), **overrides},
    )
    config = GatewayConfig(create_app(settings), settings, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, settings


@contextlib.asynccontextmanager
async def open_gateway(
    adjudicator: Adjudicator,
    redis_url: str,
    key_dir: Path,
    target: str | None = None,
    **overrides: object,
) -> AsyncIterator[Gateway]:
    """A real gateway over HTTP with the agency registered (as serve bootstraps it).

    ``target`` is how the gateway names the adjudicator (default: its address).
    """
    agency_key = Ed25519PrivateKey.generate()
    await adjudicator.stub.PutClient(
        pb.Client(
            client_id=AGENCY,
            kind="agency",
            name="医保经办机构",
            public_key_pem=public_pem(agency_key.public_key()),
        )
    )
    server, task, settings = await start_gateway(
        adjudicator, redis_url, key_dir, target, **overrides
    )
    base_url = f"http://127.0.0.1:{settings.port}"
    handle = Gateway(
        base_url,
        settings,
        SignedClient(base_url, AGENCY, agency_key),
        server,
        keys={AGENCY: agency_key},
    )
    try:
        yield handle
    finally:
        for client in handle.clients.values():
            await client.close()
        await handle.agency.close()
        server.should_exit = True
        await task


@pytest.fixture
async def gateway(
    adjudicator: Adjudicator, redis_url: str, tmp_path: Path
) -> AsyncIterator[Gateway]:
    """A real gateway over HTTP, with the agency client registered (as serve bootstraps it)."""
    async with open_gateway(adjudicator, redis_url, tmp_path / "keys") as handle:
        yield handle
