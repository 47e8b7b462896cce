"""Daily reconciliation (对账): the gateway's figures of a day against a hospital's.

A day is compared in up to three ways, each finer than the last:

- totals (对总账): counts and the reconciled funds, and the same per visit type and scheme
  (the groups the national interface reconciles by, 险种 and 清算类别);
- settlement ids (对明细账): which settlements only one side has (单边账);
- amounts per settlement: which settlement differs, and by which fen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from enum import StrEnum

from onestop.domain.engine import Amounts
from onestop.domain.settlement import PolicyRef
from onestop.domain.types import HospitalLevel, Scheme, VisitType

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

COUNTS = ("settlements", "reversals")
"""The counts a day is reconciled on."""


class EntryKind(StrEnum):
    """What a journal entry records."""

    SETTLEMENT = "settlement"
    REVERSAL = "reversal"


class Outcome(StrEnum):
    """A reconciliation's verdict."""

    BALANCED = "balanced"
    UNBALANCED = "unbalanced"


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """What the journal and the export say of a settlement's visit.

    ``None`` means not recorded: entries written before onestop recorded these facts, and
    the level of a client registered without one.

    Attributes:
        first_day: the admission day, or the day of an outpatient visit or purchase.
        last_day: the discharge day, or the same day as ``first_day``.
        hospital_level: the settling client's level when it settled.
    """

    visit_type: VisitType | None
    first_day: date | None
    last_day: date | None
    hospital_level: HospitalLevel | None


UNRECORDED_VISIT = VisitFacts(None, None, None, None)
"""The facts of an entry written before they were recorded."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One settlement or reversal, as the journal recorded it.

    Attributes:
        at_ms: when it was committed, milliseconds since the epoch.
        amounts: the settlement's amounts; a reversal carries those of the settlement it
            undoes.
        policy: the policy the settlement applied (its scheme is the member's).
        visit: the settlement's visit type, dates and hospital level.
    """

    kind: EntryKind
    settlement_id: str
    client_id: str
    member_id: str
    visit_id: str
    at_ms: int
    amounts: Amounts
    policy: PolicyRef
    visit: VisitFacts

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

    def fund(self, name: str) -> int:
        """One reconciled fund (0 when absent)."""
        return self.amounts.get(name, 0)

    def minus(self, other: DayFigures) -> dict[str, int]:
        """Every count and reconciled fund: this day minus ``other``, zeros included."""
        differences = {
            "settlements": self.settlements - other.settlements,
            "reversals": self.reversals - other.reversals,
        }
        for name in RECONCILED_FUNDS:
            differences[name] = self.fund(name) - other.fund(name)
        return differences

    def less(self, other: DayFigures) -> DayFigures:
        """This day without ``other`` (what the groups leave unexplained)."""
        return DayFigures(
            self.settlements - other.settlements,
            self.reversals - other.reversals,
            {name: self.fund(name) - other.fund(name) for name in RECONCILED_FUNDS},
        )


def sum_figures(days: Iterable[DayFigures]) -> DayFigures:
    """Several days' (or groups') figures added up."""
    settlements = reversals = 0
    amounts = dict.fromkeys(RECONCILED_FUNDS, 0)
    for day in days:
        settlements += day.settlements
        reversals += day.reversals
        for name in RECONCILED_FUNDS:
            amounts[name] += day.fund(name)
    return DayFigures(settlements, reversals, amounts)


@dataclass(frozen=True, slots=True)
class ClientDay:
    """What one hospital or pharmacy settled on one day.

    The figures its reconciliation compares, in all and by visit type and scheme (the
    unrecorded group included).
    """

    client_id: str
    totals: DayFigures
    groups: dict[GroupKey, DayFigures]


@dataclass(frozen=True, slots=True)
class Recoveries:
    """What the agency decided to recover from a client on a day (domain section 18).

    Their own row: a recovery never changes a settlement nor the day's reconciled funds.
    """

    count: int
    recovered: int


NO_RECOVERIES = Recoveries(0, 0)


@dataclass(frozen=True, slots=True)
class GroupKey:
    """A visit type and a scheme: the split of a day's totals.

    Both ``None``: what was committed before onestop recorded the split.
    """

    visit_type: VisitType | None
    scheme: Scheme | None

    def sort_key(self) -> tuple[str, str]:
        """Groups in a stable order, the unrecorded one last."""
        return (self.visit_type or "~", self.scheme or "~")


UNRECORDED_GROUP = GroupKey(None, None)


def funds_of(amounts: Amounts) -> dict[str, int]:
    """The reconciled funds of a settlement's amounts."""
    return {name: getattr(amounts, name) for name in RECONCILED_FUNDS}


@dataclass(frozen=True, slots=True)
class GatewayDay:
    """What onestop knows of a client's day.

    Attributes:
        totals: the day's counts and amounts.
        groups: the same split by visit type and scheme; they add up to ``totals``.
        settlement_ids: the settlements committed that day (when detail was asked).
        settlement_amounts: each of them with its reconciled funds (when amounts were asked).
    """

    totals: DayFigures
    groups: dict[GroupKey, DayFigures] = field(default_factory=dict)
    settlement_ids: list[str] = field(default_factory=list)
    settlement_amounts: dict[str, dict[str, int]] = field(default_factory=dict)
    recoveries: Recoveries = field(default_factory=lambda: NO_RECOVERIES)


@dataclass(frozen=True, slots=True)
class HospitalDay:
    """What a hospital or pharmacy reports of its day.

    Attributes:
        totals: its counts and amounts.
        settlement_ids: the settlements it holds for the day, to compare by id.
        settlement_amounts: the same with each one's reconciled funds, to compare by amount.
        groups: its totals per visit type and scheme, to compare group by group.
    """

    totals: DayFigures
    settlement_ids: list[str] | None = None
    settlement_amounts: dict[str, dict[str, int]] | None = None
    groups: dict[GroupKey, DayFigures] | None = None

    def reported_ids(self) -> list[str] | None:
        """The ids it reported, either way, or ``None`` when it compared totals only."""
        if self.settlement_amounts is not None:
            return list(self.settlement_amounts)
        return self.settlement_ids


@dataclass(frozen=True, slots=True)
class AmountDifference:
    """A settlement both sides hold with different amounts."""

    settlement_id: str
    gateway: dict[str, int]
    hospital: dict[str, int]

    def differences(self) -> dict[str, int]:
        """Each reconciled fund: gateway minus hospital."""
        return {name: self.gateway[name] - self.hospital.get(name, 0) for name in RECONCILED_FUNDS}


@dataclass(frozen=True, slots=True)
class GroupComparison:
    """One visit type and scheme of the day: onestop's figures and the hospital's."""

    key: GroupKey
    gateway: DayFigures
    hospital: DayFigures | None
    """``None``: the hospital did not report groups."""

    def differences(self) -> dict[str, int] | None:
        """Gateway minus hospital, or ``None`` when the hospital did not report groups."""
        return None if self.hospital is None else self.gateway.minus(self.hospital)

    def balanced(self) -> bool:
        """Nothing differs (true when the hospital did not report groups)."""
        differences = self.differences()
        return differences is None or not any(differences.values())


class Detail(StrEnum):
    """How finely a reconciliation compared."""

    TOTALS = "totals"
    IDS = "ids"
    AMOUNTS = "amounts"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The answer to one reconciliation of one client's day.

    ``recoveries`` are shown, not compared: the agency recovers them from the client apart
    from the day's settlements, which they never change.
    """

    gateway: DayFigures
    hospital: DayFigures
    only_in_gateway: list[str]
    only_in_hospital: list[str]
    amount_differences: list[AmountDifference]
    groups: list[GroupComparison]
    detail: Detail
    recoveries: Recoveries = field(default_factory=lambda: NO_RECOVERIES)

    def differences(self) -> dict[str, int]:
        """Every count and reconciled fund: gateway minus hospital, zeros included."""
        return self.gateway.minus(self.hospital)

    @property
    def outcome(self) -> Outcome:
        """Balanced only when nothing differs, in totals, groups, ids and amounts."""
        balanced = (
            not any(self.differences().values())
            and not self.only_in_gateway
            and not self.only_in_hospital
            and not self.amount_differences
            and all(group.balanced() for group in self.groups)
        )
        return Outcome.BALANCED if balanced else Outcome.UNBALANCED

    def unbalanced_groups(self) -> list[GroupKey]:
        """The groups whose figures differ."""
        return [group.key for group in self.groups if not group.balanced()]


def reconcile(gateway: GatewayDay, hospital: HospitalDay) -> Reconciliation:
    """Compare a day (对总账), by group, and settlement by settlement when detail is given.

    A settlement's amounts are compared only when both sides hold it; one only one side
    holds is listed as such.
    """
    only_in_gateway: list[str] = []
    only_in_hospital: list[str] = []
    reported = hospital.reported_ids()
    if reported is not None:
        ours, theirs = set(gateway.settlement_ids), set(reported)
        only_in_gateway = sorted(ours - theirs)
        only_in_hospital = sorted(theirs - ours)
    amount_differences: list[AmountDifference] = []
    if hospital.settlement_amounts is not None:
        for settlement_id in sorted(hospital.settlement_amounts):
            mine = gateway.settlement_amounts.get(settlement_id)
            theirs_amounts = hospital.settlement_amounts[settlement_id]
            if mine is not None and any(
                mine[name] != theirs_amounts.get(name, 0) for name in RECONCILED_FUNDS
            ):
                amount_differences.append(
                    AmountDifference(settlement_id, mine, dict(theirs_amounts))
                )
    detail = (
        Detail.AMOUNTS
        if hospital.settlement_amounts is not None
        else Detail.IDS
        if hospital.settlement_ids is not None
        else Detail.TOTALS
    )
    return Reconciliation(
        gateway=gateway.totals,
        hospital=hospital.totals,
        only_in_gateway=only_in_gateway,
        only_in_hospital=only_in_hospital,
        amount_differences=amount_differences,
        groups=_compare_groups(gateway.groups, hospital.groups),
        detail=detail,
        recoveries=gateway.recoveries,
    )


def _compare_groups(
    mine: Mapping[GroupKey, DayFigures], theirs: Mapping[GroupKey, DayFigures] | None
) -> list[GroupComparison]:
    keys = set(mine) if theirs is None else set(mine) | set(theirs)
    empty = DayFigures(0, 0, dict.fromkeys(RECONCILED_FUNDS, 0))
    return [
        GroupComparison(
            key,
            mine.get(key, empty),
            None if theirs is None else theirs.get(key, empty),
        )
        for key in sorted(keys, key=GroupKey.sort_key)
    ]


@dataclass(frozen=True, slots=True)
class ReconciliationSummary:
    """What is kept of every reconciliation: who, when, the verdict, and by how much.

    Attributes:
        at_ms: when it was answered (epoch ms).
        provisional: the day was still open.
        differences: every count and fund, gateway minus hospital.
        only_in_gateway: how many settlements the hospital did not report.
        only_in_hospital: how many settlements the hospital reported that onestop lacks.
        amount_differences: how many settlements both hold with different amounts.
        unbalanced_groups: the visit types and schemes whose figures differ.
    """

    client_id: str
    day: date
    at_ms: int
    outcome: Outcome
    provisional: bool
    detail: Detail
    differences: dict[str, int]
    only_in_gateway: int
    only_in_hospital: int
    amount_differences: int
    unbalanced_groups: list[GroupKey]


def summarise(
    reconciliation: Reconciliation, client_id: str, day: date, at_ms: int, provisional: bool
) -> ReconciliationSummary:
    """What is kept of a reconciliation."""
    return ReconciliationSummary(
        client_id=client_id,
        day=day,
        at_ms=at_ms,
        outcome=reconciliation.outcome,
        provisional=provisional,
        detail=reconciliation.detail,
        differences=reconciliation.differences(),
        only_in_gateway=len(reconciliation.only_in_gateway),
        only_in_hospital=len(reconciliation.only_in_hospital),
        amount_differences=len(reconciliation.amount_differences),
        unbalanced_groups=reconciliation.unbalanced_groups(),
    )
