"""The one place where protobuf messages meet domain values (adjudicator and gateway alike).

A message that does not convert (a malformed date, quantity or visit type from a buggy or
hostile gRPC caller) is refused as :class:`~onestop.domain.errors.InvalidDocument` naming the
field, never let through as a stray ``ValueError``. Refusals cross the wire as a status, a
code and problems in the trailing metadata (:func:`refusal_trailer`), and are rebuilt as the
same typed exception on the other side (:func:`refusal_from_rpc_error`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import accumulate
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError

from onestop.domain.bill import CodedLine, Visit
from onestop.domain.clients import Client
from onestop.domain.controls import Control, ControlAction, Finding
from onestop.domain.engine import Amounts, LineSplit, Note
from onestop.domain.errors import DomainError, ErrorCode, InvalidDocument, Problem
from onestop.domain.mapping import MappingChange, mapping_row_csv
from onestop.domain.member import DiseaseRegistration, OutOfRegionRegistration
from onestop.domain.reconciliation import (
    AMOUNT_FIELDS,
    COUNTS,
    RECONCILED_FUNDS,
    AmountDifference,
    ClientDay,
    DayFigures,
    Detail,
    EntryKind,
    GroupComparison,
    GroupKey,
    HospitalDay,
    JournalEntry,
    Outcome,
    Reconciliation,
    ReconciliationSummary,
    Recoveries,
    VisitFacts,
)
from onestop.domain.reviews import Review, ReviewDecision, ReviewStatus
from onestop.domain.settlement import Eligibility, PolicyRef, Settlement, SettlementStatus
from onestop.domain.state import YearToDateView
from onestop.domain.types import Category, ClientKind, HospitalLevel, Scheme, VisitType
from onestop.errors import InternalError, Unavailable, refusal_of
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import record_pb2 as record_pb
from onestop.storage.layout import (
    CATALOG_KIND,
    CLIENTS_KIND,
    POLICIES_KIND,
    client_of_mapping_kind,
)
from onestop.storage.records import AuditEntry, CorruptRecord, LookupEntry, StoredAnswer

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
        referral_no=request.referral_no or None,
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
        referral_no=visit.referral_no or "",
    )


def year_to_date_message(view: YearToDateView) -> pb.YearToDate:
    """The contract's year-to-date block."""
    return pb.YearToDate(**asdict(view))


def year_to_date_of(message: pb.YearToDate) -> YearToDateView:
    """The year-to-date block of a message."""
    return YearToDateView(
        **{
            name: getattr(message, name)
            for name in YearToDateView.__dataclass_fields__
            if name != "diseases"
        },
        diseases=dict(message.diseases),
    )


def policy_message(policy: PolicyRef) -> pb.PolicyRef:
    """A policy reference."""
    return pb.PolicyRef(
        region=policy.region,
        scheme=policy.scheme.value,
        year=policy.year,
        version=policy.version,
        effective_from=policy.effective_from.isoformat(),
    )


def policy_of(message: pb.PolicyRef) -> PolicyRef:
    """A policy reference from its message.

    A settlement stored before policies had versions within a year names none: it applied the
    only version, in force from January 1.
    """
    effective_from = (
        date.fromisoformat(message.effective_from)
        if message.effective_from
        else date(message.year, 1, 1)
    )
    return PolicyRef(
        message.region, Scheme(message.scheme), message.year, message.version, effective_from
    )


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


RECORD_COMPRESSION_LEVEL = 6
"""zlib's level for a stored settlement: a 200-line record 8.1 KB -> 2.7 KB for about 0.2 ms
of the adjudicator's time (level 1: 3.1 KB for 0.07 ms; docs/performance.md)."""


def answer_bytes(settlement: Settlement) -> bytes:
    """A settlement as the service answers it (a serialized ``Settlement``)."""
    return settlement_message(settlement).SerializeToString()


def encode_settlement(settlement: Settlement) -> tuple[bytes, StoredAnswer]:
    """A settlement as answered and as stored, from one message built once.

    Returns:
        The serialized ``Settlement`` the caller is answered, and what the settlement's hash
        keeps: a ``PackedSettlement`` (its lines' numbers as steps), zlib-compressed.
    """
    message = settlement_message(settlement)
    answer = message.SerializeToString()
    packed = record_pb.PackedSettlement(lines=message.lines)
    numbers = list(message.lines.line_no)
    packed.line_no_step.extend(
        [number - before for before, number in zip([0, *numbers], numbers, strict=False)]
    )
    packed.lines.ClearField("line_no")
    message.ClearField("lines")
    packed.settlement.CopyFrom(message)
    data = zlib.compress(packed.SerializeToString(), RECORD_COMPRESSION_LEVEL)
    return answer, StoredAnswer(data, packed=True)


def stored_message(stored: StoredAnswer) -> pb.Settlement:
    """The ``Settlement`` message a stored answer holds, in either stored form.

    Raises:
        CorruptRecord: the bytes do not decompress or parse.
    """
    try:
        if not stored.packed:
            return pb.Settlement.FromString(stored.data)
        packed = record_pb.PackedSettlement.FromString(zlib.decompress(stored.data))
    except (zlib.error, DecodeError) as error:
        raise CorruptRecord(f"a stored settlement's {stored.field!r} field: {error}") from None
    message = packed.settlement
    lines = message.lines
    lines.CopyFrom(packed.lines)
    lines.line_no.extend(accumulate(packed.line_no_step))
    return message


def record_of(stored: StoredAnswer) -> Settlement:
    """A stored settlement (:func:`encode_settlement`, or a record written before it)."""
    return settlement_of(stored_message(stored))


def replayed_answer(stored: StoredAnswer) -> tuple[Settlement, bytes]:
    """A stored settlement as the answer to a repeated request (marked ``replayed``).

    Returns:
        The settlement, and the same as the serialized message the caller is answered.
    """
    message = stored_message(stored)
    message.replayed = True
    return settlement_of(message), message.SerializeToString()


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
        birth_date=answer.birth_date,
        sex=answer.sex,
        enrolled_since=answer.enrolled_since,
        out_of_region_registrations=[
            _registration_message(entry.region, entry)
            for entry in answer.out_of_region_registrations
        ],
        registered_diseases=[
            _registration_message(entry.code, entry) for entry in answer.registered_diseases
        ],
    )


def _registration_message(
    code: str, entry: DiseaseRegistration | OutOfRegionRegistration
) -> pb.Registration:
    return pb.Registration(
        code=code,
        to=entry.ends.isoformat() if entry.ends else "",
        **{"from": entry.starts.isoformat()},
    )


def out_of_region_registrations_of(
    messages: Iterable[pb.Registration],
) -> tuple[OutOfRegionRegistration, ...]:
    """The member's registrations for care in other regions, from their messages."""
    return tuple(
        OutOfRegionRegistration.model_validate(
            {"region": message.code, "from": getattr(message, "from"), "to": message.to or None}
        )
        for message in messages
    )


def registered_diseases_of(messages: Iterable[pb.Registration]) -> tuple[DiseaseRegistration, ...]:
    """The member's disease registrations, from their messages."""
    return tuple(
        DiseaseRegistration.model_validate(
            {"code": message.code, "from": getattr(message, "from"), "to": message.to or None}
        )
        for message in messages
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
        national_code=client.national_code or "",
        national_codes_allowed=client.national_codes_allowed,
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
        national_code=message.national_code or None,
        national_codes_allowed=message.national_codes_allowed,
    )


_Enum = TypeVar("_Enum", VisitType, Scheme, HospitalLevel)


def _optional_enum(kind: type[_Enum], text: str, field: str) -> _Enum | None:
    """An enum field that may be empty (not recorded)."""
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise _malformed(field, f"{text!r} is not a {kind.__name__}") from None


def _optional_day(text: str, field: str) -> date | None:
    return day_of(text, field) if text else None


def journal_entry_message(entry: JournalEntry) -> pb.JournalEntry:
    """A journal entry."""
    visit = entry.visit
    return pb.JournalEntry(
        kind=entry.kind.value,
        settlement_id=entry.settlement_id,
        client_id=entry.client_id,
        member_id=entry.member_id,
        visit_id=entry.visit_id,
        at_ms=entry.at_ms,
        amounts=amounts_message(entry.amounts),
        policy=policy_message(entry.policy),
        visit_type=visit.visit_type or "",
        first_day=visit.first_day.isoformat() if visit.first_day else "",
        last_day=visit.last_day.isoformat() if visit.last_day else "",
        hospital_level=visit.hospital_level or "",
    )


def journal_entry_of(message: pb.JournalEntry) -> JournalEntry:
    """A journal entry from its message.

    Raises:
        InvalidDocument: a visit fact is not well formed.
    """
    return JournalEntry(
        kind=EntryKind(message.kind),
        settlement_id=message.settlement_id,
        client_id=message.client_id,
        member_id=message.member_id,
        visit_id=message.visit_id,
        at_ms=message.at_ms,
        amounts=amounts_of(message.amounts),
        policy=policy_of(message.policy),
        visit=VisitFacts(
            visit_type=_optional_enum(VisitType, message.visit_type, "visit_type"),
            first_day=_optional_day(message.first_day, "first_day"),
            last_day=_optional_day(message.last_day, "last_day"),
            hospital_level=_optional_enum(HospitalLevel, message.hospital_level, "hospital_level"),
        ),
    )


# -- reconciliation --------------------------------------------------------------------------


def _funds_message(funds: Mapping[str, int]) -> pb.Amounts:
    return pb.Amounts(**{name: funds.get(name, 0) for name in RECONCILED_FUNDS})


def _funds_of(message: pb.Amounts) -> dict[str, int]:
    return {name: getattr(message, name) for name in RECONCILED_FUNDS}


def _totals_message(figures: DayFigures) -> pb.DayTotals:
    return pb.DayTotals(
        settlements=figures.settlements,
        reversals=figures.reversals,
        amounts=_funds_message(figures.amounts),
    )


def _totals_of(message: pb.DayTotals) -> DayFigures:
    return DayFigures(message.settlements, message.reversals, _funds_of(message.amounts))


def _group_key_of(visit_type: str, scheme: str) -> GroupKey:
    return GroupKey(
        _optional_enum(VisitType, visit_type, "groups.visit_type"),
        _optional_enum(Scheme, scheme, "groups.scheme"),
    )


def _group_message(key: GroupKey, figures: DayFigures | None = None) -> pb.GroupTotals:
    message = pb.GroupTotals(visit_type=key.visit_type or "", scheme=key.scheme or "")
    if figures is not None:
        message.totals.CopyFrom(_totals_message(figures))
    return message


def reconcile_request_message(
    client_id: str, day: date, hospital: HospitalDay, *, provisional: bool
) -> pb.ReconcileRequest:
    """A client's own figures of a day, to compare with onestop's."""
    message = pb.ReconcileRequest(
        client_id=client_id,
        date=day.isoformat(),
        hospital=_totals_message(hospital.totals),
        provisional=provisional,
    )
    if hospital.settlement_ids is not None:
        message.by_id = True
        message.settlement_ids.extend(hospital.settlement_ids)
    if hospital.settlement_amounts is not None:
        message.by_amounts = True
        message.settlement_amounts.extend(
            pb.SettlementAmounts(settlement_id=settlement_id, amounts=_funds_message(funds))
            for settlement_id, funds in hospital.settlement_amounts.items()
        )
    if hospital.groups is not None:
        message.by_group = True
        message.groups.extend(
            _group_message(key, figures) for key, figures in hospital.groups.items()
        )
    return message


def reconcile_request_of(message: pb.ReconcileRequest) -> tuple[date, HospitalDay]:
    """The day and the client's figures a reconcile request carries.

    Raises:
        InvalidDocument: the date, a visit type or a scheme is not well formed.
    """
    return day_of(message.date, "date"), HospitalDay(
        totals=_totals_of(message.hospital),
        settlement_ids=list(message.settlement_ids) if message.by_id else None,
        settlement_amounts=(
            {item.settlement_id: _funds_of(item.amounts) for item in message.settlement_amounts}
            if message.by_amounts
            else None
        ),
        groups=(
            {
                _group_key_of(group.visit_type, group.scheme): _totals_of(group.totals)
                for group in message.groups
            }
            if message.by_group
            else None
        ),
    )


def client_day_message(day: ClientDay) -> pb.ClientDayTotals:
    """One client's figures of a day."""
    return pb.ClientDayTotals(
        client_id=day.client_id,
        totals=_totals_message(day.totals),
        groups=[
            _group_message(key, figures)
            for key, figures in sorted(day.groups.items(), key=lambda item: item[0].sort_key())
        ],
    )


def client_days_of(message: pb.DayTotalsList) -> list[ClientDay]:
    """Each client's figures of a day.

    Raises:
        InvalidDocument: a visit type or scheme is not well formed.
    """
    return [
        ClientDay(
            item.client_id,
            _totals_of(item.totals),
            {
                _group_key_of(group.visit_type, group.scheme): _totals_of(group.totals)
                for group in item.groups
            },
        )
        for item in message.items
    ]


def reconciliation_message(answer: Reconciliation, at_ms: int) -> pb.ReconcileReply:
    """The comparison of a client's day."""
    groups = []
    for group in answer.groups:
        message = pb.GroupComparison(
            visit_type=group.key.visit_type or "",
            scheme=group.key.scheme or "",
            gateway=_totals_message(group.gateway),
            reported=group.hospital is not None,
        )
        if group.hospital is not None:
            message.hospital.CopyFrom(_totals_message(group.hospital))
        groups.append(message)
    return pb.ReconcileReply(
        gateway=_totals_message(answer.gateway),
        hospital=_totals_message(answer.hospital),
        only_in_gateway=answer.only_in_gateway,
        only_in_hospital=answer.only_in_hospital,
        amount_differences=[
            pb.AmountDifference(
                settlement_id=difference.settlement_id,
                gateway=_funds_message(difference.gateway),
                hospital=_funds_message(difference.hospital),
            )
            for difference in answer.amount_differences
        ],
        groups=groups,
        detail=answer.detail.value,
        at_ms=at_ms,
        recoveries=answer.recoveries.count,
        recovered=answer.recoveries.recovered,
    )


def reconciliation_of(message: pb.ReconcileReply) -> tuple[Reconciliation, int]:
    """The comparison, and when it was made (epoch ms).

    Raises:
        InvalidDocument: a visit type, scheme or detail is not well formed.
    """
    try:
        detail = Detail(message.detail)
    except ValueError:
        raise _malformed("detail", f"{message.detail!r} is not a detail") from None
    answer = Reconciliation(
        gateway=_totals_of(message.gateway),
        hospital=_totals_of(message.hospital),
        only_in_gateway=list(message.only_in_gateway),
        only_in_hospital=list(message.only_in_hospital),
        amount_differences=[
            AmountDifference(item.settlement_id, _funds_of(item.gateway), _funds_of(item.hospital))
            for item in message.amount_differences
        ],
        groups=[
            GroupComparison(
                _group_key_of(group.visit_type, group.scheme),
                _totals_of(group.gateway),
                _totals_of(group.hospital) if group.reported else None,
            )
            for group in message.groups
        ],
        detail=detail,
        recoveries=Recoveries(message.recoveries, message.recovered),
    )
    return answer, message.at_ms


def reconciliation_summary_message(summary: ReconciliationSummary) -> pb.ReconciliationSummary:
    """What is kept of one reconciliation."""
    return pb.ReconciliationSummary(
        client_id=summary.client_id,
        date=summary.day.isoformat(),
        at_ms=summary.at_ms,
        result=summary.outcome.value,
        provisional=summary.provisional,
        detail=summary.detail.value,
        differences=summary.differences,
        only_in_gateway=summary.only_in_gateway,
        only_in_hospital=summary.only_in_hospital,
        amount_differences=summary.amount_differences,
        unbalanced_groups=[_group_message(key) for key in summary.unbalanced_groups],
    )


def reconciliation_summary_of(message: pb.ReconciliationSummary) -> ReconciliationSummary:
    """One kept reconciliation from its message.

    Raises:
        InvalidDocument: a field is not well formed.
    """
    try:
        outcome, detail = Outcome(message.result), Detail(message.detail)
    except ValueError:
        raise _malformed("result", f"{message.result!r}/{message.detail!r}") from None
    return ReconciliationSummary(
        client_id=message.client_id,
        day=day_of(message.date, "date"),
        at_ms=message.at_ms,
        outcome=outcome,
        provisional=message.provisional,
        detail=detail,
        differences={
            name: message.differences.get(name, 0) for name in (*COUNTS, *RECONCILED_FUNDS)
        },
        only_in_gateway=message.only_in_gateway,
        only_in_hospital=message.only_in_hospital,
        amount_differences=message.amount_differences,
        unbalanced_groups=[
            _group_key_of(group.visit_type, group.scheme) for group in message.unbalanced_groups
        ],
    )


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


# -- the review queue ------------------------------------------------------------------------


def review_message(review: Review) -> pb.Review:
    """A review as the wire carries it."""
    return pb.Review(
        settlement_id=review.settlement_id,
        client_id=review.client_id,
        member_id=review.member_id,
        visit_id=review.visit_id,
        visit_type=review.visit_type.value,
        flagged_ms=review.flagged_ms,
        findings=[
            pb.ReviewFinding(
                control=finding.control.value,
                action=finding.action.value,
                message=finding.message,
                line_nos=finding.line_nos,
                related_settlement=finding.related_settlement or "",
            )
            for finding in review.findings
        ],
        funds_paid=review.funds_paid,
        status=review.status.value,
        decided_by=review.decided_by or "",
        decided_ms=review.decided_ms or 0,
        recovered=review.recovered,
        reason=review.reason or "",
        settlement_status=review.settlement_status.value if review.settlement_status else "",
    )


def review_status_of(text: str, field: str) -> ReviewStatus | None:
    """A status filter: empty for every status."""
    if not text:
        return None
    try:
        return ReviewStatus(text)
    except ValueError:
        choices = ", ".join(status.value for status in ReviewStatus)
        raise _malformed(field, f"{text!r} is not one of {choices}") from None


def review_decision_of(text: str, field: str) -> ReviewDecision:
    """A reviewer's decision."""
    try:
        return ReviewDecision(text)
    except ValueError:
        choices = ", ".join(decision.value for decision in ReviewDecision)
        raise _malformed(field, f"{text!r} is not one of {choices}") from None


def review_of(message: pb.Review) -> Review:
    """The review a message carries (the inverse of :func:`review_message`)."""
    try:
        return Review(
            settlement_id=message.settlement_id,
            client_id=message.client_id,
            member_id=message.member_id,
            visit_id=message.visit_id,
            visit_type=VisitType(message.visit_type),
            flagged_ms=message.flagged_ms,
            findings=tuple(
                Finding(
                    control=Control(finding.control),
                    action=ControlAction(finding.action),
                    message=finding.message,
                    line_nos=tuple(finding.line_nos),
                    related_settlement=finding.related_settlement or None,
                )
                for finding in message.findings
            ),
            funds_paid=message.funds_paid,
            status=ReviewStatus(message.status),
            decided_by=message.decided_by or None,
            decided_ms=message.decided_ms or None,
            recovered=message.recovered,
            reason=message.reason or None,
            settlement_status=(
                SettlementStatus(message.settlement_status) if message.settlement_status else None
            ),
        )
    except ValueError as error:
        raise _malformed("review", str(error)) from None
