"""Signed receipts: every answer about a settlement carries an Ed25519 signature.

The signature covers the result without ``signature`` and ``replayed``, as JSON with sorted
keys, no spaces, UTF-8. Keys live in the key directory, one PEM file each; the newest signs,
and every key that ever signed stays listed so old receipts can still be verified.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.exports import Signer
from onestop.receipts import ALGORITHM, signed_part
from onestop.signing import (
    canonical_json,
    key_id,
    load_private_key,
    private_pem,
    public_pem,
    sign,
    write_secret_file,
)
from onestop.statement.seal import Seal


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One receipt key."""

    key_id: str
    private: Ed25519PrivateKey
    created_ns: int


class ReceiptKeyError(RuntimeError):
    """The configured signing key is not in the key directory."""


def new_receipt_key(key_dir: Path) -> str:
    """Write a new receipt key into ``key_dir`` (mode 0600); its key id."""
    private = Ed25519PrivateKey.generate()
    name = key_id(private.public_key())
    write_secret_file(key_dir / f"receipt-{name}.pem", private_pem(private))
    return name


class ReceiptSigner:
    """Loads (or on first use creates) the gateway's receipt keys and signs results.

    Args:
        key_dir: the keys, one ``receipt-<key id>.pem`` each. On one machine the gateway makes
            the first key itself; in a cluster of gateways the keys come from a shared,
            read-only secret and the directory is never written.
        signing_key_id: the key that signs; ``None``: the newest file. Set it where file
            times mean nothing (a mounted secret), so that every gateway signs with one key.

    Raises:
        ReceiptKeyError: ``signing_key_id`` names no key in the directory.
    """

    def __init__(self, key_dir: Path, signing_key_id: str | None = None) -> None:
        self.key_dir = key_dir
        self.signing_key_id = signing_key_id
        keys = self._load() if key_dir.is_dir() else []
        if not keys:
            self.key_dir.mkdir(parents=True, exist_ok=True)
            with open(self.key_dir / ".lock", "wb") as lock:
                # Gateway processes of one machine share the directory: one makes the key.
                fcntl.flock(lock, fcntl.LOCK_EX)
                keys = self._load()
                if not keys:
                    new_receipt_key(self.key_dir)
                    keys = self._load()
        self.keys = keys
        self._check_signing_key()

    def _check_signing_key(self) -> None:
        if self.signing_key_id is not None and all(
            key.key_id != self.signing_key_id for key in self.keys
        ):
            raise ReceiptKeyError(f"no receipt key {self.signing_key_id} in {self.key_dir}")

    def _load(self) -> list[SigningKey]:
        keys = []
        for path in sorted(self.key_dir.glob("receipt-*.pem")):
            private = load_private_key(path)
            keys.append(SigningKey(key_id(private.public_key()), private, path.stat().st_mtime_ns))
        keys.sort(key=lambda key: key.created_ns)
        return keys

    def rotate(self) -> str:
        """Make a new key that signs from now on (the old ones stay listed)."""
        name = new_receipt_key(self.key_dir)
        self.keys = self._load()
        return name

    @property
    def current(self) -> SigningKey:
        """The key that signs now: the configured one, else the newest."""
        if self.signing_key_id is not None:
            for key in self.keys:
                if key.key_id == self.signing_key_id:
                    return key
        return self.keys[-1]

    def signature(self, result: dict[str, Any]) -> dict[str, str]:
        """The ``signature`` block for a result."""
        key = self.current
        return {
            "key_id": key.key_id,
            "algorithm": ALGORITHM,
            "value": sign(key.private, canonical_json(signed_part(result))),
        }

    def seal(self, result: dict[str, Any]) -> str:
        """The signed seal of a settlement result: what its statement's QR code holds."""
        key = self.current
        unsigned = Seal.of_result(result, key.key_id)
        return unsigned.signed(lambda message: sign(key.private, message)).text()

    def export_signer(self) -> Signer:
        """The current key, for signing an export's manifest."""
        key = self.current
        return Signer(
            key.key_id,
            public_pem(key.private.public_key()),
            lambda message: sign(key.private, message),
        )

    def published(self) -> list[dict[str, str]]:
        """Every key that ever signed, public half only (``GET /v1/keys``)."""
        return [
            {
                "key_id": key.key_id,
                "algorithm": ALGORITHM,
                "public_key": public_pem(key.private.public_key()),
            }
            for key in self.keys
        ]
