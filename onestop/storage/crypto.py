"""Personal data at rest: id numbers and names encrypted, id numbers found by a blind index."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12
_SEPARATOR = "\x1f"


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class MemberCipher:
    """AES-256-GCM for a member's identity, HMAC-SHA-256 for the id-number index.

    Two keys are derived from one master key, so the index reveals nothing about the
    ciphertexts and neither can be computed without the master key. The member id is the
    associated data: a ciphertext copied onto another member does not decrypt.
    """

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(_derive(master_key, b"onestop member identity v1"))
        self._index_key = _derive(master_key, b"onestop id-number index v1")

    def seal(self, member_id: str, id_number: str, name: str) -> bytes:
        """Encrypt the id number and name of ``member_id``."""
        nonce = os.urandom(_NONCE_BYTES)
        plaintext = f"{id_number}{_SEPARATOR}{name}".encode()
        return nonce + self._aead.encrypt(nonce, plaintext, member_id.encode())

    def open(self, member_id: str, sealed: bytes) -> tuple[str, str]:
        """Decrypt ``(id_number, name)``.

        Raises:
            cryptography.exceptions.InvalidTag: wrong key, wrong member, or tampered data.
        """
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        plaintext = self._aead.decrypt(nonce, ciphertext, member_id.encode()).decode()
        id_number, _, name = plaintext.partition(_SEPARATOR)
        return id_number, name

    def blind_index(self, id_number: str) -> str:
        """A keyed digest of an id number for exact lookup (128 bits, URL-safe base64)."""
        digest = hmac.new(self._index_key, id_number.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
