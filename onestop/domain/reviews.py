"""The agency's review queue (domain section 18): flagged settlements and decisions on them.

A settlement the controls flagged (:mod:`onestop.domain.controls`) stands as settled; the
agency reviews it and either accepts it or recovers an amount from the client. A decision is
made once, and never rewrites the settlement: a recovery is its own record, counted in the
day of the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from onestop.domain.controls import Finding
from onestop.domain.errors import ErrorCode, InvalidDocument, Problem, ReviewDecided
from onestop.domain.settlement import SettlementStatus
from onestop.domain.types import VisitType


class ReviewStatus(StrEnum):
    """Where a flagged settlement stands in the agency's review queue."""

    OPEN = "open"
    ACCEPTED = "accepted"
    """The reviewer found the settlement right: nothing changes."""
    RECOVERED = "recovered"
    """The reviewer recovers an amount from the client; the settlement itself stands."""


@dataclass(frozen=True, slots=True)
class Review:
    """A flagged settlement in the review queue, and the decision on it.

    Attributes:
        flagged_ms: when the settlement was committed (epoch ms).
        funds_paid: what the funds paid for it (basic fund, supplementary, assistance; fen),
            the most a recovery may take back.
        settlement_status: the settlement as it stands (a reversed one needs no recovery);
            read beside the review when listed, not stored with it.
    """

    settlement_id: str
    client_id: str
    member_id: str
    visit_id: str
    visit_type: VisitType
    flagged_ms: int
    findings: tuple[Finding, ...]
    funds_paid: int
    status: ReviewStatus = ReviewStatus.OPEN
    decided_by: str | None = None
    decided_ms: int | None = None
    recovered: int = 0
    reason: str | None = None
    settlement_status: SettlementStatus | None = None


MAX_REASON = 200
"""The longest reason a decision keeps (characters)."""


class ReviewDecision(StrEnum):
    """What a reviewer decides."""

    ACCEPT = "accept"
    RECOVER = "recover"


def decide(
    review: Review,
    decision: ReviewDecision,
    amount: int,
    reviewer: str,
    reason: str,
    now_ms: int,
    *,
    settlement_reversed: bool,
) -> Review:
    """The review after a decision.

    Args:
        review: the review as it stands (open).
        decision: accept, or recover ``amount``.
        amount: fen to recover (0 for accept), at most what the funds paid.
        reviewer: who decides (the agency's key id or person).
        reason: the reviewer's words.
        now_ms: when.
        settlement_reversed: whether the settlement was reversed since (nothing to recover).

    Raises:
        ReviewDecided: the review was decided before.
        InvalidDocument: the amount does not fit the decision.
    """
    if review.status is not ReviewStatus.OPEN:
        raise ReviewDecided(
            f"review of {review.settlement_id} was decided ({review.status.value}) by "
            f"{review.decided_by}: a decision is made once"
        )
    problem: str | None = None
    field = "amount"
    if not reviewer.strip():
        problem, field = "a decision names who decides", "reviewer"
    elif not reason.strip() or len(reason) > MAX_REASON:
        problem, field = f"a decision gives its reason, 1 to {MAX_REASON} characters", "reason"
    elif decision is ReviewDecision.ACCEPT and amount != 0:
        problem = "accept recovers nothing: leave amount out or send 0"
    elif decision is ReviewDecision.RECOVER:
        if settlement_reversed:
            problem = "the settlement was reversed: the funds paid nothing to recover; accept it"
        elif not 0 < amount <= review.funds_paid:
            problem = (
                f"a recovery is more than 0 and at most the {review.funds_paid} fen the funds "
                "paid for the settlement"
            )
    if problem is not None:
        raise InvalidDocument(
            f"cannot decide the review of {review.settlement_id}: {problem}",
            (Problem(ErrorCode.INVALID, problem, field=field),),
        )
    return replace(
        review,
        status=ReviewStatus.ACCEPTED
        if decision is ReviewDecision.ACCEPT
        else ReviewStatus.RECOVERED,
        decided_by=reviewer,
        decided_ms=now_ms,
        recovered=amount,
        reason=reason,
    )
