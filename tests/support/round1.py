"""The data set round 1 wrote (``tests/storage/data/round1``), put back into a real Redis."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.cases import REPO_ROOT
from tests.support.redis import sync_client

DATA = REPO_ROOT / "tests" / "storage" / "data" / "round1"
SEED = b"onestop round-1 storage fixture:"


def _fixture_key(name: str) -> bytes:
    return hashlib.sha256(SEED + name.encode()).digest()


def member_key_text() -> str:
    """The member-data key the data set was written with (base64)."""
    return base64.b64encode(_fixture_key("member-data")).decode()


def client_key(client_id: str) -> Ed25519PrivateKey:
    """The key pair a client of the data set signed with."""
    return Ed25519PrivateKey.from_private_bytes(_fixture_key(f"client:{client_id}"))


def answers() -> list[dict[str, Any]]:
    """Every answer the gateway gave while the data set was written, in order."""
    loaded: list[dict[str, Any]] = json.loads((DATA / "answers.json").read_text("utf-8"))
    return loaded


def _value(encoded: dict[str, str]) -> bytes:
    if "text" in encoded:
        return encoded["text"].encode()
    return base64.b64decode(encoded["base64"])


def restore(redis_url: str, source: Path = DATA / "redis.json") -> int:
    """Write every key of the data set into the Redis (or cluster) at ``redis_url``."""
    keys: list[dict[str, Any]] = json.loads(source.read_text("utf-8"))
    client = sync_client(redis_url)
    try:
        for entry in keys:
            key = entry["key"]
            if entry["type"] == "hash":
                client.hset(
                    key, mapping={name: _value(value) for name, value in entry["fields"].items()}
                )
            elif entry["type"] == "string":
                client.set(key, _value(entry["value"]))
            else:
                for item in entry["entries"]:
                    fields = {name: _value(value) for name, value in item["fields"].items()}
                    client.xadd(key, fields, id=item["id"])  # type: ignore[arg-type]
    finally:
        client.close()
    return len(keys)
