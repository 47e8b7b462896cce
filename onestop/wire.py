"""The one place where protobuf messages meet domain values (adjudicator and gateway alike).

A message that does not convert (a malformed date, quantity or visit type from a buggy or
hostile gRPC caller) is refused as :class:`~onestop.domain.errors.InvalidDocument` naming the
field, never let through as a stray ``ValueError``. Refusals cross the wire as a status, a
code and problems in the trailing metadata (:func:`refusal_trailer`), and are rebuilt as the
same typed exception on the other side (:func:`refusal_from_rpc_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import date
from decimal import Decimal, InvalidOperation

import grpc

from onestop.domain.bill import CodedLine, Visit
from onestop.domain.clients import Client
from onestop.domain.engine import Amounts, LineSplit, Note
from onestop.domain.errors import DomainError, ErrorCode, InvalidDocument, Problem
from onestop.domain.mapping import MappingChange, mapping_row_csv
from onestop.domain.reconciliation import AMOUNT_FIELDS, DayFigures, EntryKind, JournalEntry
from onestop.domain.settlement import Eligibility, PolicyRef, Settlement, SettlementStatus
from onestop.domain.state import YearToDateView
from onestop.domain.types import Category, ClientKind, HospitalLevel, Scheme, VisitType
from onestop.errors import InternalError, Unavailable, refusal_of
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage.layout import (
    CATALOG_KIND,
    CLIENTS_KIND,
    POLICIES_KIND,
    client_of_mapping_kind,
)
from onestop.storage.records import AuditEntry, LookupEntry

REFUSAL_CODE_KEY = "onestop-code"
"""Trailing metadata: the refusal's :class:`ErrorCode`."""

REFUSAL_PROBLEMS_KEY = "onestop-problems-bin"
"""Trailing metadata: the offending lines or rows, a serialized ``Problems`` message."""


def day_of(text: str, field: str) -> date:
    """A ``YYYY-MM-DD`` field of a message.

    Raises:
        InvalidDocument: the field is not a calendar date.
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _malformed(field, f"{text!r} is not a date written YYYY-MM-DD") from None


def _decimal_of(text: str, field: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _malformed(field, f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise _malformed(field, f"{text!r} is not a finite decimal number")
    return value


def _malformed(field: str, message: str) -> InvalidDocument:
    return InvalidDocument(
        f"malformed message: {field}: {message}",
        (Problem(ErrorCode.INVALID, message, field=field),),
    )


def visit_of(request: pb.SettleRequest) -> Visit:
    """The domain visit a settle request carries.

    Raises:
        InvalidDocument: a date, visit type or quantity is not well formed, or the line
            columns differ in length.
    """
    columns = request.lines
    count = len(columns.line_no)
    if any(
        len(column) != count
        for column in (columns.catalog_code, columns.catalog_qty, columns.amount, columns.date)
    ):
        raise _malformed("lines", "the line columns differ in length")
    try:
        visit_type = VisitType(request.visit_type)
    except ValueError:
        raise _malformed("visit_type", f"{request.visit_type!r} is not a visit type") from None
    days = {text: day_of(text, "lines.date") for text in set(columns.date)}
    return Visit(
        visit_type=visit_type,
        first_day=day_of(request.first_day, "first_day"),
        last_day=day_of(request.last_day, "last_day"),
        diagnoses=tuple(request.diagnoses),
        use_personal_account=request.use_personal_account,
        lines=tuple(
            CodedLine(line_no, code, _decimal_of(quantity, "lines.catalog_qty"), amount, days[day])
            for line_no, code, quantity, amount, day in zip(
                columns.line_no,
                columns.catalog_code,
                columns.catalog_qty,
                columns.amount,
                columns.date,
                strict=True,
            )
        ),
    )


def settle_request_of(
    visit: Visit,
    *,
    client_id: str,
    visit_id: str,
    member_id: str,
    fingerprint: bytes,
    resettle_of: str | None = None,
) -> pb.SettleRequest:
    """The settle request for a mapped visit (what the gateway sends)."""
    return pb.SettleRequest(
        client_id=client_id,
        visit_id=visit_id,
        member_id=member_id,
        visit_type=visit.visit_type.value,
        first_day=visit.first_day.isoformat(),
        last_day=visit.last_day.isoformat(),
        diagnoses=list(visit.diagnoses),
        use_personal_account=visit.use_personal_account,
        lines=pb.CodedLines(
            line_no=[line.line_no for line in visit.lines],
            catalog_code=[line.catalog_code for line in visit.lines],
            catalog_qty=[str(line.catalog_qty) for line in visit.lines],
            amount=[line.amount for line in visit.lines],
            date=[line.service_date.isoformat() for line in visit.lines],
        ),
        fingerprint=fingerprint,
        resettle_of=resettle_of or "",
    )


def year_to_date_message(view: YearToDateView) -> pb.YearToDate:
    """The contract's year-to-date block."""
    return pb.YearToDate(**asdict(view))


def year_to_date_of(message: pb.YearToDate) -> YearToDateView:
    """The year-to-date block of a message."""
    return YearToDateView(
        **{name: getattr(message, name) for name in YearToDateView.__dataclass_fields__}
    )


def policy_message(policy: PolicyRef) -> pb.PolicyRef:
    """A policy reference."""
    return pb.PolicyRef(
        region=policy.region, scheme=policy.scheme.value, year=policy.year, version=policy.version
    )


def policy_of(message: pb.PolicyRef) -> PolicyRef:
    """A policy reference from its message."""
    return PolicyRef(message.region, Scheme(message.scheme), message.year, message.version)


def amounts_message(amounts: Amounts) -> pb.Amounts:
    """A settlement's amounts."""
    return pb.Amounts(**asdict(amounts))


def amounts_of(message: pb.Amounts) -> Amounts:
    """A settlement's amounts from their message."""
    return Amounts(**{name: getattr(message, name) for name in AMOUNT_FIELDS})


def settlement_message(settlement: Settlement) -> pb.Settlement:
    """A settlement as the service answers and stores it."""
    return pb.Settlement(
        settlement_id=settlement.settlement_id or "",
        client_id=settlement.client_id,
        visit_id=settlement.visit_id,
        member_id=settlement.member_id,
        visit_type=settlement.visit_type.value,
        status=settlement.status.value,
        replayed=settlement.replayed,
        settled_at=settlement.settled_at or "",
        policy=policy_message(settlement.policy),
        amounts=amounts_message(settlement.amounts),
        lines=_line_splits_message(settlement.lines),
        year_to_date=year_to_date_message(settlement.year_to_date),
        notes=[pb.Note(code=note.code, message=note.message) for note in settlement.notes],
        reversed_at=settlement.reversed_at or "",
    )


def settlement_of(message: pb.Settlement) -> Settlement:
    """A settlement from its message (a stored record or an answer)."""
    return Settlement(
        settlement_id=message.settlement_id or None,
        client_id=message.client_id,
        visit_id=message.visit_id,
        member_id=message.member_id,
        visit_type=VisitType(message.visit_type),
        status=SettlementStatus(message.status),
        settled_at=message.settled_at or None,
        policy=policy_of(message.policy),
        amounts=amounts_of(message.amounts),
        lines=_line_splits_of(message.lines),
        year_to_date=year_to_date_of(message.year_to_date),
        notes=tuple(Note(note.code, note.message) for note in message.notes),
        reversed_at=message.reversed_at or None,
        replayed=message.replayed,
    )


def _line_splits_message(lines: tuple[LineSplit, ...]) -> pb.LineSplits:
    return pb.LineSplits(
        line_no=[line.line_no for line in lines],
        catalog_code=[line.catalog_code for line in lines],
        category=[line.category.value for line in lines],
        amount=[line.amount for line in lines],
        full_self_pay=[line.full_self_pay for line in lines],
        over_limit_self_pay=[line.over_limit_self_pay for line in lines],
        pre_self_pay=[line.pre_self_pay for line in lines],
        in_scope=[line.in_scope for line in lines],
        reasons=[",".join(line.reasons) for line in lines],
    )


def _line_splits_of(columns: pb.LineSplits) -> tuple[LineSplit, ...]:
    categories = {category.value: category for category in Category}
    return tuple(
        LineSplit(
            line_no,
            code,
            categories[category],
            amount,
            full,
            over,
            pre,
            scope,
            tuple(reasons.split(",")) if reasons else (),
        )
        for line_no, code, category, amount, full, over, pre, scope, reasons in zip(
            columns.line_no,
            columns.catalog_code,
            columns.category,
            columns.amount,
            columns.full_self_pay,
            columns.over_limit_self_pay,
            columns.pre_self_pay,
            columns.in_scope,
            columns.reasons,
            strict=True,
        )
    )


def record_bytes(settlement: Settlement) -> bytes:
    """A settlement as stored in Redis."""
    return settlement_message(settlement).SerializeToString()


def record_of(data: bytes) -> Settlement:
    """A settlement stored by :func:`record_bytes`."""
    message = pb.Settlement()
    message.ParseFromString(data)
    return settlement_of(message)


def replayed_record(data: bytes) -> bytes:
    """A stored settlement, marked as the answer to a repeated request."""
    message = pb.Settlement.FromString(data)
    message.replayed = True
    return message.SerializeToString()


def settlement_from_bytes(data: bytes) -> pb.Settlement:
    """A serialized settlement as a message (parsing is far cheaper than building one)."""
    return pb.Settlement.FromString(data)


def eligibility_message(answer: Eligibility) -> pb.EligibilityAnswer:
    """An eligibility answer."""
    return pb.EligibilityAnswer(
        member_id=answer.member_id,
        name_masked=answer.name_masked,
        id_number_masked=answer.id_number_masked,
        scheme=answer.scheme.value,
        region=answer.region,
        status=answer.status.value,
        waiting_until=answer.waiting_until or "",
        in_waiting_period=answer.in_waiting_period,
        continuous_years=answer.continuous_years,
        assistance_category=(
            answer.assistance_category.value if answer.assistance_category else ""
        ),
        supplementary_enrolled=answer.supplementary_enrolled,
        personal_account_balance=answer.personal_account_balance,
        year_to_date=year_to_date_message(answer.year_to_date),
        policy=policy_message(answer.policy),
    )


def refusal_trailer(refusal: DomainError) -> tuple[tuple[str, str | bytes], ...]:
    """The trailing metadata that carries a refusal's code and problems."""
    metadata: list[tuple[str, str | bytes]] = [(REFUSAL_CODE_KEY, refusal.code.value)]
    if refusal.problems:
        problems = pb.Problems(
            problems=[
                pb.Problem(
                    code=problem.code.value,
                    message=problem.message,
                    field=problem.field or "",
                    line_no=problem.line_no or 0,
                    his_code=problem.his_code or "",
                    row=problem.row or 0,
                )
                for problem in refusal.problems
            ]
        )
        metadata.append((REFUSAL_PROBLEMS_KEY, problems.SerializeToString()))
    return tuple(metadata)


def refusal_from_rpc_error(error: grpc.aio.AioRpcError) -> DomainError:
    """The typed refusal a failed call stands for.

    A refusal the adjudicator decided carries its code: it is rebuilt as the same exception.
    Without a code the call failed in transport: the adjudicator could not be reached or did
    not answer in time (:class:`Unavailable`, safe to retry), or it failed in a way no request
    explains (:class:`InternalError`, logged there).
    """
    code = ""
    problems: tuple[Problem, ...] = ()
    for key, value in error.trailing_metadata() or ():
        if key == REFUSAL_CODE_KEY and isinstance(value, str):
            code = value
        elif key == REFUSAL_PROBLEMS_KEY and isinstance(value, bytes):
            problems = tuple(
                Problem(
                    code=ErrorCode(problem.code),
                    message=problem.message,
                    field=problem.field or None,
                    line_no=problem.line_no or None,
                    his_code=problem.his_code or None,
                    row=problem.row or None,
                )
                for problem in pb.Problems.FromString(value).problems
            )
    if code in ErrorCode.__members__:
        return refusal_of(ErrorCode(code), error.details() or code, problems)
    status = error.code()
    if status is grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable("the adjudicator did not answer in time; retry the same request")
    if status is grpc.StatusCode.UNAVAILABLE:
        return Unavailable("the adjudicator cannot be reached; retry the same request")
    return InternalError(f"the adjudicator failed ({status.name}): {error.details()}")


def client_message(client: Client) -> pb.Client:
    """A registered client."""
    return pb.Client(
        client_id=client.client_id,
        kind=client.kind.value,
        name=client.name,
        level=client.level.value if client.level else "",
        region=client.region or "",
        public_key_pem=client.public_key,
    )


def mapping_change_message(change: MappingChange) -> pb.MappingChange:
    """One change a mapping upload makes."""
    return pb.MappingChange(
        his_code=change.his_code,
        change=change.change,
        old_catalog_code=",".join(sorted({row.catalog_code for row in change.old_rows})),
        new_catalog_code=",".join(sorted({row.catalog_code for row in change.new_rows})),
        old_row="\n".join(mapping_row_csv(row) for row in change.old_rows),
        new_row="\n".join(mapping_row_csv(row) for row in change.new_rows),
        risky=change.risky,
        reason=change.reason,
    )


def audit_entry_message(entry: AuditEntry) -> pb.MappingAuditEntry:
    """One stored audit entry."""
    return pb.MappingAuditEntry(
        at=entry.at,
        changed_by=entry.changed_by,
        version=entry.version,
        change=pb.MappingChange(
            his_code=entry.his_code,
            change=entry.change,
            old_row=entry.old,
            new_row=entry.new,
            risky=entry.risky,
            reason=entry.reason,
        ),
    )


def client_of(message: pb.Client) -> Client:
    """A registered client from its message."""
    return Client(
        client_id=message.client_id,
        kind=ClientKind(message.kind),
        name=message.name,
        level=HospitalLevel(message.level) if message.level else None,
        region=message.region or None,
        public_key=message.public_key_pem,
    )


def journal_entry_message(entry: JournalEntry) -> pb.JournalEntry:
    """A journal entry."""
    return pb.JournalEntry(
        kind=entry.kind.value,
        settlement_id=entry.settlement_id,
        client_id=entry.client_id,
        member_id=entry.member_id,
        visit_id=entry.visit_id,
        at_ms=entry.at_ms,
        amounts=amounts_message(entry.amounts),
        policy=policy_message(entry.policy),
    )


def journal_entry_of(message: pb.JournalEntry) -> JournalEntry:
    """A journal entry from its message."""
    return JournalEntry(
        kind=EntryKind(message.kind),
        settlement_id=message.settlement_id,
        client_id=message.client_id,
        member_id=message.member_id,
        visit_id=message.visit_id,
        at_ms=message.at_ms,
        amounts=amounts_of(message.amounts),
        policy=policy_of(message.policy),
    )


def day_figures_message(figures: DayFigures, settlement_ids: list[str]) -> pb.DayFiguresReply:
    """A client's day."""
    return pb.DayFiguresReply(
        settlements=figures.settlements,
        reversals=figures.reversals,
        amounts=pb.Amounts(**{name: figures.amounts.get(name, 0) for name in AMOUNT_FIELDS}),
        settlement_ids=settlement_ids,
    )


def day_figures_of(reply: pb.DayFiguresReply) -> tuple[DayFigures, list[str]]:
    """A client's day, and its settlements' ids when asked for."""
    amounts = {name: getattr(reply.amounts, name) for name in AMOUNT_FIELDS}
    return DayFigures(reply.settlements, reply.reversals, amounts), list(reply.settlement_ids)


def versions_message(versions: Mapping[str, str]) -> pb.Versions:
    """The reference-data versions, by kind."""
    mappings = {}
    for kind, version in versions.items():
        client_id = client_of_mapping_kind(kind)
        if client_id is not None:
            mappings[client_id] = version
    return pb.Versions(
        catalog=versions.get(CATALOG_KIND, ""),
        clients=versions.get(CLIENTS_KIND, ""),
        policies=versions.get(POLICIES_KIND, ""),
        mappings=mappings,
    )


def lookup_entry_message(entry: LookupEntry) -> pb.LookupEntry:
    """One entry of the lookup audit trail (its blind index stays in storage)."""
    return pb.LookupEntry(
        at=entry.at,
        client_id=entry.client_id,
        kind=entry.kind.value,
        member_id=entry.member_id,
        found=entry.found,
        asked_date=entry.asked_date,
    )
