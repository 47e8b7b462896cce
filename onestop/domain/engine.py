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

from onestop.domain.bill import Visit
from onestop.domain.catalog import CatalogItem
from onestop.domain.eligibility import Entitlement, entitlement, require_active
from onestop.domain.member import Member
from onestop.domain.money import (
    ONE,
    ZERO,
    exact_add,
    exact_div,
    exact_mul,
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


@dataclass(frozen=True, slots=True)
class LineSplit:
    """How one line's amount divides (fen): ``amount`` is the sum of the four parts."""

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


def classify_line(
    amount: int, catalog_qty: Decimal, item: CatalogItem, hospital_level: HospitalLevel
) -> tuple[int, int, int, int, tuple[str, ...]]:
    """Split one line (domain.md step 2).

    Returns:
        ``(full_self_pay, over_limit_self_pay, pre_self_pay, in_scope, reasons)`` in fen.
    """
    if item.category is Category.C:
        return amount, 0, 0, 0, (CATEGORY_C,)
    if item.max_level is not None and item.max_level.rank < hospital_level.rank:
        return amount, 0, 0, 0, (LEVEL_RESTRICTED,)
    over_limit = 0
    reasons: tuple[str, ...] = ()
    if item.price_cap is not None:
        over_limit = amount - round_half_up(exact_mul(item.price_cap, catalog_qty))
        if over_limit > 0:
            reasons = (OVER_PRICE_CAP,)
        else:
            over_limit = 0
    rest = amount - over_limit
    pre_self_pay = 0
    if item.category is Category.B:
        assert item.self_pay_ratio is not None  # the catalog model requires it for B
        pre_self_pay = round_half_up(exact_mul(rest, item.self_pay_ratio))
        if pre_self_pay:
            reasons = (*reasons, SELF_PAY_FIRST)
    return 0, over_limit, pre_self_pay, rest - pre_self_pay, reasons


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
    for line in visit.lines:
        item = catalog[line.catalog_code]
        fsp, over, pre, scope, reasons = classify_line(
            line.amount, line.catalog_qty, item, hospital_level
        )
        full_self_pay += fsp
        over_limit_self_pay += over
        pre_self_pay += pre
        in_scope += scope
        splits.append(
            LineSplit(
                line.line_no,
                item.code,
                item.category,
                line.amount,
                fsp,
                over,
                pre,
                scope,
                reasons,
            )
        )
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
    under_annual_cap = False  # inpatient or covered outpatient-special rule ran
    general_outpatient = visit_type is VisitType.OUTPATIENT
    if visit_type is VisitType.OUTPATIENT_SPECIAL:
        special = policy.outpatient_special
        if special is None or not special.covers(visit.diagnoses):
            general_outpatient = True
            notes.append(
                Note(
                    DIAGNOSIS_NOT_COVERED,
                    "No diagnosis is on the outpatient special-disease list: settled as a "
                    "general outpatient visit.",
                )
            )
    cap_remaining = max(0, rights.annual_cap - year_state.basic_fund)
    if not rights.in_waiting_period:
        if visit_type is VisitType.INPATIENT:
            deductible = policy.inpatient.deductible.for_level(hospital_level)
            if member.belongs_to_any(policy.inpatient.halved_deductible_groups):
                deductible = round_half_up(exact_div(deductible, 2))
            ratio = rights.raised_ratio(policy.inpatient.ratio.for_level(hospital_level))
            under_annual_cap = True
        elif visit_type is VisitType.OUTPATIENT_SPECIAL and not general_outpatient:
            assert policy.outpatient_special is not None
            deductible = policy.outpatient_special.deductible
            ratio = rights.raised_ratio(policy.outpatient_special.ratio)
            under_annual_cap = True
        if under_annual_cap:
            deductible_applied = min(deductible, in_scope)
            uncapped = round_half_up(exact_mul(in_scope - deductible_applied, ratio))
            basic = min(uncapped, cap_remaining)
            if basic < uncapped:
                notes.append(
                    Note(
                        BASIC_CAP_REACHED,
                        "The basic fund's annual cap is reached: it pays "
                        f"{basic} of {uncapped} fen.",
                    )
                )
        elif general_outpatient and policy.outpatient_pooling is not None:
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
