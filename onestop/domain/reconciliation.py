"""Daily reconciliation (对账): the gateway's figures of a day against a hospital's."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from onestop.domain.engine import Amounts
from onestop.domain.settlement import PolicyRef

AMOUNT_FIELDS = tuple(amount.name for amount in fields(Amounts))
"""Every amount of a settlement, in the contract's order."""

RECONCILED_FUNDS = (
    "total",
    "basic_fund",
    "supplementary",
    "assistance",
    "personal_account",
    "cash",
)
"""The amounts a day is reconciled on (contract section 6)."""


class EntryKind(StrEnum):
    """What a journal entry records."""

    SETTLEMENT = "settlement"
    REVERSAL = "reversal"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One settlement or reversal, as the journal recorded it.

    Attributes:
        at_ms: when it was committed, milliseconds since the epoch.
        amounts: the settlement's amounts; a reversal carries those of the settlement it
            undoes.
        policy: the policy the settlement applied.
    """

    kind: EntryKind
    settlement_id: str
    client_id: str
    member_id: str
    visit_id: str
    at_ms: int
    amounts: Amounts
    policy: PolicyRef

    def signed_amounts(self) -> dict[str, int]:
        """Amounts as they count for the day: a reversal subtracts."""
        sign = 1 if self.kind is EntryKind.SETTLEMENT else -1
        return {name: sign * value for name, value in asdict(self.amounts).items()}


@dataclass(frozen=True, slots=True)
class DayFigures:
    """A day of one client: counts, and amounts settled minus amounts reversed (fen)."""

    settlements: int
    reversals: int
    amounts: dict[str, int] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """Nothing settled or reversed that day."""
        return (
            self.settlements == 0
            and self.reversals == 0
            and not any(self.amounts.get(fund, 0) for fund in RECONCILED_FUNDS)
        )

    def as_contract(self) -> dict[str, Any]:
        """``{"settlements", "reversals", "amounts": {...}}``."""
        return {
            "settlements": self.settlements,
            "reversals": self.reversals,
            "amounts": {fund: self.amounts.get(fund, 0) for fund in RECONCILED_FUNDS},
        }


def reconcile(
    gateway: DayFigures,
    hospital: DayFigures,
    gateway_ids: list[str] | None = None,
    hospital_ids: list[str] | None = None,
) -> dict[str, Any]:
    """Compare a day (对总账), and its settlements one by one when ids are given (对明细账).

    Returns:
        The contract's answer: ``result``, the gateway's figures, ``differences`` (gateway
        minus hospital, every field, zero included), ``only_in_gateway`` and
        ``only_in_hospital``.
    """
    mine, theirs = gateway.as_contract(), hospital.as_contract()
    differences: dict[str, int] = {
        "settlements": mine["settlements"] - theirs["settlements"],
        "reversals": mine["reversals"] - theirs["reversals"],
    }
    for fund in RECONCILED_FUNDS:
        differences[fund] = mine["amounts"][fund] - theirs["amounts"][fund]
    only_in_gateway: list[str] = []
    only_in_hospital: list[str] = []
    if hospital_ids is not None:
        ours, reported = set(gateway_ids or ()), set(hospital_ids)
        only_in_gateway = sorted(ours - reported)
        only_in_hospital = sorted(reported - ours)
    balanced = not any(differences.values()) and not only_in_gateway and not only_in_hospital
    return {
        "result": "balanced" if balanced else "unbalanced",
        "gateway": mine,
        "differences": differences,
        "only_in_gateway": only_in_gateway,
        "only_in_hospital": only_in_hospital,
    }
