#!/usr/bin/env python3
"""Make the round-1 data set that the storage migration is tested with.

Runs against the code of the ``os1`` layout (round 1): loads acceptance cases 08, 03 and 11
through the real HTTP API on a real Redis, settles, replays, reverses and settles again, then
writes every Redis key (``redis.json``) and every answer (``answers.json``) into
``tests/storage/data/round1``. Keys are derived from fixed seeds (``fixture_key``), so the
data set carries no secret: the member-data key and the clients' private keys are made again
from their seeds by the test that reads it.

It needs the round-1 code: run it from the commit that added it
(``git show <that commit>:scripts/make_round1_fixture.py``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adjudicator.server import start  # noqa: E402
from adjudicator.settings import AdjudicatorSettings  # noqa: E402
from onestop.client import SignedClient  # noqa: E402
from onestop.domain.catalog import catalog_csv, parse_catalog_items  # noqa: E402
from onestop.domain.mapping import MappingRow, MappingTable, mapping_csv  # noqa: E402
from onestop.redis_server import RedisServer  # noqa: E402
from onestop.settlement.v1 import adjudicator_pb2 as pb  # noqa: E402
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc  # noqa: E402
from onestop.signing import public_pem  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402

OUT = ROOT / "tests" / "storage" / "data" / "round1"
SEED = b"onestop round-1 storage fixture:"


def fixture_key(name: str) -> bytes:
    """32 bytes derived from a name: test data, never a secret."""
    return hashlib.sha256(SEED + name.encode()).digest()


def client_key(client_id: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(fixture_key(f"client:{client_id}"))


def _decimal(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def _case(name: str) -> dict[str, Any]:
    path = ROOT / "docs" / "cases" / f"{name}.json"
    return dict(json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal))


def _value(raw: bytes) -> dict[str, str]:
    try:
        return {"text": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}


def dump(url: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    keys = []
    for key in sorted(client.scan_iter(count=1000)):
        kind = client.type(key).decode()
        entry: dict[str, Any] = {"key": key.decode(), "type": kind}
        if kind == "hash":
            entry["fields"] = {
                name.decode(): _value(value) for name, value in sorted(client.hgetall(key).items())
            }
        elif kind == "string":
            entry["value"] = _value(client.get(key))
        elif kind == "stream":
            entry["entries"] = [
                {"id": stream_id.decode(), "fields": {n.decode(): _value(v) for n, v in f.items()}}
                for stream_id, f in client.xrange(key)
            ]
        else:
            raise SystemExit(f"unexpected {kind} {key!r}")
        if client.ttl(key) >= 0:
            continue  # nonces: they expire and are not data
        keys.append(entry)
    client.close()
    return keys


async def make(scratch: Path) -> None:
    server = RedisServer(scratch / "redis", appendfsync="everysec")
    server.start()
    member_key = base64.b64encode(fixture_key("member-data")).decode()
    running = await start(
        AdjudicatorSettings(port=0, redis_url=server.url, member_key=member_key)
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    stub = pb_grpc.AdjudicatorStub(channel)
    agency_key = client_key("agency")
    await stub.PutClient(
        pb.Client(
            client_id="agency",
            kind="agency",
            name="医保经办机构",
            public_key_pem=public_pem(agency_key.public_key()),
        )
    )

    class Handle:
        target = f"127.0.0.1:{running.port}"

    gateway, task, settings = await start_gateway(
        Handle(), server.url, scratch / "keys"  # type: ignore[arg-type]
    )
    base = f"http://127.0.0.1:{settings.port}"
    agency = SignedClient(base, "agency", agency_key)
    data = _case("08_replay_conflict_reversal")
    members = data["members"] + _case("03_zz_dibao_assistance")["members"]
    for client in data["clients"]:
        answer = await agency.request(
            "PUT",
            f"/v1/admin/clients/{client['client_id']}",
            json_body={
                "kind": client["kind"],
                "name": client["name"],
                "level": client.get("level"),
                "region": client.get("region"),
                "public_key": public_pem(client_key(client["client_id"]).public_key()),
            },
        )
        assert answer.status_code == 200, answer.text
    for policy in data["policies"]:
        answer = await agency.request(
            "PUT",
            "/v1/admin/policies",
            content=json.dumps(policy, default=_decimal).encode(),
            content_type="application/json",
        )
        assert answer.status_code == 200, answer.text
    items = parse_catalog_items(enumerate(data["catalog"], start=2))
    answer = await agency.request(
        "PUT", "/v1/admin/catalog", content=catalog_csv(items).encode(), content_type="text/csv"
    )
    assert answer.status_code == 200, answer.text
    for client_id, rows in data["mappings"].items():
        table = MappingTable.from_rows(MappingRow.model_validate(row) for row in rows)
        answer = await agency.request(
            "PUT",
            f"/v1/admin/clients/{client_id}/mappings",
            content=mapping_csv(table).encode(),
            content_type="text/csv",
        )
        assert answer.status_code == 200, answer.text
    answer = await agency.request(
        "POST",
        "/v1/admin/members",
        content="\n".join(json.dumps(m, ensure_ascii=False, default=_decimal) for m in members)
        .encode(),
        content_type="application/x-ndjson",
    )
    assert answer.status_code == 200 and not answer.json()["rejected"], answer.text

    answers: list[dict[str, Any]] = []
    settlement_of_step: dict[str, str] = {}
    for case_name in (
        "08_replay_conflict_reversal",
        "03_zz_dibao_assistance",
        "11_outpatient_special_and_pharmacy",
    ):
        for index, step in enumerate(_case(case_name)["steps"]):
            client = SignedClient(base, step["client_id"], client_key(step["client_id"]))
            if step["action"] == "settle":
                answer = await client.request(
                    "POST", "/v1/settlements", json_body=json.loads(
                        json.dumps(step["request"], default=_decimal)
                    )
                )
            elif step["action"] == "reverse":
                settlement_id = settlement_of_step[f"{case_name}:{step['reverse_step']}"]
                answer = await client.request(
                    "POST", f"/v1/settlements/{settlement_id}/reversal"
                )
            else:
                raise SystemExit(f"unexpected step {step['action']}")
            await client.close()
            if answer.status_code == 201:
                settlement_of_step[f"{case_name}:{index}"] = answer.json()["settlement_id"]
            answers.append(
                {
                    "case": case_name,
                    "step": index,
                    "action": step["action"],
                    "client_id": step["client_id"],
                    "status": answer.status_code,
                    "body": answer.json(),
                }
            )
    await agency.close()
    gateway.should_exit = True
    await task
    await channel.close()
    await running.stop()
    keys = dump(server.url)
    server.stop()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "redis.json").write_text(
        json.dumps(keys, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (OUT / "answers.json").write_text(
        json.dumps(answers, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"{len(keys)} keys, {len(answers)} answers -> {OUT}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        asyncio.run(make(Path(scratch)))
