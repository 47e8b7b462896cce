"""Registrations, admissions and discharges, and the fee lines uploaded for them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal

from gateway.national.base import (
    ALL_LINES,
    MAX_LIST,
    Call,
    NationalBase,
    Output,
    bill_line,
    diagnosis_codes,
    med_type_refusal,
    person_of,
    rows_of,
    visit_id_of,
    visit_request,
)
from onestop.domain.catalog import CatalogItem
from onestop.domain.clients import Client
from onestop.domain.engine import LineSplit, classify_line
from onestop.domain.errors import DomainError
from onestop.domain.mapping import CodeLookup, map_bill
from onestop.domain.types import VisitType
from onestop.national.codes import (
    visit_type_of,
)
from onestop.national.envelope import (
    NationalRefusal,
    node,
    parse_datetime,
    refusal_of,
    required_text,
)
from onestop.national.settlement import (
    line_result,
)
from onestop.storage.national import (
    NationalVisit,
    NationalVisitStatus,
    StagedLine,
)


class Visits(NationalBase):
    """A visit's life before it settles: registered, lines uploaded and cancelled, discharged."""

    async def _register_outpatient(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        begin = parse_datetime(data.get("begntime"), "input.data.begntime")
        his_number = required_text(data, "ipt_otp_no", "input.data")
        required_text(data, "mdtrt_cert_type", "input.data", 3)
        self._may_settle(call.client, VisitType.OUTPATIENT)
        found = await self._member(call, member_id, begin.date())
        insutype = self._check_insutype(data, "input.data", found)
        mdtrt_id = visit_id_of(call.client.client_id, call.envelope.msgid)
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        await self._open_visit(
            call,
            member_id,
            mdtrt_id,
            NationalVisit(
                visit_type=VisitType.OUTPATIENT.value,
                med_type="",
                insutype=insutype,
                begin=begin.strftime("%Y-%m-%d %H:%M:%S"),
                status=NationalVisitStatus.OPEN,
                his_number=his_number,
                registered_by=call.envelope.msgid,
                person=person_of(found).as_json(),
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

    async def _admit(self, call: Call) -> Output:
        info = node(call.input, "mdtrtinfo")
        where = "input.mdtrtinfo"
        member_id = required_text(info, "psn_no", where)
        begin = parse_datetime(info.get("begntime"), f"{where}.begntime")
        med_type = required_text(info, "med_type", where, 6)
        if visit_type_of(med_type, self.profile) is not VisitType.INPATIENT:
            raise NationalRefusal(med_type_refusal(f"{where}.med_type", med_type))
        his_number = required_text(info, "ipt_no", where)
        self._may_settle(call.client, VisitType.INPATIENT)
        found = await self._member(call, member_id, begin.date())
        insutype = self._check_insutype(info, where, found)
        diagnoses = diagnosis_codes(
            [
                str(info.get("dscg_maindiag_code") or ""),
                str(info.get("dise_codg") or ""),
                *(str(row.get("diag_code") or "") for row in rows_of(call.input, "diseinfo")),
            ],
            where,
        )
        mdtrt_id = visit_id_of(call.client.client_id, call.envelope.msgid)
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        await self._open_visit(
            call,
            member_id,
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
                person=person_of(found).as_json(),
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
        diagnoses = diagnosis_codes(
            [
                *visit.diagnoses,
                str(info.get("dise_codg") or ""),
                *(str(row.get("diag_code") or "") for row in rows_of(call.input, "diseinfo")),
            ],
            where,
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
        rows = rows_of(call.input, "data") or [call.input]
        where = "input.data"
        member_id = required_text(rows[0], "psn_no", where)
        mdtrt_id = required_text(rows[0], "mdtrt_id", where)
        if len(rows) > MAX_LIST:
            raise NationalRefusal(f"{where}: at most {MAX_LIST} rows")
        if any(
            row.get("mdtrt_id") not in (None, mdtrt_id)
            or row.get("psn_no") not in (None, member_id)
            for row in rows
        ):
            raise NationalRefusal(f"{where}: every row of one message names the same visit")
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
            returning = _returns_left_behind(staged, serials)
            if returning:
                raise NationalRefusal(
                    f"{where}.feedetl_sn: return lines {', '.join(returning)} refer to them; "
                    "cancel those too"
                )
            chosen = serials
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        await self.store.remove_lines(member_id, client_id, mdtrt_id, chosen)
        return {}, None

    async def _upload_outpatient_lines(self, call: Call) -> Output:
        return await self._upload_lines(call, "feedetail", VisitType.OUTPATIENT)

    async def _upload_inpatient_lines(self, call: Call) -> Output:
        return await self._upload_lines(call, "feedetail", VisitType.INPATIENT)

    async def _upload_lines(self, call: Call, node_name: str, registered: VisitType) -> Output:
        rows = node(call.input, node_name, many=True)
        if not rows:
            raise NationalRefusal(f"input.{node_name}: at least one fee line")
        if len(rows) > MAX_LIST:
            raise NationalRefusal(f"input.{node_name}: at most {MAX_LIST} fee lines a message")
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
        named = diagnosis_codes(diagnoses, f"input.{node_name}[].dise_codg")
        if len(staged) + len(new) > MAX_LIST:
            raise NationalRefusal(
                f"input.{node_name}: visit {mdtrt_id} would hold {len(staged) + len(new)} "
                f"lines; a bill has at most {MAX_LIST}"
            )
        self._check_returns(staged, new, node_name)
        await self._progress(call, member_id=member_id, mdtrt_id=mdtrt_id)
        await self.store.add_lines(member_id, client_id, mdtrt_id, new)
        if named != visit.diagnoses:
            await self.store.put_visit(
                member_id, client_id, mdtrt_id, replace(visit, diagnoses=named)
            )
        return {"result": answers}, None

    @staticmethod
    def _check_returns(
        staged: Mapping[str, StagedLine], new: Mapping[str, StagedLine], node_name: str
    ) -> None:
        """A return names an original line and returns at most what it billed.

        Raises:
            NationalRefusal: a return of a return, or more returned than billed.
        """
        lines = {**staged, **new}
        returned: dict[str, Decimal] = {}
        for serial, line in new.items():
            if not line.returns:
                continue
            original = lines.get(line.returns)
            if original is None or original.returns:
                raise NationalRefusal(
                    f"input.{node_name}: {serial} returns {line.returns}, which is not a line "
                    "billed on this visit (a return returns an original line)"
                )
        for line in lines.values():
            if line.returns:
                returned[line.returns] = returned.get(line.returns, Decimal(0)) - line.quantity
        for serial, quantity in returned.items():
            if quantity > lines[serial].quantity:
                raise NationalRefusal(
                    f"input.{node_name}: more of {serial} is returned ({quantity}) than was "
                    f"billed ({lines[serial].quantity})"
                )

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
        bill = bill_line(1, code, abs(line.quantity), line.price_fen, abs(line.amount), day, where)
        one_line = visit_request(
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
        orphans = _returns_left_behind(staged, chosen)
        if orphans:
            raise NationalRefusal(
                f"input.data.chrg_bchno: return lines {', '.join(orphans)} of another batch "
                "refer to lines of this one; cancel their batch first"
            )
        await self.store.remove_lines(member_id, client_id, mdtrt_id, chosen)
        return {}, None


def _returns_left_behind(staged: Mapping[str, StagedLine], removed: Sequence[str]) -> list[str]:
    """Return lines that would outlive the lines they return if ``removed`` went (sorted)."""
    return sorted(
        serial
        for serial, line in staged.items()
        if line.returns in removed and serial not in removed
    )
