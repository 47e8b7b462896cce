"""Controls across a member's visits (domain section 18): fraud and overuse checks.

Each control reads the visit, the member, the catalog and the member's recent history (what
earlier settlements left, :class:`PastVisit`) and reports :class:`Finding` values; the policy's
``controls`` block says which controls run and what each finding does:

- ``refuse``: nothing is settled; the request is refused with the control's code;
- ``flag``: the visit settles as if unchecked and the finding goes to the agency's review queue;
- ``deduct``: the lines at fault are settled as self-paid, with the control's code as their
  reason (line controls only), and the finding goes to the review queue too.

Everything here is pure: the adjudicator reads the history from Redis, calls
:func:`check_controls` and :func:`history_entry`, and writes what they return with the
settlement, atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict, model_validator

from onestop.domain.bill import CodedLine, Visit
from onestop.domain.catalog import CatalogItem
from onestop.domain.errors import ControlRefused, ErrorCode, Problem
from onestop.domain.member import Member
from onestop.domain.types import Code, PositiveDecimal, VisitType


class ControlAction(StrEnum):
    """What a finding of a control does."""

    REFUSE = "refuse"
    FLAG = "flag"
    DEDUCT = "deduct"


class Control(StrEnum):
    """The controls, each named by the error code its refusal carries."""

    DUPLICATE_CLAIM = "DUPLICATE_CLAIM"
    SPLIT_ADMISSION = "SPLIT_ADMISSION"
    QUANTITY_LIMIT = "QUANTITY_LIMIT"
    SEX_RESTRICTED = "SEX_RESTRICTED"
    AGE_RESTRICTED = "AGE_RESTRICTED"
    PAPER_BED = "PAPER_BED"
    CONCURRENT_VISIT = "CONCURRENT_VISIT"

    @property
    def error_code(self) -> ErrorCode:
        """The refusal's code (the same name)."""
        return ErrorCode(self.value)


HISTORY_DAYS = 400
"""How far back the history reaches: a calendar year plus the longest window a policy may set."""

HISTORY_ENTRIES = 400
"""The most visits the history keeps of one member; the oldest go first beyond it."""

MAX_CATEGORIES = 8
"""The most diagnosis categories a history entry keeps."""

MAX_WINDOW_DAYS = 30
"""The longest ``within_days`` of a split admission (national practice checks 15 days)."""


# -- the policy block -------------------------------------------------------------------------


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _VisitControl(_Block):
    """A control of the whole visit: it refuses or flags (there is no line to deduct)."""

    action: ControlAction

    @model_validator(mode="after")
    def _no_deduct(self) -> _VisitControl:
        if self.action is ControlAction.DEDUCT:
            raise ValueError(
                "deduct applies to lines (quantity and patient restrictions); a visit control "
                "refuses or flags"
            )
        return self


class DuplicateBill(_VisitControl):
    """The same bill settled before for the member (重复报销)."""


class SplitAdmission(_VisitControl):
    """An admission within ``within_days`` of a discharge, for a related diagnosis (分解住院).

    Related: a diagnosis of the new stay shares its ICD-10 category (the first three
    characters) with one of the earlier stay's.
    """

    within_days: Annotated[int, Strict(), Field(ge=0, le=MAX_WINDOW_DAYS)]


class PaperBed(_VisitControl):
    """A stay whose days carry a bed fee and nothing else (挂床住院).

    Attributes:
        bed_items: catalog codes of bed fees.
        min_days: days with only bed fees that make a finding.
    """

    bed_items: tuple[Code, ...] = Field(min_length=1)
    min_days: Annotated[int, Strict(), Field(ge=1, le=366)]


class ConcurrentVisit(_VisitControl):
    """An outpatient visit elsewhere on a day of an inpatient stay (冒名住院), either order."""


class PerDays(_Block):
    """At most ``quantity`` catalog units in any ``days`` consecutive days."""

    days: Annotated[int, Strict(), Field(ge=1, le=366)]
    quantity: PositiveDecimal


class QuantityLimit(_Block):
    """An item's limits in catalog units; each replaces the catalog's of the same kind."""

    code: Code
    per_visit: PositiveDecimal | None = None
    per_days: PerDays | None = None
    per_year: PositiveDecimal | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> QuantityLimit:
        if self.per_visit is None and self.per_days is None and self.per_year is None:
            raise ValueError("a quantity limit sets per_visit, per_days or per_year")
        return self


class Quantities(_Block):
    """Items' quantities per visit, per days or per year (catalog columns or these limits)."""

    action: ControlAction
    limits: tuple[QuantityLimit, ...] = ()

    @model_validator(mode="after")
    def _codes_once(self) -> Quantities:
        codes = [limit.code for limit in self.limits]
        if len(set(codes)) != len(codes):
            raise ValueError("each code has one entry in limits")
        return self


class PatientRestriction(_Block):
    """Items the catalog restricts to one sex or to an age range."""

    action: ControlAction


class Controls(_Block):
    """The policy's ``controls`` block: a control runs when it is listed."""

    duplicate_bill: DuplicateBill | None = None
    split_admission: SplitAdmission | None = None
    quantity: Quantities | None = None
    patient: PatientRestriction | None = None
    paper_bed: PaperBed | None = None
    concurrent_visit: ConcurrentVisit | None = None

    _limits: dict[str, QuantityLimit] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        """Index the quantity limits by code once (they are read per line of every bill)."""
        if self.quantity is not None:
            self._limits.update((limit.code, limit) for limit in self.quantity.limits)

    @property
    def active(self) -> bool:
        """Whether any control is listed (an empty block runs nothing and keeps nothing)."""
        return any(
            getattr(self, name) is not None
            for name in (
                "duplicate_bill",
                "split_admission",
                "quantity",
                "patient",
                "paper_bed",
                "concurrent_visit",
            )
        )

    def quantity_limits(self) -> Mapping[str, QuantityLimit]:
        """The policy's quantity limits by catalog code."""
        return self._limits


# -- history ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PastVisit:
    """What a settlement of the member leaves for the controls of later visits.

    Attributes:
        settlement_id: the settlement that added it (its reversal removes it).
        client_id: who settled it (compared, never shown to another client).
        categories: the ICD-10 categories (first three characters) of its diagnoses, each
            once, at most :data:`MAX_CATEGORIES`: what a split admission compares.
        bill_digest: :func:`bill_digest` of its bill.
        quantities: catalog units settled (not deducted) of each item with a quantity limit.
    """

    settlement_id: str
    client_id: str
    visit_type: VisitType
    first_day: date
    last_day: date
    categories: tuple[str, ...]
    bill_digest: str
    quantities: tuple[tuple[str, Decimal], ...] = ()


def bill_digest(visit: Visit) -> str:
    """What makes two bills the same bill, whoever sends it: a hex digest.

    The visit type and dates, and every line as catalog code, catalog quantity, amount and
    date, as a multiset (line numbers, HIS codes and visit ids play no part: two hospitals
    number and code the same bill differently).
    """
    # A bill repeats few quantities and days among hundreds of lines: each is written once.
    quantities: dict[Decimal, str] = {}
    days: dict[date, str] = {}
    texts = []
    for line in visit.lines:
        quantity = quantities.get(line.catalog_qty)
        if quantity is None:
            quantity = quantities[line.catalog_qty] = format(line.catalog_qty.normalize(), "f")
        day = days.get(line.service_date)
        if day is None:
            day = days[line.service_date] = line.service_date.isoformat()
        texts.append(f"{line.catalog_code}|{quantity}|{line.amount}|{day}")
    lines = sorted(texts)
    text = "\n".join(
        (visit.visit_type.value, visit.first_day.isoformat(), visit.last_day.isoformat(), *lines)
    )
    # 64 bits: compared only among one member's few hundred entries, where a collision is
    # one chance in 10^16; each entry is kept in Redis for a year.
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def history_entry(
    settlement_id: str,
    client_id: str,
    visit: Visit,
    digest: str,
    limited_codes: Iterable[str],
    deducted: Mapping[int, str],
) -> PastVisit:
    """The history a settlement adds: quantities of ``limited_codes`` not deducted."""
    wanted = set(limited_codes)
    quantities: dict[str, Decimal] = {}
    for line in visit.lines:
        if line.catalog_code in wanted and line.line_no not in deducted:
            quantities[line.catalog_code] = (
                quantities.get(line.catalog_code, Decimal(0)) + line.catalog_qty
            )
    return PastVisit(
        settlement_id=settlement_id,
        client_id=client_id,
        visit_type=visit.visit_type,
        first_day=visit.first_day,
        last_day=visit.last_day,
        categories=diagnosis_categories(visit.diagnoses),
        bill_digest=digest,
        quantities=tuple(sorted(quantities.items())),
    )


def history_to_forget(history: Iterable[PastVisit], today: date) -> list[str]:
    """Settlement ids of the entries a commit on ``today`` drops (older, or beyond the cap)."""
    horizon = today - timedelta(days=HISTORY_DAYS)
    kept = sorted(history, key=lambda past: (past.last_day, past.settlement_id), reverse=True)
    old = [past.settlement_id for past in kept if past.last_day < horizon]
    recent = [past for past in kept if past.last_day >= horizon]
    # One slot for the entry being added.
    return old + [past.settlement_id for past in recent[HISTORY_ENTRIES - 1 :]]


# -- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One control's finding on a visit.

    Attributes:
        line_nos: the lines at fault (empty for a finding on the whole visit).
        related_settlement: the member's earlier settlement the finding rests on, if any
            (kept for the agency's review; never shown to the client that asks).
    """

    control: Control
    action: ControlAction
    message: str
    line_nos: tuple[int, ...] = ()
    related_settlement: str | None = None


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    """What the controls decided for a visit that is not refused.

    Attributes:
        findings: every finding to flag or deduct (the review queue's).
        deducted: line number to the control code it is deducted for.
        bill_digest: the visit's :func:`bill_digest` (empty when no control ran).
        limited_codes: the visit's catalog codes with a quantity limit, whose quantities the
            history keeps (:func:`limited_codes`).
    """

    findings: tuple[Finding, ...] = ()
    deducted: Mapping[int, str] = field(default_factory=dict)
    bill_digest: str = ""
    limited_codes: frozenset[str] = frozenset()

    @property
    def flagged(self) -> bool:
        """Whether the settlement goes to the review queue."""
        return bool(self.findings)


NO_FINDINGS = ControlOutcome()


def refusal(findings: tuple[Finding, ...]) -> ControlRefused:
    """The refusal for refusing findings: the first one's code, each one a problem."""
    problems = tuple(
        Problem(finding.control.error_code, finding.message, line_no=line_no)
        for finding in findings
        for line_no in (finding.line_nos or (None,))
    )
    first = findings[0]
    return ControlRefused(
        first.control.error_code,
        f"{first.message} (refused by the region's controls; nothing was settled)",
        problems,
    )


def check_controls(
    controls: Controls | None,
    visit: Visit,
    client_id: str,
    member: Member,
    catalog: Mapping[str, CatalogItem],
    history: Iterable[PastVisit],
) -> ControlOutcome:
    """Run the configured controls on a visit against the member's history.

    Args:
        controls: the policy's block; ``None`` runs nothing.
        visit: the catalog-coded visit.
        client_id: the client settling it.
        member: the patient.
        catalog: catalog items by code (every line's code present).
        history: the member's earlier settlements still standing (:class:`PastVisit`).

    Returns:
        The findings to flag or deduct, and the lines deducted.

    Raises:
        ControlRefused: a control set to refuse found something.
    """
    if controls is None or not controls.active:
        return NO_FINDINGS
    past = list(history)
    digest = bill_digest(visit)
    findings: list[Finding] = []
    if controls.duplicate_bill is not None:
        findings += _duplicate_bill(controls.duplicate_bill, digest, past)
    if controls.split_admission is not None:
        findings += _split_admission(controls.split_admission, visit, client_id, past)
    if controls.concurrent_visit is not None:
        findings += _concurrent_visit(controls.concurrent_visit, visit, client_id, past)
    if controls.paper_bed is not None:
        findings += _paper_bed(controls.paper_bed, visit)
    if controls.patient is not None:
        findings += _patient_restrictions(controls.patient.action, visit, member, catalog)
    limited: frozenset[str] = frozenset()
    if controls.quantity is not None:
        quantity_findings, limited = _quantities(controls, visit, catalog, past)
        findings += quantity_findings
    refusals = tuple(finding for finding in findings if finding.action is ControlAction.REFUSE)
    if refusals:
        raise refusal(refusals)
    deducted: dict[int, str] = {}
    for finding in findings:
        if finding.action is ControlAction.DEDUCT:
            for line_no in finding.line_nos:
                deducted.setdefault(line_no, finding.control.value)
    return ControlOutcome(tuple(findings), deducted, digest, limited)


def _duplicate_bill(control: DuplicateBill, digest: str, past: list[PastVisit]) -> list[Finding]:
    for earlier in past:
        if earlier.bill_digest == digest:
            return [
                Finding(
                    Control.DUPLICATE_CLAIM,
                    control.action,
                    f"the same bill (the same items, quantities, amounts and dates) was settled "
                    f"for this member on {earlier.last_day} as another visit; a bill is paid "
                    "once: check the bill, or have the earlier settlement reversed first",
                    related_settlement=earlier.settlement_id,
                )
            ]
    return []


def diagnosis_categories(diagnoses: Iterable[str]) -> tuple[str, ...]:
    """The ICD-10 categories of diagnoses (``K35.8`` -> ``K35``), each once, in order."""
    return tuple(dict.fromkeys(code[:3] for code in diagnoses))[:MAX_CATEGORIES]


def _split_admission(
    control: SplitAdmission, visit: Visit, client_id: str, past: list[PastVisit]
) -> list[Finding]:
    """A stay within ``within_days`` of another stay for a related diagnosis, either order.

    The other stay may have been settled first or after (a late discharge settlement): the
    gap is measured from whichever ends first to whichever starts next.
    """
    if visit.visit_type is not VisitType.INPATIENT:
        return []
    categories = {code[:3] for code in visit.diagnoses}
    for other in sorted(past, key=lambda entry: entry.last_day, reverse=True):
        if other.visit_type is not VisitType.INPATIENT:
            continue
        after = (visit.first_day - other.last_day).days
        before = (other.first_day - visit.last_day).days
        gap = after if after >= 0 else before
        shared = categories & set(other.categories)
        if 0 <= gap <= control.within_days and shared:
            if other.client_id == client_id:
                # Your own stay: its dates and diagnoses are yours to be told.
                detail = (
                    f"{gap} day(s) from your stay of {other.first_day} to {other.last_day}, "
                    f"for a related diagnosis ({', '.join(sorted(shared))})"
                )
            else:
                # Another provider's care is not this client's to learn, only that it exists.
                detail = "from a stay elsewhere for a related diagnosis"
            return [
                Finding(
                    Control.SPLIT_ADMISSION,
                    control.action,
                    f"a stay within {control.within_days} days {detail}: two admissions for "
                    "one condition are settled as one stay",
                    related_settlement=other.settlement_id,
                )
            ]
    return []


_OUTPATIENT_KINDS = (VisitType.OUTPATIENT, VisitType.OUTPATIENT_SPECIAL)


def _concurrent_visit(
    control: ConcurrentVisit, visit: Visit, client_id: str, past: list[PastVisit]
) -> list[Finding]:
    if visit.visit_type is VisitType.INPATIENT:
        others = [entry for entry in past if entry.visit_type in _OUTPATIENT_KINDS]
        other_kind, this_kind = "an outpatient visit", "stay"
    elif visit.visit_type in _OUTPATIENT_KINDS:
        others = [entry for entry in past if entry.visit_type is VisitType.INPATIENT]
        other_kind, this_kind = "an inpatient stay", "visit"
    else:
        return []
    for earlier in others:
        if earlier.client_id == client_id:
            continue
        if earlier.first_day <= visit.last_day and visit.first_day <= earlier.last_day:
            return [
                Finding(
                    Control.CONCURRENT_VISIT,
                    control.action,
                    # Not the day, nor where: another provider's care is not this client's.
                    f"the member was settled {other_kind} elsewhere on a day of this "
                    f"{this_kind}: check the patient's identity card",
                    related_settlement=earlier.settlement_id,
                )
            ]
    return []


def _paper_bed(control: PaperBed, visit: Visit) -> list[Finding]:
    if visit.visit_type is not VisitType.INPATIENT:
        return []
    bed = set(control.bed_items)
    days: dict[date, bool] = {}
    for line in visit.lines:
        only_bed = line.catalog_code in bed
        days[line.service_date] = days.get(line.service_date, True) and only_bed
    bed_only = sorted(day for day, only in days.items() if only)
    if len(bed_only) < control.min_days:
        return []
    return [
        Finding(
            Control.PAPER_BED,
            control.action,
            f"{len(bed_only)} day(s) of the stay ({bed_only[0]} to {bed_only[-1]}) carry a bed "
            f"fee and nothing else ({control.min_days} or more are checked): was the patient "
            "in the bed?",
            line_nos=tuple(
                line.line_no for line in visit.lines if line.service_date in set(bed_only)
            ),
        )
    ]


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on ``day``."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


def _patient_restrictions(
    action: ControlAction, visit: Visit, member: Member, catalog: Mapping[str, CatalogItem]
) -> list[Finding]:
    sex_lines: list[CodedLine] = []
    age_lines: list[CodedLine] = []
    for line in visit.lines:
        item = catalog[line.catalog_code]
        if item.sex is not None and item.sex != member.sex:
            sex_lines.append(line)
        if item.min_age is not None or item.max_age is not None:
            age = age_on(member.birth_date, line.service_date)
            if (item.min_age is not None and age < item.min_age) or (
                item.max_age is not None and age > item.max_age
            ):
                age_lines.append(line)
    restricted = (
        (Control.SEX_RESTRICTED, sex_lines, "are for patients of the other sex than this member's"),
        (
            Control.AGE_RESTRICTED,
            age_lines,
            "are restricted to an age range this member is outside of",
        ),
    )
    return [
        Finding(
            control,
            action,
            f"item(s) {', '.join(sorted({line.catalog_code for line in lines}))} {why}: check "
            "the patient and the item codes",
            line_nos=tuple(line.line_no for line in lines),
        )
        for control, lines, why in restricted
        if lines
    ]


@dataclass(frozen=True, slots=True)
class _Limits:
    per_visit: Decimal | None
    per_days: PerDays | None
    per_year: Decimal | None


def limits_of(controls: Controls, item: CatalogItem) -> _Limits | None:
    """An item's quantity limits: the policy's entry, else the catalog's columns."""
    return _limits_of(controls.quantity_limits(), item)


def _limits_of(by_code: Mapping[str, QuantityLimit], item: CatalogItem) -> _Limits | None:
    policy = by_code.get(item.code)
    if policy is None and item.max_visit_qty is None and item.max_year_qty is None:
        return None  # most items: no limit at all
    per_visit = policy.per_visit if policy and policy.per_visit else item.max_visit_qty
    per_year = policy.per_year if policy and policy.per_year else item.max_year_qty
    per_days = policy.per_days if policy else None
    if per_visit is None and per_year is None and per_days is None:
        return None
    return _Limits(per_visit, per_days, per_year)


def limited_codes(
    controls: Controls | None, catalog: Mapping[str, CatalogItem], visit: Visit
) -> set[str]:
    """The visit's catalog codes that carry a quantity limit (their quantities are kept)."""
    if controls is None or controls.quantity is None:
        return set()
    codes = {line.catalog_code for line in visit.lines}
    return {code for code in codes if limits_of(controls, catalog[code]) is not None}


def _quantities(
    controls: Controls, visit: Visit, catalog: Mapping[str, CatalogItem], past: list[PastVisit]
) -> tuple[list[Finding], frozenset[str]]:
    """The quantity findings, and the visit's codes that carry a limit."""
    quantity = controls.quantity
    assert quantity is not None
    by_code: dict[str, list[CodedLine]] = {}
    for line in visit.lines:
        by_code.setdefault(line.catalog_code, []).append(line)
    findings = []
    limited = []
    policy_limits = controls.quantity_limits()
    for code in sorted(by_code):
        limits = _limits_of(policy_limits, catalog[code])
        if limits is None:
            continue
        limited.append(code)
        lines = by_code[code]
        checks: list[_Check] = []
        if limits.per_visit is not None:
            checks.append(_Check(Decimal(0), limits.per_visit, "per visit", None))
        if limits.per_days is not None:
            start = visit.last_day - timedelta(days=limits.per_days.days - 1)
            before = _past_quantity(past, code, (start, visit.last_day), None)
            what = f"in {limits.per_days.days} days"
            checks.append(_Check(before, limits.per_days.quantity, what, start))
        if limits.per_year is not None:
            year = visit.last_day.year
            before = _past_quantity(past, code, None, year)
            checks.append(_Check(before, limits.per_year, f"in {year}", None))
        over, broken = _lines_over(lines, checks)
        if over and broken is not None:
            limit, what = broken.limit, broken.what
            findings.append(
                Finding(
                    Control.QUANTITY_LIMIT,
                    quantity.action,
                    f"item {code}: the quantity would exceed its limit of "
                    f"{format(limit.normalize(), 'f')} {catalog[code].unit} {what}",
                    line_nos=tuple(line.line_no for line in over),
                )
            )
    return findings, frozenset(limited)


def _past_quantity(
    past: list[PastVisit], code: str, window: tuple[date, date] | None, year: int | None
) -> Decimal:
    """Units of ``code`` the history settled on days of ``window``, or in ``year``.

    An entry counts on its last day (a stay's discharge).
    """
    total = Decimal(0)
    for entry in past:
        if (window is None or window[0] <= entry.last_day <= window[1]) and (
            year is None or entry.last_day.year == year
        ):
            for listed, quantity in entry.quantities:
                if listed == code:
                    total += quantity
    return total


@dataclass(frozen=True, slots=True)
class _Check:
    """One limit of an item.

    What the history holds of it already, and which of the visit's lines count: those dated
    ``since`` or later (``None``: all of them).
    """

    before: Decimal
    limit: Decimal
    what: str
    since: date | None


def _lines_over(
    lines: list[CodedLine], checks: list[_Check]
) -> tuple[list[CodedLine], _Check | None]:
    """The lines beyond the limits, and the first limit the whole visit broke.

    The latest lines go first (by date, then line number), until what is left fits every
    limit; a line dated before a window's first day does not count in that window.
    """
    ordered = sorted(lines, key=lambda line: (line.service_date, line.line_no))
    kept = [
        check.before
        + sum(
            (
                line.catalog_qty
                for line in ordered
                if check.since is None or line.service_date >= check.since
            ),
            Decimal(0),
        )
        for check in checks
    ]
    broken = next(
        (check for check, total in zip(checks, kept, strict=True) if total > check.limit), None
    )
    over: list[CodedLine] = []
    while ordered and any(total > check.limit for check, total in zip(checks, kept, strict=True)):
        line = ordered.pop()
        over.append(line)
        for index, check in enumerate(checks):
            if check.since is None or line.service_date >= check.since:
                kept[index] -= line.catalog_qty
    return sorted(over, key=lambda line: line.line_no), broken
