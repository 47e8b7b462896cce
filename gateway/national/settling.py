"""Pre-settling, settling and cancelling; the settlement query; 2601."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from gateway.national.base import (
    PENDING_WINDOW_MS,
    REVERSIBLE,
    Call,
    NationalBase,
    Output,
    bill_line,
    bill_lines,
    diagnosis_codes,
    med_type_refusal,
    person_of,
    visit_id_of,
    visit_request,
)
from onestop import wire
from onestop.domain.bill import (
    BillLine,
)
from onestop.domain.errors import DomainError
from onestop.domain.settlement import SettlementStatus
from onestop.domain.types import VisitType
from onestop.national.amounts import (
    fen_of,
    yuan_text,
)
from onestop.national.codes import (
    ACCT_USED,
    visit_type_of,
)
from onestop.national.envelope import (
    NationalRefusal,
    node,
    parse_datetime,
    refusal_of,
    required_text,
    text_field,
)
from onestop.national.settlement import (
    Person,
    SettlementContext,
    UploadedLine,
    line_result,
    setldetail,
    setlinfo,
)
from onestop.storage.layout import NationalMessageState
from onestop.storage.national import (
    NationalMessage,
    NationalVisit,
    NationalVisitStatus,
)


class Settling(NationalBase):
    """A visit settled, cancelled, read, or a message undone."""

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
                raise NationalRefusal(med_type_refusal("input.data.med_type", med_type))
            visit_type = found_type
        found = await self._member(call, member_id, date.fromisoformat(visit.begin[:10]))
        self._check_insutype(data, "input.data", found)
        staged = await self.store.lines(member_id, call.client.client_id, mdtrt_id)
        lines = bill_lines(staged, call.client.national_codes_allowed)
        if not lines:
            raise NationalRefusal(
                f"input.data.mdtrt_id: visit {mdtrt_id} has no fee lines to settle "
                f"({'2301' if inpatient else '2204'})"
            )
        uploaded_total = sum(line.amount for line in lines)
        if total != uploaded_total:
            raise NationalRefusal(
                f"input.data.medfee_sumamt: {yuan_text(total or 0)} is not the sum "
                f"of the visit's uploaded lines ({yuan_text(uploaded_total)})"
            )
        first_day = date.fromisoformat(visit.begin[:10])
        diagnoses = diagnosis_codes(
            [*visit.diagnoses, str(data.get("dise_codg") or "")], "input.data.dise_codg"
        )
        resettle_of = None if preview else await self._reversed_before(call, mdtrt_id)
        if inpatient:
            request = visit_request(
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
            request = visit_request(
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
        settlement = await self._settle_request(call, request, codes, preview=preview)
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

    async def _cancel_inpatient_settlement(self, call: Call) -> Output:
        return await self._cancel_settlement(call, VisitType.INPATIENT)

    async def _cancel_outpatient_settlement(self, call: Call) -> Output:
        return await self._cancel_settlement(call, VisitType.OUTPATIENT)

    async def _cancel_settlement(self, call: Call, registered: VisitType) -> Output:
        """2208, 2305, 2103: a settlement cancelled, its amounts answered negated."""
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        mdtrt_id = required_text(data, "mdtrt_id", "input.data")
        setl_id = required_text(data, "setl_id", "input.data")
        visit = await self._visit(call, member_id, mdtrt_id, "input.data")
        if visit.visit_type != registered.value:
            raise NationalRefusal(
                f"input.data.mdtrt_id: visit {mdtrt_id} is a {visit.visit_type} visit; "
                f"{call.envelope.infno} cancels {registered.value} settlements"
            )
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
            raise NationalRefusal(med_type_refusal(f"{where}.med_type", med_type))
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
        mdtrt_id = visit_id_of(call.client.client_id, call.envelope.msgid)
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
                bill_line(
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
                f"{where}.medfee_sumamt: {yuan_text(total or 0)} is not the sum of the lines "
                f"({yuan_text(sum(line.amount for line in lines))})"
            )
        request = visit_request(
            visit_id=mdtrt_id,
            member_id=member_id,
            visit_type=VisitType.PHARMACY,
            service_date=begin.date(),
            diagnoses=diagnosis_codes([str(info.get("dise_codg") or "")], f"{where}.dise_codg"),
            use_personal_account=account,
            lines=tuple(lines),
        )
        person = person_of(found)
        settlement = await self._settle_request(
            call, request, codes, preview=preview, serials=serials
        )
        if not preview:
            # After the settlement: a refused sale leaves nothing behind. Sent again after a
            # crash here, the sale replays (the same request) and this is written then.
            await self._open_visit(
                call,
                member_id,
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
        return await self._cancel_settlement(call, VisitType.PHARMACY)

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
        # What it made, whatever it answered: its answer may never have arrived.
        settlement = await self._settlement_made_by(call, original)
        if settlement is not None:
            warning = None
            if settlement.status is SettlementStatus.SETTLED:
                try:
                    await self.gateway.adjudicator.reverse(
                        settlement.settlement_id or "", client_id
                    )
                except DomainError as error:
                    raise refusal_of(error) from None
            else:
                warning = f"the settlement message {omsgid} made is already cancelled"
            await self._revoke(call, omsgid, original)
            return {}, warning
        if oinfno in ("2201", "2401") and original.mdtrt_id:
            visit = await self.store.visit(original.member_id, client_id, original.mdtrt_id)
            if visit is not None and visit.status != NationalVisitStatus.CANCELLED:
                await self._refuse_if_settled(call, original.mdtrt_id, "input.data")
                await self._cancel_visit(call, original.member_id, original.mdtrt_id, visit)
                await self._revoke(call, omsgid, original)
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
        if (
            original.state is NationalMessageState.ANSWERED
            and original.answer is not None
            and json.loads(original.answer).get("infcode") not in (0, "0")
        ):
            return {}, f"message {omsgid} was refused: it did nothing, nothing to undo"
        await self._revoke(call, omsgid, original)
        return {}, f"message {omsgid} settled nothing: it is recorded as reversed"

    async def _revoke(self, call: Call, omsgid: str, original: NationalMessage) -> None:
        """Record a message as reversed, so that sent again it is refused, never processed.

        Raises:
            NationalRefusal: it changed meanwhile (sent again and being processed): the 2601
                is to be sent again.
        """
        revoked = replace(
            original,
            state=NationalMessageState.REVOKED,
            revoked_by=call.envelope.msgid,
            answer=None,
        )
        if not await self.store.swap(call.client.client_id, omsgid, original, revoked):
            raise NationalRefusal(
                f"input.data.omsgid: message {omsgid} arrived again meanwhile and is being "
                "processed; send this 2601 again in a few seconds"
            )
