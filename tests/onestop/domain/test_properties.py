"""Properties of the engine over random policies, bills, and sequences of settlements.

Each property runs at least 500 examples.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.domain import (
    Adjudication,
    CatalogItem,
    HospitalLevel,
    Member,
    Policy,
    StateDelta,
    Visit,
    YearToDate,
    adjudicate,
)
from onestop.domain.engine import assistance_terms
from onestop.domain.policy import CriticalIllness, SpecialDisease
from onestop.domain.state import DELTA_COUNTERS, YEAR_COUNTERS
from onestop.domain.types import VisitType
from tests.support.strategies import (
    catalogs,
    client_regions,
    levels,
    members,
    policies,
    visits,
    year_states,
)

EXAMPLES = settings(max_examples=500, deadline=None)


def check_identities(result: Adjudication, balance: int) -> None:
    money = result.amounts
    assert all(value >= 0 for value in astuple(money)), money
    assert money.total == (
        money.full_self_pay + money.over_limit_self_pay + money.pre_self_pay + money.in_scope
    )
    assert money.total == (
        money.basic_fund
        + money.supplementary
        + money.assistance
        + money.personal_account
        + money.cash
        + money.hospital_part
    )
    assert money.deductible <= money.in_scope
    assert money.personal_account <= balance
    for split in result.lines:
        assert (
            min(split.full_self_pay, split.over_limit_self_pay, split.pre_self_pay, split.in_scope)
            >= 0
        )
        assert split.amount == (
            split.full_self_pay + split.over_limit_self_pay + split.pre_self_pay + split.in_scope
        )
    assert sum(split.amount for split in result.lines) == money.total
    delta = result.delta
    assert all(getattr(delta, name) >= 0 for name in DELTA_COUNTERS)
    assert all(value > 0 for _, value in delta.diseases)
    assert delta.personal_account == money.personal_account
    assert money.basic_fund == delta.basic_fund + delta.outpatient_pooling
    # a disease's figure is part of the basic fund's, one disease at most
    assert len(delta.diseases) <= 1
    assert sum(value for _, value in delta.diseases) <= delta.basic_fund
    assert money.assistance == delta.assistance + delta.assistance_outpatient
    assert money.hospital_part == 0 or money.deductible == 0


@EXAMPLES
@given(
    policy=policies,
    catalog=catalogs,
    member=members(),
    level=levels,
    state=year_states,
    region=client_regions,
    data=st.data(),
)
def test_every_fen_is_conserved_and_nothing_is_negative(
    policy: Policy,
    catalog: dict[str, CatalogItem],
    member: Member,
    level: HospitalLevel,
    state: YearToDate,
    region: str | None,
    data: st.DataObject,
) -> None:
    visit = data.draw(visits(catalog))
    balance = member.personal_account_balance or 0
    result = adjudicate(visit, level, member, policy, catalog, state, balance, client_region=region)
    check_identities(result, balance)
    after = state.plus(result.delta)
    assert result.year_to_date.basic_fund == after.basic_fund
    assert result.year_to_date.assistance_base == after.assistance_base
    assert result.year_to_date.assistance_outpatient == after.assistance_outpatient
    assert result.year_to_date.diseases == dict(after.diseases)
    assert result.year_to_date.personal_account_balance == balance - result.amounts.personal_account


def _sum(deltas: list[StateDelta]) -> YearToDate:
    total = YearToDate()
    for delta in deltas:
        total = total.plus(delta)
    return total


def _within_caps(
    state: YearToDate, policy: Policy, member: Member, hardship_uncapped: bool
) -> None:
    """No year-to-date figure passes its own cap."""
    if policy.outpatient_pooling is not None:
        assert state.outpatient_pooling <= policy.outpatient_pooling.annual_cap
    supplementary = policy.supplementary
    if supplementary is not None and supplementary.annual_cap is not None:
        assert hardship_uncapped or state.supplementary <= supplementary.annual_cap
    inpatient_terms = assistance_terms(member, policy, VisitType.INPATIENT)
    if inpatient_terms is not None and inpatient_terms[0].annual_cap is not None:
        assert state.assistance <= inpatient_terms[0].annual_cap
    outpatient_terms = assistance_terms(member, policy, VisitType.PHARMACY)
    if outpatient_terms is not None and outpatient_terms[1]:
        cap = outpatient_terms[0].annual_cap
        assert cap is None or state.assistance_outpatient <= cap
    else:
        assert state.assistance_outpatient == state.assistance_outpatient_base == 0
    if isinstance(policy.outpatient_special, tuple):
        diseases: tuple[SpecialDisease, ...] = policy.outpatient_special
        for disease in diseases:
            if disease.annual_cap is not None:
                assert state.disease(disease.code) <= disease.annual_cap
        assert {code for code, _ in state.diseases} <= {disease.code for disease in diseases}
    else:
        assert state.diseases == ()
    assert min(getattr(state, name) for name in YEAR_COUNTERS) >= 0
    assert all(value > 0 for _, value in state.diseases)


@dataclass
class Book:
    """What the sequence has committed so far."""

    state: YearToDate
    balance: int
    active: list[Adjudication]


@EXAMPLES
@given(
    policy=policies,
    catalog=catalogs,
    member=members(),
    level=levels,
    region=client_regions,
    data=st.data(),
)
def test_sequences_of_settlements_and_reversals(
    policy: Policy,
    catalog: dict[str, CatalogItem],
    member: Member,
    level: HospitalLevel,
    region: str | None,
    data: st.DataObject,
) -> None:
    initial_balance = member.personal_account_balance or 0
    book = Book(YearToDate(), initial_balance, [])
    supplementary = policy.supplementary
    hardship_uncapped = (
        isinstance(supplementary, CriticalIllness)
        and supplementary.hardship is not None
        and supplementary.hardship.uncapped
        and member.belongs_to_any(supplementary.hardship.groups)
    )
    highest_basic_cap = 0
    for _ in range(data.draw(st.integers(1, 12), label="operations")):
        reverse = bool(book.active) and data.draw(st.booleans(), label="reverse?")
        if reverse:
            index = data.draw(st.integers(0, len(book.active) - 1), label="which")
            undone = book.active.pop(index)
            before = book.state
            book.state = book.state.minus(undone.delta)
            book.balance += undone.delta.personal_account
            assert book.state.plus(undone.delta) == before
        else:
            visit: Visit = data.draw(visits(catalog), label="visit")
            previous = book.state
            result = adjudicate(
                visit,
                level,
                member,
                policy,
                catalog,
                book.state,
                book.balance,
                client_region=region,
            )
            check_identities(result, book.balance)
            book.state = book.state.plus(result.delta)
            book.balance -= result.delta.personal_account
            book.active.append(result)
            cap = result.entitlement.annual_cap
            highest_basic_cap = max(highest_basic_cap, cap)
            # the basic fund never takes a member past the cap in force for the visit
            assert book.state.basic_fund <= max(previous.basic_fund, cap)
            # a settlement reversed at once leaves the state exactly as it was
            assert book.state.minus(result.delta) == previous

        # the state is exactly the sum of what the active settlements added
        assert book.state == _sum([settled.delta for settled in book.active])
        paid = sum(settled.delta.personal_account for settled in book.active)
        assert book.balance == initial_balance - paid >= 0
        # no year-to-date figure passes its cap
        assert book.state.basic_fund <= highest_basic_cap
        _within_caps(book.state, policy, member, hardship_uncapped)
