"""The agency's review queue (domain section 18): a flagged settlement is decided once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from onestop.domain.controls import Control, ControlAction, Finding
from onestop.domain.errors import ErrorCode, InvalidDocument, ReviewDecided
from onestop.domain.reviews import Review, ReviewDecision, ReviewStatus, decide
from onestop.domain.settlement import SettlementStatus
from onestop.domain.types import VisitType

FUNDS_PAID = 280000
NOW_MS = 1_780_000_000_000

FINDING = Finding(
    Control.QUANTITY_LIMIT,
    ControlAction.FLAG,
    "item FA04: the quantity would exceed its limit of 24 time in 2026",
    line_nos=(3, 4),
)


def make_review(**fields: Any) -> Review:
    values: dict[str, Any] = {
        "settlement_id": "S-1",
        "client_id": "ZZH3",
        "member_id": "M1",
        "visit_id": "V-1",
        "visit_type": VisitType.INPATIENT,
        "flagged_ms": NOW_MS - 86_400_000,
        "findings": (FINDING,),
        "funds_paid": FUNDS_PAID,
    }
    values.update(fields)
    return Review(**values)


def run(
    review: Review | None = None,
    decision: ReviewDecision = ReviewDecision.RECOVER,
    amount: int = 1000,
    *,
    reversed_: bool = False,
) -> Review:
    return decide(
        review or make_review(),
        decision,
        amount,
        "agency-key-7",
        "checked the chart",
        NOW_MS,
        settlement_reversed=reversed_,
    )


def test_a_new_review_is_open_and_undecided() -> None:
    review = make_review()
    assert review.status is ReviewStatus.OPEN
    assert (review.decided_by, review.decided_ms, review.reason) == (None, None, None)
    assert (review.recovered, review.settlement_status) == (0, None)


def test_the_stored_words_of_statuses_and_decisions() -> None:
    assert [status.value for status in ReviewStatus] == ["open", "accepted", "recovered"]
    assert [decision.value for decision in ReviewDecision] == ["accept", "recover"]


def test_accept_records_who_when_and_why_and_recovers_nothing() -> None:
    review = make_review()
    decided = run(review, ReviewDecision.ACCEPT, 0)
    assert decided.status is ReviewStatus.ACCEPTED
    assert (decided.decided_by, decided.decided_ms) == ("agency-key-7", NOW_MS)
    assert (decided.reason, decided.recovered) == ("checked the chart", 0)
    # everything else is the review as it was, which is not changed
    assert (
        replace(decided, status=ReviewStatus.OPEN, decided_by=None, decided_ms=None, reason=None)
        == review
    )
    assert review.status is ReviewStatus.OPEN


@pytest.mark.parametrize("amount", [1, 12345, FUNDS_PAID])
def test_recover_up_to_what_the_funds_paid(amount: int) -> None:
    review = make_review()
    decided = run(review, ReviewDecision.RECOVER, amount)
    assert decided.status is ReviewStatus.RECOVERED
    assert decided.recovered == amount
    assert (decided.decided_by, decided.decided_ms) == ("agency-key-7", NOW_MS)
    assert decided.reason == "checked the chart"
    assert (decided.findings, decided.funds_paid) == ((FINDING,), FUNDS_PAID)
    assert decided.settlement_id == review.settlement_id


@pytest.mark.parametrize("amount", [FUNDS_PAID + 1, 0, -1])
def test_recover_nothing_or_more_than_the_funds_paid_is_invalid(amount: int) -> None:
    with pytest.raises(InvalidDocument) as caught:
        run(decision=ReviewDecision.RECOVER, amount=amount)
    assert caught.value.code is ErrorCode.INVALID
    assert [(p.code, p.field) for p in caught.value.problems] == [(ErrorCode.INVALID, "amount")]
    assert str(FUNDS_PAID) in caught.value.message


def test_nothing_can_be_recovered_when_the_funds_paid_nothing() -> None:
    with pytest.raises(InvalidDocument):
        run(make_review(funds_paid=0), ReviewDecision.RECOVER, 1)
    assert run(make_review(funds_paid=0), ReviewDecision.ACCEPT, 0).status is ReviewStatus.ACCEPTED


@pytest.mark.parametrize("amount", [1, FUNDS_PAID])
def test_a_reversed_settlement_cannot_be_recovered_from(amount: int) -> None:
    with pytest.raises(InvalidDocument, match="reversed") as caught:
        run(decision=ReviewDecision.RECOVER, amount=amount, reversed_=True)
    assert [p.field for p in caught.value.problems] == ["amount"]


def test_a_reversed_settlement_can_be_accepted() -> None:
    decided = run(decision=ReviewDecision.ACCEPT, amount=0, reversed_=True)
    assert (decided.status, decided.recovered) == (ReviewStatus.ACCEPTED, 0)


@pytest.mark.parametrize("amount", [1, -1, FUNDS_PAID])
def test_accept_with_an_amount_is_invalid(amount: int) -> None:
    with pytest.raises(InvalidDocument, match="accept recovers nothing") as caught:
        run(decision=ReviewDecision.ACCEPT, amount=amount)
    assert [p.field for p in caught.value.problems] == ["amount"]


@pytest.mark.parametrize(
    "first",
    [(ReviewDecision.ACCEPT, 0), (ReviewDecision.RECOVER, 500)],
    ids=["accepted", "recovered"],
)
@pytest.mark.parametrize(
    "second",
    [(ReviewDecision.ACCEPT, 0), (ReviewDecision.RECOVER, 500), (ReviewDecision.RECOVER, -5)],
    ids=["accept", "recover", "invalid-recover"],
)
def test_a_decided_review_is_not_decided_again(
    first: tuple[ReviewDecision, int], second: tuple[ReviewDecision, int]
) -> None:
    decided = run(make_review(), *first)
    with pytest.raises(ReviewDecided) as caught:
        run(decided, *second)
    assert caught.value.code is ErrorCode.REVIEW_DECIDED
    assert decided.status.value in caught.value.message
    assert "agency-key-7" in caught.value.message


def test_the_settlement_status_beside_the_review_is_kept() -> None:
    review = make_review(settlement_status=SettlementStatus.SETTLED)
    assert run(review, ReviewDecision.ACCEPT, 0).settlement_status is SettlementStatus.SETTLED
