"""A bill as the HIS sends it (contract section 4) and as the engine reads it (catalog-coded)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, NamedTuple

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StrictBool,
    field_validator,
    model_validator,
)

from onestop.domain.errors import VisitNotAllowed
from onestop.domain.types import ClientKind, Code, IsoDate, Quantity, UnitPrice, VisitType

MAX_BILL_LINES = 5000
"""The most lines one request may carry (contract: 413 ``TOO_LARGE`` beyond)."""


class BillLine(BaseModel):
    """One line of the hospital's bill, in the hospital's own codes and units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line_no: Annotated[int, Strict(), Field(ge=1, le=1_000_000)]
    his_code: Code
    quantity: Quantity
    unit_price: UnitPrice
    amount: Annotated[int, Strict(), Field(ge=-(10**13), le=10**13)]
    date: IsoDate


class VisitRequest(BaseModel):
    """A settlement or preview request.

    ``inpatient`` visits carry ``admission_date`` and ``discharge_date``; the other visit types
    carry ``service_date``. Signs of quantities and prices are checked per line by the gateway
    so that each offending line can be named.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    visit_id: Code
    member_id: Code
    visit_type: VisitType
    admission_date: IsoDate | None = None
    discharge_date: IsoDate | None = None
    service_date: IsoDate | None = None
    diagnoses: tuple[Code, ...] = Field(default=(), max_length=50)
    use_personal_account: StrictBool = False
    lines: tuple[BillLine, ...] = Field(min_length=1)
    resettle_of: Code | None = Field(
        default=None,
        description="the caller's reversed settlement of this visit, to settle the same bill "
        "again (domain section 15)",
    )
    referral_no: Code | None = Field(
        default=None,
        description="the referral (转诊) number of a stay the member was referred to "
        "(domain section 8)",
    )

    _days: tuple[date, date] = PrivateAttr()

    @field_validator("diagnoses")
    @classmethod
    def _diagnoses_upper_case(cls, diagnoses: tuple[str, ...]) -> tuple[str, ...]:
        # ICD-10 codes are compared, and matched for coverage, upper-case (domain s15, s17).
        return tuple(code.upper() for code in diagnoses)

    @model_validator(mode="after")
    def _dates_fit_the_visit_type(self) -> VisitRequest:
        if self.visit_type is VisitType.INPATIENT:
            if self.admission_date is None or self.discharge_date is None:
                raise ValueError("an inpatient visit needs admission_date and discharge_date")
            if self.service_date is not None:
                raise ValueError("an inpatient visit has no service_date")
            if self.discharge_date < self.admission_date:
                raise ValueError("discharge_date is before admission_date")
            self._days = (self.admission_date, self.discharge_date)
        else:
            if self.service_date is None:
                raise ValueError(f"a {self.visit_type.value} visit needs service_date")
            if self.admission_date is not None or self.discharge_date is not None:
                raise ValueError(f"a {self.visit_type.value} visit has no admission dates")
            self._days = (self.service_date, self.service_date)
        return self

    @property
    def first_day(self) -> date:
        """Admission date, or the service date."""
        return self._days[0]

    @property
    def last_day(self) -> date:
        """Discharge date, or the service date: its year is the policy year."""
        return self._days[1]


def _number(value: Decimal) -> str:
    """A decimal as text, equal for equal values (``1.50``, ``1.5`` and ``1.5000`` alike)."""
    return format(value.normalize(), "f")


def request_identity(visit: VisitRequest) -> bytes:
    """SHA-256 of what makes two settlement requests identical (domain section 15).

    The validated values: decimals as numbers, diagnoses upper-case (the validator did it),
    HIS codes exactly as sent, absent optional fields as their defaults, lines as a set keyed
    by ``line_no``, ``resettle_of`` included; JSON key order and spacing play no part. The
    bytes hashed are canonical JSON (sorted keys, no spaces, UTF-8): visit indexes keep the
    digest, so they never change (``tests/onestop/domain/test_bill.py`` pins them).
    """
    # A bill repeats few quantities and days among hundreds of lines: each is written once.
    numbers: dict[Decimal, str] = {}
    days: dict[date, str] = {}
    lines = []
    for line in sorted(visit.lines, key=lambda line: line.line_no):
        quantity = numbers.get(line.quantity)
        if quantity is None:
            quantity = numbers[line.quantity] = _number(line.quantity)
        day = days.get(line.date)
        if day is None:
            day = days[line.date] = line.date.isoformat()
        # A whole price is an int, its one text; a fractional one is written as a number.
        price = line.unit_price
        price_text = str(price) if isinstance(price, int) else _number(price)
        lines.append((line.line_no, line.his_code, quantity, price_text, line.amount, day))
    canonical = {
        "visit_id": visit.visit_id,
        "member_id": visit.member_id,
        "visit_type": visit.visit_type.value,
        "admission_date": _iso(visit.admission_date),
        "discharge_date": _iso(visit.discharge_date),
        "service_date": _iso(visit.service_date),
        "diagnoses": list(visit.diagnoses),
        "use_personal_account": visit.use_personal_account,
        "resettle_of": visit.resettle_of,
        "lines": lines,
    }
    if visit.referral_no is not None:
        # Added in 0.2.0: a request without it keeps the identity it always had.
        canonical["referral_no"] = visit.referral_no
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).digest()


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


class CodedLine(NamedTuple):
    """A bill line mapped to the national catalog.

    Attributes:
        catalog_qty: quantity in catalog units (HIS quantity times the mapping's factor).
        amount: the line's amount in fen, as billed.
    """

    line_no: int
    catalog_code: str
    catalog_qty: Decimal
    amount: int
    service_date: date


@dataclass(frozen=True, slots=True)
class Visit:
    """A visit ready for adjudication: catalog-coded lines and the facts the rules read."""

    visit_type: VisitType
    first_day: date
    last_day: date
    diagnoses: tuple[str, ...]
    use_personal_account: bool
    lines: tuple[CodedLine, ...]
    referral_no: str | None = None
    """The request's referral number, when it has one (domain section 8)."""

    @property
    def policy_year(self) -> int:
        """The calendar year of the visit's last day."""
        return self.last_day.year

    @property
    def policy_day(self) -> date:
        """The day that chooses the version of the policy year (domain section 13).

        The first day; for a stay crossing January 1, January 1 of the policy year.
        """
        return max(self.first_day, date(self.last_day.year, 1, 1))


def check_client_may_settle(client_kind: ClientKind, visit_type: VisitType) -> None:
    """Pharmacy swipes come only from pharmacies, every other visit only from hospitals.

    Raises:
        VisitNotAllowed: the client is of the wrong kind for this visit type.
    """
    if visit_type is VisitType.PHARMACY:
        allowed = client_kind is ClientKind.PHARMACY
    else:
        allowed = client_kind is ClientKind.HOSPITAL
    if not allowed:
        raise VisitNotAllowed(
            f"a {client_kind.value} client may not settle a {visit_type.value} visit"
        )
