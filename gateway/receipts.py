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
from onestop.signing import (
    canonical_json,
    key_id,
    load_private_key,
    private_pem,
    public_pem,
    sign,
    write_secret_file,
)

ALGORITHM = "ed25519"


def signed_part(result: dict[str, Any]) -> dict[str, Any]:
    """The result without ``signature`` and ``replayed``."""
    return {key: value for key, value in result.items() if key not in ("signature", "replayed")}


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One receipt key."""

    key_id: str
    private: Ed25519PrivateKey
    created_ns: int


class ReceiptSigner:
    """Loads (or on first use creates) the gateway's receipt keys and signs results."""

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = key_dir
        self.key_dir.mkdir(parents=True, exist_ok=True)
        with open(self.key_dir / ".lock", "wb") as lock:
            # Gateway processes of one machine share the directory: one of them makes the key.
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._load()
            if not keys:
                self.rotate()
                keys = self._load()
        self.keys = keys

    def _load(self) -> list[SigningKey]:
        keys = []
        for path in sorted(self.key_dir.glob("receipt-*.pem")):
            private = load_private_key(path)
            keys.append(SigningKey(key_id(private.public_key()), private, path.stat().st_mtime_ns))
        keys.sort(key=lambda key: key.created_ns)
        return keys

    def rotate(self) -> str:
        """Make a new key that signs from now on (the old ones stay listed)."""
        private = Ed25519PrivateKey.generate()
        name = key_id(private.public_key())
        path = self.key_dir / f"receipt-{name}.pem"
        write_secret_file(path, private_pem(private))
        self.keys = self._load()
        return name

    @property
    def current(self) -> SigningKey:
        """The key that signs now: the newest."""
        return self.keys[-1]

    def signature(self, result: dict[str, Any]) -> dict[str, str]:
        """The ``signature`` block for a result."""
        key = self.current
        return {
            "key_id": key.key_id,
            "algorithm": ALGORITHM,
            "value": sign(key.private, canonical_json(signed_part(result))),
        }

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
