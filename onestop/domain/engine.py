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
from onestop.domain.policy import BeyondCap, CriticalIllness, Policy
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
    ``total = basic_fund + supplementary + assistance + personal_account + cash``.
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
    if category is _B:
        assert item.self_pay_ratio is not None  # the catalog model requires it for B
        pre_self_pay = round_half_up(exact_mul(rest, item.self_pay_ratio))
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


_B, _C = Category.B, Category.C
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
    """Settle a visit on paper: every rule of domain.md steps 2 to 7.

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
    if (policy.region, policy.scheme, policy.year) != (
        member.region,
        member.scheme,
        visit.policy_year,
    ):
        raise ValueError(
            f"policy {policy.region}/{policy.scheme.value}/{policy.year} does not apply to a "
            f"{member.region}/{member.scheme.value} member in {visit.policy_year}"
        )

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
    total = full_self_pay + over_limit_self_pay + pre_self_pay + in_scope

    rights = entitlement(policy, member, visit.first_day)
    notes: list[Note] = []
    if rights.in_waiting_period:
        notes.append(
            Note(
                WAITING_PERIOD,
                f"In the waiting period: the basic fund and the supplementary layer pay from "
                f"{rights.benefits_start.isoformat() if rights.benefits_start else ''}.",
            )
        )

    # Layer 1: the basic fund.
    visit_type = visit.visit_type
    deductible_applied = basic = uncapped = 0
    terms = _annual_cap_terms(visit, hospital_level, member, policy, rights)
    # The inpatient or covered outpatient-special rule ran: the annual cap and layer 2 apply.
    under_annual_cap = terms is not None and not rights.in_waiting_period
    general_outpatient = visit_type is VisitType.OUTPATIENT or (
        visit_type is VisitType.OUTPATIENT_SPECIAL and terms is None
    )
    if general_outpatient and visit_type is VisitType.OUTPATIENT_SPECIAL:
        notes.append(
            Note(
                DIAGNOSIS_NOT_COVERED,
                "No diagnosis is on the outpatient special-disease list: settled as a "
                "general outpatient visit.",
            )
        )
    if under_annual_cap and terms is not None:
        deductible, ratio = terms
        deductible_applied = min(deductible, in_scope)
        uncapped = round_half_up(exact_mul(in_scope - deductible_applied, ratio))
        basic = min(uncapped, max(0, rights.annual_cap - year_state.basic_fund))
        if basic < uncapped:
            notes.append(
                Note(
                    BASIC_CAP_REACHED,
                    "The basic fund's annual cap is reached: it pays "
                    f"{format_yuan(basic)} of {format_yuan(uncapped)} yuan.",
                )
            )
    elif (
        general_outpatient
        and not rights.in_waiting_period
        and policy.outpatient_pooling is not None
    ):
        pooling = policy.outpatient_pooling
        pooling_remaining = max(0, pooling.annual_cap - year_state.outpatient_pooling)
        basic = min(round_half_up(exact_mul(in_scope, pooling.ratio)), pooling_remaining)

    # Layer 2: the supplementary layer.
    supplementary = critical_illness_base = 0
    layer2 = policy.supplementary
    if (
        under_annual_cap
        and layer2 is not None
        and (member.supplementary_enrolled or not layer2.requires_enrollment)
    ):
        supplementary_remaining = (
            max(0, layer2.annual_cap - year_state.supplementary)
            if (layer2.annual_cap is not None)
            else None
        )
        if isinstance(layer2, BeyondCap):
            assert supplementary_remaining is not None
            supplementary = min(uncapped - basic, supplementary_remaining)
        else:
            critical_illness_base = in_scope - basic
            supplementary = _critical_illness_payment(
                layer2,
                member,
                before=year_state.critical_illness_base,
                personal_share=critical_illness_base,
                remaining=supplementary_remaining,
            )

    # Layer 3: medical assistance, also in the waiting period.
    assistance = assistance_base = 0
    category = member.assistance_category
    rule = policy.assistance.get(category) if category is not None else None
    if rule is not None:
        assistance_base = in_scope - basic - supplementary
        before = year_state.assistance_base
        eligible = max(0, before + assistance_base - max(rule.threshold, before))
        assistance = round_half_up(exact_mul(eligible, rule.ratio))
        if rule.annual_cap is not None:
            assistance = min(assistance, max(0, rule.annual_cap - year_state.assistance))

    # Layer 4: the personal account, then cash.
    personal_account = 0
    after_funds = total - basic - supplementary - assistance
    if visit.use_personal_account or visit_type is VisitType.PHARMACY:
        payable = after_funds
        if not policy.pays_self_pay_items:
            payable -= full_self_pay + over_limit_self_pay
        personal_account = min(max(0, account_balance), max(0, payable))
    cash = after_funds - personal_account

    delta = StateDelta(
        basic_fund=basic if under_annual_cap else 0,
        outpatient_pooling=0 if under_annual_cap else basic,
        supplementary=supplementary,
        critical_illness_base=critical_illness_base,
        assistance=assistance,
        assistance_base=assistance_base,
        admissions=1 if visit_type is VisitType.INPATIENT else 0,
        personal_account=personal_account,
    )
    return Adjudication(
        policy_year=visit.policy_year,
        amounts=Amounts(
            total=total,
            full_self_pay=full_self_pay,
            over_limit_self_pay=over_limit_self_pay,
            pre_self_pay=pre_self_pay,
            in_scope=in_scope,
            deductible=deductible_applied,
            basic_fund=basic,
            supplementary=supplementary,
            assistance=assistance,
            personal_account=personal_account,
            cash=cash,
        ),
        lines=tuple(splits),
        notes=tuple(notes),
        delta=delta,
        year_to_date=YearToDateView.of(
            year_state.plus(delta), rights.annual_cap, account_balance - personal_account
        ),
        entitlement=rights,
    )


def _annual_cap_terms(
    visit: Visit,
    hospital_level: HospitalLevel,
    member: Member,
    policy: Policy,
    rights: Entitlement,
) -> tuple[int, Decimal] | None:
    """Deductible and bonus-raised ratio where a rule under the annual cap applies.

    That is an inpatient stay, or an outpatient special-disease visit whose diagnosis is on the
    policy's list; for the other visits, ``None``.
    """
    if visit.visit_type is VisitType.INPATIENT:
        deductible = policy.inpatient.deductible.for_level(hospital_level)
        if member.belongs_to_any(policy.inpatient.halved_deductible_groups):
            deductible = round_half_up(exact_div(deductible, 2))
        return deductible, rights.raised_ratio(policy.inpatient.ratio.for_level(hospital_level))
    special = policy.outpatient_special
    if (
        visit.visit_type is VisitType.OUTPATIENT_SPECIAL
        and special is not None
        and special.covers(visit.diagnoses)
    ):
        return special.deductible, rights.raised_ratio(special.ratio)
    return None


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
