"""Ed25519 keys: client request signatures and signed receipts and exports."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class UnusableKey(ValueError):
    """A key is not a usable Ed25519 key."""


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """Parse a PEM SubjectPublicKeyInfo Ed25519 public key.

    Raises:
        UnusableKey: not PEM, or not Ed25519.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise UnusableKey("not a PEM public key") from error
    if not isinstance(key, Ed25519PublicKey):
        raise UnusableKey("the public key must be Ed25519")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a PEM PKCS8 Ed25519 private key.

    Raises:
        UnusableKey: not PEM, encrypted, or not Ed25519.
    """
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise UnusableKey(f"{path} is not an unencrypted PEM private key") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise UnusableKey(f"{path} is not an Ed25519 key")
    return key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The private key as PEM PKCS8."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: Ed25519PublicKey) -> str:
    """The public key as PEM SubjectPublicKeyInfo."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """Sign ``message``; the signature as standard, padded base64."""
    return base64.b64encode(key.sign(message)).decode()


def verify(key: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is the key's signature of ``message``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes receipt and manifest signatures cover.

    The same bytes as ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False).encode()``, made several times faster.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def write_secret_file(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write a key or other secret readable by its owner only (mode 0600).

    Args:
        path: where to write.
        data: the secret.
        replace: overwrite an existing file; by default an existing file is an error
            (``FileExistsError``), so a key is never silently lost.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
