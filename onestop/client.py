"""A client of the gateway's HTTP API that signs every request (contract section 2).

Used by the command line, the demonstration, the tests and the load tests: one signing
implementation for all of them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.signing import load_private_key, sign


def signature_headers(
    key: Ed25519PrivateKey,
    client_id: str,
    method: str,
    path_and_query: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    body_sha256_hex: str | None = None,
) -> dict[str, str]:
    """The four headers that authenticate one request."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    once = nonce or secrets.token_urlsafe(24)
    digest = body_sha256_hex or hashlib.sha256(body).hexdigest()
    message = f"{method.upper()}\n{path_and_query}\n{stamp}\n{once}\n{digest}".encode()
    return {
        "X-Client-Id": client_id,
        "X-Timestamp": stamp,
        "X-Nonce": once,
        "X-Signature": sign(key, message),
    }


def json_bytes(value: Any) -> bytes:
    """JSON as the gateway expects it: UTF-8, decimals as they were written."""
    return json.dumps(value, ensure_ascii=False, default=str).encode()


class SignedClient:
    """An ``httpx.AsyncClient`` that signs as ``client_id`` with ``key``."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        key: Ed25519PrivateKey,
        *,
        timeout: float = 60.0,
    ) -> None:
        self.client_id = client_id
        self.key = key
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    @classmethod
    def from_key_file(cls, base_url: str, client_id: str, key_file: Path) -> SignedClient:
        """A client whose private key is a PEM file."""
        return cls(base_url, client_id, load_private_key(key_file))

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def __aenter__(self) -> SignedClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one signed request."""
        target = f"{path}?{urlencode(params)}" if params else path
        body = content if content is not None else b""
        extra = dict(headers or {})
        if json_body is not None:
            body = json_bytes(json_body)
            extra.setdefault("Content-Type", "application/json")
        elif content_type:
            extra.setdefault("Content-Type", content_type)
        signed = signature_headers(self.key, self.client_id, method, target, body)
        return await self.http.request(method, target, content=body, headers={**extra, **signed})

    async def upload(
        self,
        method: str,
        path: str,
        file: Path,
        content_type: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> httpx.Response:
        """Send a file as the body, streamed in chunks (signed over its SHA-256)."""
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        signed = signature_headers(
            self.key, self.client_id, method, path, b"", body_sha256_hex=digest.hexdigest()
        )

        total = file.stat().st_size

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            with file.open("rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    sent += len(chunk)
                    yield chunk
                    if progress is not None:
                        progress(sent, total)

        return await self.http.request(
            method,
            path,
            content=chunks(),
            headers={
                "Content-Type": content_type,
                "Content-Length": str(file.stat().st_size),
                **signed,
            },
        )
