"""A settlement as the settlement service produces it (contract section 4), unsigned.

How it looks over HTTP is the gateway's response models' business (``gateway/schemas.py``),
converted from the gRPC message in one place (``gateway/convert.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from onestop.domain.engine import Amounts, LineSplit, Note
from onestop.domain.member import DiseaseRegistration, OutOfRegionRegistration
from onestop.domain.state import YearToDateView
from onestop.domain.types import AssistanceCategory, MemberStatus, Scheme, VisitType


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
    scheme: Scheme
    year: int
    version: str
    effective_from: date
    """The first day of the version applied (domain section 13); January 1 of ``year`` for a
    policy loaded without ``effective_from``."""


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


@dataclass(frozen=True, slots=True)
class Eligibility:
    """A member's entitlement on a day (待遇检查), with personal data masked."""

    member_id: str
    name_masked: str
    id_number_masked: str
    scheme: Scheme
    region: str
    status: MemberStatus
    waiting_until: str | None
    in_waiting_period: bool
    continuous_years: int
    assistance_category: AssistanceCategory | None
    supplementary_enrolled: bool
    personal_account_balance: int
    year_to_date: YearToDateView
    policy: PolicyRef
    birth_date: str = ""
    """``YYYY-MM-DD``; for the national interface's person block, not the HTTP answer."""
    sex: str = ""
    """``M`` or ``F``; as ``birth_date``."""
    enrolled_since: str = ""
    """``YYYY-MM-DD``; as ``birth_date``."""
    out_of_region_registrations: tuple[OutOfRegionRegistration, ...] = ()
    """Registrations for care in other regions (domain section 8)."""
    registered_diseases: tuple[DiseaseRegistration, ...] = ()
    """Registrations for chronic and special diseases (domain section 11)."""
