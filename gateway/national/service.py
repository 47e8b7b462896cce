"""The national interface's transactions, each translated to onestop's own calls.

One message is handled at a time per ``msgid`` (docs/adr/0009): it is claimed in Redis before
anything is done, so that the same ``msgid`` again answers the original answer and a 2601
finds what the message did. Settling goes through the same path as ``POST /v1/settlements``
(mapping, checks, the adjudicator), so a national settlement is an onestop settlement, with
its signed receipt, its journal entry and its reconciliation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from pydantic import ValidationError

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
from onestop.domain.engine import LineSplit, classify_line
from onestop.domain.errors import DomainError, ErrorCode, NotFound
from onestop.domain.mapping import CatalogCodes, CodeLookup, map_bill
from onestop.domain.settlement import Settlement, SettlementStatus
from onestop.domain.types import Scheme, VisitType
from onestop.national.amounts import (
    decimal_number,
    fen_of,
    parse_body,
    price_fen_of,
    quantity_of,
    yuan,
)
from onestop.national.codes import (
    ACCT_USED,
    CHRGITM_LV,
    CLR_TYPE,
    GEND,
    INSUTYPE,
    LIST_TYPE,
    MED_CHRGITM_TYPE,
    POOL_FUND,
    PSN_TYPE,
    SCHEME_OF_INSUTYPE,
    CertType,
    Profile,
    visit_type_of,
)
from onestop.national.envelope import (
    NationalRefusal,
    RequestEnvelope,
    Timing,
    answer,
    codes_in,
    national_datetime,
    node,
    parse_datetime,
    refmsgid,
    refusal_of,
    required_text,
    text_field,
    validation_refusal,
)
from onestop.national.settlement import (
    Person,
    SettlementContext,
    UploadedLine,
    fund_sum,
    line_result,
    national_setl_id,
    setldetail,
    setlinfo,
    settlement_id_of,
)
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage.layout import NationalMessageState
from onestop.storage.national import (
    NationalMessage,
    NationalVisit,
    NationalVisitStatus,
    StagedLine,
)

log = logging.getLogger("onestop.gateway.national")

PENDING_WINDOW_MS = 120_000
"""How long a message may still be at work after it arrived: a settlement it started can
commit no later (the adjudicator gives up 30 s after claiming a visit; the gateway's call
ends sooner). Until then the same ``msgid`` is answered "still being processed" and a 2601
of it "send again later"; afterwards its outcome is known for good."""

ALL_LINES = "0000"
"""``chrg_bchno`` / ``feedetl_sn`` meaning every unsettled line of the visit."""

REVERSIBLE = frozenset({"2207", "2304", "2102", "2201", "2401"})
"""What a 2601 undoes: a settlement (by cancelling it) or a registration (by cancelling it).
A cancellation (2208, 2305, 2103) is not undone: settle again instead (docs/national.md)."""


def _digest(infno: str, payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(f"{infno}\x1f{canonical}".encode()).hexdigest()


def _visit_id(client_id: str, msgid: str) -> str:
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


class NationalService:
    """Handles one national message from an authenticated client."""

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
        self.handlers: dict[str, Callable[[Call], Awaitable[Output]]] = {
            "9001": self._sign_in,
            "1101": self._person_info,
            "2001": self._benefits,
            "2201": self._register_outpatient,
            "2202": self._cancel_registration,
            "2204": self._upload_outpatient_lines,
            "2205": self._cancel_outpatient_lines,
            "2206": self._preview_outpatient,
            "2207": self._settle_outpatient,
            "2208": self._cancel_outpatient_settlement,
            "2401": self._admit,
            "2402": self._discharge,
            "2404": self._cancel_admission,
            "2301": self._upload_inpatient_lines,
            "2302": self._cancel_inpatient_lines,
            "2303": self._preview_inpatient,
            "2304": self._settle_inpatient,
            "2305": self._cancel_inpatient_settlement,
            "2101": self._preview_purchase,
            "2102": self._settle_purchase,
            "2103": self._cancel_purchase,
            "2601": self._reverse_message,
            "3201": self._reconcile_totals,
            "3202": self._reconcile_detail,
            "1312": self._catalog_query,
            "1316": self._mapping_query,
            "1318": self._price_cap_query,
            "5203": self._query_settlement,
        }

    # -- the envelope --------------------------------------------------------------------------

    def _timing(self, client: Client, received_ms: int) -> Timing:
        now = self.clock()
        serial = secrets.randbelow(10**10)
        return Timing(received_ms, now, refmsgid(client.region or "000000", now, serial))

    async def handle(self, client: Client, body: bytes, path_infno: str | None) -> bytes:
        """The answer's envelope for one message, as JSON (every refusal is ``infcode -1``).

        The same ``msgid`` again gets these very bytes.
        """
        received_ms = self.clock()
        try:
            call = self._call(client, body, path_infno, received_ms)
        except NationalRefusal as refusal:
            return _json(answer(self._timing(client, received_ms), err_msg=refusal.err_msg))
        return await self._handle_once(call)

    def _call(self, client: Client, body: bytes, path_infno: str | None, received_ms: int) -> Call:
        try:
            payload = parse_body(body)
        except DomainError as error:
            raise NationalRefusal(error.message) from None
        if not isinstance(payload, dict):
            raise NationalRefusal("the message must be a JSON object (the national envelope)")
        try:
            envelope = RequestEnvelope.model_validate(payload)
        except ValidationError as error:
            raise validation_refusal(error) from None
        if path_infno is not None and path_infno != envelope.infno:
            raise NationalRefusal(
                f"infno: {envelope.infno} in the message, {path_infno} in the path; send the "
                "same transaction number in both (or POST /fsi/api)"
            )
        if envelope.fixmedins_code != client.fixmedins_code():
            raise NationalRefusal(
                f"fixmedins_code: {envelope.fixmedins_code} is not the code registered for "
                f"client {client.client_id} ({client.fixmedins_code()}); a client sends only "
                "its own institution code"
            )
        if client.region is not None and envelope.mdtrtarea_admvs != client.region:
            raise NationalRefusal(
                f"mdtrtarea_admvs: {envelope.mdtrtarea_admvs} is not this institution's region "
                f"({client.region})"
            )
        if envelope.infno not in self.handlers:
            raise NationalRefusal(
                f"infno: {envelope.infno} is not served by onestop; it serves "
                f"{', '.join(sorted(self.handlers))}"
            )
        return Call(client, envelope, received_ms)

    async def _handle_once(self, call: Call) -> bytes:
        envelope = call.envelope
        client_id = call.client.client_id
        pending = NationalMessage(
            state=NationalMessageState.PENDING,
            infno=envelope.infno,
            digest=_digest(envelope.infno, envelope.input),
            at_ms=call.received_ms,
        )
        known = await self.store.claim(client_id, envelope.msgid, pending)
        if known is not None:
            again = self._known_answer(call, known, pending)
            if again is not None:
                return again
            await self.store.keep(client_id, envelope.msgid, pending)  # processed again
        try:
            output, warn = await self.handlers[envelope.infno](call)
        except NationalRefusal as refusal:
            reply = answer(self._timing(call.client, call.received_ms), err_msg=refusal.err_msg)
        except DomainError as error:
            reply = answer(
                self._timing(call.client, call.received_ms), err_msg=refusal_of(error).err_msg
            )
            if error.code is ErrorCode.UNAVAILABLE:
                # Nothing known to be done for good: the same message again is processed again.
                record = await self.store.message(client_id, envelope.msgid) or pending
                failed = replace(record, state=NationalMessageState.FAILED, answer=None)
                await self.store.keep(client_id, envelope.msgid, failed)
                return _json(reply)
        else:
            reply = answer(
                self._timing(call.client, call.received_ms), output=output, warn_msg=warn
            )
        body = _json(reply)
        record = await self.store.message(client_id, envelope.msgid) or pending
        await self.store.keep(client_id, envelope.msgid, record.answered(body.decode()))
        return body

    def _known_answer(
        self, call: Call, known: NationalMessage, arriving: NationalMessage
    ) -> bytes | None:
        """The answer for a ``msgid`` seen before, ``None`` when the message is to be processed."""
        timing = self._timing(call.client, call.received_ms)
        msgid = call.envelope.msgid
        if known.state is NationalMessageState.REVOKED:
            return _json(
                answer(
                    timing,
                    err_msg=f"msgid: {msgid} was reversed by 2601 (msgid {known.revoked_by}) "
                    "before it arrived; nothing was done. Send a new message with a new msgid",
                )
            )
        if known.digest != arriving.digest:
            return _json(
                answer(
                    timing,
                    err_msg=f"msgid: {msgid} was used for another message (infno {known.infno}); "
                    "every message needs its own msgid",
                )
            )
        if known.state is NationalMessageState.ANSWERED and known.answer is not None:
            return known.answer.encode()
        if (
            known.state is NationalMessageState.PENDING
            and call.received_ms - known.at_ms < PENDING_WINDOW_MS
        ):
            seconds = (PENDING_WINDOW_MS - (call.received_ms - known.at_ms)) // 1000 + 1
            return _json(
                answer(
                    timing,
                    err_msg=f"msgid: {msgid} is still being processed; send the same message "
                    f"again in {seconds} s to get its answer",
                )
            )
        return None  # failed, or pending past its window: processed again (idempotent)

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

    # -- people --------------------------------------------------------------------------------

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

    # -- 9001, 1101, 2001 ----------------------------------------------------------------------

    async def _sign_in(self, call: Call) -> Output:
        sign_in = node(call.input, "signIn")
        required_text(sign_in, "opter_no", "input.signIn", 20)
        sign_no = hashlib.sha256(
            f"{call.client.client_id}\x1f{call.envelope.opter}\x1f"
            f"{national_datetime(call.received_ms)[:10]}".encode()
        ).hexdigest()[:20]
        return {
            "signinoutb": {"sign_time": national_datetime(call.received_ms), "sign_no": sign_no}
        }, None

    async def _person_by_certificate(self, call: Call) -> pb.EligibilityAnswer:
        data = node(call.input, "data")
        cert_type = required_text(data, "mdtrt_cert_type", "input.data", 3)
        cert_no = required_text(data, "mdtrt_cert_no", "input.data", 50)
        if cert_type != CertType.ID_NUMBER:
            raise NationalRefusal(
                f"input.data.mdtrt_cert_type: {cert_type} is not served: onestop identifies a "
                "patient by the id number (02); an e-voucher (01) or card (03) is resolved only "
                "by the national platform"
            )
        day = (
            parse_datetime(data["begntime"], "input.data.begntime").date()
            if data.get("begntime")
            else datetime.fromisoformat(national_datetime(call.received_ms)).date()
        )
        try:
            return await self.gateway.adjudicator.lookup(cert_no, day, call.client.client_id)
        except DomainError as error:
            raise refusal_of(error) from None

    async def _person_info(self, call: Call) -> Output:
        found = await self._person_by_certificate(call)
        scheme = Scheme(found.scheme)
        person = _person_of(found)
        suspended = found.status != "active"
        return {
            "baseinfo": {
                "psn_no": found.member_id,
                "psn_cert_type": "01",
                "certno": person.certno,
                "psn_name": person.psn_name,
                "gend": person.gend,
                "naty": None,
                "brdy": person.brdy,
                "age": None,
            },
            "insuinfo": [
                {
                    "balc": yuan(found.personal_account_balance),
                    "insutype": INSUTYPE[scheme],
                    "psn_type": person.psn_type,
                    "psn_insu_stas": "4" if suspended else "1",
                    "psn_insu_date": found.enrolled_since or None,
                    "paus_insu_date": None,
                    "cvlserv_flag": "0",
                    "insuplc_admdvs": found.region,
                    "emp_name": None,
                }
            ],
            "idetinfo": [],
        }, None

    async def _benefits(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        begin = parse_datetime(data.get("begntime"), "input.data.begntime")
        med_type = required_text(data, "med_type", "input.data", 6)
        if visit_type_of(med_type, self.profile) is None:
            raise NationalRefusal(_med_type_refusal("input.data.med_type", med_type))
        found = await self._member(call, member_id, begin.date())
        self._check_insutype(data, "input.data", found)
        entitled = found.status == "active" and not found.in_waiting_period
        reason = None
        if found.status != "active":
            reason = f"member status {found.status}"
        elif found.in_waiting_period:
            reason = f"waiting period until {found.waiting_until}"
        return {
            "trtinfo": [
                {
                    "psn_no": member_id,
                    "trt_chk_type": "01",
                    "fund_pay_type": POOL_FUND[Scheme(found.scheme)].value,
                    "trt_enjymnt_flag": "1" if entitled else "0",
                    "begndate": begin.date().isoformat(),
                    "enddate": None,
                    "trt_chk_rslt": reason,
                }
            ]
        }, None

    # -- visits --------------------------------------------------------------------------------

    async def _visit(self, call: Call, member_id: str, mdtrt_id: str, where: str) -> NationalVisit:
        visit = await self.store.visit(member_id, call.client.client_id, mdtrt_id)
        if visit is None:
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

    async def _register_outpatient(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        begin = parse_datetime(data.get("begntime"), "input.data.begntime")
        his_number = required_text(data, "ipt_otp_no", "input.data")
        required_text(data, "mdtrt_cert_type", "input.data", 3)
        self._may_settle(call.client, VisitType.OUTPATIENT)
        found = await self._member(call, member_id, begin.date())
        insutype = self._check_insutype(data, "input.data", found)
        mdtrt_id = _visit_id(call.client.client_id, call.envelope.msgid)
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        existing = await self.store.visit(member_id, call.client.client_id, mdtrt_id)
        if existing is None:
            await self.store.put_visit(
                member_id,
                call.client.client_id,
                mdtrt_id,
                NationalVisit(
                    visit_type=VisitType.OUTPATIENT.value,
                    med_type="",
                    insutype=insutype,
                    begin=begin.strftime("%Y-%m-%d %H:%M:%S"),
                    status=NationalVisitStatus.OPEN,
                    his_number=his_number,
                    registered_by=call.envelope.msgid,
                    person=_person_of(found).as_json(),
                ),
            )
        return {"data": {"mdtrt_id": mdtrt_id, "psn_no": member_id, "ipt_otp_no": his_number}}, None

    async def _cancel_registration(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        mdtrt_id = required_text(data, "mdtrt_id", "input.data")
        visit = await self._visit(call, member_id, mdtrt_id, "input.data")
        await self._refuse_if_settled(call, mdtrt_id, "input.data")
        await self._cancel_visit(call, member_id, mdtrt_id, visit)
        return {}, None

    async def _cancel_visit(
        self, call: Call, member_id: str, mdtrt_id: str, visit: NationalVisit
    ) -> None:
        client_id = call.client.client_id
        lines = await self.store.lines(member_id, client_id, mdtrt_id)
        await self.store.remove_lines(member_id, client_id, mdtrt_id, lines)
        cancelled = replace(visit, status=NationalVisitStatus.CANCELLED)
        await self.store.put_visit(member_id, client_id, mdtrt_id, cancelled)

    # -- inpatient stays ------------------------------------------------------------------------

    async def _admit(self, call: Call) -> Output:
        info = node(call.input, "mdtrtinfo")
        where = "input.mdtrtinfo"
        member_id = required_text(info, "psn_no", where)
        begin = parse_datetime(info.get("begntime"), f"{where}.begntime")
        med_type = required_text(info, "med_type", where, 6)
        if visit_type_of(med_type, self.profile) is not VisitType.INPATIENT:
            raise NationalRefusal(_med_type_refusal(f"{where}.med_type", med_type))
        his_number = required_text(info, "ipt_no", where)
        self._may_settle(call.client, VisitType.INPATIENT)
        found = await self._member(call, member_id, begin.date())
        insutype = self._check_insutype(info, where, found)
        diagnoses = codes_in(
            [
                str(info.get("dscg_maindiag_code") or ""),
                str(info.get("dise_codg") or ""),
                *(str(row.get("diag_code") or "") for row in _rows(call.input, "diseinfo")),
            ]
        )
        mdtrt_id = _visit_id(call.client.client_id, call.envelope.msgid)
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        if await self.store.visit(member_id, call.client.client_id, mdtrt_id) is None:
            await self.store.put_visit(
                member_id,
                call.client.client_id,
                mdtrt_id,
                NationalVisit(
                    visit_type=VisitType.INPATIENT.value,
                    med_type=med_type,
                    insutype=insutype,
                    begin=begin.strftime("%Y-%m-%d %H:%M:%S"),
                    status=NationalVisitStatus.OPEN,
                    his_number=his_number,
                    registered_by=call.envelope.msgid,
                    diagnoses=tuple(diagnoses),
                    person=_person_of(found).as_json(),
                ),
            )
        return {"result": {"mdtrt_id": mdtrt_id, "psn_no": member_id, "ipt_no": his_number}}, None

    async def _discharge(self, call: Call) -> Output:
        info = node(call.input, "dscginfo")
        where = "input.dscginfo"
        member_id = required_text(info, "psn_no", where)
        mdtrt_id = required_text(info, "mdtrt_id", where)
        end = parse_datetime(info.get("endtime"), f"{where}.endtime")
        visit = await self._visit(call, member_id, mdtrt_id, where)
        if visit.visit_type != VisitType.INPATIENT.value:
            raise NationalRefusal(f"{where}.mdtrt_id: visit {mdtrt_id} is not an admission")
        if end.strftime("%Y-%m-%d %H:%M:%S") < visit.begin:
            raise NationalRefusal(f"{where}.endtime: before the admission ({visit.begin})")
        await self._refuse_if_settled(call, mdtrt_id, where)
        staged = await self.store.lines(member_id, call.client.client_id, mdtrt_id)
        late = sorted(sn for sn, line in staged.items() if line.at[:10] > end.date().isoformat())
        if late:
            raise NationalRefusal(
                f"[DATE_OUT_OF_VISIT] {where}.endtime: fee lines {', '.join(late)} are dated "
                "after it; cancel them (2302) or send the real discharge time"
            )
        diagnoses = codes_in(
            [
                *visit.diagnoses,
                str(info.get("dise_codg") or ""),
                *(str(row.get("diag_code") or "") for row in _rows(call.input, "diseinfo")),
            ]
        )
        discharged = replace(
            visit,
            status=NationalVisitStatus.DISCHARGED,
            end=end.strftime("%Y-%m-%d %H:%M:%S"),
            diagnoses=tuple(diagnoses),
        )
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        await self.store.put_visit(member_id, call.client.client_id, mdtrt_id, discharged)
        return {}, None

    async def _cancel_admission(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        mdtrt_id = required_text(data, "mdtrt_id", "input.data")
        visit = await self._visit(call, member_id, mdtrt_id, "input.data")
        if visit.visit_type != VisitType.INPATIENT.value:
            raise NationalRefusal(f"input.data.mdtrt_id: visit {mdtrt_id} is not an admission")
        await self._refuse_if_settled(call, mdtrt_id, "input.data")
        await self._cancel_visit(call, member_id, mdtrt_id, visit)
        return {}, None

    async def _cancel_inpatient_lines(self, call: Call) -> Output:
        # Builds disagree (national.md 4.10): ``data`` as an array, as an object, or the
        # fields straight under ``input``.
        rows = _rows(call.input, "data") or [call.input]
        where = "input.data"
        member_id = required_text(rows[0], "psn_no", where)
        mdtrt_id = required_text(rows[0], "mdtrt_id", where)
        serials = [required_text(row, "feedetl_sn", where) for row in rows]
        await self._visit(call, member_id, mdtrt_id, where)
        await self._refuse_if_settled(call, mdtrt_id, where)
        client_id = call.client.client_id
        staged = await self.store.lines(member_id, client_id, mdtrt_id)
        if ALL_LINES in serials:
            chosen = list(staged)
        else:
            unknown = [sn for sn in serials if sn not in staged]
            if unknown:
                raise NationalRefusal(
                    f"{where}.feedetl_sn: {', '.join(unknown)} is no unsettled line of visit "
                    f"{mdtrt_id}"
                )
            returning = sorted(
                sn for sn, line in staged.items() if line.returns in serials and sn not in serials
            )
            if returning:
                raise NationalRefusal(
                    f"{where}.feedetl_sn: return lines {', '.join(returning)} refer to them; "
                    "cancel those too"
                )
            chosen = serials
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        await self.store.remove_lines(member_id, client_id, mdtrt_id, chosen)
        return {}, None

    # -- fee lines -----------------------------------------------------------------------------

    async def _codes(self, client: Client) -> tuple[CodeLookup, Mapping[str, CatalogItem]]:
        catalog = await self.gateway.reference.catalog()
        if client.national_codes_allowed:
            return CatalogCodes(catalog), catalog
        return await self.gateway.reference.mapping(client.client_id), catalog

    async def _upload_outpatient_lines(self, call: Call) -> Output:
        return await self._upload_lines(call, "feedetail", VisitType.OUTPATIENT)

    async def _upload_inpatient_lines(self, call: Call) -> Output:
        return await self._upload_lines(call, "feedetail", VisitType.INPATIENT)

    async def _upload_lines(self, call: Call, node_name: str, registered: VisitType) -> Output:
        rows = node(call.input, node_name, many=True)
        if not rows:
            raise NationalRefusal(f"input.{node_name}: at least one fee line")
        first = rows[0]
        where0 = f"input.{node_name}[0]"
        member_id = required_text(first, "psn_no", where0)
        mdtrt_id = required_text(first, "mdtrt_id", where0)
        visit = await self._visit(call, member_id, mdtrt_id, where0)
        if visit.visit_type != registered.value:
            raise NationalRefusal(
                f"{where0}.mdtrt_id: visit {mdtrt_id} is a {visit.visit_type} visit; "
                f"{call.envelope.infno} uploads lines of {registered.value} visits"
            )
        if visit.status == NationalVisitStatus.DISCHARGED:
            last = visit.end[:10]
            for index, row in enumerate(rows):
                at = parse_datetime(row.get("fee_ocur_time"), f"input.{node_name}[{index}]")
                if at.date().isoformat() > last:
                    raise NationalRefusal(
                        f"input.{node_name}[{index}].fee_ocur_time: after the discharge "
                        f"({visit.end}) [DATE_OUT_OF_VISIT]"
                    )
        await self._refuse_if_settled(call, mdtrt_id, where0)
        client_id = call.client.client_id
        staged = await self.store.lines(member_id, client_id, mdtrt_id)
        codes, catalog = await self._codes(call.client)
        new: dict[str, StagedLine] = {}
        answers = []
        diagnoses: list[str] = list(visit.diagnoses)
        for index, row in enumerate(rows):
            where = f"input.{node_name}[{index}]"
            line, uploaded = self._read_line(call, row, where, member_id, mdtrt_id)
            serial = uploaded.feedetl_sn
            if serial in staged or serial in new:
                raise NationalRefusal(
                    f"{where}.feedetl_sn: {serial} is already uploaded for visit {mdtrt_id}; "
                    "cancel it first (2205 / 2302) or use a new serial"
                )
            if line.returns and line.returns not in staged and line.returns not in new:
                raise NationalRefusal(
                    f"{where}.init_feedetl_sn: {line.returns} is no uploaded line of the visit"
                )
            item = self._check_line_code(call.client, codes, catalog, line, where)
            new[serial] = replace(line, national_code=item.code)
            split = self._classify(call.client, visit, codes, catalog, line, where)
            answers.append(line_result(uploaded, split, item))
            if row.get("dise_codg"):
                diagnoses.append(str(row["dise_codg"]))
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        await self.store.add_lines(member_id, client_id, mdtrt_id, new)
        named = tuple(codes_in(diagnoses))
        if named != visit.diagnoses:
            await self.store.put_visit(
                member_id, client_id, mdtrt_id, replace(visit, diagnoses=named)
            )
        return {"result": answers}, None

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
        if quantity == 0:
            raise NationalRefusal(f"{where}.cnt: must not be 0")
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

    def _classify(
        self,
        client: Client,
        visit: NationalVisit,
        codes: CodeLookup,
        catalog: Mapping[str, CatalogItem],
        line: StagedLine,
        where: str,
    ) -> LineSplit:
        """The line checked as a one-line bill is (amount, date, daily quantity), and split."""
        day = date.fromisoformat(line.at[:10])
        begin = date.fromisoformat(visit.begin[:10])
        if day < begin:
            raise NationalRefusal(
                f"{where}.fee_ocur_time: {line.at} is before the visit began ({visit.begin}) "
                "[DATE_OUT_OF_VISIT]"
            )
        code = line.national_code if client.national_codes_allowed else line.his_code
        bill = _bill_line(1, code, abs(line.quantity), line.price_fen, abs(line.amount), day, where)
        one_line = VisitRequest(
            visit_id="upload",
            member_id="upload",
            visit_type=VisitType.OUTPATIENT,
            service_date=day,
            lines=(bill,),
        )
        try:
            coded = map_bill(one_line, codes, catalog)
        except DomainError as error:
            raise NationalRefusal(f"{where}: " + refusal_of(error).err_msg) from None
        coded_line = coded.lines[0]
        split = classify_line(
            coded_line, catalog[coded_line.catalog_code], client.settling_level().rank
        )
        if line.quantity < 0:
            split = replace(
                split,
                amount=-split.amount,
                full_self_pay=-split.full_self_pay,
                over_limit_self_pay=-split.over_limit_self_pay,
                pre_self_pay=-split.pre_self_pay,
                in_scope=-split.in_scope,
            )
        return split

    async def _cancel_outpatient_lines(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        mdtrt_id = required_text(data, "mdtrt_id", "input.data")
        batch = required_text(data, "chrg_bchno", "input.data")
        await self._visit(call, member_id, mdtrt_id, "input.data")
        await self._refuse_if_settled(call, mdtrt_id, "input.data")
        client_id = call.client.client_id
        staged = await self.store.lines(member_id, client_id, mdtrt_id)
        chosen = [sn for sn, line in staged.items() if batch == ALL_LINES or line.batch == batch]
        if not chosen:
            raise NationalRefusal(
                f"input.data.chrg_bchno: no unsettled line of batch {batch} on visit {mdtrt_id}"
            )
        await self.store.remove_lines(member_id, client_id, mdtrt_id, chosen)
        return {}, None

    # -- settling ------------------------------------------------------------------------------

    async def _preview_outpatient(self, call: Call) -> Output:
        return await self._settle(call, preview=True, inpatient=False)

    async def _settle_outpatient(self, call: Call) -> Output:
        return await self._settle(call, preview=False, inpatient=False)

    async def _preview_inpatient(self, call: Call) -> Output:
        return await self._settle(call, preview=True, inpatient=True)

    async def _settle_inpatient(self, call: Call) -> Output:
        return await self._settle(call, preview=False, inpatient=True)

    async def _settle(self, call: Call, *, preview: bool, inpatient: bool) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        mdtrt_id = required_text(data, "mdtrt_id", "input.data")
        cert_type = required_text(data, "mdtrt_cert_type", "input.data", 3)
        total = fen_of(data.get("medfee_sumamt"), "input.data.medfee_sumamt")
        account = ACCT_USED.get(str(data.get("acct_used_flag", "0")))
        if account is None:
            raise NationalRefusal("input.data.acct_used_flag: must be 0 or 1")
        visit = await self._visit(call, member_id, mdtrt_id, "input.data")
        registered = VisitType.INPATIENT.value if inpatient else VisitType.OUTPATIENT.value
        if visit.visit_type != registered:
            raise NationalRefusal(
                f"input.data.mdtrt_id: visit {mdtrt_id} is a {visit.visit_type} visit; "
                f"{call.envelope.infno} settles {registered} visits"
            )
        if inpatient:
            med_type = visit.med_type
            visit_type = VisitType.INPATIENT
        else:
            med_type = required_text(data, "med_type", "input.data", 6)
            found_type = visit_type_of(med_type, self.profile)
            if found_type not in (VisitType.OUTPATIENT, VisitType.OUTPATIENT_SPECIAL):
                raise NationalRefusal(_med_type_refusal("input.data.med_type", med_type))
            visit_type = found_type
        found = await self._member(call, member_id, date.fromisoformat(visit.begin[:10]))
        self._check_insutype(data, "input.data", found)
        staged = await self.store.lines(member_id, call.client.client_id, mdtrt_id)
        lines = _bill_lines(staged, call.client.national_codes_allowed)
        if not lines:
            raise NationalRefusal(
                f"input.data.mdtrt_id: visit {mdtrt_id} has no fee lines to settle "
                f"({'2301' if inpatient else '2204'})"
            )
        uploaded_total = sum(line.amount for line in lines)
        if total != uploaded_total:
            raise NationalRefusal(
                f"input.data.medfee_sumamt: {_yuan_text(total or 0)} is not the sum "
                f"of the visit's uploaded lines ({_yuan_text(uploaded_total)})"
            )
        first_day = date.fromisoformat(visit.begin[:10])
        diagnoses = tuple(codes_in([*visit.diagnoses, str(data.get("dise_codg") or "")]))
        resettle_of = None if preview else await self._reversed_before(call, mdtrt_id)
        if inpatient:
            request = VisitRequest(
                visit_id=mdtrt_id,
                member_id=member_id,
                visit_type=visit_type,
                admission_date=first_day,
                discharge_date=self._discharge_day(visit, data, lines, preview=preview),
                diagnoses=diagnoses,
                use_personal_account=account,
                lines=tuple(lines),
                resettle_of=resettle_of,
            )
        else:
            request = VisitRequest(
                visit_id=mdtrt_id,
                member_id=member_id,
                visit_type=visit_type,
                service_date=first_day,
                diagnoses=diagnoses,
                use_personal_account=account,
                lines=tuple(lines),
                resettle_of=resettle_of,
            )
        codes, _ = await self._codes(call.client)
        if not preview:
            await self._progress(
                call,
                member_id=member_id,
                mdtrt_id=mdtrt_id,
                fingerprint=request_identity(request).hex(),
            )
        try:
            message = await self.gateway.settle(
                call.client, request, _body_of(request), preview=preview, codes=codes
            )
        except DomainError as error:
            raise refusal_of(error) from None
        settlement = wire.settlement_of(message)
        if not preview and visit.med_type != med_type:
            await self.store.put_visit(
                member_id, call.client.client_id, mdtrt_id, replace(visit, med_type=med_type)
            )
        context = SettlementContext(
            mdtrt_id=mdtrt_id,
            med_type=med_type,
            cert_type=cert_type,
            msgid=call.envelope.msgid,
            clearing_agency=settlement.policy.region,
            person=Person.from_json(visit.person),
        )
        return {
            "setlinfo": setlinfo(settlement, context),
            "setldetail": setldetail(settlement),
        }, None

    @staticmethod
    def _discharge_day(
        visit: NationalVisit, data: Mapping[str, Any], lines: list[BillLine], *, preview: bool
    ) -> date:
        """The stay's last day: the discharge (2402).

        A pre-settlement before the discharge may name one (``dscgTime``), or runs to the last
        line's day.
        """
        if visit.end:
            return date.fromisoformat(visit.end[:10])
        if not preview:
            raise NationalRefusal(
                "input.data.mdtrt_id: the patient is not discharged yet: send 2402 first "
                "(2303 may come before it)"
            )
        if data.get("dscgTime"):
            return parse_datetime(data["dscgTime"], "input.data.dscgTime").date()
        return max(date.fromisoformat(visit.begin[:10]), *(line.date for line in lines))

    async def _reversed_before(self, call: Call, mdtrt_id: str) -> str | None:
        """The visit's latest settlement when it was reversed: a new message settles again."""
        settlements = await self._settlements(call, mdtrt_id)
        if settlements and settlements[0].status is SettlementStatus.REVERSED:
            return settlements[0].settlement_id
        return None

    async def _cancel_inpatient_settlement(self, call: Call) -> Output:
        return await self._cancel_outpatient_settlement(call)

    async def _cancel_outpatient_settlement(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        mdtrt_id = required_text(data, "mdtrt_id", "input.data")
        setl_id = required_text(data, "setl_id", "input.data")
        visit = await self._visit(call, member_id, mdtrt_id, "input.data")
        settlement = await self._own_settlement(call, setl_id, member_id, mdtrt_id)
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        try:
            message = await self.gateway.adjudicator.reverse(
                settlement.settlement_id or "", call.client.client_id
            )
        except DomainError as error:
            raise refusal_of(error) from None
        reversed_ = wire.settlement_of(message)
        context = SettlementContext(
            mdtrt_id=mdtrt_id,
            med_type=visit.med_type or "11",
            cert_type="02",
            msgid=call.envelope.msgid,
            clearing_agency=reversed_.policy.region,
            person=Person.from_json(visit.person),
        )
        return {
            "setlinfo": setlinfo(reversed_, context, sign=-1),
            "setldetail": setldetail(reversed_, sign=-1),
        }, None

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

    async def _query_settlement(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        mdtrt_id = required_text(data, "mdtrt_id", "input.data")
        setl_id = required_text(data, "setl_id", "input.data")
        settlement = await self._own_settlement(call, setl_id, member_id, mdtrt_id)
        visit = await self.store.visit(member_id, call.client.client_id, mdtrt_id)
        context = SettlementContext(
            mdtrt_id=mdtrt_id,
            med_type=(visit.med_type if visit else "") or "11",
            cert_type="02",
            msgid=call.envelope.msgid,
            clearing_agency=settlement.policy.region,
            person=Person.from_json(visit.person if visit else {}),
        )
        info = setlinfo(settlement, context)
        info["refd_setl_flag"] = "1" if settlement.status is SettlementStatus.REVERSED else "0"
        return {"setlinfo": info, "setldetail": setldetail(settlement)}, None

    # -- pharmacy ------------------------------------------------------------------------------

    async def _preview_purchase(self, call: Call) -> Output:
        return await self._purchase(call, preview=True)

    async def _settle_purchase(self, call: Call) -> Output:
        return await self._purchase(call, preview=False)

    async def _purchase(self, call: Call, *, preview: bool) -> Output:
        """A pharmacy sale: no registration, its lines in the same message (2101, 2102)."""
        info = node(call.input, "druginfo")
        where = "input.druginfo"
        member_id = required_text(info, "psn_no", where)
        cert_type = required_text(info, "mdtrt_cert_type", where, 3)
        med_type = text_field(info, "med_type", where, max_length=6) or "41"
        if visit_type_of(med_type, self.profile) is not VisitType.PHARMACY:
            raise NationalRefusal(_med_type_refusal(f"{where}.med_type", med_type))
        begin = parse_datetime(info.get("begntime"), f"{where}.begntime")
        total = fen_of(info.get("medfee_sumamt"), f"{where}.medfee_sumamt")
        account = ACCT_USED.get(str(info.get("acct_used_flag", "0")))
        if account is None:
            raise NationalRefusal(f"{where}.acct_used_flag: must be 0 or 1")
        found = await self._member(call, member_id, begin.date())
        insutype = self._check_insutype(info, where, found)
        rows = node(call.input, "drugdetail", many=True)
        if not rows:
            raise NationalRefusal("input.drugdetail: at least one line")
        codes, catalog = await self._codes(call.client)
        mdtrt_id = _visit_id(call.client.client_id, call.envelope.msgid)
        serials: list[str] = []
        lines: list[BillLine] = []
        uploaded: list[UploadedLine] = []
        for index, row in enumerate(rows):
            row_where = f"input.drugdetail[{index}]"
            line, upload = self._read_line(
                call,
                {**row, "psn_no": member_id, "mdtrt_id": mdtrt_id},
                row_where,
                member_id,
                mdtrt_id,
            )
            if line.quantity < 0:
                raise NationalRefusal(f"{row_where}.cnt: a sale's quantities are positive")
            if upload.feedetl_sn in serials:
                raise NationalRefusal(f"{row_where}.feedetl_sn: {upload.feedetl_sn} twice")
            item = self._check_line_code(call.client, codes, catalog, line, row_where)
            code = item.code if call.client.national_codes_allowed else line.his_code
            lines.append(
                _bill_line(
                    index + 1,
                    code,
                    line.quantity,
                    line.price_fen,
                    line.amount,
                    begin.date(),
                    row_where,
                )
            )
            serials.append(upload.feedetl_sn)
            uploaded.append(upload)
        if total != sum(line.amount for line in lines):
            raise NationalRefusal(
                f"{where}.medfee_sumamt: {_yuan_text(total or 0)} is not the sum of the lines "
                f"({_yuan_text(sum(line.amount for line in lines))})"
            )
        request = VisitRequest(
            visit_id=mdtrt_id,
            member_id=member_id,
            visit_type=VisitType.PHARMACY,
            service_date=begin.date(),
            diagnoses=tuple(codes_in([str(info.get("dise_codg") or "")])),
            use_personal_account=account,
            lines=tuple(lines),
        )
        person = _person_of(found)
        if not preview:
            await self._progress(
                call,
                member_id=member_id,
                mdtrt_id=mdtrt_id,
                fingerprint=request_identity(request).hex(),
            )
        try:
            message = await self.gateway.settle(
                call.client, request, _body_of(request), preview=preview, codes=codes
            )
        except DomainError as error:
            raise refusal_of(error, serials) from None
        settlement = wire.settlement_of(message)
        if (
            not preview
            and await self.store.visit(member_id, call.client.client_id, mdtrt_id) is None
        ):
            # After the settlement: a refused sale leaves nothing behind. Sent again after a
            # crash here, the sale replays (the same request) and this is written then.
            await self.store.put_visit(
                member_id,
                call.client.client_id,
                mdtrt_id,
                NationalVisit(
                    visit_type=VisitType.PHARMACY.value,
                    med_type=med_type,
                    insutype=insutype,
                    begin=begin.strftime("%Y-%m-%d %H:%M:%S"),
                    status=NationalVisitStatus.OPEN,
                    his_number="",
                    registered_by=call.envelope.msgid,
                    person=person.as_json(),
                ),
            )
        context = SettlementContext(
            mdtrt_id=mdtrt_id,
            med_type=med_type,
            cert_type=cert_type,
            msgid=call.envelope.msgid,
            clearing_agency=settlement.policy.region,
            person=person,
        )
        info_out = setlinfo(settlement, context)
        del info_out["hosp_part_amt"]  # national.md 4.12: the pharmacy block has none
        cut = [
            line_result(upload, split, catalog[split.catalog_code])
            for upload, split in zip(uploaded, settlement.lines, strict=True)
        ]
        return {
            "setlinfo": info_out,
            "setldetail": setldetail(settlement),
            "detlcutinfo": cut,
        }, None

    async def _cancel_purchase(self, call: Call) -> Output:
        return await self._cancel_outpatient_settlement(call)

    # -- reconciliation (对账) ------------------------------------------------------------------

    def _statement_days(self, data: Mapping[str, Any]) -> list[date]:
        first = parse_datetime(data.get("stmt_begndate"), "input.data.stmt_begndate").date()
        last = parse_datetime(data.get("stmt_enddate"), "input.data.stmt_enddate").date()
        if last < first:
            raise NationalRefusal("input.data.stmt_enddate: before stmt_begndate")
        if (last - first).days > 31:
            raise NationalRefusal("input.data.stmt_enddate: at most 31 days after stmt_begndate")
        return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]

    async def _day_events(self, call: Call, day: date) -> list[tuple[bool, Settlement]]:
        """The client's settlements (``False``) and cancellations (``True``) of a day."""
        events: list[tuple[bool, Settlement]] = []
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            page = await self.gateway.adjudicator.day_settlements(
                call.client.client_id, day, cursor, 500
            )
            for item in page.items:
                settlement = wire.settlement_of(item)
                settlement_id = settlement.settlement_id or ""
                settled_on = (settlement.settled_at or "")[:10] == day.isoformat()
                is_reversal = not settled_on or settlement_id in seen
                seen.add(settlement_id)
                events.append((is_reversal, settlement))
            cursor = page.next_cursor or None
            if cursor is None:
                return events

    async def _reconcile_totals(self, call: Call) -> Output:
        """3201: one group's (险种, 清算类别) totals over the statement's days."""
        data = node(call.input, "data")
        insutype = required_text(data, "insutype", "input.data", 6)
        scheme = SCHEME_OF_INSUTYPE.get(insutype)
        if scheme is None:
            raise NationalRefusal(f"input.data.insutype: {insutype} is not 390 or 310")
        clr_type = required_text(data, "clr_type", "input.data", 6)
        visit_types = {kind for kind, code in CLR_TYPE.items() if code == clr_type}
        if not visit_types:
            raise NationalRefusal(f"input.data.clr_type: {clr_type} is not 11, 21 or 41")
        flag = text_field(data, "refd_setl_flag", "input.data", max_length=3)
        if flag not in (None, "0", "1"):
            raise NationalRefusal("input.data.refd_setl_flag: 0 (settlements) or 1 (cancellations)")
        theirs = {
            "medfee_sumamt": fen_of(data.get("medfee_sumamt"), "input.data.medfee_sumamt"),
            "fund_pay_sumamt": fen_of(data.get("fund_pay_sumamt"), "input.data.fund_pay_sumamt"),
            "acct_pay": fen_of(data.get("acct_pay"), "input.data.acct_pay"),
            "fixmedins_setl_cnt": _whole(
                data.get("fixmedins_setl_cnt"), "input.data.fixmedins_setl_cnt", 0, 10**10
            ),
        }
        mine = dict.fromkeys(theirs, 0)
        for day in self._statement_days(data):
            for is_reversal, settlement in await self._day_events(call, day):
                if settlement.policy.scheme is not scheme or settlement.visit_type not in (
                    visit_types
                ):
                    continue
                if (flag == "0" and is_reversal) or (flag == "1" and not is_reversal):
                    continue
                sign = -1 if is_reversal and flag is None else 1
                amounts = settlement.amounts
                mine["medfee_sumamt"] += sign * amounts.total
                mine["fund_pay_sumamt"] += sign * fund_sum(amounts)
                mine["acct_pay"] += sign * amounts.personal_account
                mine["fixmedins_setl_cnt"] += sign
        differences = {name: mine[name] - (theirs[name] or 0) for name in theirs}
        balanced = not any(differences.values())
        described = ", ".join(
            f"{name}: onestop {_shown(name, mine[name])}, institution {_shown(name, theirs[name])}"
            for name, value in differences.items()
            if value
        )
        return {
            "stmtinfo": {
                "setl_optins": text_field(data, "setl_optins", "input.data", max_length=6)
                or call.client.region,
                "stmt_rslt": "0" if balanced else "1",
                "stmt_rslt_dscr": "平" if balanced else f"不平: {described}",
            }
        }, None

    async def _reconcile_detail(self, call: Call) -> Output:
        """3202: settlement by settlement, the detail in the body (file exchange not needed)."""
        data = node(call.input, "data")
        days = self._statement_days(data)
        rows = _rows(call.input, "detail")
        if "detail" not in call.input:
            raise NationalRefusal(
                "input.detail: required: the settlements of the period as a list of objects "
                "(setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt, acct_pay, "
                "refd_setl_flag); onestop takes the detail in the body, not as a file"
            )
        theirs: dict[str, dict[str, Any]] = {}
        for index, row in enumerate(rows):
            where = f"input.detail[{index}]"
            setl_id = required_text(row, "setl_id", where)
            if (row.get("refd_setl_flag") or "0") == "1":
                continue  # a cancellation row: the settlement's own row carries its amounts
            theirs[setl_id] = {
                "row": row,
                "medfee_sumamt": fen_of(row.get("medfee_sumamt"), f"{where}.medfee_sumamt"),
                "fund_pay_sumamt": fen_of(row.get("fund_pay_sumamt"), f"{where}.fund_pay_sumamt"),
                "acct_pay": fen_of(row.get("acct_pay"), f"{where}.acct_pay"),
            }
        mine: dict[str, Settlement] = {}
        for day in days:
            for is_reversal, settlement in await self._day_events(call, day):
                if not is_reversal and settlement.settlement_id:
                    mine[national_setl_id(settlement.settlement_id)] = settlement
        result = []
        for setl_id in sorted(set(mine) | set(theirs)):
            found = mine.get(setl_id)
            reported = theirs.get(setl_id)
            if found is None:
                assert reported is not None
                row = reported["row"]
                result.append(
                    _statement_row(
                        setl_id,
                        str(row.get("mdtrt_id") or ""),
                        str(row.get("psn_no") or ""),
                        "1",
                        "0",
                        "onestop has no settlement by this setl_id in the period",
                        reported["medfee_sumamt"],
                        reported["fund_pay_sumamt"],
                        reported["acct_pay"],
                    )
                )
                continue
            settlement = found
            amounts = settlement.amounts
            values = {
                "medfee_sumamt": amounts.total,
                "fund_pay_sumamt": fund_sum(amounts),
                "acct_pay": amounts.personal_account,
            }
            refunded = "1" if settlement.status is SettlementStatus.REVERSED else "0"
            if reported is None:
                memo = "not in the institution's detail"
                outcome = "1"
            else:
                differing = [name for name in values if values[name] != reported[name]]
                outcome = "1" if differing else "0"
                memo = (
                    "; ".join(
                        f"{name}: onestop {_yuan_text(values[name])}, "
                        f"institution {_yuan_text(reported[name] or 0)}"
                        for name in differing
                    )
                    or ""
                )
            result.append(
                _statement_row(
                    setl_id,
                    settlement.visit_id,
                    settlement.member_id,
                    outcome,
                    refunded,
                    memo or None,
                    values["medfee_sumamt"],
                    values["fund_pay_sumamt"],
                    values["acct_pay"],
                )
            )
        unbalanced = sum(1 for row in result if row["stmt_rslt"] == "1")
        return {
            "fileinfo": {"file_qury_no": None, "filename": None, "dld_endtime": None},
            "result": result,
        }, (f"{unbalanced} settlements differ" if unbalanced else None)

    # -- catalog queries -----------------------------------------------------------------------

    def _page(self, call: Call, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """One page of rows with the interface's paging fields (national.md 4.16)."""
        data = node(call.input, "data")
        parse_datetime(data.get("updt_time"), "input.data.updt_time")
        number = _whole(data.get("page_num"), "input.data.page_num", 1, 10**6)
        size = _whole(data.get("page_size"), "input.data.page_size", 1, 1000)
        pages = max(1, -(-len(rows) // size))
        start = (number - 1) * size
        chosen = rows[start : start + size]
        return {
            "data": chosen,
            "firstPage": number == 1,
            "lastPage": number >= pages,
            "size": len(chosen),
            "startRow": start + 1 if chosen else 0,
            "endRow": start + len(chosen),
            "pageSize": size,
            "pageNum": number,
            "recordCounts": len(rows),
            "pages": pages,
        }

    def _code_filter(self, call: Call) -> str | None:
        data = node(call.input, "data")
        return text_field(data, "hilist_code", "input.data", max_length=50)

    async def _catalog_query(self, call: Call) -> Output:
        catalog = await self.gateway.reference.catalog()
        wanted = self._code_filter(call)
        region = call.client.region or ""
        rows = [
            {
                "hilist_code": item.code,
                "hilist_name": item.name,
                "insu_admdvs": region,
                "begndate": None,
                "enddate": None,
                "med_chrgitm_type": MED_CHRGITM_TYPE[item.kind],
                "chrgitm_lv": CHRGITM_LV[item.category],
                "lmt_used_flag": "0",
                "list_type": LIST_TYPE[item.kind],
                "med_use_flag": "1",
                "matn_used_flag": "0",
                "hilist_use_type": None,
                "lmt_cpnd_type": None,
                "wubi": None,
                "pinyin": None,
                "memo": item.unit,
                "vali_flag": "1",
                "rid": item.code,
                "updt_time": None,
                "poolarea_no": region,
            }
            for item in sorted(catalog.values(), key=lambda item: item.code)
            if wanted is None or item.code == wanted
        ]
        return self._page(call, rows), None

    async def _mapping_query(self, call: Call) -> Output:
        """The calling client's own mapping: its codes and the catalog code each stands for."""
        catalog = await self.gateway.reference.catalog()
        mapping = await self.gateway.reference.mapping(call.client.client_id)
        wanted = self._code_filter(call)
        region = call.client.region or ""
        rows = [
            {
                "med_list_codg": row.catalog_code,
                "medins_list_codg": row.his_code,
                "hilist_code": row.catalog_code,
                "list_type": LIST_TYPE[catalog[row.catalog_code].kind]
                if row.catalog_code in catalog
                else None,
                "insu_admdvs": region,
                "begndate": row.valid_from.isoformat(),
                "enddate": row.valid_to.isoformat() if row.valid_to else None,
                "memo": f"factor {row.factor}",
                "vali_flag": "1",
                "rid": f"{row.his_code}:{row.valid_from.isoformat()}",
                "updt_time": None,
                "poolarea_no": region,
            }
            for row in mapping.rows()
            if wanted is None or row.catalog_code == wanted
        ]
        return self._page(call, rows), None

    async def _price_cap_query(self, call: Call) -> Output:
        catalog = await self.gateway.reference.catalog()
        wanted = self._code_filter(call)
        region = call.client.region or ""
        rows = [
            {
                "hilist_code": item.code,
                "hilist_lmtpric_type": "1",
                "overlmt_dspo_way": "1",
                "insu_admdvs": region,
                "begndate": None,
                "enddate": None,
                "hilist_pric_uplmt_amt": decimal_number(Decimal(item.price_cap) / 100, 2),
                "vali_flag": "1",
                "rid": item.code,
                "updt_time": None,
                "tabname": None,
                "poolarea_no": region,
            }
            for item in sorted(catalog.values(), key=lambda item: item.code)
            if item.price_cap is not None and (wanted is None or item.code == wanted)
        ]
        return self._page(call, rows), None

    # -- 2601 ----------------------------------------------------------------------------------

    async def _reverse_message(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        omsgid = required_text(data, "omsgid", "input.data")
        oinfno = required_text(data, "oinfno", "input.data", 6)
        client_id = call.client.client_id
        original = await self.store.message(client_id, omsgid)
        if original is None:
            revoked = NationalMessage(
                state=NationalMessageState.REVOKED,
                infno=oinfno,
                digest="",
                at_ms=call.received_ms,
                member_id=member_id,
                revoked_by=call.envelope.msgid,
            )
            original = await self.store.claim(client_id, omsgid, revoked)
            if original is None:
                return {}, (
                    f"no message {omsgid} was received: nothing was done. It is recorded as "
                    "reversed: if it arrives later it is refused, never processed"
                )
        if original.infno != oinfno:
            raise NationalRefusal(
                f"input.data.oinfno: message {omsgid} was a {original.infno}, not {oinfno}"
            )
        if original.member_id and original.member_id != member_id:
            raise NationalRefusal(f"input.data.psn_no: message {omsgid} was for another person")
        if original.state is NationalMessageState.REVOKED:
            return {}, f"message {omsgid} was already reversed (by {original.revoked_by})"
        if oinfno not in REVERSIBLE:
            raise NationalRefusal(
                f"input.data.oinfno: a {oinfno} is not reversed by 2601 in onestop; "
                "a cancellation is undone by settling again, a pre-settlement needs no undo"
            )
        if (
            original.state is NationalMessageState.ANSWERED
            and original.answer is not None
            and json.loads(original.answer).get("infcode") not in (0, "0")
        ):
            return {}, f"message {omsgid} was refused: it did nothing, nothing to undo"
        settlement = await self._settlement_made_by(call, original)
        if settlement is not None:
            if settlement.status is SettlementStatus.SETTLED:
                try:
                    await self.gateway.adjudicator.reverse(
                        settlement.settlement_id or "", client_id
                    )
                except DomainError as error:
                    raise refusal_of(error) from None
                return {}, None
            return {}, f"the settlement message {omsgid} made is already cancelled"
        if oinfno in ("2201", "2401") and original.mdtrt_id:
            visit = await self.store.visit(original.member_id, client_id, original.mdtrt_id)
            if visit is not None and visit.status != NationalVisitStatus.CANCELLED:
                await self._refuse_if_settled(call, original.mdtrt_id, "input.data")
                await self._cancel_visit(call, original.member_id, original.mdtrt_id, visit)
                return {}, None
        if (
            original.state is not NationalMessageState.ANSWERED
            and call.received_ms - original.at_ms < PENDING_WINDOW_MS
        ):
            seconds = (PENDING_WINDOW_MS - (call.received_ms - original.at_ms)) // 1000 + 1
            raise NationalRefusal(
                f"input.data.omsgid: message {omsgid} is still being processed; send this "
                f"2601 again in {seconds} s"
            )
        revoked = replace(
            original,
            state=NationalMessageState.REVOKED,
            revoked_by=call.envelope.msgid,
            answer=None,
        )
        await self.store.keep(client_id, omsgid, revoked)
        return {}, f"message {omsgid} settled nothing: it is recorded as reversed"

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


def _shown(name: str, value: int | None) -> str:
    return str(value or 0) if name == "fixmedins_setl_cnt" else _yuan_text(value or 0)


def _statement_row(
    setl_id: str,
    mdtrt_id: str,
    member_id: str,
    outcome: str,
    refunded: str,
    memo: str | None,
    total: int | None,
    funds: int | None,
    account: int | None,
) -> dict[str, Any]:
    """One row of a detail reconciliation's result (national.md 4.14's result columns)."""
    return {
        "psn_no": member_id,
        "mdtrt_id": mdtrt_id,
        "setl_id": setl_id,
        "msgid": None,
        "stmt_rslt": outcome,
        "refd_setl_flag": refunded,
        "memo": memo,
        "medfee_sumamt": yuan(total or 0),
        "fund_pay_sumamt": yuan(funds or 0),
        "acct_pay": yuan(account or 0),
    }


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise NationalRefusal(f"{field}: a whole number from {low} to {high}")
    return value


def _rows(payload: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    """An optional node as a list of objects (an object alone is a list of one)."""
    value = payload.get(name)
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return []


def _person_of(found: pb.EligibilityAnswer) -> Person:
    scheme = Scheme(found.scheme)
    return Person(
        psn_name=found.name_masked,
        certno=found.id_number_masked,
        gend=GEND.get(found.sex, ""),
        brdy=found.birth_date,
        psn_type=PSN_TYPE[scheme],
    )


def _med_type_refusal(field: str, med_type: str) -> str:
    return (
        f"{field}: {med_type} is not a medical type onestop settles (ordinary, emergency and "
        "special-disease outpatient, inpatient, pharmacy purchase; maternity and work injury "
        "are other schemes)"
    )


def _bill_line(
    line_no: int,
    code: str,
    quantity: Decimal,
    price_fen: Decimal,
    amount: int,
    day: date,
    where: str,
) -> BillLine:
    if price_fen != price_fen.to_integral_value():
        raise NationalRefusal(
            f"{where}.pric: {price_fen / 100} yuan is not a whole number of fen; a price below "
            "one fen is not settled yet (domain section 14)"
        )
    return BillLine(
        line_no=line_no,
        his_code=code,
        quantity=quantity,
        unit_price=int(price_fen),
        amount=amount,
        date=day,
    )


def _bill_lines(staged: Mapping[str, StagedLine], national_codes: bool) -> list[BillLine]:
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
            _bill_line(
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


def _body_of(request: VisitRequest) -> bytes:
    """The request as the JSON body a native call would carry (checked to be UTF-8)."""
    return orjson.dumps(request.model_dump(mode="json"))


def _yuan_text(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def _json(reply: dict[str, Any]) -> bytes:
    """An answer as the JSON it is sent as (amounts exactly as :func:`yuan` wrote them)."""
    return orjson.dumps(reply)
