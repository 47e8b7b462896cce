"""Typed records of what is stored, and their one conversion to and from Redis values.

The services read and write these records, never raw hash fields; every name comes from
:mod:`onestop.storage.layout`. Reading is lenient where the layout allows growth (a figure or
an amount a later version added reads as 0 in older data) and strict otherwise (a record
missing a field it always had is corrupt, and says so).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel

from onestop.domain.controls import Control, ControlAction, Finding, PastVisit
from onestop.domain.engine import Amounts
from onestop.domain.member import Member
from onestop.domain.reconciliation import (
    AMOUNT_FIELDS,
    COUNTS,
    RECONCILED_FUNDS,
    UNRECORDED_GROUP,
    UNRECORDED_VISIT,
    DayFigures,
    Detail,
    EntryKind,
    GroupKey,
    JournalEntry,
    Outcome,
    ReconciliationSummary,
    VisitFacts,
    sum_figures,
)
from onestop.domain.reviews import Review, ReviewStatus
from onestop.domain.settlement import PolicyRef, SettlementStatus
from onestop.domain.state import YEAR_COUNTERS, StateDelta, YearToDate, disease_figures
from onestop.domain.types import HospitalLevel, Scheme, VisitType
from onestop.storage.crypto import MemberCipher
from onestop.storage.layout import (
    CLAIMANT_FIELD_PREFIX,
    HISTORY_VISIT_TYPES,
    REQUEST_FIELD_PREFIX,
    STATE_AFTER_DISEASE,
    STATE_AFTER_FIGURES,
    AuditField,
    DayTotalField,
    HistoryField,
    JournalField,
    LookupField,
    MemberField,
    ReconciliationField,
    ReviewField,
    SettlementField,
    VisitClaimField,
    VisitField,
    group_of_total_field,
    group_total_field,
    request_field,
    reversed_amount_field,
    settled_amount_field,
    year_disease_field,
    year_disease_of_field,
    year_field,
    year_of_field,
)

RawHash = Mapping[bytes, bytes]
"""A hash as Redis answers it."""

Pairs = list[tuple[str, str | int]]
"""Field/value pairs of text and numbers, in the order a script writes them."""


class CorruptRecord(ValueError):
    """A stored record lacks a field it always has, or holds a value that does not parse."""


def _text(raw: RawHash, name: str, what: str) -> str:
    value = raw.get(name.encode())
    if value is None:
        raise CorruptRecord(f"{what} has no field {name!r}")
    return value.decode()


def _int(raw: RawHash, name: str, default: int | None = None) -> int:
    value = raw.get(name.encode())
    if value is None:
        if default is None:
            raise CorruptRecord(f"no field {name!r}")
        return default
    return int(value)


# -- members ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member as stored: the person, the account, the version, the years' figures.

    Attributes:
        version: moved by every commit and reversal (0 before the first).
        years: each policy year's figures.
    """

    member: Member
    balance: int
    version: int
    years: Mapping[int, YearToDate]

    def year(self, year: int) -> YearToDate:
        """The figures of ``year`` (all zero before the member's first visit that year)."""
        return self.years.get(year) or YearToDate()


def _windows_text(entries: tuple[BaseModel, ...]) -> str:
    return json.dumps(
        [entry.model_dump(mode="json", by_alias=True) for entry in entries],
        ensure_ascii=False,
        separators=(",", ":"),
    )


_LIST_FIELDS = (
    (MemberField.OUT_OF_REGION_REGISTRATIONS, "out_of_region_registrations"),
    (MemberField.REGISTERED_DISEASES, "registered_diseases"),
)
"""Member-hash fields written only when the member's list is not empty (added in 0.2.0)."""


def member_fields(member: Member, cipher: MemberCipher) -> dict[str, str | int | bytes]:
    """The hash fields a members-file line writes (the balance only when the line has one).

    A list the member does not have (registrations) is not written: see
    :func:`member_cleared_fields`.
    """
    values: dict[str, str | int | bytes] = {
        MemberField.BIRTH_DATE: member.birth_date.isoformat(),
        MemberField.SEX: member.sex,
        MemberField.REGION: member.region,
        MemberField.SCHEME: member.scheme.value,
        MemberField.STATUS: member.status.value,
        MemberField.ENROLLED_SINCE: member.enrolled_since.isoformat(),
        MemberField.SUPPLEMENTARY_ENROLLED: 1 if member.supplementary_enrolled else 0,
        MemberField.ASSISTANCE_CATEGORY: (
            member.assistance_category.value if member.assistance_category else ""
        ),
        MemberField.GROUPS: json.dumps(list(member.groups), ensure_ascii=False),
        MemberField.IDENTITY: cipher.seal(member.member_id, member.id_number, member.name),
    }
    if member.personal_account_balance is not None:
        values[MemberField.BALANCE] = member.personal_account_balance
    for field_name, attribute in _LIST_FIELDS:
        entries = getattr(member, attribute)
        if entries:
            values[field_name] = _windows_text(entries)
    return {str(name): value for name, value in values.items()}


def member_cleared_fields(member: Member) -> list[str]:
    """The fields a members-file line removes: its empty lists (a re-import may drop them)."""
    return [str(name) for name, attribute in _LIST_FIELDS if not getattr(member, attribute)]


def decode_member(member_id: str, raw: RawHash, cipher: MemberCipher) -> MemberRecord | None:
    """The member stored at ``member_id``'s key, ``None`` when there is none.

    Raises:
        CorruptRecord: the hash lacks a profile field.
        cryptography.exceptions.InvalidTag: the identity does not open with this key.
    """
    if not raw:
        return None
    what = f"member {member_id}"
    sealed = raw.get(MemberField.IDENTITY.encode())
    if sealed is None:
        raise CorruptRecord(f"{what} has no field {MemberField.IDENTITY.value!r}")
    id_number, name = cipher.open(member_id, sealed)
    member = Member.model_validate(
        {
            "member_id": member_id,
            "id_number": id_number,
            "name": name,
            "birth_date": _text(raw, MemberField.BIRTH_DATE, what),
            "sex": _text(raw, MemberField.SEX, what),
            "region": _text(raw, MemberField.REGION, what),
            "scheme": _text(raw, MemberField.SCHEME, what),
            "status": _text(raw, MemberField.STATUS, what),
            "enrolled_since": _text(raw, MemberField.ENROLLED_SINCE, what),
            "supplementary_enrolled": _text(raw, MemberField.SUPPLEMENTARY_ENROLLED, what) == "1",
            "assistance_category": _text(raw, MemberField.ASSISTANCE_CATEGORY, what) or None,
            "groups": tuple(json.loads(_text(raw, MemberField.GROUPS, what))),
            **{
                attribute: json.loads(raw[name.encode()])
                for name, attribute in _LIST_FIELDS
                if name.encode() in raw
            },
        }
    )
    figures: dict[int, dict[str, int]] = {}
    diseases: dict[int, dict[str, int]] = {}
    for key, value in raw.items():
        name = key.decode()
        parsed = year_of_field(name)
        if parsed is not None:
            year, figure = parsed
            figures.setdefault(year, {})[figure] = int(value)
            continue
        disease = year_disease_of_field(name)
        if disease is not None:
            year, code = disease
            diseases.setdefault(year, {})[code] = int(value)
    return MemberRecord(
        member=member,
        balance=_int(raw, MemberField.BALANCE, 0),
        version=_int(raw, MemberField.VERSION, 0),
        years={
            year: YearToDate(
                **figures.get(year, {}), diseases=disease_figures(diseases.get(year, {}))
            )
            for year in figures.keys() | diseases.keys()
        },
    )


def member_increments(year: int, delta: StateDelta, *, undo: bool = False) -> Pairs:
    """What a settlement adds to the member's hash (or, ``undo``, takes back), by field.

    The balance moves the other way from the account payment; the version moves by one
    either way. Zero increments are left out.
    """
    sign = -1 if undo else 1
    pairs: Pairs = [
        (year_field(year, figure), sign * getattr(delta, figure))
        for figure in YEAR_COUNTERS
        if getattr(delta, figure)
    ]
    pairs.extend(
        (year_disease_field(year, code), sign * value) for code, value in delta.diseases if value
    )
    if delta.personal_account:
        pairs.append((MemberField.BALANCE.value, -sign * delta.personal_account))
    pairs.append((MemberField.VERSION.value, 1))
    return pairs


def state_capture(year: int, delta: StateDelta) -> Pairs:
    """What a reversal of ``delta`` reads of the member after the undo: name -> member field.

    The year's figures and the balance, and the figure of each disease the settlement added
    to (``disease:CODE``).
    """
    pairs: Pairs = [
        (
            figure,
            MemberField.BALANCE.value
            if figure == "personal_account_balance"
            else year_field(year, figure),
        )
        for figure in STATE_AFTER_FIGURES
    ]
    pairs.extend(
        (f"{STATE_AFTER_DISEASE}{code}", year_disease_field(year, code))
        for code, _ in delta.diseases
    )
    return pairs


@dataclass(frozen=True, slots=True)
class StateAfter:
    """The member's figures of the settlement's year right after a reversal, and balance."""

    year_to_date: YearToDate
    balance: int


def decode_state_after(text: str | bytes) -> StateAfter:
    """The ``state_after`` a reversal stored (values missing from the member read as 0)."""
    values = {name: int(value or 0) for name, value in json.loads(text).items()}
    balance = values.pop("personal_account_balance", 0)
    diseases = {
        name.removeprefix(STATE_AFTER_DISEASE): values.pop(name)
        for name in [name for name in values if name.startswith(STATE_AFTER_DISEASE)]
    }
    return StateAfter(YearToDate(**values, diseases=disease_figures(diseases)), balance)


# -- stays and visits ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stay:
    """An active inpatient stay of a member, held by a settlement."""

    settlement_id: str
    admission: date
    discharge: date


def stay_value(admission: date, discharge: date) -> str:
    """A stay as stored: an ISO 8601 interval of dates, ``2026-03-01/2026-03-09``."""
    return f"{admission.isoformat()}/{discharge.isoformat()}"


def decode_stays(raw: RawHash) -> tuple[Stay, ...]:
    """Every active stay of a member."""
    stays = []
    for settlement_id, value in raw.items():
        admission, _, discharge = value.decode().partition("/")
        stays.append(
            Stay(
                settlement_id.decode(), date.fromisoformat(admission), date.fromisoformat(discharge)
            )
        )
    return tuple(stays)


# -- history and reviews (controls across visits, 0.2.0) -------------------------------------


def history_value(entry: PastVisit) -> str:
    """A history entry as stored: a JSON object by :class:`HistoryField` name, short."""
    value: dict[str, Any] = {
        HistoryField.CLIENT_ID.value: entry.client_id,
        HistoryField.VISIT_TYPE.value: HISTORY_VISIT_TYPES[entry.visit_type.value],
        HistoryField.FIRST_DAY.value: entry.first_day.isoformat(),
        HistoryField.BILL_DIGEST.value: entry.bill_digest,
    }
    if entry.last_day != entry.first_day:
        value[HistoryField.LAST_DAY.value] = entry.last_day.isoformat()
    if entry.categories:
        value[HistoryField.CATEGORIES.value] = list(entry.categories)
    if entry.quantities:
        value[HistoryField.QUANTITIES.value] = {
            code: format(quantity.normalize(), "f") for code, quantity in entry.quantities
        }
    return orjson.dumps(value).decode()


_VISIT_TYPE_OF_LETTER = {letter: VisitType(name) for name, letter in HISTORY_VISIT_TYPES.items()}


def decode_history(raw: RawHash) -> tuple[PastVisit, ...]:
    """Every entry of a member's history (settlement id -> :func:`history_value`)."""
    entries = []
    for settlement_id, text in raw.items():
        try:
            value = orjson.loads(text)
            first_day = date.fromisoformat(value[HistoryField.FIRST_DAY])
            last_day = value.get(HistoryField.LAST_DAY)
            entries.append(
                PastVisit(
                    settlement_id=settlement_id.decode(),
                    client_id=value[HistoryField.CLIENT_ID],
                    visit_type=_VISIT_TYPE_OF_LETTER[value[HistoryField.VISIT_TYPE]],
                    first_day=first_day,
                    last_day=first_day if last_day is None else date.fromisoformat(last_day),
                    categories=tuple(value.get(HistoryField.CATEGORIES, ())),
                    bill_digest=value[HistoryField.BILL_DIGEST],
                    quantities=tuple(
                        sorted(
                            (code, Decimal(quantity))
                            for code, quantity in value.get(HistoryField.QUANTITIES, {}).items()
                        )
                    ),
                )
            )
        except (KeyError, ValueError, ArithmeticError) as error:
            raise CorruptRecord(f"history entry {settlement_id!r}: {error}") from error
    return tuple(entries)


def _finding_value(finding: Finding) -> dict[str, Any]:
    return {
        "control": finding.control.value,
        "action": finding.action.value,
        "message": finding.message,
        "line_nos": list(finding.line_nos),
        "related_settlement": finding.related_settlement,
    }


def review_fields(review: Review) -> Pairs:
    """A new review's hash fields (open: no decision yet)."""
    return [
        (ReviewField.SETTLEMENT_ID.value, review.settlement_id),
        (ReviewField.CLIENT_ID.value, review.client_id),
        (ReviewField.MEMBER_ID.value, review.member_id),
        (ReviewField.VISIT_ID.value, review.visit_id),
        (ReviewField.VISIT_TYPE.value, review.visit_type.value),
        (ReviewField.FLAGGED_MS.value, review.flagged_ms),
        (
            ReviewField.FINDINGS.value,
            orjson.dumps([_finding_value(finding) for finding in review.findings]).decode(),
        ),
        (ReviewField.FUNDS_PAID.value, review.funds_paid),
        (ReviewField.STATUS.value, review.status.value),
    ]


def decision_fields(review: Review) -> Pairs:
    """What a decision writes on its review."""
    return [
        (ReviewField.STATUS.value, review.status.value),
        (ReviewField.DECIDED_BY.value, review.decided_by or ""),
        (ReviewField.DECIDED_MS.value, review.decided_ms or 0),
        (ReviewField.RECOVERED.value, review.recovered),
        (ReviewField.REASON.value, review.reason or ""),
    ]


def decode_review(raw: RawHash) -> Review | None:
    """A review, ``None`` when there is none."""
    if not raw:
        return None
    what = "a review"
    try:
        findings = tuple(
            Finding(
                control=Control(item["control"]),
                action=ControlAction(item["action"]),
                message=item["message"],
                line_nos=tuple(item["line_nos"]),
                related_settlement=item["related_settlement"],
            )
            for item in orjson.loads(_text(raw, ReviewField.FINDINGS, what))
        )
        decided_by = raw.get(ReviewField.DECIDED_BY.value.encode(), b"").decode()
        decided_ms = _int(raw, ReviewField.DECIDED_MS, 0)
        reason = raw.get(ReviewField.REASON.value.encode(), b"").decode()
        return Review(
            settlement_id=_text(raw, ReviewField.SETTLEMENT_ID, what),
            client_id=_text(raw, ReviewField.CLIENT_ID, what),
            member_id=_text(raw, ReviewField.MEMBER_ID, what),
            visit_id=_text(raw, ReviewField.VISIT_ID, what),
            visit_type=VisitType(_text(raw, ReviewField.VISIT_TYPE, what)),
            flagged_ms=_int(raw, ReviewField.FLAGGED_MS),
            findings=findings,
            funds_paid=_int(raw, ReviewField.FUNDS_PAID),
            status=ReviewStatus(_text(raw, ReviewField.STATUS, what)),
            decided_by=decided_by or None,
            decided_ms=decided_ms or None,
            recovered=_int(raw, ReviewField.RECOVERED, 0),
            reason=reason or None,
        )
    except (KeyError, ValueError, TypeError) as error:
        if isinstance(error, CorruptRecord):
            raise
        raise CorruptRecord(f"{what}: {error}") from error


@dataclass(frozen=True, slots=True)
class VisitIndex:
    """Which settlement holds a (client, visit), with which request, and all requests so far.

    Attributes:
        requests: fingerprint -> the settlement that request made (reversed ones included).
    """

    settlement_id: str
    fingerprint: bytes
    status: SettlementStatus
    requests: Mapping[bytes, str]


def visit_fields(settlement_id: str, fingerprint: bytes) -> Pairs:
    """The visit index of a new settlement (the requests before it stay)."""
    return [
        (VisitField.SETTLEMENT_ID.value, settlement_id),
        (VisitField.FINGERPRINT.value, fingerprint.hex()),
        (VisitField.STATUS.value, SettlementStatus.SETTLED.value),
        (request_field(fingerprint), settlement_id),
    ]


def decode_visit(raw: RawHash) -> VisitIndex | None:
    """The visit index, ``None`` when the visit was never settled."""
    if not raw:
        return None
    what = "a visit index"
    settlement_id = _text(raw, VisitField.SETTLEMENT_ID, what)
    fingerprint = bytes.fromhex(_text(raw, VisitField.FINGERPRINT, what))
    prefix = REQUEST_FIELD_PREFIX.encode()
    # An index written before requests were kept names only its current one.
    requests = {fingerprint: settlement_id}
    for name, value in raw.items():
        if name.startswith(prefix):
            requests[bytes.fromhex(name[len(prefix) :].decode())] = value.decode()
    return VisitIndex(
        settlement_id=settlement_id,
        fingerprint=fingerprint,
        status=SettlementStatus(_text(raw, VisitField.STATUS, what)),
        requests=requests,
    )


@dataclass(frozen=True, slots=True)
class VisitClaim:
    """Which member a (client, visit) belongs to, claimed by which request, when."""

    member_id: str
    token: str
    claimed_ms: int


def visit_claim_fields(claim: VisitClaim) -> Pairs:
    """A claim's fields."""
    return [
        (VisitClaimField.MEMBER_ID.value, claim.member_id),
        (VisitClaimField.TOKEN.value, claim.token),
        (VisitClaimField.CLAIMED_MS.value, claim.claimed_ms),
    ]


def decode_visit_claim(raw: RawHash) -> VisitClaim | None:
    """A visit's claim, ``None`` when no request holds the visit now."""
    if VisitClaimField.MEMBER_ID.value.encode() not in raw:
        return None  # never claimed, or given up (only the record of claimants is left)
    what = "a visit claim"
    return VisitClaim(
        member_id=_text(raw, VisitClaimField.MEMBER_ID, what),
        token=_text(raw, VisitClaimField.TOKEN, what),
        claimed_ms=int(_text(raw, VisitClaimField.CLAIMED_MS, what)),
    )


def decode_claimants(raw: RawHash) -> list[str]:
    """Every member that ever held a visit, in the order they first claimed it."""
    prefix = CLAIMANT_FIELD_PREFIX.encode()
    found = [
        (int(value), name[len(prefix) :].decode())
        for name, value in raw.items()
        if name.startswith(prefix)
    ]
    return [member_id for _, member_id in sorted(found)]


# -- settlements -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A settlement as answered, in the form its hash keeps it.

    Attributes:
        data: the field's bytes.
        packed: whether they are a compressed ``PackedSettlement`` (field
            :attr:`SettlementField.PACKED`, written since 0.2.0) rather than a plain ``Settlement``
            (field :attr:`SettlementField.RECORD`, before). :mod:`onestop.wire` reads both.
    """

    data: bytes
    packed: bool

    @property
    def field(self) -> str:
        """The hash field that holds it."""
        return (SettlementField.PACKED if self.packed else SettlementField.RECORD).value


_PACKED_FIELD = SettlementField.PACKED.value.encode()
_RECORD_FIELD = SettlementField.RECORD.value.encode()


def stored_answer(raw: RawHash) -> StoredAnswer | None:
    """The answer a settlement's hash (or the archive's copy of it) holds, ``None`` if none."""
    packed = raw.get(_PACKED_FIELD)
    if packed is not None:
        return StoredAnswer(packed, packed=True)
    plain = raw.get(_RECORD_FIELD)
    return None if plain is None else StoredAnswer(plain, packed=False)


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A committed settlement as stored.

    Attributes:
        record: the settlement as answered.
        delta: exactly what it added to the member's figures and took from the account.
        reversed_ms: when it was reversed, if it was.
        state_after: the member's figures right after the reversal, if it was reversed.
    """

    settlement_id: str
    status: SettlementStatus
    fingerprint: bytes
    client_id: str
    member_id: str
    visit_id: str
    policy_year: int
    committed_ms: int
    delta: StateDelta
    record: StoredAnswer
    visit: VisitFacts = UNRECORDED_VISIT
    """Unrecorded for a settlement committed before 0.2.0."""
    reversed_ms: int | None = None
    state_after: StateAfter | None = None


def _visit_pairs(
    visit: VisitFacts,
    fields: tuple[str, str, str, str],
) -> Pairs:
    """The visit's facts under the four field names given; an unrecorded fact as empty text."""
    values = (
        visit.visit_type.value if visit.visit_type else "",
        visit.first_day.isoformat() if visit.first_day else "",
        visit.last_day.isoformat() if visit.last_day else "",
        visit.hospital_level.value if visit.hospital_level else "",
    )
    return list(zip(fields, values, strict=True))


def _decode_visit(raw: RawHash, fields: tuple[str, str, str, str]) -> VisitFacts:
    """Facts stored by :func:`_visit_pairs`; absent or empty ones are unrecorded."""
    visit_type, first_day, last_day, level = (
        raw.get(name.encode(), b"").decode() for name in fields
    )
    return VisitFacts(
        visit_type=VisitType(visit_type) if visit_type else None,
        first_day=date.fromisoformat(first_day) if first_day else None,
        last_day=date.fromisoformat(last_day) if last_day else None,
        hospital_level=HospitalLevel(level) if level else None,
    )


_SETTLEMENT_VISIT_FIELDS = (
    SettlementField.VISIT_TYPE.value,
    SettlementField.FIRST_DAY.value,
    SettlementField.LAST_DAY.value,
    SettlementField.HOSPITAL_LEVEL.value,
)
_JOURNAL_VISIT_FIELDS = (
    JournalField.VISIT_TYPE.value,
    JournalField.FIRST_DAY.value,
    JournalField.LAST_DAY.value,
    JournalField.HOSPITAL_LEVEL.value,
)


def settlement_fields(settlement: SettlementRecord) -> Pairs:
    """The hash fields a commit writes for a new settlement, but its binary record.

    The record is written under its own field (:attr:`StoredAnswer.field`) beside these.
    """
    return [
        (SettlementField.STATUS.value, settlement.status.value),
        (SettlementField.FINGERPRINT.value, settlement.fingerprint.hex()),
        (SettlementField.CLIENT_ID.value, settlement.client_id),
        (SettlementField.MEMBER_ID.value, settlement.member_id),
        (SettlementField.VISIT_ID.value, settlement.visit_id),
        (SettlementField.POLICY_YEAR.value, settlement.policy_year),
        (SettlementField.COMMITTED_MS.value, settlement.committed_ms),
        (SettlementField.DELTA.value, delta_text(settlement.delta)),
        *_visit_pairs(settlement.visit, _SETTLEMENT_VISIT_FIELDS),
    ]


def delta_text(delta: StateDelta) -> str:
    """A settlement's increments as a JSON object, by name (:meth:`StateDelta.as_dict`)."""
    return json.dumps(delta.as_dict(), separators=(",", ":"), ensure_ascii=False)


def decode_delta(text: str | bytes) -> StateDelta:
    """Increments stored by :func:`delta_text` (a name a later version added reads as 0)."""
    return StateDelta.of_dict(json.loads(text))


def decode_settlement(settlement_id: str, raw: RawHash) -> SettlementRecord | None:
    """The settlement stored under ``settlement_id``, ``None`` when there is none.

    Raises:
        CorruptRecord: a field every settlement has is missing.
    """
    if not raw:
        return None
    what = f"settlement {settlement_id}"
    record = stored_answer(raw)
    if record is None:
        raise CorruptRecord(
            f"{what} has neither field {SettlementField.PACKED.value!r}"
            f" nor {SettlementField.RECORD.value!r}"
        )
    state_after = raw.get(SettlementField.STATE_AFTER.encode())
    reversed_ms = raw.get(SettlementField.REVERSED_MS.encode())
    return SettlementRecord(
        settlement_id=settlement_id,
        status=SettlementStatus(_text(raw, SettlementField.STATUS, what)),
        fingerprint=bytes.fromhex(_text(raw, SettlementField.FINGERPRINT, what)),
        client_id=_text(raw, SettlementField.CLIENT_ID, what),
        member_id=_text(raw, SettlementField.MEMBER_ID, what),
        visit_id=_text(raw, SettlementField.VISIT_ID, what),
        policy_year=int(_text(raw, SettlementField.POLICY_YEAR, what)),
        committed_ms=int(_text(raw, SettlementField.COMMITTED_MS, what)),
        delta=decode_delta(_text(raw, SettlementField.DELTA, what)),
        record=record,
        visit=_decode_visit(raw, _SETTLEMENT_VISIT_FIELDS),
        reversed_ms=int(reversed_ms) if reversed_ms is not None else None,
        state_after=decode_state_after(state_after) if state_after is not None else None,
    )


def reversal_fields(reversed_ms: int) -> Pairs:
    """What a reversal sets on the settlement (besides the state it captures)."""
    return [
        (SettlementField.STATUS.value, SettlementStatus.REVERSED.value),
        (SettlementField.REVERSED_MS.value, reversed_ms),
    ]


# -- the journal and the day totals ----------------------------------------------------------


def journal_fields(entry: JournalEntry) -> Pairs:
    """A journal entry's fields: who, when, which policy, and every amount by name."""
    pairs: Pairs = [
        (JournalField.KIND.value, entry.kind.value),
        (JournalField.SETTLEMENT_ID.value, entry.settlement_id),
        (JournalField.CLIENT_ID.value, entry.client_id),
        (JournalField.MEMBER_ID.value, entry.member_id),
        (JournalField.VISIT_ID.value, entry.visit_id),
        (JournalField.AT_MS.value, entry.at_ms),
        (JournalField.POLICY_REGION.value, entry.policy.region),
        (JournalField.POLICY_SCHEME.value, entry.policy.scheme.value),
        (JournalField.POLICY_YEAR.value, entry.policy.year),
        (JournalField.POLICY_VERSION.value, entry.policy.version),
        (JournalField.POLICY_EFFECTIVE_FROM.value, entry.policy.effective_from.isoformat()),
        *_visit_pairs(entry.visit, _JOURNAL_VISIT_FIELDS),
    ]
    pairs.extend(asdict(entry.amounts).items())
    return pairs


def decode_journal_entry(raw: RawHash) -> JournalEntry:
    """A journal entry (an amount a later version added reads as 0 in older entries).

    Raises:
        CorruptRecord: a field every entry has is missing.
    """
    what = "a journal entry"
    year = int(_text(raw, JournalField.POLICY_YEAR, what))
    effective_from = raw.get(JournalField.POLICY_EFFECTIVE_FROM.encode())
    return JournalEntry(
        kind=EntryKind(_text(raw, JournalField.KIND, what)),
        settlement_id=_text(raw, JournalField.SETTLEMENT_ID, what),
        client_id=_text(raw, JournalField.CLIENT_ID, what),
        member_id=_text(raw, JournalField.MEMBER_ID, what),
        visit_id=_text(raw, JournalField.VISIT_ID, what),
        at_ms=int(_text(raw, JournalField.AT_MS, what)),
        amounts=Amounts(**{name: _int(raw, name, 0) for name in AMOUNT_FIELDS}),
        policy=PolicyRef(
            region=_text(raw, JournalField.POLICY_REGION, what),
            scheme=Scheme(_text(raw, JournalField.POLICY_SCHEME, what)),
            year=year,
            version=_text(raw, JournalField.POLICY_VERSION, what),
            effective_from=(
                date.fromisoformat(effective_from.decode()) if effective_from else date(year, 1, 1)
            ),
        ),
        visit=_decode_visit(raw, _JOURNAL_VISIT_FIELDS),
    )


def day_total_increments(
    kind: EntryKind, amounts: Amounts, visit_type: VisitType, scheme: Scheme
) -> Pairs:
    """What one journal entry adds to its client's day totals, and to its group's.

    The groups (visit type and scheme) count the reconciled funds only: the split is what
    reconciliation compares, and every field costs memory on each client's day.
    """
    if kind is EntryKind.SETTLEMENT:
        counter, named = DayTotalField.SETTLEMENTS.value, settled_amount_field
    else:
        counter, named = DayTotalField.REVERSALS.value, reversed_amount_field
    values = asdict(amounts)
    pairs: Pairs = [(counter, 1)]
    pairs.extend((named(name), value) for name, value in values.items() if value)
    pairs.append((group_total_field(visit_type, scheme, counter), 1))
    pairs.extend(
        (group_total_field(visit_type, scheme, named(name)), values[name])
        for name in RECONCILED_FUNDS
        if values[name]
    )
    return pairs


@dataclass
class _Sums:
    """Counts and amounts, settled and reversed, as day totals keep them."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    settled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AMOUNT_FIELDS, 0))
    reversed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AMOUNT_FIELDS, 0))

    def add(self, name: str, value: int) -> None:
        if name in self.counts:
            self.counts[name] += value
            return
        kind, _, amount = name.partition(":")
        if kind == "settled" and amount in self.settled:
            self.settled[amount] += value
        elif kind == "reversed" and amount in self.reversed:
            self.reversed[amount] += value

    def figures(self) -> DayFigures:
        return DayFigures(
            self.counts["settlements"],
            self.counts["reversals"],
            {name: self.settled[name] - self.reversed[name] for name in AMOUNT_FIELDS},
        )


@dataclass
class DayTotals:
    """A client's day summed over the slot groups' day totals, and split by group."""

    total: _Sums = field(default_factory=_Sums)
    groups: dict[tuple[str, str], _Sums] = field(default_factory=dict)

    def add(self, raw: RawHash) -> None:
        """Add one group's day-totals hash (a field of a later version is left alone)."""
        for raw_name, raw_value in raw.items():
            name = raw_name.decode()
            group = group_of_total_field(name)
            if group is None:
                self.total.add(name, int(raw_value))
            else:
                visit_type, scheme, total_field = group
                sums = self.groups.setdefault((visit_type, scheme), _Sums())
                sums.add(total_field, int(raw_value))

    def figures(self) -> DayFigures:
        """Counts, and amounts settled minus amounts reversed."""
        return self.total.figures()

    def group_figures(self) -> dict[GroupKey, DayFigures]:
        """The day by visit type and scheme; what the groups leave out is the unrecorded one.

        Day totals written before the split was recorded have no group fields: that part of
        the day is :data:`~onestop.domain.reconciliation.UNRECORDED_GROUP`.
        """
        split = {
            GroupKey(VisitType(visit_type), Scheme(scheme)): sums.figures()
            for (visit_type, scheme), sums in self.groups.items()
        }
        rest = self.figures().less(sum_figures(split.values()))
        if not rest.is_empty():
            split[UNRECORDED_GROUP] = rest
        return split


def sum_day_totals(hashes: Iterable[RawHash]) -> DayTotals:
    """A client's day from its day-totals hashes of every slot group."""
    totals = DayTotals()
    for raw in hashes:
        if raw:
            totals.add(raw)
    return totals


# -- reconciliations -------------------------------------------------------------------------


def reconciliation_fields(summary: ReconciliationSummary) -> dict[str, str]:
    """A reconciliation entry's stream fields (the day is the stream's)."""
    groups = [
        {"visit_type": key.visit_type, "scheme": key.scheme} for key in summary.unbalanced_groups
    ]
    return {
        ReconciliationField.CLIENT_ID.value: summary.client_id,
        ReconciliationField.AT_MS.value: str(summary.at_ms),
        ReconciliationField.RESULT.value: summary.outcome.value,
        ReconciliationField.PROVISIONAL.value: "1" if summary.provisional else "0",
        ReconciliationField.DETAIL.value: summary.detail.value,
        ReconciliationField.DIFFERENCES.value: json.dumps(
            summary.differences, separators=(",", ":")
        ),
        ReconciliationField.ONLY_IN_GATEWAY.value: str(summary.only_in_gateway),
        ReconciliationField.ONLY_IN_HOSPITAL.value: str(summary.only_in_hospital),
        ReconciliationField.AMOUNT_DIFFERENCES.value: str(summary.amount_differences),
        ReconciliationField.UNBALANCED_GROUPS.value: json.dumps(groups, separators=(",", ":")),
    }


def decode_reconciliation(raw: RawHash, day: date) -> ReconciliationSummary:
    """A reconciliation entry as stored (a count or fund a later version added reads as 0).

    Raises:
        CorruptRecord: a field every entry has is missing.
    """
    what = "a reconciliation entry"
    differences = json.loads(_text(raw, ReconciliationField.DIFFERENCES, what))
    return ReconciliationSummary(
        client_id=_text(raw, ReconciliationField.CLIENT_ID, what),
        day=day,
        at_ms=int(_text(raw, ReconciliationField.AT_MS, what)),
        outcome=Outcome(_text(raw, ReconciliationField.RESULT, what)),
        provisional=_text(raw, ReconciliationField.PROVISIONAL, what) == "1",
        detail=Detail(_text(raw, ReconciliationField.DETAIL, what)),
        differences={name: int(differences.get(name, 0)) for name in (*COUNTS, *RECONCILED_FUNDS)},
        only_in_gateway=int(_text(raw, ReconciliationField.ONLY_IN_GATEWAY, what)),
        only_in_hospital=int(_text(raw, ReconciliationField.ONLY_IN_HOSPITAL, what)),
        amount_differences=int(_text(raw, ReconciliationField.AMOUNT_DIFFERENCES, what)),
        unbalanced_groups=[
            GroupKey(
                VisitType(group["visit_type"]) if group["visit_type"] else None,
                Scheme(group["scheme"]) if group["scheme"] else None,
            )
            for group in json.loads(_text(raw, ReconciliationField.UNBALANCED_GROUPS, what))
        ],
    )


# -- the mapping audit trail -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change to a client's mapping: who, when, which code, the rows before and after.

    Attributes:
        change: ``added``, ``removed`` or ``changed``.
        old: the code's rows before, as CSV lines (empty when added).
        new: the code's rows after, as CSV lines (empty when removed).
        risky: the code moved to an item of another kind or category (confirmed).
    """

    at: str
    changed_by: str
    version: str
    his_code: str
    change: str
    old: str
    new: str
    risky: bool
    reason: str


def audit_fields(entry: AuditEntry) -> dict[str, str]:
    """An audit entry's stream fields."""
    return {
        AuditField.AT.value: entry.at,
        AuditField.CHANGED_BY.value: entry.changed_by,
        AuditField.VERSION.value: entry.version,
        AuditField.HIS_CODE.value: entry.his_code,
        AuditField.CHANGE.value: entry.change,
        AuditField.OLD.value: entry.old,
        AuditField.NEW.value: entry.new,
        AuditField.RISKY.value: "1" if entry.risky else "0",
        AuditField.REASON.value: entry.reason,
    }


def decode_audit_entry(raw: RawHash) -> AuditEntry:
    """An audit entry as stored."""
    what = "a mapping audit entry"
    return AuditEntry(
        at=_text(raw, AuditField.AT, what),
        changed_by=_text(raw, AuditField.CHANGED_BY, what),
        version=_text(raw, AuditField.VERSION, what),
        his_code=_text(raw, AuditField.HIS_CODE, what),
        change=_text(raw, AuditField.CHANGE, what),
        old=_text(raw, AuditField.OLD, what),
        new=_text(raw, AuditField.NEW, what),
        risky=_text(raw, AuditField.RISKY, what) == "1",
        reason=_text(raw, AuditField.REASON, what),
    )


# -- the lookup audit trail ------------------------------------------------------------------


class LookupKind(StrEnum):
    """How a member was looked up."""

    ELIGIBILITY = "eligibility"
    """By member id (``GET /v1/members/{id}/eligibility``)."""
    LOOKUP = "lookup"
    """By id number (``POST /v1/members/lookup``)."""


@dataclass(frozen=True, slots=True)
class LookupEntry:
    """One eligibility check or member lookup, as the audit trail keeps it.

    Attributes:
        member_id: the member found, or empty.
        blind_index: for a lookup by id number, its keyed digest (never the number).
    """

    at: str
    client_id: str
    kind: LookupKind
    member_id: str
    found: bool
    asked_date: str
    blind_index: str = ""


def lookup_fields(entry: LookupEntry) -> dict[str, str]:
    """A lookup-audit entry's stream fields."""
    return {
        LookupField.AT.value: entry.at,
        LookupField.CLIENT_ID.value: entry.client_id,
        LookupField.KIND.value: entry.kind.value,
        LookupField.MEMBER_ID.value: entry.member_id,
        LookupField.FOUND.value: "1" if entry.found else "0",
        LookupField.ASKED_DATE.value: entry.asked_date,
        LookupField.BLIND_INDEX.value: entry.blind_index,
    }


def decode_lookup_entry(raw: RawHash) -> LookupEntry:
    """A lookup-audit entry as stored."""
    what = "a lookup audit entry"
    return LookupEntry(
        at=_text(raw, LookupField.AT, what),
        client_id=_text(raw, LookupField.CLIENT_ID, what),
        kind=LookupKind(_text(raw, LookupField.KIND, what)),
        member_id=_text(raw, LookupField.MEMBER_ID, what),
        found=_text(raw, LookupField.FOUND, what) == "1",
        asked_date=_text(raw, LookupField.ASKED_DATE, what),
        blind_index=raw.get(LookupField.BLIND_INDEX.encode(), b"").decode(),
    )
