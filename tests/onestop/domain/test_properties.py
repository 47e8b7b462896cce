"""Properties of the engine over random policies, bills, and sequences of settlements.

Each property runs at least 500 examples.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

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
from onestop.domain.policy import CriticalIllness
from tests.support.strategies import catalogs, levels, members, policies, visits, year_states

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
    assert all(value >= 0 for value in astuple(result.delta))
    assert result.delta.personal_account == money.personal_account
    assert money.basic_fund == result.delta.basic_fund + result.delta.outpatient_pooling


@EXAMPLES
@given(
    policy=policies,
    catalog=catalogs,
    member=members(),
    level=levels,
    state=year_states,
    data=st.data(),
)
def test_every_fen_is_conserved_and_nothing_is_negative(
    policy: Policy,
    catalog: dict[str, CatalogItem],
    member: Member,
    level: HospitalLevel,
    state: YearToDate,
    data: st.DataObject,
) -> None:
    visit = data.draw(visits(catalog))
    balance = member.personal_account_balance or 0
    result = adjudicate(visit, level, member, policy, catalog, state, balance)
    check_identities(result, balance)
    after = state.plus(result.delta)
    assert result.year_to_date.basic_fund == after.basic_fund
    assert result.year_to_date.assistance_base == after.assistance_base
    assert result.year_to_date.personal_account_balance == balance - result.amounts.personal_account


def _sum(deltas: list[StateDelta]) -> StateDelta:
    return StateDelta(
        *(sum(getattr(delta, f.name) for delta in deltas) for f in fields(StateDelta))
    )


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
    data=st.data(),
)
def test_sequences_of_settlements_and_reversals(
    policy: Policy,
    catalog: dict[str, CatalogItem],
    member: Member,
    level: HospitalLevel,
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
            result = adjudicate(visit, level, member, policy, catalog, book.state, book.balance)
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
        total = _sum([settled.delta for settled in book.active])
        assert book.state == YearToDate().plus(total)
        assert book.balance == initial_balance - total.personal_account >= 0
        # no year-to-date figure passes its cap
        assert book.state.basic_fund <= highest_basic_cap
        if policy.outpatient_pooling is not None:
            assert book.state.outpatient_pooling <= policy.outpatient_pooling.annual_cap
        if (
            supplementary is not None
            and supplementary.annual_cap is not None
            and not hardship_uncapped
        ):
            assert book.state.supplementary <= supplementary.annual_cap
        rule = (
            policy.assistance.get(member.assistance_category)
            if member.assistance_category
            else None
        )
        if rule is not None and rule.annual_cap is not None:
            assert book.state.assistance <= rule.annual_cap
        assert min(astuple(book.state)) >= 0
