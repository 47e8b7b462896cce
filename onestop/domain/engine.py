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
from types import MappingProxyType

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
from onestop.domain.policy import (
    GENERAL_ASSISTANCE,
    Assistance,
    BeyondCap,
    CriticalIllness,
    OutpatientAssistance,
    OutpatientPooling,
    OutpatientSpecial,
    Policy,
    SingleDisease,
    SpecialDisease,
)
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
OUT_OF_REGION = "OUT_OF_REGION"
NOT_REFERRED = "NOT_REFERRED"
DISEASE_NOT_REGISTERED = "DISEASE_NOT_REGISTERED"
SINGLE_DISEASE = "SINGLE_DISEASE"


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


FUND_PAYERS = ("basic_fund", "supplementary", "assistance")
"""The insurance funds among the payers: what "the funds paid" sums (a review's, a seal's)."""


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
    max_rank = item.max_level_rank
    if max_rank is not None and max_rank < level_rank:
        return LineSplit(
            line.line_no, item.code, category, amount, amount, 0, 0, 0, _RESTRICTED_REASONS
        )
    over_limit = 0
    reasons: tuple[str, ...] = ()
    price_cap = item.price_cap
    if price_cap is not None:
        # Integers, not decimals: the same half-up result for half the cost (test_money.py).
        numerator, denominator = line.catalog_qty.as_integer_ratio()
        over_limit = amount - round_half_up(price_cap * numerator, denominator)
        if over_limit > 0:
            reasons = _OVER_CAP_REASONS
        else:
            over_limit = 0
    rest = amount - over_limit
    pre_self_pay = 0
    # Set for category B and only B (the catalog refuses anything else).
    self_pay = item.self_pay_fraction
    if self_pay is not None:
        pre_self_pay = round_half_up(rest * self_pay[0], self_pay[1])
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
_NOTHING_DEDUCTED: Mapping[int, str] = MappingProxyType({})
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
    *,
    client_region: str | None = None,
    deducted: Mapping[int, str] = _NOTHING_DEDUCTED,
) -> Adjudication:
    """Settle a visit on paper: every rule of domain.md steps 2 to 7 and 8 to 13, in order.

    Args:
        visit: the visit with catalog-coded lines (see :func:`onestop.domain.mapping.map_bill`).
        hospital_level: the level of the hospital or pharmacy that bills.
        member: the patient.
        policy: the version of the policy of the member's region and scheme in force for the
            visit (:attr:`onestop.domain.bill.Visit.policy_day`).
        catalog: catalog items by code; every line's code must be present.
        year_state: the member's state for the policy year, before this visit.
        account_balance: the member's personal account balance in fen, before this visit.
        client_region: the region of the hospital or pharmacy that bills (``None``: not
            registered, treated as the member's own).
        deducted: lines the region's controls moved to self-pay, by line number, each with
            the control's code as its reason (domain section 18).

    Returns:
        The split, the notes, the state increments and the state after them.

    Raises:
        MemberNotEligible: the member is suspended or deceased.
        ValueError: the policy is not the one for this member and visit (a caller's bug).
    """
    require_active(member)
    _require_policy_of(policy, member, visit)
    lines, bill = classify_lines(visit, catalog, hospital_level, deducted)  # step 2
    rights = entitlement(policy, member, visit.first_day)  # step 3
    place = treatment_place(policy, member, visit, hospital_level, client_region)  # s8
    fixed_price = single_disease_of(policy, visit)  # s12
    if fixed_price is not None:
        # The price replaces the deductible and ratio; it covers every item, C ones too.
        base = min(bill.total, fixed_price.price)
        rule: BasicFundRule = None if rights.in_waiting_period else FixedPrice(fixed_price, base)
        notes = waiting_notes(rights) + place.notes(fixed_price=True)
        notes += (single_disease_note(fixed_price, bill.total, base),)
        covered, self_pay = base, 0
    else:
        rule, notes = basic_fund_rule(visit, hospital_level, member, policy, rights, place)
        base, covered, self_pay = bill.total, bill.in_scope, bill.full_self_pay
        self_pay += bill.over_limit_self_pay
    basic = pay_basic_fund(rule, covered, year_state, rights)  # step 4
    notes += basic.notes
    supplementary = pay_supplementary(rule, basic, member, policy, year_state, covered)  # 5
    assistance = pay_assistance(
        member, policy, year_state, covered - basic.paid - supplementary.paid, visit.visit_type
    )  # step 6
    after_funds = base - basic.paid - supplementary.paid - assistance.paid
    personal_account = pay_personal_account(
        visit, after_funds, 0 if policy.pays_self_pay_items else self_pay, account_balance
    )  # step 7

    under_cap = isinstance(rule, UnderAnnualCap | FixedPrice)
    disease = rule.disease if isinstance(rule, UnderAnnualCap) else None
    delta = StateDelta(
        basic_fund=basic.paid if under_cap else 0,
        outpatient_pooling=basic.paid if isinstance(rule, OutpatientPooling) else 0,
        supplementary=supplementary.paid,
        critical_illness_base=supplementary.critical_illness_base,
        assistance=0 if assistance.outpatient else assistance.paid,
        assistance_base=0 if assistance.outpatient else assistance.base,
        admissions=1 if visit.visit_type is VisitType.INPATIENT else 0,
        personal_account=personal_account,
        assistance_outpatient=assistance.paid if assistance.outpatient else 0,
        assistance_outpatient_base=assistance.base if assistance.outpatient else 0,
        diseases=((disease.code, basic.paid),) if disease is not None and basic.paid else (),
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
            hospital_part=bill.total - base,
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
    visit: Visit,
    catalog: Mapping[str, CatalogItem],
    hospital_level: HospitalLevel,
    deducted: Mapping[int, str] = _NOTHING_DEDUCTED,
) -> tuple[tuple[LineSplit, ...], BillTotals]:
    """Every line split (:func:`classify_line`), and the visit's totals.

    A line in ``deducted`` is wholly self-paid, its reason the control's code.
    """
    splits = []
    full_self_pay = over_limit_self_pay = pre_self_pay = in_scope = 0
    level_rank = hospital_level.rank
    for line in visit.lines:
        reason = deducted.get(line.line_no) if deducted else None
        if reason is not None:
            item = catalog[line.catalog_code]
            split = LineSplit(
                line.line_no,
                item.code,
                item.category,
                line.amount,
                line.amount,
                0,
                0,
                0,
                (reason,),
            )
        else:
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

    A deductible, a ratio with the continuous-enrolment bonus (less any out-of-region or
    referral reduction), the annual cap; the supplementary layer follows.

    Attributes:
        disease: the registered disease of the list form that covers the visit (its own
            annual cap and year-to-date figure, domain section 11); ``None`` otherwise.
    """

    deductible: int
    ratio: Decimal
    disease: SpecialDisease | None = None


@dataclass(frozen=True, slots=True)
class FixedPrice:
    """A single-disease price settles the stay (domain section 12), under the annual cap.

    Attributes:
        base: ``min(total, price)``: what the funds and the patient share.
    """

    disease: SingleDisease
    base: int


BasicFundRule = UnderAnnualCap | FixedPrice | OutpatientPooling | None
"""What settles a visit in the basic fund: the rule under the annual cap, a single-disease
price, general outpatient pooling, or nothing (a pharmacy swipe, a visit in the waiting
period, an outpatient visit where the policy has no pooling or none out of region)."""


@dataclass(frozen=True, slots=True)
class TreatmentPlace:
    """Where the patient is treated, and what it changes (domain section 8).

    Attributes:
        out_of_region: the billing client's region differs from the member's and the policy
            has an ``out_of_region`` block (without it, out of region settles as at home).
        registered: a registration for the client's region covers the visit's first day.
        region_reduction: the reduction of the basic-fund ratio for being out of region.
        referral_reduction: the reduction of a stay's ratio for having no referral number.
        pooling: whether general outpatient pooling pays (always at home).
    """

    client_region: str | None = None
    out_of_region: bool = False
    registered: bool = False
    region_reduction: Decimal = ZERO
    referral_reduction: Decimal = ZERO
    pooling: bool = True

    def reduced(self, ratio: Decimal, visit_type: VisitType) -> Decimal:
        """``max(0, ratio - reductions)``: the referral one applies to stays only."""
        reduction = self.region_reduction
        if visit_type is VisitType.INPATIENT:
            reduction = exact_add(reduction, self.referral_reduction)
        return max(ZERO, ratio - reduction) if reduction else ratio

    def notes(self, *, fixed_price: bool = False, pooling_visit: bool = False) -> tuple[Note, ...]:
        """The notes that tell the cashier what the place changed."""
        notes = []
        if self.out_of_region:
            if fixed_price:
                effect = "a single-disease price is not reduced"
            elif pooling_visit:
                effect = (
                    "general outpatient pooling pays as at home"
                    if self.pooling
                    else "general outpatient pooling pays nothing out of region"
                )
            elif self.region_reduction:
                effect = f"the basic fund's ratio is {self.region_reduction} lower"
            else:
                effect = "the member's own policy applies"
            registered = "registered" if self.registered else "not registered"
            notes.append(
                Note(
                    OUT_OF_REGION,
                    f"Treated out of region ({self.client_region}), {registered} for care "
                    f"there: {effect}.",
                )
            )
        if self.referral_reduction:
            effect = (
                "a single-disease price is not reduced"
                if fixed_price
                else f"the basic fund's ratio is {self.referral_reduction} lower"
            )
            notes.append(Note(NOT_REFERRED, f"A stay at this level without referral_no: {effect}."))
        return tuple(notes)


_AT_HOME = TreatmentPlace()


def treatment_place(
    policy: Policy,
    member: Member,
    visit: Visit,
    hospital_level: HospitalLevel,
    client_region: str | None,
) -> TreatmentPlace:
    """Out of region and referral (domain section 8); both need their policy block."""
    region_rules, referral = policy.out_of_region, policy.referral
    out_of_region = (
        region_rules is not None and client_region is not None and client_region != member.region
    )
    unreferred = (
        referral is not None
        and visit.visit_type is VisitType.INPATIENT
        and hospital_level in referral.levels
        and visit.referral_no is None
    )
    if not out_of_region and not unreferred:
        return _AT_HOME
    registered = False
    region_reduction = ZERO
    pooling = True
    if out_of_region:
        assert region_rules is not None
        assert client_region is not None
        registered = member.registered_in(client_region, visit.first_day)
        region_reduction = (
            region_rules.registered_ratio_reduction
            if registered
            else region_rules.unregistered_ratio_reduction
        )
        pooling = region_rules.pooling
    return TreatmentPlace(
        client_region=client_region,
        out_of_region=out_of_region,
        registered=registered,
        region_reduction=region_reduction,
        referral_reduction=(
            referral.unreferred_ratio_reduction if unreferred and referral is not None else ZERO
        ),
        pooling=pooling,
    )


def single_disease_of(policy: Policy, visit: Visit) -> SingleDisease | None:
    """The single-disease price of an inpatient stay whose **first** diagnosis is listed."""
    if not policy.single_disease or visit.visit_type is not VisitType.INPATIENT:
        return None
    if not visit.diagnoses:
        return None
    first = visit.diagnoses[0]
    for disease in policy.single_disease:
        if first.startswith(disease.diagnoses):
            return disease
    return None


def single_disease_note(disease: SingleDisease, total: int, base: int) -> Note:
    """What the cashier tells the patient about a single-disease price."""
    hospital = (
        f"; the hospital bears the {format_yuan(total - base)} yuan above it"
        if total > base
        else ""
    )
    return Note(
        SINGLE_DISEASE,
        f"Single-disease price {disease.code} {disease.name}: {format_yuan(disease.price)} "
        f"yuan, the patient pays {disease.patient_ratio} of {format_yuan(base)} yuan{hospital}.",
    )


def waiting_notes(rights: Entitlement) -> tuple[Note, ...]:
    """The waiting-period note, if the member is in it."""
    if not rights.in_waiting_period:
        return ()
    start = rights.benefits_start.isoformat() if rights.benefits_start else ""
    return (
        Note(
            WAITING_PERIOD,
            f"In the waiting period: the basic fund and the supplementary layer pay from {start}.",
        ),
    )


def special_disease_rule(
    visit: Visit, member: Member, policy: Policy, rights: Entitlement, place: TreatmentPlace
) -> tuple[UnderAnnualCap | None, tuple[Note, ...]]:
    """The covering special disease of an outpatient_special visit (domain section 11).

    Returns:
        The rule under the annual cap, or ``None`` with the note saying why the visit is
        settled as a general outpatient visit.
    """
    special = policy.outpatient_special
    diagnoses = visit.diagnoses
    if isinstance(special, OutpatientSpecial):
        if special.covers(diagnoses):
            ratio = place.reduced(rights.raised_ratio(special.ratio), visit.visit_type)
            return UnderAnnualCap(special.deductible, ratio), ()
    elif special:
        unregistered: SpecialDisease | None = None
        for disease in special:
            if not disease.covers(diagnoses):
                continue
            if disease.requires_registration and not member.registered_for(
                disease.code, visit.first_day
            ):
                unregistered = unregistered or disease
                continue
            ratio = place.reduced(rights.raised_ratio(disease.ratio), visit.visit_type)
            return UnderAnnualCap(disease.deductible, ratio, disease), ()
        if unregistered is not None:
            return None, (
                Note(
                    DISEASE_NOT_REGISTERED,
                    f"The diagnosis is that of {unregistered.code} {unregistered.name}, but no "
                    f"registration for it covers {visit.first_day}: settled as a general "
                    "outpatient visit.",
                ),
            )
    return None, (
        Note(
            DIAGNOSIS_NOT_COVERED,
            "No diagnosis is on the outpatient special-disease list: settled as a general "
            "outpatient visit.",
        ),
    )


def basic_fund_rule(
    visit: Visit,
    hospital_level: HospitalLevel,
    member: Member,
    policy: Policy,
    rights: Entitlement,
    place: TreatmentPlace = _AT_HOME,
) -> tuple[BasicFundRule, tuple[Note, ...]]:
    """The rule of step 4 that applies, and the notes choosing it gives the cashier."""
    notes = waiting_notes(rights)
    rule: BasicFundRule = None
    visit_type = visit.visit_type
    pooling_visit = False
    if visit_type is VisitType.INPATIENT:
        deductible = policy.inpatient.deductible.for_level(hospital_level)
        if member.belongs_to_any(policy.inpatient.halved_deductible_groups):
            deductible = round_half_up(exact_div(deductible, 2))
        ratio = rights.raised_ratio(policy.inpatient.ratio.for_level(hospital_level))
        rule = UnderAnnualCap(deductible, place.reduced(ratio, visit_type))
    elif visit_type is VisitType.OUTPATIENT_SPECIAL:
        rule, why = special_disease_rule(visit, member, policy, rights, place)
        notes += why
        if rule is None:
            pooling_visit = True
    elif visit_type is VisitType.OUTPATIENT:
        pooling_visit = True
    if pooling_visit:
        rule = policy.outpatient_pooling if place.pooling else None
    notes += place.notes(pooling_visit=pooling_visit)
    # Layers 1 and 2 pay nothing, and nothing accumulates toward them, while waiting.
    return (None if rights.in_waiting_period else rule), notes


@dataclass(frozen=True, slots=True)
class BasicFundPayment:
    """What the basic fund pays (step 4).

    Attributes:
        uncapped: what the ratio gives before the annual cap (what ``beyond_cap`` looks at);
            for a single-disease price, the funds' share of it.
        deductible: the deductible applied (``amounts.deductible``).
    """

    paid: int = 0
    uncapped: int = 0
    deductible: int = 0
    notes: tuple[Note, ...] = ()


def pay_basic_fund(
    rule: BasicFundRule, in_scope: int, year_state: YearToDate, rights: Entitlement
) -> BasicFundPayment:
    """Step 4: the deductible, the ratio and the annual caps, a fixed price, or pooling."""
    if isinstance(rule, UnderAnnualCap | FixedPrice):
        if isinstance(rule, UnderAnnualCap):
            deductible = min(rule.deductible, in_scope)
            uncapped = round_half_up(exact_mul(in_scope - deductible, rule.ratio))
        else:
            deductible = 0
            uncapped = rule.base - round_half_up(exact_mul(rule.base, rule.disease.patient_ratio))
        remaining = max(0, rights.annual_cap - year_state.basic_fund)
        disease = rule.disease if isinstance(rule, UnderAnnualCap) else None
        disease_remaining = None
        if disease is not None and disease.annual_cap is not None:
            disease_remaining = max(0, disease.annual_cap - year_state.disease(disease.code))
        paid = min(uncapped, remaining)
        notes: tuple[Note, ...] = ()
        if disease is not None and disease_remaining is not None and disease_remaining < paid:
            paid = disease_remaining
            notes = (
                Note(
                    BASIC_CAP_REACHED,
                    f"The annual cap of {disease.code} {disease.name} is reached: the basic "
                    f"fund pays {format_yuan(paid)} of {format_yuan(uncapped)} yuan.",
                ),
            )
        elif paid < uncapped:
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
    """Step 5: what the annual cap cut off (``beyond_cap``), or critical illness by bands.

    ``in_scope`` is what the funds cover: the in-scope total, or a single-disease base.
    """
    layer = policy.supplementary
    if (
        not isinstance(rule, UnderAnnualCap | FixedPrice)
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
    """What medical assistance pays, and the share it adds to its year's base.

    Attributes:
        outpatient: paid under an entry's ``outpatient`` terms, on their own figures.
    """

    paid: int = 0
    base: int = 0
    outpatient: bool = False


_OUTPATIENT_TYPES = frozenset(
    {VisitType.OUTPATIENT, VisitType.OUTPATIENT_SPECIAL, VisitType.PHARMACY}
)


def assistance_terms(
    member: Member, policy: Policy, visit_type: VisitType
) -> tuple[Assistance | OutpatientAssistance, bool] | None:
    """The assistance terms of the visit, and whether they are the outpatient ones (s10).

    The member's category's entry, or ``general`` for a member with none; its ``outpatient``
    terms for outpatient, outpatient-special and pharmacy visits when it has them.
    """
    category = member.assistance_category
    entry = policy.assistance.get(category if category is not None else GENERAL_ASSISTANCE)
    if entry is None:
        return None
    if entry.outpatient is not None and visit_type in _OUTPATIENT_TYPES:
        return entry.outpatient, True
    return entry, False


def pay_assistance(
    member: Member,
    policy: Policy,
    year_state: YearToDate,
    personal_share: int,
    visit_type: VisitType = VisitType.INPATIENT,
) -> AssistancePayment:
    """Step 6: medical assistance, in the waiting period too.

    Above the threshold of the year's in-scope personal share, at the terms' ratio, within
    their annual cap; outpatient terms count on their own figures.
    """
    terms = assistance_terms(member, policy, visit_type)
    if terms is None:
        return AssistancePayment()
    rule, outpatient = terms
    before = year_state.assistance_outpatient_base if outpatient else year_state.assistance_base
    paid_before = year_state.assistance_outpatient if outpatient else year_state.assistance
    eligible = max(0, before + personal_share - max(rule.threshold, before))
    paid = round_half_up(exact_mul(eligible, rule.ratio))
    if rule.annual_cap is not None:
        paid = min(paid, max(0, rule.annual_cap - paid_before))
    return AssistancePayment(paid, personal_share, outpatient)


# -- step 7: the personal account, then cash -------------------------------------------------


def pay_personal_account(visit: Visit, after_funds: int, self_pay: int, balance: int) -> int:
    """Step 7: what the personal account pays of what the funds left (cash pays the rest).

    Args:
        visit: the visit (the account pays on pharmacy swipes, and where the patient asks).
        after_funds: what the funds left to the patient.
        self_pay: the part of it the account may not pay (fully self-paid and over-cap
            amounts, unless the policy lets it; 0 under a single-disease price).
        balance: the account's balance.
    """
    if not (visit.use_personal_account or visit.visit_type is VisitType.PHARMACY):
        return 0
    return min(max(0, balance), max(0, after_funds - self_pay))


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
