"""Personal data at rest: id numbers and names encrypted, id numbers found by a blind index.

A sealed identity names the key that sealed it, so the key can be rotated while the services
run (``onestop keys rotate-member``): the adjudicator holds the current key and, during a
rotation, the previous ones; it seals with the current key, opens with whichever key a value
names, and finds an id number under any of their indexes. Once every value is sealed under
the current key the previous ones are removed from the configuration and retired.

Stored format (``SEALED_VERSION`` 2)::

    0xA5 0x02 | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM(JSON [id_number, name])

The member id is the associated data. Values of the first format (nonce | ciphertext of
``id_number 0x1f name``, no key id; written by onestop 0.1) are still opened with any
configured key, and rotated like any other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_VERSION = 2
_MAGIC = bytes((0xA5, SEALED_VERSION))
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_HEADER_BYTES = len(_MAGIC) + _KEY_ID_BYTES + _NONCE_BYTES
_V1_SEPARATOR = "\x1f"


def _derive(master: bytes, purpose: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose).derive(master)


class UnknownMemberKey(ValueError):
    """A value is sealed under a key this process was not given."""


class _Key:
    """One master key's derived keys: identity encryption, id-number index, and its id."""

    def __init__(self, master: bytes) -> None:
        self.aead = AESGCM(_derive(master, b"onestop member identity v1"))
        self.index_key = _derive(master, b"onestop id-number index v1")
        self.key_id = _derive(master, b"onestop member key id v1", _KEY_ID_BYTES)

    def blind_index(self, id_number: str) -> str:
        digest = hmac.new(self.index_key, id_number.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def member_key_id(master_key: bytes) -> str:
    """The id a key's sealed values carry (8 hex digits), as operators see it."""
    return _Key(master_key).key_id.hex()


class MemberCipher:
    """AES-256-GCM for a member's identity, HMAC-SHA-256 for the id-number index.

    Two keys are derived from each master key, so the index reveals nothing about the
    ciphertexts and neither can be computed without the master key. The member id is the
    associated data: a ciphertext copied onto another member does not decrypt.

    Args:
        master_key: the current key: it seals, and its index is the one written.
        previous_keys: keys being rotated away from: they only open and find.
    """

    def __init__(self, master_key: bytes, previous_keys: Sequence[bytes] = ()) -> None:
        self._current = _Key(master_key)
        self._keys = [self._current, *(_Key(key) for key in previous_keys)]
        self._by_id = {key.key_id: key for key in self._keys}

    @property
    def key_id(self) -> str:
        """The current key's id (8 hex digits)."""
        return self._current.key_id.hex()

    def seal(self, member_id: str, id_number: str, name: str) -> bytes:
        """Encrypt the id number and name of ``member_id`` under the current key."""
        nonce = os.urandom(_NONCE_BYTES)
        # JSON keeps the two apart whatever characters they hold (injective).
        plaintext = json.dumps([id_number, name], ensure_ascii=False).encode()
        ciphertext = self._current.aead.encrypt(nonce, plaintext, member_id.encode())
        return _MAGIC + self._current.key_id + nonce + ciphertext

    def sealed_key_id(self, sealed: bytes) -> str | None:
        """The id of the key ``sealed`` names; ``None`` for a value of the first format."""
        if sealed[: len(_MAGIC)] == _MAGIC and len(sealed) > _HEADER_BYTES:
            return sealed[len(_MAGIC) : len(_MAGIC) + _KEY_ID_BYTES].hex()
        return None

    def is_current(self, sealed: bytes) -> bool:
        """Whether ``sealed`` is already in the current format under the current key."""
        return self.sealed_key_id(sealed) == self.key_id

    def open(self, member_id: str, sealed: bytes) -> tuple[str, str]:
        """Decrypt ``(id_number, name)``.

        Raises:
            UnknownMemberKey: sealed under a key this cipher was not given.
            cryptography.exceptions.InvalidTag: wrong member, or tampered data.
        """
        if sealed[: len(_MAGIC)] == _MAGIC and len(sealed) > _HEADER_BYTES:
            key = self._by_id.get(sealed[len(_MAGIC) : len(_MAGIC) + _KEY_ID_BYTES])
            if key is not None:
                nonce = sealed[len(_MAGIC) + _KEY_ID_BYTES : _HEADER_BYTES]
                plaintext = key.aead.decrypt(nonce, sealed[_HEADER_BYTES:], member_id.encode())
                id_number, name = json.loads(plaintext)
                return str(id_number), str(name)
            # A first-format value whose random nonce happens to begin like a header is
            # tried below; anything else names a key this process does not have.
            try:
                return self._open_first_format(member_id, sealed)
            except InvalidTag:
                raise UnknownMemberKey(
                    f"member {member_id}'s identity is sealed under key "
                    f"{self.sealed_key_id(sealed)}, which is not configured (configured: "
                    f"{', '.join(key.key_id.hex() for key in self._keys)})"
                ) from None
        return self._open_first_format(member_id, sealed)

    def _open_first_format(self, member_id: str, sealed: bytes) -> tuple[str, str]:
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        for key in self._keys:
            try:
                plaintext = key.aead.decrypt(nonce, ciphertext, member_id.encode()).decode()
            except InvalidTag:
                continue
            id_number, _, name = plaintext.partition(_V1_SEPARATOR)
            return id_number, name
        raise InvalidTag

    def blind_index(self, id_number: str) -> str:
        """The current key's keyed digest of an id number (128 bits, URL-safe base64)."""
        return self._current.blind_index(id_number)

    def blind_indexes(self, id_number: str) -> list[str]:
        """The id number's digest under every configured key, the current key's first."""
        return [key.blind_index(id_number) for key in self._keys]
