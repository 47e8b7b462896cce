"""Typed records of the national interface's state, and their one conversion to Redis values.

Names come from :mod:`onestop.storage.layout` (``NationalMessageField``, ``NationalVisitField``,
``NationalLineField``); everything is stored by name. Reading is lenient where the layout may
grow (a name a later version adds is ignored, one missing reads as empty) and strict where a
record always has a field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from onestop.storage.layout import (
    NationalLineField,
    NationalMessageField,
    NationalMessageState,
    NationalVisitField,
)
from onestop.storage.records import CorruptRecord

_F = NationalMessageField


@dataclass(frozen=True, slots=True)
class NationalMessage:
    """What onestop keeps of one national message (by client and ``msgid``).

    Attributes:
        digest: SHA-256 (hex) of the message's ``infno`` and ``input``.
        at_ms: when it arrived (revoked: when the 2601 did).
        fingerprint: the settlement request's identity (hex) when it settles or previews.
        answer: the answer's envelope once answered, as the JSON text sent.
    """

    state: NationalMessageState
    infno: str
    digest: str
    at_ms: int
    member_id: str = ""
    mdtrt_id: str = ""
    fingerprint: str = ""
    answer: str | None = None
    revoked_by: str = ""

    def to_json(self) -> bytes:
        """The stored value: a JSON object by name."""
        values: dict[str, Any] = {
            _F.STATE: self.state.value,
            _F.INFNO: self.infno,
            _F.DIGEST: self.digest,
            _F.AT_MS: self.at_ms,
            _F.MEMBER_ID: self.member_id,
            _F.MDTRT_ID: self.mdtrt_id,
            _F.FINGERPRINT: self.fingerprint,
            _F.REVOKED_BY: self.revoked_by,
        }
        if self.answer is not None:
            values[_F.ANSWER] = self.answer
        return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> NationalMessage:
        """A stored message.

        Raises:
            CorruptRecord: not a JSON object with a state, an infno and a time.
        """
        try:
            values = json.loads(raw)
            return cls(
                state=NationalMessageState(values[_F.STATE]),
                infno=str(values[_F.INFNO]),
                digest=str(values.get(_F.DIGEST, "")),
                at_ms=int(values[_F.AT_MS]),
                member_id=str(values.get(_F.MEMBER_ID, "")),
                mdtrt_id=str(values.get(_F.MDTRT_ID, "")),
                fingerprint=str(values.get(_F.FINGERPRINT, "")),
                answer=values.get(_F.ANSWER),
                revoked_by=str(values.get(_F.REVOKED_BY, "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptRecord(f"a national message record does not read: {error}") from None

    def answered(self, answer: str) -> NationalMessage:
        """The same message with its answer."""
        return replace(self, state=NationalMessageState.ANSWERED, answer=answer)


_V = NationalVisitField


class NationalVisitStatus:
    """A national visit's ``status`` values."""

    OPEN = "open"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class NationalVisit:
    """A visit the national interface registered (2201, 2401) or a pharmacy sale made (2102).

    Attributes:
        visit_type: ``outpatient``, ``inpatient`` or ``pharmacy`` as registered; an outpatient
            visit settles as the type its ``med_type`` names.
        begin: registration or admission time (日期时间型).
        end: discharge time, once discharged.
        diagnoses: diagnosis codes the messages named.
        person: the member as answers show it (masked), by name.
    """

    visit_type: str
    med_type: str
    insutype: str
    begin: str
    status: str
    his_number: str
    registered_by: str
    member_id: str = ""
    end: str = ""
    diagnoses: tuple[str, ...] = ()
    person: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        """The hash fields."""
        return {
            _V.VISIT_TYPE: self.visit_type,
            _V.MED_TYPE: self.med_type,
            _V.INSUTYPE: self.insutype,
            _V.BEGIN: self.begin,
            _V.END: self.end,
            _V.STATUS: self.status,
            _V.HIS_NUMBER: self.his_number,
            _V.DIAGNOSES: json.dumps(list(self.diagnoses), ensure_ascii=False),
            _V.REGISTERED_BY: self.registered_by,
            _V.PERSON: json.dumps(self.person, ensure_ascii=False, sort_keys=True),
            _V.MEMBER_ID: self.member_id,
        }

    @classmethod
    def from_hash(cls, raw: Mapping[bytes, bytes]) -> NationalVisit | None:
        """A stored visit, ``None`` when there is none.

        Raises:
            CorruptRecord: a field every visit has is missing.
        """
        if not raw:
            return None
        values = {name.decode(): value.decode() for name, value in raw.items()}
        try:
            return cls(
                visit_type=values[_V.VISIT_TYPE],
                med_type=values.get(_V.MED_TYPE, ""),
                insutype=values.get(_V.INSUTYPE, ""),
                begin=values[_V.BEGIN],
                status=values[_V.STATUS],
                his_number=values.get(_V.HIS_NUMBER, ""),
                registered_by=values.get(_V.REGISTERED_BY, ""),
                member_id=values.get(_V.MEMBER_ID, ""),
                end=values.get(_V.END, ""),
                diagnoses=tuple(json.loads(values.get(_V.DIAGNOSES) or "[]")),
                person=dict(json.loads(values.get(_V.PERSON) or "{}")),
            )
        except (KeyError, ValueError) as error:
            raise CorruptRecord(f"a national visit does not read: {error}") from None


_L = NationalLineField


@dataclass(frozen=True, slots=True)
class StagedLine:
    """A fee line uploaded for a visit (2204, 2301), kept until the visit settles.

    Attributes:
        national_code: the catalog code the line settles as (mapped, or sent directly).
        his_code: the HIS's own code (empty when the line named a national code only).
        quantity: the message's ``cnt`` (negative on a return line).
        price_fen: the unit price in fen (``pric`` x 100, exact).
        amount: the line total in fen.
        at: ``fee_ocur_time``.
        returns: for a return line, the ``feedetl_sn`` it returns.
    """

    batch: str
    national_code: str
    his_code: str
    quantity: Decimal
    price_fen: Decimal
    amount: int
    at: str
    returns: str
    uploaded_by: str

    def to_json(self) -> str:
        """The stored value: a JSON object by name (decimals as text, exactly)."""
        return json.dumps(
            {
                _L.BATCH: self.batch,
                _L.NATIONAL_CODE: self.national_code,
                _L.HIS_CODE: self.his_code,
                _L.QUANTITY: str(self.quantity),
                _L.PRICE_FEN: str(self.price_fen),
                _L.AMOUNT: self.amount,
                _L.AT: self.at,
                _L.RETURNS: self.returns,
                _L.UPLOADED_BY: self.uploaded_by,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> StagedLine:
        """A stored line.

        Raises:
            CorruptRecord: it does not read.
        """
        try:
            values = json.loads(raw)
            return cls(
                batch=str(values[_L.BATCH]),
                national_code=str(values[_L.NATIONAL_CODE]),
                his_code=str(values.get(_L.HIS_CODE, "")),
                quantity=Decimal(values[_L.QUANTITY]),
                price_fen=Decimal(values[_L.PRICE_FEN]),
                amount=int(values[_L.AMOUNT]),
                at=str(values[_L.AT]),
                returns=str(values.get(_L.RETURNS, "")),
                uploaded_by=str(values.get(_L.UPLOADED_BY, "")),
            )
        except (KeyError, ValueError, TypeError, ArithmeticError) as error:
            raise CorruptRecord(f"an uploaded fee line does not read: {error}") from None
