"""The settlement engine: domain.md steps 2 to 7 as one pure function.

:func:`adjudicate` reads a catalog-coded visit, the member, the policy, the catalog and the
member's year-to-date state, and returns the split of every fen of the bill together with the
exact increments to apply to the state. It changes nothing; storing the result atomically is
the adjudicator service's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from onestop.domain.bill import CodedLine, Visit
from onestop.domain.catalog import CatalogItem
from onestop.domain.eligibility import Entitlement, entitlement, require_active
from onestop.domain.member import Member
from onestop.domain.money import (
    ONE,
    ZERO,
    exact_add,
    exact_div,
    exact_mul,
    format_yuan,
    round_half_up,
)
from onestop.domain.policy import BeyondCap, CriticalIllness, OutpatientPooling, Policy
from onestop.domain.state import StateDelta, YearToDate, YearToDateView
from onestop.domain.types import Category, HospitalLevel, VisitType

# Reason codes of a line (contract: lines[].reasons).
CATEGORY_C = "CATEGORY_C"
LEVEL_RESTRICTED = "LEVEL_RESTRICTED"
OVER_PRICE_CAP = "OVER_PRICE_CAP"
SELF_PAY_FIRST = "SELF_PAY_FIRST"

# Note codes of a result (contract: notes[]).
WAITING_PERIOD = "WAITING_PERIOD"
DIAGNOSIS_NOT_COVERED = "DIAGNOSIS_NOT_COVERED"
BASIC_CAP_REACHED = "BASIC_CAP_REACHED"


@dataclass(slots=True)
class LineSplit:
    """How one line's amount divides (fen): ``amount`` is the sum of the four parts.

    A value: never changed once made (not frozen only because a frozen dataclass costs a
    microsecond a line to build, and the engine builds hundreds per bill).
    """

    line_no: int
    catalog_code: str
    category: Category
    amount: int
    full_self_pay: int
    over_limit_self_pay: int
    pre_self_pay: int
    in_scope: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Amounts:
    """The visit's totals and who pays them (fen), as in the contract's ``amounts``.

    ``total = full_self_pay + over_limit_self_pay + pre_self_pay + in_scope`` and
    ``total = basic_fund + supplementary + assistance + personal_account + cash +
    hospital_part``; ``hospital_part`` (what a single-disease price leaves to the hospital,
    domain section 12) is 0 outside that rule.
    """

    total: int
    full_self_pay: int
    over_limit_self_pay: int
    pre_self_pay: int
    in_scope: int
    deductible: int
    basic_fund: int
    supplementary: int
    assistance: int
    personal_account: int
    cash: int
    hospital_part: int = 0


@dataclass(frozen=True, slots=True)
class Note:
    """Something the cashier should tell the patient."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Adjudication:
    """The engine's answer for one visit.

    Attributes:
        policy_year: the year whose state ``delta`` applies to.
        delta: exactly what committing this settlement adds to the state.
        year_to_date: the state as it would be after committing.
        entitlement: the eligibility facts the computation used.
    """

    policy_year: int
    amounts: Amounts
    lines: tuple[LineSplit, ...]
    notes: tuple[Note, ...]
    delta: StateDelta
    year_to_date: YearToDateView
    entitlement: Entitlement


def classify_line(line: CodedLine, item: CatalogItem, level_rank: int) -> LineSplit:
    """Split one line (domain.md step 2).

    Args:
        line: the catalog-coded line.
        item: its catalog item.
        level_rank: :attr:`HospitalLevel.rank` of the billing hospital.
    """
    amount = line.amount
    category = item.category
    if category is _C:
        return LineSplit(line.line_no, item.code, category, amount, amount, 0, 0, 0, _C_REASONS)
    max_level = item.max_level
    if max_level is not None and max_level.rank < level_rank:
        return LineSplit(
            line.line_no, item.code, category, amount, amount, 0, 0, 0, _RESTRICTED_REASONS
        )
    over_limit = 0
    reasons: tuple[str, ...] = ()
    price_cap = item.price_cap
    if price_cap is not None:
        over_limit = amount - round_half_up(exact_mul(price_cap, line.catalog_qty))
        if over_limit > 0:
            reasons = _OVER_CAP_REASONS
        else:
            over_limit = 0
    rest = amount - over_limit
    pre_self_pay = 0
    # Set for category B and only B (the catalog refuses anything else).
    self_pay_ratio = item.self_pay_ratio
    if self_pay_ratio is not None:
        pre_self_pay = round_half_up(exact_mul(rest, self_pay_ratio))
        if pre_self_pay:
            reasons = (*reasons, SELF_PAY_FIRST)
    return LineSplit(
        line.line_no,
        item.code,
        category,
        amount,
        0,
        over_limit,
        pre_self_pay,
        rest - pre_self_pay,
        reasons,
    )


_C = Category.C
_C_REASONS = (CATEGORY_C,)
_RESTRICTED_REASONS = (LEVEL_RESTRICTED,)
_OVER_CAP_REASONS = (OVER_PRICE_CAP,)


def adjudicate(
    visit: Visit,
    hospital_level: HospitalLevel,
    member: Member,
    policy: Policy,
    catalog: Mapping[str, CatalogItem],
    year_state: YearToDate,
    account_balance: int,
) -> Adjudication:
    """Settle a visit on paper: every rule of domain.md steps 2 to 7, in their order.

    Args:
        visit: the visit with catalog-coded lines (see :func:`onestop.domain.mapping.map_bill`).
        hospital_level: the level of the hospital or pharmacy that bills.
        member: the patient.
        policy: the policy of the member's region and scheme for the visit's policy year.
        catalog: catalog items by code; every line's code must be present.
        year_state: the member's state for the policy year, before this visit.
        account_balance: the member's personal account balance in fen, before this visit.

    Returns:
        The split, the notes, the state increments and the state after them.

    Raises:
        MemberNotEligible: the member is suspended or deceased.
        ValueError: the policy is not the one for this member and visit (a caller's bug).
    """
    require_active(member)
    _require_policy_of(policy, member, visit)
    lines, bill = classify_lines(visit, catalog, hospital_level)  # step 2
    rights = entitlement(policy, member, visit.first_day)  # step 3
    rule, notes = basic_fund_rule(visit, hospital_level, member, policy, rights)
    basic = pay_basic_fund(rule, bill.in_scope, year_state, rights)  # step 4
    notes += basic.notes
    supplementary = pay_supplementary(rule, basic, member, policy, year_state, bill.in_scope)
    assistance = pay_assistance(
        member, policy, year_state, bill.in_scope - basic.paid - supplementary.paid
    )  # step 6
    after_funds = bill.total - basic.paid - supplementary.paid - assistance.paid
    personal_account = pay_personal_account(visit, policy, bill, after_funds, account_balance)

    delta = StateDelta(
        basic_fund=basic.paid if isinstance(rule, UnderAnnualCap) else 0,
        outpatient_pooling=basic.paid if isinstance(rule, OutpatientPooling) else 0,
        supplementary=supplementary.paid,
        critical_illness_base=supplementary.critical_illness_base,
        assistance=assistance.paid,
        assistance_base=assistance.base,
        admissions=1 if visit.visit_type is VisitType.INPATIENT else 0,
        personal_account=personal_account,
    )
    return Adjudication(
        policy_year=visit.policy_year,
        amounts=Amounts(
            total=bill.total,
            full_self_pay=bill.full_self_pay,
            over_limit_self_pay=bill.over_limit_self_pay,
            pre_self_pay=bill.pre_self_pay,
            in_scope=bill.in_scope,
            deductible=basic.deductible,
            basic_fund=basic.paid,
            supplementary=supplementary.paid,
            assistance=assistance.paid,
            personal_account=personal_account,
            cash=after_funds - personal_account,
        ),
        lines=lines,
        notes=notes,
        delta=delta,
        year_to_date=YearToDateView.of(
            year_state.plus(delta), rights.annual_cap, account_balance - personal_account
        ),
        entitlement=rights,
    )


def _require_policy_of(policy: Policy, member: Member, visit: Visit) -> None:
    if (policy.region, policy.scheme, policy.year) != (
        member.region,
        member.scheme,
        visit.policy_year,
    ):
        raise ValueError(
            f"policy {policy.region}/{policy.scheme.value}/{policy.year} does not apply to a "
            f"{member.region}/{member.scheme.value} member in {visit.policy_year}"
        )


# -- step 2: classify the lines --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillTotals:
    """The visit's totals of the line values (fen); ``in_scope`` is the ``S`` of the rules."""

    total: int
    full_self_pay: int
    over_limit_self_pay: int
    pre_self_pay: int
    in_scope: int


def classify_lines(
    visit: Visit, catalog: Mapping[str, CatalogItem], hospital_level: HospitalLevel
) -> tuple[tuple[LineSplit, ...], BillTotals]:
    """Every line split (:func:`classify_line`), and the visit's totals."""
    splits = []
    full_self_pay = over_limit_self_pay = pre_self_pay = in_scope = 0
    level_rank = hospital_level.rank
    for line in visit.lines:
        split = classify_line(line, catalog[line.catalog_code], level_rank)
        splits.append(split)
        full_self_pay += split.full_self_pay
        over_limit_self_pay += split.over_limit_self_pay
        pre_self_pay += split.pre_self_pay
        in_scope += split.in_scope
    return tuple(splits), BillTotals(
        total=full_self_pay + over_limit_self_pay + pre_self_pay + in_scope,
        full_self_pay=full_self_pay,
        over_limit_self_pay=over_limit_self_pay,
        pre_self_pay=pre_self_pay,
        in_scope=in_scope,
    )


# -- steps 3 and 4: which rule of the basic fund, and what it pays ---------------------------


@dataclass(frozen=True, slots=True)
class UnderAnnualCap:
    """The rule under the annual cap: an inpatient stay, or a covered special-disease visit.

    A deductible, a ratio with the continuous-enrolment bonus, the annual cap; the
    supplementary layer follows.
    """

    deductible: int
    ratio: Decimal


BasicFundRule = UnderAnnualCap | OutpatientPooling | None
"""What settles a visit in the basic fund: the rule under the annual cap, general outpatient
pooling, or nothing (a pharmacy swipe, a visit in the waiting period, an outpatient visit
where the policy has no pooling)."""


def basic_fund_rule(
    visit: Visit,
    hospital_level: HospitalLevel,
    member: Member,
    policy: Policy,
    rights: Entitlement,
) -> tuple[BasicFundRule, tuple[Note, ...]]:
    """The rule of step 4 that applies, and the notes choosing it gives the cashier."""
    notes: list[Note] = []
    if rights.in_waiting_period:
        start = rights.benefits_start.isoformat() if rights.benefits_start else ""
        notes.append(
            Note(
                WAITING_PERIOD,
                "In the waiting period: the basic fund and the supplementary layer pay from "
                f"{start}.",
            )
        )
    rule: BasicFundRule = None
    visit_type = visit.visit_type
    if visit_type is VisitType.INPATIENT:
        deductible = policy.inpatient.deductible.for_level(hospital_level)
        if member.belongs_to_any(policy.inpatient.halved_deductible_groups):
            deductible = round_half_up(exact_div(deductible, 2))
        ratio = rights.raised_ratio(policy.inpatient.ratio.for_level(hospital_level))
        rule = UnderAnnualCap(deductible, ratio)
    elif visit_type is VisitType.OUTPATIENT_SPECIAL:
        special = policy.outpatient_special
        if special is not None and special.covers(visit.diagnoses):
            rule = UnderAnnualCap(special.deductible, rights.raised_ratio(special.ratio))
        else:
            notes.append(
                Note(
                    DIAGNOSIS_NOT_COVERED,
                    "No diagnosis is on the outpatient special-disease list: settled as a "
                    "general outpatient visit.",
                )
            )
            rule = policy.outpatient_pooling
    elif visit_type is VisitType.OUTPATIENT:
        rule = policy.outpatient_pooling
    # Layers 1 and 2 pay nothing, and nothing accumulates toward them, while waiting.
    return (None if rights.in_waiting_period else rule), tuple(notes)


@dataclass(frozen=True, slots=True)
class BasicFundPayment:
    """What the basic fund pays (step 4).

    Attributes:
        uncapped: what the ratio gives before the annual cap (what ``beyond_cap`` looks at).
        deductible: the deductible applied (``amounts.deductible``).
    """

    paid: int = 0
    uncapped: int = 0
    deductible: int = 0
    notes: tuple[Note, ...] = ()


def pay_basic_fund(
    rule: BasicFundRule, in_scope: int, year_state: YearToDate, rights: Entitlement
) -> BasicFundPayment:
    """Step 4: the deductible, the ratio and the annual cap, or outpatient pooling."""
    if isinstance(rule, UnderAnnualCap):
        deductible = min(rule.deductible, in_scope)
        uncapped = round_half_up(exact_mul(in_scope - deductible, rule.ratio))
        paid = min(uncapped, max(0, rights.annual_cap - year_state.basic_fund))
        notes: tuple[Note, ...] = ()
        if paid < uncapped:
            notes = (
                Note(
                    BASIC_CAP_REACHED,
                    "The basic fund's annual cap is reached: it pays "
                    f"{format_yuan(paid)} of {format_yuan(uncapped)} yuan.",
                ),
            )
        return BasicFundPayment(paid, uncapped, deductible, notes)
    if isinstance(rule, OutpatientPooling):
        remaining = max(0, rule.annual_cap - year_state.outpatient_pooling)
        return BasicFundPayment(min(round_half_up(exact_mul(in_scope, rule.ratio)), remaining))
    return BasicFundPayment()


# -- step 5: the supplementary layer ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SupplementaryPayment:
    """What the supplementary layer pays.

    Attributes:
        critical_illness_base: the personal share it adds to the year's critical-illness base.
    """

    paid: int = 0
    critical_illness_base: int = 0


def pay_supplementary(
    rule: BasicFundRule,
    basic: BasicFundPayment,
    member: Member,
    policy: Policy,
    year_state: YearToDate,
    in_scope: int,
) -> SupplementaryPayment:
    """Step 5: what the annual cap cut off (``beyond_cap``), or critical illness by bands."""
    layer = policy.supplementary
    if (
        not isinstance(rule, UnderAnnualCap)
        or layer is None
        or (layer.requires_enrollment and not member.supplementary_enrolled)
    ):
        return SupplementaryPayment()
    if isinstance(layer, BeyondCap):
        remaining = max(0, layer.annual_cap - year_state.supplementary)
        return SupplementaryPayment(min(basic.uncapped - basic.paid, remaining))
    personal_share = in_scope - basic.paid
    remaining_or_none = (
        None if layer.annual_cap is None else max(0, layer.annual_cap - year_state.supplementary)
    )
    paid = _critical_illness_payment(
        layer,
        member,
        before=year_state.critical_illness_base,
        personal_share=personal_share,
        remaining=remaining_or_none,
    )
    return SupplementaryPayment(paid, personal_share)


# -- step 6: medical assistance --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssistancePayment:
    """What medical assistance pays, and the share it adds to the year's assistance base."""

    paid: int = 0
    base: int = 0


def pay_assistance(
    member: Member, policy: Policy, year_state: YearToDate, personal_share: int
) -> AssistancePayment:
    """Step 6: medical assistance, in the waiting period too.

    Above the threshold of the year's in-scope personal share, at the category's ratio,
    within its annual cap.
    """
    category = member.assistance_category
    rule = policy.assistance.get(category) if category is not None else None
    if rule is None:
        return AssistancePayment()
    before = year_state.assistance_base
    eligible = max(0, before + personal_share - max(rule.threshold, before))
    paid = round_half_up(exact_mul(eligible, rule.ratio))
    if rule.annual_cap is not None:
        paid = min(paid, max(0, rule.annual_cap - year_state.assistance))
    return AssistancePayment(paid, personal_share)


# -- step 7: the personal account, then cash -------------------------------------------------


def pay_personal_account(
    visit: Visit, policy: Policy, bill: BillTotals, after_funds: int, balance: int
) -> int:
    """Step 7: what the personal account pays of what the funds left (cash pays the rest)."""
    if not (visit.use_personal_account or visit.visit_type is VisitType.PHARMACY):
        return 0
    payable = after_funds
    if not policy.pays_self_pay_items:
        payable -= bill.full_self_pay + bill.over_limit_self_pay
    return min(max(0, balance), max(0, payable))


def _critical_illness_payment(
    rules: CriticalIllness,
    member: Member,
    *,
    before: int,
    personal_share: int,
    remaining: int | None,
) -> int:
    """Critical illness over the bands of the year's accumulated personal share.

    The part of ``[before, before + personal_share)`` inside each band is paid at that band's
    ratio; the parts are summed exactly and rounded once (domain.md step 5).
    """
    threshold = rules.threshold
    ratio_bonus = ZERO
    capped = True
    hardship = rules.hardship
    if hardship is not None and member.belongs_to_any(hardship.groups):
        threshold = round_half_up(exact_mul(threshold, hardship.threshold_factor))
        ratio_bonus = hardship.ratio_bonus
        capped = not hardship.uncapped
    after = before + personal_share
    payable = ZERO
    band_start = threshold
    for band in rules.bands:
        band_end = None if band.width is None else band_start + band.width
        low = max(before, band_start)
        high = after if band_end is None else min(after, band_end)
        if high > low:
            # A fund never pays more than the share itself, whatever the bonus adds.
            ratio = min(ONE, exact_add(band.ratio, ratio_bonus))
            payable = exact_add(payable, exact_mul(high - low, ratio))
        if band_end is None or band_end >= after:
            break
        band_start = band_end
    payment = round_half_up(payable)
    if capped and remaining is not None:
        payment = min(payment, remaining)
    return payment
