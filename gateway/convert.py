"""The adjudicator's messages as the HTTP API's answers: the one place they are converted.

Every answer is a response model of :mod:`gateway.schemas`, validated as it is built; a
message that does not make one (a field the API does not know, a status it does not have) is
a fault here, not a malformed answer to a hospital.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

from gateway.schemas import (
    AmountDifferenceOut,
    AuditEntry,
    CatalogLoaded,
    ClientDayOut,
    ClientOut,
    ClientReconciliations,
    DayFiguresOut,
    DayGroupOut,
    DayReconciliations,
    DayRefusalsOut,
    DayTotalsOut,
    EligibilityResult,
    FindingOut,
    FundAmounts,
    GroupOut,
    GroupResultOut,
    LookupOut,
    MappingChangeOut,
    MappingLoaded,
    MembersLoaded,
    ReconciliationResult,
    ReconciliationSummaryOut,
    RecoveriesOut,
    ReviewOut,
    UnsignedResult,
    VisitTypeDayOut,
)
from onestop.clock import iso_from_ms
from onestop.domain.clients import Client
from onestop.domain.controls import ControlAction
from onestop.domain.errors import ErrorCode
from onestop.domain.reconciliation import (
    RECONCILED_FUNDS,
    ClientDay,
    DayFigures,
    Reconciliation,
    ReconciliationSummary,
    sum_figures,
)
from onestop.domain.reviews import Review
from onestop.domain.types import VisitType
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.wire import (
    out_of_region_registrations_of,
    policy_of,
    registered_diseases_of,
    settlement_of,
    year_to_date_of,
)


def settlement_result(message: pb.Settlement) -> UnsignedResult:
    """A settlement, preview or reversal as the API answers it (before it is signed).

    The message becomes the domain's settlement (:func:`onestop.wire.settlement_of`, the one
    conversion of that message), whose fields are the answer's.
    """
    settlement = settlement_of(message)
    return UnsignedResult.model_validate(
        {field.name: getattr(settlement, field.name) for field in fields(settlement)}
    )


def eligibility_result(message: pb.EligibilityAnswer) -> EligibilityResult:
    """A member's entitlement on a day, identity masked."""
    return EligibilityResult.model_validate(
        {
            "member_id": message.member_id,
            "name": message.name_masked,
            "id_number": message.id_number_masked,
            "scheme": message.scheme,
            "region": message.region,
            "status": message.status,
            "waiting_until": message.waiting_until or None,
            "in_waiting_period": message.in_waiting_period,
            "continuous_years": message.continuous_years,
            "assistance_category": message.assistance_category or None,
            "supplementary_enrolled": message.supplementary_enrolled,
            "personal_account_balance": message.personal_account_balance,
            "year_to_date": year_to_date_of(message.year_to_date),
            "policy": policy_of(message.policy),
            "out_of_region_registrations": out_of_region_registrations_of(
                message.out_of_region_registrations
            ),
            "registered_diseases": registered_diseases_of(message.registered_diseases),
        }
    )


def client_out(message: pb.Client) -> ClientOut:
    """A registered client."""
    return ClientOut.model_validate(
        {
            "client_id": message.client_id,
            "kind": message.kind,
            "name": message.name,
            "level": message.level or None,
            "region": message.region or None,
            "public_key": message.public_key_pem,
            "national_code": message.national_code or None,
            "national_codes_allowed": message.national_codes_allowed,
        }
    )


def catalog_loaded(reply: pb.PutCatalogReply) -> CatalogLoaded:
    """A catalog upload's answer."""
    return CatalogLoaded(loaded=reply.loaded, version=reply.version)


def _change(change: pb.MappingChange) -> dict[str, Any]:
    return {
        "his_code": change.his_code,
        "change": change.change,
        "old": change.old_row.splitlines(),
        "new": change.new_row.splitlines(),
        "risky": change.risky,
        "reason": change.reason,
    }


def mapping_loaded(reply: pb.PutMappingReply) -> MappingLoaded:
    """A mapping upload's answer: rows loaded, version, what changed."""
    return MappingLoaded(
        loaded=reply.loaded,
        version=reply.version,
        changes=[MappingChangeOut.model_validate(_change(change)) for change in reply.changes],
    )


def audit_entries(audit: pb.MappingAudit) -> list[AuditEntry]:
    """A mapping's audit trail: who, when, old, new."""
    return [
        AuditEntry.model_validate(
            {
                "at": entry.at,
                "changed_by": entry.changed_by,
                "version": entry.version,
                **_change(entry.change),
            }
        )
        for entry in audit.entries
    ]


def members_loaded(reply: pb.PutMembersReply) -> MembersLoaded:
    """A members upload's answer: loaded, and each rejected line with its error."""
    return MembersLoaded.model_validate(
        {
            "loaded": reply.loaded,
            "rejected": [
                {
                    "line": entry.line,
                    "member_id": entry.member_id or None,
                    "code": entry.code,
                    "message": entry.message,
                }
                for entry in reply.rejected
            ],
        }
    )


def lookup_entries(audit: pb.LookupAudit) -> list[LookupOut]:
    """The lookup audit trail."""
    return [
        LookupOut.model_validate(
            {
                "at": entry.at,
                "client_id": entry.client_id,
                "kind": entry.kind,
                "member_id": entry.member_id or None,
                "found": entry.found,
                "asked_date": entry.asked_date,
            }
        )
        for entry in audit.entries
    ]


def _figures_out(figures: DayFigures) -> DayFiguresOut:
    return DayFiguresOut(
        settlements=figures.settlements,
        reversals=figures.reversals,
        amounts=FundAmounts(**{name: figures.fund(name) for name in RECONCILED_FUNDS}),
    )


def day_totals_out(
    day: date, closed: bool, days: list[ClientDay], clients: dict[str, Client]
) -> DayTotalsOut:
    """A day's figures as the API answers them: in all, per visit type, per client.

    Args:
        day: the settlement day.
        closed: whether the day has ended.
        days: each client's figures (:meth:`AdjudicatorClient.day_totals`).
        clients: the registered clients by id, for their names and kinds.
    """
    by_visit_type: dict[VisitType | None, list[DayFigures]] = {}
    for client_day in days:
        for key, figures in client_day.groups.items():
            by_visit_type.setdefault(key.visit_type, []).append(figures)
    order = {visit_type: index for index, visit_type in enumerate(VisitType)}
    return DayTotalsOut(
        date=day.isoformat(),
        closed=closed,
        total=_figures_out(sum_figures(client_day.totals for client_day in days)),
        by_visit_type=[
            VisitTypeDayOut(
                visit_type=visit_type, **_figures_out(sum_figures(figures)).model_dump()
            )
            for visit_type, figures in sorted(
                by_visit_type.items(),
                key=lambda item: order.get(item[0], len(order)),  # type: ignore[arg-type]
            )
        ],
        clients=[
            ClientDayOut(
                client_id=client_day.client_id,
                name=clients[client_day.client_id].name
                if client_day.client_id in clients
                else None,
                kind=clients[client_day.client_id].kind
                if client_day.client_id in clients
                else None,
                **_figures_out(client_day.totals).model_dump(),
                groups=[
                    DayGroupOut(
                        visit_type=key.visit_type,
                        scheme=key.scheme,
                        **_figures_out(figures).model_dump(),
                    )
                    for key, figures in sorted(
                        client_day.groups.items(), key=lambda item: item[0].sort_key()
                    )
                ],
            )
            for client_day in days
        ],
    )


def day_refusals_out(day: date, counts: dict[ErrorCode, int]) -> DayRefusalsOut:
    """A day's refusal counts as the API answers them."""
    return DayRefusalsOut(date=day.isoformat(), total=sum(counts.values()), by_code=counts)


def reconciliation_result(
    answer: Reconciliation, *, provisional: bool, notes: list[str]
) -> ReconciliationResult:
    """The comparison of a client's day as the API answers it."""
    groups = []
    for group in answer.groups:
        differences = group.differences()
        groups.append(
            GroupResultOut(
                visit_type=group.key.visit_type,
                scheme=group.key.scheme,
                result=None
                if differences is None
                else ("balanced" if group.balanced() else "unbalanced"),
                gateway=_figures_out(group.gateway),
                hospital=None if group.hospital is None else _figures_out(group.hospital),
                differences=differences,
            )
        )
    return ReconciliationResult(
        result=answer.outcome.value,
        gateway=_figures_out(answer.gateway),
        differences=answer.differences(),
        only_in_gateway=answer.only_in_gateway,
        only_in_hospital=answer.only_in_hospital,
        amount_differences=[
            AmountDifferenceOut(
                settlement_id=difference.settlement_id,
                gateway=FundAmounts(**difference.gateway),
                hospital=FundAmounts(**difference.hospital),
                differences=difference.differences(),
            )
            for difference in answer.amount_differences
        ],
        groups=groups,
        provisional=provisional,
        notes=notes,
        recoveries=RecoveriesOut(
            count=answer.recoveries.count, recovered=answer.recoveries.recovered
        ),
    )


def reconciliation_summary(summary: ReconciliationSummary) -> ReconciliationSummaryOut:
    """What was answered to one reconciliation."""
    return ReconciliationSummaryOut(
        client_id=summary.client_id,
        reconciled_at=iso_from_ms(summary.at_ms),
        result=summary.outcome.value,
        provisional=summary.provisional,
        detail=summary.detail.value,
        differences=summary.differences,
        only_in_gateway=summary.only_in_gateway,
        only_in_hospital=summary.only_in_hospital,
        amount_differences=summary.amount_differences,
        unbalanced_groups=[
            GroupOut(visit_type=key.visit_type, scheme=key.scheme)
            for key in summary.unbalanced_groups
        ],
    )


def day_reconciliations(
    day: date, client_ids: list[str], kept: list[ReconciliationSummary]
) -> DayReconciliations:
    """Every registered client's standing for the day, and each answer it was given."""
    history: dict[str, list[ReconciliationSummaryOut]] = {}
    for summary in kept:
        history.setdefault(summary.client_id, []).append(reconciliation_summary(summary))
    clients = []
    for client_id in sorted(set(client_ids) | set(history)):
        answers = history.get(client_id, [])
        latest = answers[-1] if answers else None
        clients.append(
            ClientReconciliations(
                client_id=client_id,
                status="not_reconciled" if latest is None else latest.result,
                latest=latest,
                history=answers,
            )
        )
    return DayReconciliations(date=day.isoformat(), clients=clients)


def review_out(review: Review) -> ReviewOut:
    """A review as the API answers it (times in Asia/Shanghai)."""
    return ReviewOut(
        settlement_id=review.settlement_id,
        client_id=review.client_id,
        member_id=review.member_id,
        visit_id=review.visit_id,
        visit_type=review.visit_type,
        flagged_at=iso_from_ms(review.flagged_ms),
        findings=[
            FindingOut(
                control=finding.control.value,
                action="deduct" if finding.action is ControlAction.DEDUCT else "flag",
                message=finding.message,
                line_nos=list(finding.line_nos),
                related_settlement=finding.related_settlement,
            )
            for finding in review.findings
        ],
        funds_paid=review.funds_paid,
        status=review.status.value,
        decided_by=review.decided_by,
        decided_at=iso_from_ms(review.decided_ms) if review.decided_ms else None,
        recovered=review.recovered,
        reason=review.reason,
        settlement_status=review.settlement_status,
    )
