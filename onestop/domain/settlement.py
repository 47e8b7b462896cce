"""A settlement as the contract shows it (contract section 4), without its signature."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from onestop.domain.engine import Amounts, LineSplit, Note
from onestop.domain.state import YearToDateView
from onestop.domain.types import VisitType


class SettlementStatus(StrEnum):
    """Where a settlement stands (contract: ``status`` of a result)."""

    PREVIEW = "preview"
    """Computed as if committed; nothing was."""
    SETTLED = "settled"
    REVERSED = "reversed"


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """Which policy document a settlement applied."""

    region: str
    scheme: str
    year: int
    version: str


@dataclass(frozen=True, slots=True)
class Settlement:
    """One settled (or previewed, or reversed) visit.

    Attributes:
        settlement_id: ``None`` for a preview.
        status: ``preview``, ``settled`` or ``reversed``.
        settled_at: when it was committed (``None`` for a preview), ISO 8601 +08:00.
        year_to_date: the state after this settlement; for a reversal, after the undo.
        replayed: this answer repeats an earlier one for the identical request.
    """

    settlement_id: str | None
    client_id: str
    visit_id: str
    member_id: str
    visit_type: VisitType
    status: SettlementStatus
    settled_at: str | None
    policy: PolicyRef
    amounts: Amounts
    lines: tuple[LineSplit, ...]
    year_to_date: YearToDateView
    notes: tuple[Note, ...]
    reversed_at: str | None = None
    replayed: bool = False

    def as_replay(self) -> Settlement:
        """The same settlement, marked as the answer to a repeated request."""
        return replace(self, replayed=True)

    def as_reversed(self, year_to_date: YearToDateView, reversed_at: str) -> Settlement:
        """The settlement after its reversal."""
        return replace(
            self,
            status=SettlementStatus.REVERSED,
            year_to_date=year_to_date,
            reversed_at=reversed_at,
        )

    def to_contract(self) -> dict[str, Any]:
        """The result object of the contract (without ``signature``)."""
        result: dict[str, Any] = {
            "settlement_id": self.settlement_id,
            "client_id": self.client_id,
            "visit_id": self.visit_id,
            "member_id": self.member_id,
            "visit_type": self.visit_type.value,
            "status": self.status.value,
            "replayed": self.replayed,
            "settled_at": self.settled_at,
            "policy": asdict(self.policy),
            "amounts": asdict(self.amounts),
            "lines": [
                {
                    "line_no": split.line_no,
                    "catalog_code": split.catalog_code,
                    "category": split.category.value,
                    "amount": split.amount,
                    "full_self_pay": split.full_self_pay,
                    "over_limit_self_pay": split.over_limit_self_pay,
                    "pre_self_pay": split.pre_self_pay,
                    "in_scope": split.in_scope,
                    "reasons": list(split.reasons),
                }
                for split in self.lines
            ],
            "year_to_date": asdict(self.year_to_date),
            "notes": [asdict(note) for note in self.notes],
        }
        if self.reversed_at is not None:
            result["reversed_at"] = self.reversed_at
        return result


@dataclass(frozen=True, slots=True)
class Eligibility:
    """A member's entitlement on a day (待遇检查), with personal data masked."""

    member_id: str
    name_masked: str
    id_number_masked: str
    scheme: str
    region: str
    status: str
    waiting_until: str | None
    in_waiting_period: bool
    continuous_years: int
    assistance_category: str | None
    supplementary_enrolled: bool
    personal_account_balance: int
    year_to_date: YearToDateView
    policy: PolicyRef

    def to_contract(self) -> dict[str, Any]:
        """The eligibility answer of the contract."""
        answer = asdict(self)
        answer["name"] = answer.pop("name_masked")
        answer["id_number"] = answer.pop("id_number_masked")
        return answer
