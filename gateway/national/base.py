"""The national interface's shared parts: a message being handled, and what every flow reads."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from gateway.national.store import NationalStore
from gateway.service import Gateway
from onestop import wire
from onestop.domain.bill import (
    BillLine,
    VisitRequest,
    check_client_may_settle,
    request_identity,
)
from onestop.domain.catalog import CatalogItem
from onestop.domain.clients import Client
from onestop.domain.errors import DomainError, NotFound
from onestop.domain.mapping import CatalogCodes, CodeLookup
from onestop.domain.settlement import Settlement, SettlementStatus
from onestop.domain.types import Code, Scheme, VisitType
from onestop.national.amounts import (
    fen_of,
    price_fen_of,
    quantity_of,
)
from onestop.national.codes import (
    GEND,
    INSUTYPE,
    PSN_TYPE,
    SCHEME_OF_INSUTYPE,
    Profile,
)
from onestop.national.envelope import (
    NationalRefusal,
    RequestEnvelope,
    Timing,
    codes_in,
    parse_datetime,
    refmsgid,
    refusal_of,
    required_text,
    text_field,
    validation_refusal,
)
from onestop.national.settlement import (
    Person,
    UploadedLine,
    national_setl_id,
    settlement_id_of,
)
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage.national import (
    NationalMessage,
    NationalVisit,
    NationalVisitStatus,
    StagedLine,
)

PENDING_WINDOW_MS = 120_000
"""How long a message may still be at work after it arrived: a settlement it started can
commit no later (the adjudicator gives up 30 s after claiming a visit; the gateway's call
ends sooner). Until then the same ``msgid`` is answered "still being processed" and a 2601
of it "send again later"; afterwards its outcome is known for good."""

ALL_LINES = "0000"
"""``chrg_bchno`` / ``feedetl_sn`` meaning every unsettled line of the visit."""

MAX_DIAGNOSES = 50
"""Diagnosis codes a visit may carry (onestop's bill takes 50)."""

MAX_LIST = 5000
"""Rows one list of a message may have (fee lines, detail rows): a bill's most lines."""

_CODE: TypeAdapter[str] = TypeAdapter(Code)

REVERSIBLE = frozenset({"2207", "2304", "2102", "2201", "2401"})
"""What a 2601 undoes: a settlement (by cancelling it) or a registration (by cancelling it).
A cancellation (2208, 2305, 2103) is not undone: settle again instead (docs/national.md)."""


def message_digest(infno: str, payload: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a message's ``infno`` and ``input``: a resent message has the same."""
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(f"{infno}\x1f{canonical}".encode()).hexdigest()


def visit_id_of(client_id: str, msgid: str) -> str:
    """The ``mdtrt_id`` a registering message issues: the same for the same message."""
    number = int.from_bytes(hashlib.sha256(f"{client_id}\x1f{msgid}".encode()).digest()[:12])
    digits = ""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while number:
        number, digit = divmod(number, 36)
        digits = alphabet[digit] + digits
    return "V" + digits.rjust(19, "0")


@dataclass(frozen=True, slots=True)
class Call:
    """One message being handled."""

    client: Client
    envelope: RequestEnvelope
    received_ms: int

    @property
    def input(self) -> dict[str, Any]:
        """The message's ``input``."""
        return self.envelope.input


Output = tuple[dict[str, Any], str | None]
"""A transaction's ``output`` and its ``warn_msg``."""


class NationalBase:
    """The state a national flow works with, and the reads and checks every flow shares."""

    def __init__(
        self,
        gateway: Gateway,
        store: NationalStore,
        profile: Profile,
        clock: Callable[[], int],
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.profile = profile
        self.clock = clock

    def _timing(self, client: Client, received_ms: int) -> Timing:
        now = self.clock()
        serial = secrets.randbelow(10**10)
        return Timing(received_ms, now, refmsgid(client.region or "000000", now, serial))

    async def _progress(
        self, call: Call, *, member_id: str, mdtrt_id: str, fingerprint: str = ""
    ) -> None:
        """Record what the message is about to do (before it does it), for 2601."""
        msgid = call.envelope.msgid
        client_id = call.client.client_id
        record = await self.store.message(client_id, msgid)
        if record is not None:
            progressed = replace(
                record,
                member_id=member_id,
                mdtrt_id=mdtrt_id,
                fingerprint=fingerprint or record.fingerprint,
            )
            await self.store.keep(client_id, msgid, progressed)

    @staticmethod
    def _may_settle(client: Client, visit_type: VisitType) -> None:
        """Refuse a visit its kind of client does not settle (a pharmacy admits no one)."""
        try:
            check_client_may_settle(client.kind, visit_type)
        except DomainError as error:
            raise refusal_of(error) from None

    async def _member(self, call: Call, member_id: str, day: date) -> pb.EligibilityAnswer:
        """The member's entitlement on ``day``, its region checked against the envelope's."""
        try:
            found = await self.gateway.adjudicator.eligibility(
                member_id, day, call.client.client_id
            )
        except DomainError as error:
            raise refusal_of(error) from None
        insured = call.envelope.insuplc_admdvs
        if insured is None:
            raise NationalRefusal(
                f"insuplc_admdvs: required with psn_no: the member's insurance region "
                f"({found.region}, as 1101 answers in insuinfo.insuplc_admdvs)"
            )
        if insured != found.region:
            raise NationalRefusal(
                f"insuplc_admdvs: {insured} is not member {member_id}'s insurance region "
                f"({found.region})"
            )
        return found

    @staticmethod
    def _check_insutype(data: Mapping[str, Any], where: str, found: pb.EligibilityAnswer) -> str:
        insutype = required_text(data, "insutype", where, 6)
        expected = INSUTYPE[Scheme(found.scheme)]
        if SCHEME_OF_INSUTYPE.get(insutype) is None or insutype != expected:
            raise NationalRefusal(
                f"{where}.insutype: {insutype} is not member {found.member_id}'s coverage; "
                f"send {expected}"
            )
        return insutype

    async def _visit(self, call: Call, member_id: str, mdtrt_id: str, where: str) -> NationalVisit:
        visit = await self.store.visit(member_id, call.client.client_id, mdtrt_id)
        if visit is None or visit.member_id != member_id:
            # (a visit of a member of the same slot group is not this member's)
            raise NationalRefusal(
                f"{where}.mdtrt_id: no visit {mdtrt_id} of psn_no {member_id} registered by "
                "this institution (2201 or 2401 issues it)"
            )
        if visit.status == NationalVisitStatus.CANCELLED:
            raise NationalRefusal(f"{where}.mdtrt_id: visit {mdtrt_id} was cancelled")
        return visit

    async def _settlements(self, call: Call, mdtrt_id: str) -> list[Settlement]:
        """The visit's settlements, newest first."""
        listed = await self.gateway.adjudicator.visit_settlements(call.client.client_id, mdtrt_id)
        return [wire.settlement_of(item) for item in listed.items]

    async def _refuse_if_settled(self, call: Call, mdtrt_id: str, where: str) -> None:
        for settlement in await self._settlements(call, mdtrt_id):
            if settlement.status is SettlementStatus.SETTLED:
                raise NationalRefusal(
                    f"[VISIT_ALREADY_SETTLED] {where}.mdtrt_id: visit {mdtrt_id} is settled "
                    f"(setl_id {national_setl_id(settlement.settlement_id or '')}); cancel "
                    "the settlement first (2208 or 2305)"
                )

    async def _cancel_visit(
        self, call: Call, member_id: str, mdtrt_id: str, visit: NationalVisit
    ) -> None:
        client_id = call.client.client_id
        lines = await self.store.lines(member_id, client_id, mdtrt_id)
        await self.store.remove_lines(member_id, client_id, mdtrt_id, lines)
        cancelled = replace(visit, status=NationalVisitStatus.CANCELLED)
        await self.store.put_visit(member_id, client_id, mdtrt_id, cancelled)

    async def _codes(self, client: Client) -> tuple[CodeLookup, Mapping[str, CatalogItem]]:
        catalog = await self.gateway.reference.catalog()
        if client.national_codes_allowed:
            return CatalogCodes(catalog), catalog
        return await self.gateway.reference.mapping(client.client_id), catalog

    def _read_line(
        self, call: Call, row: Mapping[str, Any], where: str, member_id: str, mdtrt_id: str
    ) -> tuple[StagedLine, UploadedLine]:
        if row.get("psn_no") not in (None, member_id) or row.get("mdtrt_id") not in (
            None,
            mdtrt_id,
        ):
            raise NationalRefusal(f"{where}: every line of a message is for one visit and person")
        serial = required_text(row, "feedetl_sn", where)
        quantity = quantity_of(row.get("cnt"), f"{where}.cnt")
        price = price_fen_of(row.get("pric"), f"{where}.pric")
        amount = fen_of(row.get("det_item_fee_sumamt"), f"{where}.det_item_fee_sumamt")
        assert amount is not None
        at = parse_datetime(row.get("fee_ocur_time"), f"{where}.fee_ocur_time")
        national_code = text_field(row, "med_list_codg", where, max_length=50) or ""
        his_code = text_field(row, "medins_list_codg", where, max_length=150) or ""
        if not national_code and not his_code:
            raise NationalRefusal(f"{where}: send medins_list_codg (and med_list_codg)")
        returns = text_field(row, "init_feedetl_sn", where) or ""
        if quantity < 0 and not returns:
            raise NationalRefusal(
                f"{where}.cnt: a negative quantity returns a line: name it in init_feedetl_sn"
            )
        if quantity > 0 and returns:
            raise NationalRefusal(
                f"{where}.init_feedetl_sn: only a return line (a negative cnt) names a line"
            )
        if quantity == 0:
            raise NationalRefusal(f"{where}.cnt: must not be 0")
        if price <= 0:
            raise NationalRefusal(f"{where}.pric: must be above 0")
        if amount and (amount < 0) != (quantity < 0):
            raise NationalRefusal(
                f"{where}.det_item_fee_sumamt: its sign is the quantity's (negative only on a "
                "return line)"
            )
        line = StagedLine(
            batch=text_field(row, "chrg_bchno", where) or "",
            national_code=national_code,
            his_code=his_code,
            quantity=quantity,
            price_fen=price,
            amount=amount,
            at=at.strftime("%Y-%m-%d %H:%M:%S"),
            returns=returns,
            uploaded_by=call.envelope.msgid,
        )
        return line, UploadedLine(serial, amount, quantity, price)

    def _check_line_code(
        self,
        client: Client,
        codes: CodeLookup,
        catalog: Mapping[str, CatalogItem],
        line: StagedLine,
        where: str,
    ) -> CatalogItem:
        day = date.fromisoformat(line.at[:10])
        if client.national_codes_allowed:
            item = catalog.get(line.national_code) if line.national_code else None
            if item is None:
                raise NationalRefusal(
                    f"{where}.med_list_codg: {line.national_code or '(empty)'} is not in the "
                    "catalog [UNMAPPED_CODES]"
                )
            return item
        row = codes.lookup(line.his_code, day) if line.his_code else None
        if row is None:
            raise NationalRefusal(
                f"{where}.medins_list_codg: {line.his_code or '(empty)'} has no mapping valid on "
                f"{day} [UNMAPPED_CODES]; the agency loads this institution's mapping"
            )
        if line.national_code and line.national_code != row.catalog_code:
            raise NationalRefusal(
                f"{where}.med_list_codg: {line.national_code} is not what "
                f"{line.his_code} maps to ({row.catalog_code}): an item billed as another "
                "(串换) is refused; send the mapped code or correct the mapping"
            )
        item = catalog.get(row.catalog_code)
        if item is None:
            raise NationalRefusal(
                f"{where}.medins_list_codg: {line.his_code} maps to {row.catalog_code}, which "
                "is not in the catalog [UNMAPPED_CODES]"
            )
        return item

    async def _settle_request(
        self,
        call: Call,
        request: VisitRequest,
        codes: CodeLookup,
        *,
        preview: bool,
        serials: Sequence[str] = (),
    ) -> Settlement:
        """Settle (or preview) a bill built from national messages, as the native API does.

        Before settling, the message records the visit and the request's identity, so that a
        2601 finds the settlement even if the answer never left.

        Raises:
            NationalRefusal: onestop refused the bill (``serials`` name its lines).
        """
        if not preview:
            earlier = await self.store.message(call.client.client_id, call.envelope.msgid)
            if earlier is not None and earlier.fingerprint and earlier.mdtrt_id == request.visit_id:
                made = await self._settlement_made_by(call, earlier)
                if made is not None:
                    return made  # this message settled before its answer was lost
            await self._progress(
                call,
                member_id=request.member_id,
                mdtrt_id=request.visit_id,
                fingerprint=request_identity(request).hex(),
            )
        try:
            message = await self.gateway.settle(
                call.client, request, body_of(request), preview=preview, codes=codes
            )
        except DomainError as error:
            raise refusal_of(error, serials) from None
        return wire.settlement_of(message)

    async def _open_visit(
        self, call: Call, member_id: str, mdtrt_id: str, visit: NationalVisit
    ) -> None:
        """Keep a new visit, unless a first processing of this message kept it already."""
        client_id = call.client.client_id
        if await self.store.visit(member_id, client_id, mdtrt_id) is None:
            await self.store.put_visit(
                member_id, client_id, mdtrt_id, replace(visit, member_id=member_id)
            )

    async def _own_settlement(
        self, call: Call, setl_id: str, member_id: str, mdtrt_id: str
    ) -> Settlement:
        settlement_id = settlement_id_of(setl_id)
        if settlement_id is None:
            raise NationalRefusal(f"input.data.setl_id: {setl_id} is not a setl_id onestop issued")
        try:
            message = await self.gateway.adjudicator.get(settlement_id, call.client.client_id)
        except NotFound:
            raise NationalRefusal(
                f"input.data.setl_id: no settlement {setl_id} of this institution"
            ) from None
        except DomainError as error:
            raise refusal_of(error) from None
        settlement = wire.settlement_of(message)
        if settlement.visit_id != mdtrt_id or settlement.member_id != member_id:
            raise NationalRefusal(
                f"input.data.setl_id: settlement {setl_id} is not of visit {mdtrt_id} and "
                f"psn_no {member_id}"
            )
        return settlement

    async def _settlement_made_by(self, call: Call, original: NationalMessage) -> Settlement | None:
        """The settlement a settling message made, found by its request's identity."""
        if not original.fingerprint or not original.mdtrt_id:
            return None
        try:
            message = await self.gateway.adjudicator.find(
                client_id=call.client.client_id,
                visit_id=original.mdtrt_id,
                member_id=original.member_id,
                fingerprint=bytes.fromhex(original.fingerprint),
            )
        except NotFound:
            return None
        except DomainError as error:
            raise refusal_of(error) from None
        return wire.settlement_of(message)

    async def _reversed_before(self, call: Call, mdtrt_id: str) -> str | None:
        """The visit's latest settlement when it was reversed: a new message settles again."""
        settlements = await self._settlements(call, mdtrt_id)
        if settlements and settlements[0].status is SettlementStatus.REVERSED:
            return settlements[0].settlement_id
        return None


def visit_request(**fields: Any) -> VisitRequest:
    """The bill a national visit settles as, its faults answered as the message's own.

    Raises:
        NationalRefusal: a value the bill does not take (a date, a diagnosis code ...).
    """
    try:
        return VisitRequest(**fields)
    except ValidationError as error:
        raise validation_refusal(error, "the visit's bill: ") from None


def diagnosis_codes(values: Sequence[str], where: str) -> tuple[str, ...]:
    """Distinct diagnosis codes, each a code onestop takes, at most 50.

    Raises:
        NationalRefusal: naming the first that is not, or that there are too many.
    """
    codes = codes_in(values)
    for code in codes:
        try:
            _CODE.validate_python(code)
        except ValidationError:
            raise NationalRefusal(
                f"{where}: diagnosis {code[:40]!r} is not a code (1 to 64 plain characters)"
            ) from None
    if len(codes) > MAX_DIAGNOSES:
        raise NationalRefusal(f"{where}: at most {MAX_DIAGNOSES} diagnoses a visit")
    return tuple(codes)


def whole_number(value: Any, field: str, low: int, high: int) -> int:
    """A whole-number field (number or digits) within bounds.

    Raises:
        NationalRefusal: naming the field and the bounds.
    """
    if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) <= 12:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise NationalRefusal(f"{field}: a whole number from {low} to {high}")
    return value


def rows_of(payload: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    """An optional node as a list of objects (an object alone is a list of one)."""
    value = payload.get(name)
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return []


def person_of(found: pb.EligibilityAnswer) -> Person:
    """The member as answers show it (masked), from an eligibility answer."""
    scheme = Scheme(found.scheme)
    return Person(
        psn_name=found.name_masked,
        certno=found.id_number_masked,
        gend=GEND.get(found.sex, ""),
        brdy=found.birth_date,
        psn_type=PSN_TYPE[scheme],
    )


def med_type_refusal(field: str, med_type: str) -> str:
    """The ``err_msg`` for a ``med_type`` onestop does not settle."""
    return (
        f"{field}: {med_type} is not a medical type onestop settles (ordinary, emergency and "
        "special-disease outpatient, inpatient, pharmacy purchase; maternity and work injury "
        "are other schemes)"
    )


def bill_line(
    line_no: int,
    code: str,
    quantity: Decimal,
    price_fen: Decimal,
    amount: int,
    day: date,
    where: str,
) -> BillLine:
    """A bill line; a price below one fen's precision stays exact (domain section 14).

    Raises:
        NationalRefusal: a value the bill does not take.
    """
    whole = price_fen == price_fen.to_integral_value()
    try:
        return BillLine(
            line_no=line_no,
            his_code=code,
            quantity=quantity,
            unit_price=int(price_fen) if whole else format(price_fen.normalize(), "f"),
            amount=amount,
            date=day,
        )
    except ValidationError as error:
        raise validation_refusal(error, f"{where}: ") from None


def bill_lines(staged: Mapping[str, StagedLine], national_codes: bool) -> list[BillLine]:
    """The visit's lines as one bill: returns netted into their lines, in upload order."""
    net: dict[str, tuple[StagedLine, Decimal, int]] = {}
    for serial, line in sorted(staged.items(), key=lambda pair: (pair[1].at, pair[0])):
        if line.returns:
            continue
        net[serial] = (line, line.quantity, line.amount)
    for line in staged.values():
        if line.returns and line.returns in net:
            original, quantity, amount = net[line.returns]
            net[line.returns] = (original, quantity + line.quantity, amount - abs(line.amount))
    lines: list[BillLine] = []
    for serial, (line, quantity, amount) in net.items():
        if quantity <= 0:
            continue
        code = line.national_code if national_codes or not line.his_code else line.his_code
        lines.append(
            bill_line(
                len(lines) + 1,
                code,
                quantity,
                line.price_fen,
                amount,
                date.fromisoformat(line.at[:10]),
                f"feedetl {serial}",
            )
        )
    return lines


def body_of(request: VisitRequest) -> bytes:
    """The request as the JSON body a native call would carry (checked to be UTF-8)."""
    return orjson.dumps(request.model_dump(mode="json"))


def answer_json(reply: dict[str, Any]) -> bytes:
    """An answer as the JSON it is sent as (amounts exactly as :func:`yuan` wrote them)."""
    return orjson.dumps(reply)
