"""The statement's seal: the short signed text its QR code holds, and checking one.

A phone cannot check an Ed25519 signature over a 200-line receipt it would have to type in;
it can read a QR code. The seal is what the statement vouches for, in one line::

    onestop-statement:1|S1a30...|settled|2026-03-09T10:15:02.000+08:00|1111.50|105.75|1005.75|3f2a9c0d1e4b5a67|<signature>

the format and its version, the settlement id, its status when the statement was made, when
it was settled, the total, what the funds paid (basic fund, supplementary and assistance), the
cash, the receipt key's id, and that key's Ed25519 signature over the UTF-8 text before the
last ``|`` (unpadded base64url). The key is the gateway's receipt key, published at
``GET /v1/keys`` as for receipts.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from onestop.domain.engine import FUND_PAYERS
from onestop.domain.money import fen_of_yuan, format_yuan
from onestop.signing import UnusableKey, key_id, load_public_key, verify

PREFIX = "onestop-statement:1"
"""The format's name and version: the seal's first field."""

_FIELDS = 9
FUND_FIELDS = FUND_PAYERS
"""The ``amounts`` the seal's funds figure sums."""
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{86}")
"""An Ed25519 signature (64 bytes) in unpadded base64url: exactly 86 characters."""


class MalformedSeal(ValueError):
    """The text is not a seal of this format."""


def _yuan(fen: int) -> str:
    return format_yuan(fen).replace(",", "")


@dataclass(frozen=True, slots=True)
class Seal:
    """What a statement vouches for, and the signature that vouches.

    Attributes:
        settlement_id: the settlement the statement is of.
        status: ``settled`` or ``reversed``, when the statement was made.
        settled_at: when it was settled (ISO 8601, Asia/Shanghai).
        total: the bill, in fen.
        funds: what the funds paid (basic fund, supplementary, assistance), in fen.
        cash: what the patient paid in cash, in fen.
        key_id: the receipt key that signs.
        signature: unpadded base64url of the Ed25519 signature; empty before signing.
    """

    settlement_id: str
    status: str
    settled_at: str
    total: int
    funds: int
    cash: int
    key_id: str
    signature: str = ""

    @classmethod
    def of_result(cls, result: Mapping[str, Any], signing_key_id: str) -> Seal:
        """The unsigned seal of a settlement result in the contract's shape."""
        amounts = result["amounts"]
        return cls(
            settlement_id=str(result["settlement_id"]),
            status=str(result["status"]),
            settled_at=str(result["settled_at"]),
            total=int(amounts["total"]),
            funds=sum(int(amounts[name]) for name in FUND_FIELDS),
            cash=int(amounts["cash"]),
            key_id=signing_key_id,
        )

    def signed_text(self) -> str:
        """The text the signature covers: every field but the signature."""
        fields = (
            PREFIX,
            self.settlement_id,
            self.status,
            self.settled_at,
            _yuan(self.total),
            _yuan(self.funds),
            _yuan(self.cash),
            self.key_id,
        )
        return "|".join(fields)

    def text(self) -> str:
        """The whole seal, as the QR code holds it."""
        return f"{self.signed_text()}|{self.signature}"

    def signed(self, sign: Callable[[bytes], str]) -> Seal:
        """The seal signed by ``sign`` (standard base64 of a signature, as ``signing.sign``)."""
        standard = sign(self.signed_text().encode())
        raw = base64.b64decode(standard)
        return replace(self, signature=base64.urlsafe_b64encode(raw).decode().rstrip("="))

    def describe(self) -> str:
        """What the seal vouches for, in a sentence."""
        return (
            f"settlement {self.settlement_id}, {self.status}, settled at {self.settled_at}: "
            f"total {format_yuan(self.total)} yuan, funds {format_yuan(self.funds)}, "
            f"cash {format_yuan(self.cash)}"
        )


def parse_seal(text: str) -> Seal:
    """Read a seal's text (as decoded from the QR code; surrounding spaces ignored).

    Raises:
        MalformedSeal: not this format, or a field is not well formed.
    """
    fields = text.strip().split("|")
    if fields[0] != PREFIX:
        raise MalformedSeal(f"it does not begin with {PREFIX}|")
    if len(fields) != _FIELDS:
        raise MalformedSeal(f"it has {len(fields)} fields separated by |, not {_FIELDS}")
    _, settlement_id, status, settled_at, total, funds, cash, named, signature = fields
    if not all((settlement_id, status, settled_at, named, signature)):
        raise MalformedSeal("a field is empty")
    if not _SIGNATURE.fullmatch(signature):
        raise MalformedSeal("the signature is not 86 characters of unpadded base64url")
    try:
        seal = Seal(
            settlement_id,
            status,
            settled_at,
            total=fen_of_yuan(total),
            funds=fen_of_yuan(funds),
            cash=fen_of_yuan(cash),
            key_id=named,
            signature=signature,
        )
    except ValueError as error:
        raise MalformedSeal(f"an amount is not yuan with two decimals: {error}") from error
    # Read back exactly as written: what verifies is the text the QR code held, never a
    # reading of it (a "+0001111.5000" would parse to the same fen).
    if seal.text() != text.strip():
        raise MalformedSeal("it is not written as a seal is (amounts as 1234.50, no spaces)")
    return seal


@dataclass(frozen=True, slots=True)
class SealCheck:
    """The outcome of checking a seal.

    Attributes:
        valid: the signature verifies with the published key the seal names.
        seal: the seal read (``None`` when the text is not one).
        reason: why it does not verify (empty when it does).
    """

    valid: bool
    seal: Seal | None
    reason: str = ""


def check_seal(text: str, published_keys: Sequence[Mapping[str, str]]) -> SealCheck:
    """Check a seal's signature against the gateway's published keys.

    Args:
        text: the seal, as decoded from the statement's QR code.
        published_keys: the ``keys`` of a ``GET /v1/keys`` answer.
    """
    try:
        seal = parse_seal(text)
    except MalformedSeal as error:
        return SealCheck(False, None, f"not a statement seal: {error}")
    entry = next((key for key in published_keys if key.get("key_id") == seal.key_id), None)
    if entry is None:
        return SealCheck(False, seal, f"no published key has the id {seal.key_id!r}")
    try:
        public_key = load_public_key(entry["public_key"])
    except (UnusableKey, KeyError) as error:
        return SealCheck(False, seal, f"the published key {seal.key_id} is unusable: {error}")
    if key_id(public_key) != seal.key_id:
        return SealCheck(False, seal, f"the published key is not the one named {seal.key_id}")
    try:
        raw = base64.urlsafe_b64decode(seal.signature + "=" * (-len(seal.signature) % 4))
    except (binascii.Error, ValueError):
        return SealCheck(False, seal, "the signature is not base64url")
    standard = base64.b64encode(raw).decode()
    if not verify(public_key, seal.signed_text().encode(), standard):
        return SealCheck(
            False, seal, "the signature does not verify: the seal was changed after signing"
        )
    return SealCheck(True, seal)
