"""What the command line does against a running gateway, signed as a client (the agency)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from onestop.client import SignedClient
from onestop.domain.documents import parse_document_text
from onestop.domain.errors import DomainError
from onestop.domain.policy import parse_policy, policy_to_document
from onestop.his_reconcile import reconciliation_request
from onestop.signing import UnusableKey, load_public_key

DEFAULT_URL = "http://127.0.0.1:8080"
"""Where ``onestop serve`` answers unless told otherwise."""


def gateway_url(url: str | None, data_dir: Path | None) -> str:
    """The gateway's URL.

    The option first, then ``ONESTOP_URL``, then a running ``onestop serve``'s data
    directory, then :data:`DEFAULT_URL`.
    """
    served: dict[str, Any] = {}
    if data_dir is not None and (data_dir / "serve.json").exists():
        served = json.loads((data_dir / "serve.json").read_text())
    resolved = url or os.environ.get("ONESTOP_URL") or served.get("gateway") or DEFAULT_URL
    return str(resolved).rstrip("/")


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the gateway is and who signs."""

    url: str
    client_id: str
    key_file: Path

    @classmethod
    def resolve(
        cls, url: str | None, client_id: str | None, key: Path | None, data_dir: Path | None
    ) -> Connection:
        """Resolve the connection from options, the environment, or a data directory.

        Options first, then ``ONESTOP_URL``/``ONESTOP_CLIENT_ID``/``ONESTOP_KEY``, then the
        data directory of a running ``onestop serve`` (its address and agency key).
        """
        resolved_url = gateway_url(url, data_dir)
        resolved_key = key or (
            Path(os.environ["ONESTOP_KEY"]) if "ONESTOP_KEY" in os.environ else None
        )
        if resolved_key is None and data_dir is not None:
            resolved_key = data_dir / "agency.key"
        if resolved_key is None:
            raise SystemExit("no signing key: give --key FILE, ONESTOP_KEY or --data-dir DIR")
        return cls(
            resolved_url,
            client_id or os.environ.get("ONESTOP_CLIENT_ID") or "agency",
            resolved_key,
        )

    def client(self) -> SignedClient:
        """A signed HTTP client."""
        return SignedClient.from_key_file(self.url, self.client_id, self.key_file)


class Refused(Exception):
    """The gateway refused: the problem+json it answered."""

    def __init__(self, answer: httpx.Response) -> None:
        super().__init__(answer.text)
        self.answer = answer


def _result(answer: httpx.Response) -> Any:
    if answer.status_code >= 400:
        raise Refused(answer)
    return answer.json()


async def fetch_published_keys(url: str) -> list[dict[str, str]]:
    """The gateway's receipt keys (``GET /v1/keys``, which needs no signature)."""
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=10) as http:
        answer = await http.get("/v1/keys")
        answer.raise_for_status()
        keys: list[dict[str, str]] = answer.json()["keys"]
    return keys


def read_public_key_file(path: Path) -> str:
    """A public key PEM from a file, refused here when it is anything else.

    Raises:
        UnusableKey: the file holds a private key (which must never leave its owner, so it
            is refused before anything is sent) or no Ed25519 public key.
    """
    text = path.read_text(encoding="utf-8")
    if "PRIVATE KEY" in text:
        raise UnusableKey(
            f"{path} holds a private key: give the public half ({path.with_suffix('.pub').name} "
            "from onestop keys new); a private key never leaves its owner, nothing was sent"
        )
    load_public_key(text)
    return text


async def register_client(
    connection: Connection,
    client_id: str,
    *,
    kind: str,
    name: str,
    level: str | None,
    region: str | None,
    public_key: Path,
    national_code: str | None = None,
    national_codes_allowed: bool = False,
) -> Any:
    """``PUT /v1/admin/clients/{id}``; the key file is checked before anything is sent."""
    public_key_pem = read_public_key_file(public_key)
    async with connection.client() as client:
        return _result(
            await client.request(
                "PUT",
                f"/v1/admin/clients/{client_id}",
                json_body={
                    "kind": kind,
                    "name": name,
                    "level": level,
                    "region": region,
                    "public_key": public_key_pem,
                    "national_code": national_code,
                    "national_codes_allowed": national_codes_allowed,
                },
            )
        )


async def load_policies(connection: Connection, files: list[Path]) -> list[Any]:
    """``PUT /v1/admin/policies`` for each JSON or YAML file (checked here first)."""
    # Every file is read and checked before the first is sent: one bad file loads none.
    documents = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            parsed = parse_policy(parse_document_text(text, path.name))
        except DomainError as error:
            error.message = f"{path}: {error.message}; nothing was loaded"
            raise
        documents.append(policy_to_document(parsed))
    answers = []
    async with connection.client() as client:
        for document in documents:
            answers.append(
                _result(await client.request("PUT", "/v1/admin/policies", json_body=document))
            )
    return answers


async def reconcile_his_export(
    connection: Connection, file: Path, day: str, *, yuan: bool = False
) -> Any:
    """``POST /v1/reconciliation`` with a day of the HIS's own records (its CSV export).

    The file is read and checked before anything is sent (:mod:`onestop.his_reconcile`).
    """
    body = reconciliation_request(file.read_text(encoding="utf-8-sig"), day, yuan=yuan)
    async with connection.client() as client:
        return _result(await client.request("POST", "/v1/reconciliation", json_body=body))


async def day_reconciliations(connection: Connection, day: str, client_id: str | None) -> Any:
    """``GET /v1/admin/reconciliations``: who balanced the day, who did not, by how much."""
    params = {"date": day, **({"client_id": client_id} if client_id else {})}
    async with connection.client() as client:
        return _result(await client.request("GET", "/v1/admin/reconciliations", params=params))


async def console_login(connection: Connection, next_page: str | None = None) -> str:
    """``POST /v1/admin/console/sessions``: a one-time link that opens the agency console.

    Args:
        connection: the gateway and the agency's key.
        next_page: a console path to land on (``/console/reviews``); the overview if none.
    """
    async with connection.client() as client:
        issued = _result(await client.request("POST", "/v1/admin/console/sessions"))
    link = f"{connection.url.rstrip('/')}{issued['login_path']}"
    if next_page:
        link += "?" + urlencode({"next": next_page})
    return link


async def load_catalog(connection: Connection, file: Path) -> Any:
    """``PUT /v1/admin/catalog`` with a CSV file."""
    async with connection.client() as client:
        return _result(await client.upload("PUT", "/v1/admin/catalog", file, "text/csv"))


async def load_mapping(connection: Connection, client_id: str, file: Path, *, confirm: bool) -> Any:
    """``PUT /v1/admin/clients/{id}/mappings`` with a CSV file."""
    path = f"/v1/admin/clients/{client_id}/mappings" + ("?confirm=true" if confirm else "")
    async with connection.client() as client:
        return _result(await client.upload("PUT", path, file, "text/csv"))


async def load_members_files(
    connection: Connection, files: list[Path], progress: Callable[[int, int], None] | None = None
) -> list[Any]:
    """``POST /v1/admin/members`` for each file in turn (each is a separate load)."""
    return [await load_members(connection, file, progress) for file in files]


async def load_members(
    connection: Connection, file: Path, progress: Callable[[int, int], None] | None = None
) -> Any:
    """``POST /v1/admin/members``: the file streamed in chunks, never held whole in memory."""
    async with connection.client() as client:
        client.http.timeout = httpx.Timeout(None)
        return _result(
            await client.upload(
                "POST", "/v1/admin/members", file, "application/x-ndjson", progress=progress
            )
        )


def progress_printer(label: str) -> Callable[[int, int], None]:
    """A progress line on standard error (redrawn on a terminal, every 10 % otherwise)."""
    started = time.monotonic()
    shown = -1
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        nonlocal shown
        percent = 100 * done // total if total else 100
        if tty or percent // 10 != shown // 10 or done == total:
            elapsed = time.monotonic() - started
            rate = done / elapsed / 1e6 if elapsed else 0.0
            end = "\r" if tty and done < total else "\n"
            print(
                f"{label}: {done / 1e6:,.1f} of {total / 1e6:,.1f} MB ({percent} %), "
                f"{rate:,.1f} MB/s",
                end=end,
                file=sys.stderr,
                flush=True,
            )
            shown = percent

    return show


async def download_export(
    connection: Connection, day: str, out: Path, *, provisional: bool = False
) -> dict[str, Any]:
    """``GET /v1/admin/exports/{day}``, unpacked into ``out``; the manifest.

    ``provisional``: a file of a day still open (its manifest says ``final: false``).
    """
    from onestop.exports import MANIFEST, unzip_export

    async with connection.client() as client:
        client.http.timeout = httpx.Timeout(None)
        answer = await client.request(
            "GET",
            f"/v1/admin/exports/{day}",
            params={"provisional": "true"} if provisional else None,
        )
        if answer.status_code >= 400:
            raise Refused(answer)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f".onestop-{day}.zip"
    archive.write_bytes(answer.content)
    try:
        unzip_export(archive, out)
    finally:
        archive.unlink(missing_ok=True)
    manifest: dict[str, Any] = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    return manifest
