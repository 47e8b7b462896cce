"""Receipts: what a settlement's signature covers, and checking one with the published keys.

The gateway signs every result it answers (contract section 4); anyone holding the answer and
the gateway's published keys (``GET /v1/keys``, no signature needed) can check it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from onestop.signing import UnusableKey, canonical_json, key_id, load_public_key, verify

ALGORITHM = "ed25519"
"""The one signature algorithm receipts use."""


def signed_part(result: Mapping[str, Any]) -> dict[str, Any]:
    """The result without ``signature`` and ``replayed``: what the signature covers."""
    return {key: value for key, value in result.items() if key not in ("signature", "replayed")}


def money_adds_up(amounts: Mapping[str, int]) -> bool:
    """Whether a receipt's amounts obey both identities, the hospital's part included.

    ``total`` is the sum of the four line categories, and the sum of who pays: the funds,
    the personal account, the cash and what a single-disease price left to the hospital.
    """
    categories = ("full_self_pay", "over_limit_self_pay", "pre_self_pay", "in_scope")
    payers = (
        "basic_fund",
        "supplementary",
        "assistance",
        "personal_account",
        "cash",
        "hospital_part",
    )
    total = amounts["total"]
    return (
        total == sum(amounts[name] for name in categories) == sum(amounts[name] for name in payers)
    )


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    """The outcome of checking a receipt.

    Attributes:
        valid: the signature verifies with a published key whose id it names.
        key_id: the key the receipt names.
        reason: why it does not verify (empty when it does).
    """

    valid: bool
    key_id: str
    reason: str = ""


def check_receipt(
    receipt: Mapping[str, Any], published_keys: Sequence[Mapping[str, str]]
) -> ReceiptCheck:
    """Check a receipt's signature against the gateway's published keys.

    Args:
        receipt: the result as the gateway answered it (parsed JSON).
        published_keys: the ``keys`` of a ``GET /v1/keys`` answer.
    """
    signature = receipt.get("signature")
    if not isinstance(signature, Mapping) or not isinstance(signature.get("value"), str):
        return ReceiptCheck(False, "", "it has no signature block: is it a settlement result?")
    named = str(signature.get("key_id", ""))
    if signature.get("algorithm") != ALGORITHM:
        return ReceiptCheck(False, named, f"its algorithm is not {ALGORITHM}")
    entry = next((key for key in published_keys if key.get("key_id") == named), None)
    if entry is None:
        return ReceiptCheck(False, named, f"no published key has the id {named!r}")
    try:
        public_key = load_public_key(entry["public_key"])
    except (UnusableKey, KeyError) as error:
        return ReceiptCheck(False, named, f"the published key {named} is unusable: {error}")
    if key_id(public_key) != named:
        return ReceiptCheck(False, named, f"the published key is not the one named {named}")
    if not verify(public_key, canonical_json(signed_part(receipt)), signature["value"]):
        return ReceiptCheck(
            False, named, "the signature does not verify: the receipt was changed after signing"
        )
    return ReceiptCheck(True, named)
