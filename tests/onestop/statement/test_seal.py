"""The statement's seal: its format, signed and checked against the published keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onestop.signing import key_id, public_pem, sign
from onestop.statement.seal import PREFIX, MalformedSeal, Seal, check_seal, parse_seal

KEY = Ed25519PrivateKey.generate()
KEY_ID = key_id(KEY.public_key())
PUBLISHED = [{"key_id": KEY_ID, "algorithm": "ed25519", "public_key": public_pem(KEY.public_key())}]

RESULT = {
    "settlement_id": "S1a3019c8f6b2a0d4e7f0a1b2c3d4e5f",
    "status": "settled",
    "settled_at": "2026-03-09T10:15:02.000+08:00",
    "amounts": {
        "total": 111150,
        "basic_fund": 10575,
        "supplementary": 100,
        "assistance": 25,
        "personal_account": 0,
        "cash": 100450,
    },
}


def _sealed() -> str:
    return Seal.of_result(RESULT, KEY_ID).signed(lambda message: sign(KEY, message)).text()


def test_the_seal_reads_as_the_statement_and_is_signed_by_the_receipt_key() -> None:
    text = _sealed()
    fields = text.split("|")
    assert fields[:8] == [
        PREFIX,
        "S1a3019c8f6b2a0d4e7f0a1b2c3d4e5f",
        "settled",
        "2026-03-09T10:15:02.000+08:00",
        "1111.50",
        "107.00",  # basic fund + supplementary + assistance
        "1004.50",
        KEY_ID,
    ]
    # Unpadded base64url: a QR code's alphanumeric-friendly text, no "=" or "/".
    assert len(fields[8]) == 86
    assert not set(fields[8]) & set("=+/")
    # Short enough for a QR code a phone reads off paper.
    assert len(text) < 260
    check = check_seal(text, PUBLISHED)
    assert check.valid, check.reason
    assert check.seal == parse_seal(text)
    assert check.seal is not None
    assert check.seal.total == 111150
    assert "total 1,111.50 yuan" in check.seal.describe()


@pytest.mark.parametrize(
    ("before", "after"),
    [("|1004.50|", "|1000.50|"), ("|settled|", "|reversed|"), ("S1a30", "S1a31")],
)
def test_a_changed_seal_does_not_verify(before: str, after: str) -> None:
    text = _sealed()
    check = check_seal(text.replace(before, after), PUBLISHED)
    assert not check.valid
    assert "changed after signing" in check.reason


def test_a_seal_of_an_unpublished_key_does_not_verify() -> None:
    other = Ed25519PrivateKey.generate()
    other_id = key_id(other.public_key())
    text = Seal.of_result(RESULT, other_id).signed(lambda message: sign(other, message)).text()
    check = check_seal(text, PUBLISHED)
    assert not check.valid
    assert f"no published key has the id {other_id!r}" in check.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello", "does not begin with"),
        (f"{PREFIX}|S1|settled", "fields"),
        (f"{PREFIX}|S1|settled|2026-03-09|1.5.0|0.00|0.00|k|{'A' * 86}", "not yuan"),
        (f"{PREFIX}|S1|settled|2026-03-09|1.00|0.00|0.00|k|sig", "86 characters"),
        (f"{PREFIX}|S1|settled|2026-03-09|1.00|0.00|0.00|k|", "empty"),
    ],
)
def test_what_is_not_a_seal_is_said_so(text: str, reason: str) -> None:
    with pytest.raises(MalformedSeal, match=reason):
        parse_seal(text)
    check = check_seal(text, PUBLISHED)
    assert not check.valid
    assert check.seal is None
    assert check.reason.startswith("not a statement seal")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("|1111.50|", "|+0001111.5000|"),
        ("|107.00|", "| 107.00 |"),
        ("|1004.50|", "|1004.5|"),
    ],
)
def test_a_seal_written_otherwise_is_not_read_as_the_one_signed(before: str, after: str) -> None:
    """What verifies is the text the QR code held, byte for byte, as openssl would check it."""
    text = _sealed()
    altered = text.replace(before, after)
    with pytest.raises(MalformedSeal, match="not written as a seal is"):
        parse_seal(altered)
    assert not check_seal(altered, PUBLISHED).valid


def test_a_signature_with_stray_characters_is_refused() -> None:
    text = _sealed()
    prefix, signature = text.rsplit("|", 1)
    for altered in (f"{prefix}|{signature[:40]}!!**{signature[40:]}", f"{prefix}|{signature}=="):
        with pytest.raises(MalformedSeal, match="86 characters"):
            parse_seal(altered)
