"""Reconciliation (3201, 3202) and the catalog, mapping and price-cap queries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from gateway.national.base import (
    Call,
    NationalBase,
    Output,
    rows_of,
    whole_number,
)
from onestop import wire
from onestop.domain.settlement import Settlement, SettlementStatus
from onestop.national.amounts import (
    decimal_number,
    fen_of,
    yuan,
    yuan_text,
)
from onestop.national.codes import (
    CHRGITM_LV,
    CLR_TYPE,
    LIST_TYPE,
    SCHEME_OF_INSUTYPE,
    med_chrgitm_type_of,
)
from onestop.national.envelope import (
    NationalRefusal,
    node,
    parse_datetime,
    required_text,
    text_field,
)
from onestop.national.settlement import (
    fund_sum,
    national_setl_id,
)

MAX_DETAIL = 200_000
"""Rows a 3202 may carry: a busy hospital's month."""


class Statements(NationalBase):
    """What a client compares and looks up: its day, the catalog, its mapping."""

    def _statement_days(self, data: Mapping[str, Any]) -> list[date]:
        first = parse_datetime(data.get("stmt_begndate"), "input.data.stmt_begndate").date()
        last = parse_datetime(data.get("stmt_enddate"), "input.data.stmt_enddate").date()
        if last < first:
            raise NationalRefusal("input.data.stmt_enddate: before stmt_begndate")
        if (last - first).days >= 31:
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
            "fixmedins_setl_cnt": whole_number(
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
        rows = rows_of(call.input, "detail")
        if len(rows) > MAX_DETAIL:
            raise NationalRefusal(
                f"input.detail: at most {MAX_DETAIL} rows a message; reconcile fewer days at once"
            )
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
                        f"{name}: onestop {yuan_text(values[name])}, "
                        f"institution {yuan_text(reported[name] or 0)}"
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

    def _page(self, call: Call, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """One page of rows with the interface's paging fields (national.md 4.16)."""
        data = node(call.input, "data")
        parse_datetime(data.get("updt_time"), "input.data.updt_time")
        number = whole_number(data.get("page_num"), "input.data.page_num", 1, 10**6)
        size = whole_number(data.get("page_size"), "input.data.page_size", 1, 1000)
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
                "med_chrgitm_type": med_chrgitm_type_of(item).value,
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


def _shown(name: str, value: int | None) -> str:
    return str(value or 0) if name == "fixmedins_setl_cnt" else yuan_text(value or 0)


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
