"""A real adjudicator (grpc.aio on a free port) over the test's real Redis, and its client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adjudicator.server import RunningAdjudicator, start
from adjudicator.settings import AdjudicatorSettings, new_member_key
from onestop.domain.bill import VisitRequest, request_identity
from onestop.domain.catalog import catalog_csv, parse_catalog_items
from onestop.domain.mapping import MappingRow, MappingTable, mapping_csv
from onestop.domain.policy import parse_policy, policy_to_document
from onestop.redis_users import ADJUDICATOR
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.signing import public_pem
from tests.support.redis import service_redis


def member_key_text() -> str:
    """A fresh base64 member-data key."""
    return new_member_key().decode().strip()


@dataclass
class Adjudicator:
    """A running adjudicator and a stub connected to it."""

    running: RunningAdjudicator
    channel: grpc.aio.Channel
    stub: pb_grpc.AdjudicatorAsyncStub
    settings: AdjudicatorSettings

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.port}"


@contextlib.asynccontextmanager
async def open_adjudicator(redis_url: str, **overrides: Any) -> AsyncIterator[Adjudicator]:
    """A real adjudicator on a free port over ``redis_url``, stopped on leaving."""
    settings = AdjudicatorSettings(
        port=0,
        **{**service_redis(redis_url, ADJUDICATOR), "member_key": member_key_text(), **overrides},
    )
    running = await start(settings)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield Adjudicator(running, channel, pb_grpc.AdjudicatorStub(channel), settings)
    finally:
        await channel.close()
        await running.stop()


@pytest.fixture
async def adjudicator(redis_url: str) -> AsyncIterator[Adjudicator]:
    """A real adjudicator on a free port, stopped after the test."""
    async with open_adjudicator(redis_url) as running:
        yield running


def fingerprint(body: dict[str, Any]) -> bytes:
    """The request's identity, as the gateway computes it (domain section 15)."""
    return request_identity(VisitRequest.model_validate(body))


def _chunks(text: str) -> Iterable[pb.TextChunk]:
    data = text.encode()
    step = 4096
    return [pb.TextChunk(data=data[start : start + step]) for start in range(0, len(data), step)]


async def load_reference(
    stub: pb_grpc.AdjudicatorAsyncStub,
    *,
    policies: Sequence[dict[str, Any]],
    catalog: Sequence[dict[str, Any]],
    clients: Sequence[dict[str, Any]],
    mappings: dict[str, Sequence[dict[str, Any]]],
    members: Sequence[dict[str, Any]],
) -> dict[str, MappingTable]:
    """Load a case's data through the adjudicator's loading calls; the clients' mappings."""
    for document in policies:
        payload = json.dumps(policy_to_document(parse_policy(document))).encode()
        await stub.PutPolicy(pb.PutPolicyRequest(document_json=payload))
    items = parse_catalog_items(enumerate(catalog, start=2))
    await stub.PutCatalog(iter(_chunks(catalog_csv(items))))
    for client in clients:
        key = Ed25519PrivateKey.generate()
        await stub.PutClient(
            pb.Client(
                client_id=client["client_id"],
                kind=client["kind"],
                name=client["name"],
                level=client.get("level") or "",
                region=client.get("region") or "",
                public_key_pem=public_pem(key.public_key()),
            )
        )
    tables = {}
    for client_id, rows in mappings.items():
        table = MappingTable.from_rows(MappingRow.model_validate(row) for row in rows)
        await stub.PutMapping(
            pb.PutMappingRequest(
                client_id=client_id, csv=mapping_csv(table).encode(), changed_by="test"
            )
        )
        tables[client_id] = table
    jsonl = "\n".join(
        json.dumps(member, ensure_ascii=False, default=_decimal) for member in members
    )
    reply = await stub.PutMembers(iter(_chunks(jsonl + "\n")))
    assert not reply.rejected, reply.rejected
    return tables


def _decimal(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def error_code(error: grpc.aio.AioRpcError) -> str:
    """The contract code a refusal carries."""
    for key, value in error.trailing_metadata() or ():
        if key == "onestop-code":
            return str(value)
    return ""


def error_problems(error: grpc.aio.AioRpcError) -> list[pb.Problem]:
    """The offending lines or rows a refusal carries."""
    problems = pb.Problems()
    for key, value in error.trailing_metadata() or ():
        if key == "onestop-problems-bin" and isinstance(value, bytes):
            problems.ParseFromString(value)
    return list(problems.problems)
