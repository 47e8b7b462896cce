"""Sealed identities name their key; the keys rotate; values of the first format still open."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from onestop.storage.crypto import MemberCipher, UnknownMemberKey, _derive, member_key_id

OLD, NEW, OTHER = os.urandom(32), os.urandom(32), os.urandom(32)


def _first_format(master: bytes, member_id: str, id_number: str, name: str) -> bytes:
    """A value as onestop 0.1 sealed it: nonce | AES-GCM(id_number 0x1f name), no key id."""
    nonce = os.urandom(12)
    aead = AESGCM(_derive(master, b"onestop member identity v1"))
    return nonce + aead.encrypt(nonce, f"{id_number}\x1f{name}".encode(), member_id.encode())


def test_a_sealed_identity_names_its_key_and_opens_with_it() -> None:
    cipher = MemberCipher(NEW)
    sealed = cipher.seal("M1", "410101198001010011", "张三")
    assert cipher.sealed_key_id(sealed) == member_key_id(NEW) == cipher.key_id
    assert cipher.is_current(sealed)
    assert cipher.open("M1", sealed) == ("410101198001010011", "张三")
    with pytest.raises(InvalidTag):
        cipher.open("M2", sealed)  # another member's record
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidTag):
        cipher.open("M1", tampered)


def test_the_two_fields_stay_apart_whatever_they_hold() -> None:
    cipher = MemberCipher(NEW)
    for id_number, name in (("4101\x1fX", "a"), ("4101", "\x1fX|a"), ('"],["', "]")):
        assert cipher.open("M1", cipher.seal("M1", id_number, name)) == (id_number, name)


def test_during_a_rotation_both_keys_open_and_find() -> None:
    old = MemberCipher(OLD)
    rotating = MemberCipher(NEW, [OLD])
    before = old.seal("M1", "410101198001010011", "李四")
    assert rotating.open("M1", before) == ("410101198001010011", "李四")
    assert not rotating.is_current(before)
    assert rotating.blind_indexes("410101198001010011") == [
        MemberCipher(NEW).blind_index("410101198001010011"),
        old.blind_index("410101198001010011"),
    ]
    with pytest.raises(UnknownMemberKey, match=member_key_id(OLD)):
        MemberCipher(NEW).open("M1", before)  # the old key retired too early: said clearly
    with pytest.raises(UnknownMemberKey):
        MemberCipher(OTHER, [NEW]).open("M1", before)


def test_values_of_the_first_format_open_with_any_configured_key() -> None:
    legacy = _first_format(OLD, "M1", "410101198001010011", "王五")
    assert MemberCipher(OLD).open("M1", legacy) == ("410101198001010011", "王五")
    rotating = MemberCipher(NEW, [OLD])
    assert rotating.sealed_key_id(legacy) is None or not rotating.is_current(legacy)
    assert rotating.open("M1", legacy) == ("410101198001010011", "王五")
    with pytest.raises(InvalidTag):
        MemberCipher(NEW).open("M1", legacy)


def test_member_identity_is_sealed_to_its_member() -> None:
    cipher = MemberCipher(os.urandom(32))
    sealed = cipher.seal("M1", "410102198001011234", "张三")
    assert b"410102198001011234" not in sealed
    assert cipher.open("M1", sealed) == ("410102198001011234", "张三")
    assert cipher.seal("M1", "410102198001011234", "张三") != sealed  # a fresh nonce each time
    with pytest.raises(InvalidTag):
        cipher.open("M2", sealed)  # copied onto another member
    with pytest.raises(UnknownMemberKey):
        MemberCipher(os.urandom(32)).open("M1", sealed)  # another key: said, not guessed


def test_blind_index_is_keyed_and_stable() -> None:
    key = os.urandom(32)
    index = MemberCipher(key).blind_index("410102198001011234")
    assert index == MemberCipher(key).blind_index("410102198001011234")
    assert index != MemberCipher(os.urandom(32)).blind_index("410102198001011234")
    assert "410102" not in index
    assert len(index) == 22
