"""The national interface through the real HTTP stack on real Redis (docs/national.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from gateway.national.base import message_digest
from gateway.settings import GatewaySettings
from onestop.client import SignedClient
from onestop.clock import SHANGHAI, now_ms
from onestop.national.codes import Profile
from onestop.signing import public_pem
from onestop.storage import layout
from onestop.storage.layout import NationalMessageState
from onestop.storage.national import NationalMessage
from tests.support.gateway import Gateway
from tests.support.national import NationalHis, relationships_broken
from tests.support.redis import ON_BOTH, sync_client
from tests.support.scenario import member_record
from tests.support.world import load_demo_over_http

REGION = "410100"
MEMBER = "M900001"
ID_NUMBER = member_record(MEMBER)["id_number"]
FUNDS_TO_NATIONAL = {
    "total": "medfee_sumamt",
    "full_self_pay": "fulamt_ownpay_amt",
    "over_limit_self_pay": "overlmt_selfpay",
    "pre_self_pay": "preselfpay_amt",
    "in_scope": "inscp_scp_amt",
    "deductible": "act_pay_dedc",
    "basic_fund": "hifp_pay",
    "assistance": "maf_pay",
    "personal_account": "acct_pay",
    "cash": "psn_cash_pay",
    "hospital_part": "hosp_part_amt",
}


def now_text() -> str:
    return datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def yuan(fen: int) -> Decimal:
    return Decimal(fen) / 100


def fee_line(
    serial: str,
    mdtrt_id: str,
    his_code: str,
    national_code: str,
    quantity: str,
    price: str,
    total: str,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "feedetl_sn": serial,
        "mdtrt_id": mdtrt_id,
        "psn_no": MEMBER,
        "chrg_bchno": "B1",
        "rx_circ_flag": "0",
        "fee_ocur_time": now_text(),
        "med_list_codg": national_code,
        "medins_list_codg": his_code,
        "det_item_fee_sumamt": Decimal(total),
        "cnt": Decimal(quantity),
        "pric": Decimal(price),
        "bilg_dept_codg": "D01",
        "bilg_dept_name": "内科",
        "bilg_dr_codg": "DR1",
        "bilg_dr_name": "王医生",
        "hosp_appr_flag": "1",
        **extra,
    }


def ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["infcode"] == 0, answer["err_msg"]
    assert answer["err_msg"] is None
    for name in ("inf_refmsgid", "refmsg_time", "respond_time"):
        assert answer[name], name
    assert answer["inf_refmsgid"].startswith(REGION)
    assert len(answer["inf_refmsgid"]) == 30
    output: dict[str, Any] = answer["output"]
    return output


def refused(answer: dict[str, Any], *words: str) -> str:
    assert answer["infcode"] == -1, answer
    message: str = answer["err_msg"]
    for word in words:
        assert word in message, message
    return message


async def his_of(gateway: Gateway) -> NationalHis:
    clients = await load_demo_over_http(gateway, [member_record(MEMBER)])
    return NationalHis(clients["ZZH3"], "ZZH3", REGION)


async def register(his: NationalHis) -> str:
    registered = ok(
        await his.call(
            "2201",
            {
                "data": {
                    "psn_no": MEMBER,
                    "insutype": "390",
                    "begntime": now_text(),
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": ID_NUMBER,
                    "ipt_otp_no": "MZ0001",
                    "atddr_no": "DR1",
                    "dr_name": "王医生",
                    "dept_code": "D01",
                    "dept_name": "内科",
                    "caty": "A03",
                }
            },
        )
    )
    mdtrt_id: str = registered["data"]["mdtrt_id"]
    assert registered["data"]["psn_no"] == MEMBER
    assert len(mdtrt_id) <= 30
    return mdtrt_id


def settle_input(mdtrt_id: str, total: str) -> dict[str, Any]:
    return {
        "data": {
            "psn_no": MEMBER,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": ID_NUMBER,
            "med_type": "11",
            "medfee_sumamt": Decimal(total),
            "psn_setlway": "01",
            "mdtrt_id": mdtrt_id,
            "chrg_bchno": "B1",
            "insutype": "390",
            "acct_used_flag": "1",
        }
    }


async def upload_two_lines(his: NationalHis, mdtrt_id: str) -> dict[str, Any]:
    return ok(
        await his.call(
            "2204",
            {
                "feedetail": [
                    fee_line("F1", mdtrt_id, "RMYY-0020", "FA10", "1", "8.00", "8.00"),
                    fee_line("F2", mdtrt_id, "RMYY-0001", "XA01", "2", "23.50", "47.00"),
                ]
            },
        )
    )


@ON_BOTH
async def test_an_outpatient_visit_settles_as_the_native_api_does(gateway: Gateway) -> None:
    his = await his_of(gateway)
    signed_in = ok(
        await his.call("9001", {"signIn": {"opter_no": "0001", "mac": "", "ip": "127.0.0.1"}})
    )
    assert signed_in["signinoutb"]["sign_no"]

    person = ok(
        await his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": ID_NUMBER}})
    )
    assert person["baseinfo"]["psn_no"] == MEMBER
    assert person["baseinfo"]["certno"] != ID_NUMBER  # masked
    assert "*" in person["baseinfo"]["certno"]
    assert person["baseinfo"]["gend"] in ("1", "2")
    [coverage] = person["insuinfo"]
    assert (coverage["insutype"], coverage["insuplc_admdvs"]) == ("390", REGION)
    assert coverage["balc"] == Decimal("100.00")

    benefits = ok(
        await his.call(
            "2001",
            {
                "data": {
                    "psn_no": MEMBER,
                    "insutype": "390",
                    "fixmedins_code": "ZZH3",
                    "med_type": "11",
                    "begntime": now_text(),
                }
            },
        )
    )
    assert benefits["trtinfo"][0]["trt_enjymnt_flag"] == "1"

    mdtrt_id = await register(his)
    uploaded = await upload_two_lines(his, mdtrt_id)
    by_serial = {row["feedetl_sn"]: row for row in uploaded["result"]}
    assert by_serial["F2"]["det_item_fee_sumamt"] == Decimal("47.00")
    for row in uploaded["result"]:
        assert row["inscp_scp_amt"] == (
            row["det_item_fee_sumamt"]
            - row["fulamt_ownpay_amt"]
            - row["overlmt_amt"]
            - row["preselfpay_amt"]
        )
        assert row["chrgitm_lv"] in ("01", "02", "03")
    # The catalog's own fee category (FA10 诊查费: 02), else the kind's (XA01, a drug: 09).
    assert (by_serial["F1"]["med_chrgitm_type"], by_serial["F2"]["med_chrgitm_type"]) == (
        "02",
        "09",
    )

    preview = ok(await his.call("2206", settle_input(mdtrt_id, "55.00")))
    assert preview["setlinfo"]["setl_id"] is None
    assert relationships_broken(preview["setlinfo"]) == []

    message = his.envelope("2207", settle_input(mdtrt_id, "55.00"))
    first = await his.raw(message)
    settled = ok(__import__("json").loads(first, parse_float=Decimal))
    info = settled["setlinfo"]
    assert relationships_broken(info) == []
    assert info["setl_id"]
    assert len(info["setl_id"]) <= 30
    assert info["medins_setl_id"] == message["msgid"]
    assert info["insutype"] == "390"
    assert info["medfee_sumamt"] == Decimal("55.00")
    assert settled["setldetail"]
    # The same msgid again: the very same answer, nothing settled twice.
    assert await his.raw(message) == first

    # The native receipt carries the same figures, signed.
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    [receipt] = listed.json()["items"]
    assert receipt["signature"]["value"]
    for native, national in FUNDS_TO_NATIONAL.items():
        assert info[national] == yuan(receipt["amounts"][native]), native
    assert info["hifmi_pay"] == yuan(receipt["amounts"]["supplementary"])
    assert info["balc"] == yuan(receipt["year_to_date"]["personal_account_balance"])

    queried = ok(
        await his.call(
            "5203", {"data": {"psn_no": MEMBER, "setl_id": info["setl_id"], "mdtrt_id": mdtrt_id}}
        )
    )
    assert queried["setlinfo"]["medfee_sumamt"] == info["medfee_sumamt"]
    assert queried["setlinfo"]["refd_setl_flag"] == "0"

    # Cancelled: the amounts negated; settled again: a new setl_id.
    cancelled = ok(
        await his.call(
            "2208", {"data": {"setl_id": info["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": MEMBER}}
        )
    )
    assert cancelled["setlinfo"]["medfee_sumamt"] == -info["medfee_sumamt"]
    assert cancelled["setlinfo"]["hifp_pay"] == -info["hifp_pay"]
    again = ok(await his.call("2207", settle_input(mdtrt_id, "55.00")))
    assert again["setlinfo"]["setl_id"] != info["setl_id"]
    assert again["setlinfo"]["medfee_sumamt"] == info["medfee_sumamt"]


@ON_BOTH
async def test_a_lost_answer_is_undone_by_2601_and_the_visit_settles_again(
    gateway: Gateway,
) -> None:
    his = await his_of(gateway)
    mdtrt_id = await register(his)
    await upload_two_lines(his, mdtrt_id)
    lost = his.envelope("2207", settle_input(mdtrt_id, "55.00"))
    await his.post(lost)  # the answer is dropped on the way back
    reversal = ok(
        await his.call(
            "2601", {"data": {"psn_no": MEMBER, "omsgid": lost["msgid"], "oinfno": "2207"}}
        )
    )
    assert reversal == {}
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    assert [item["status"] for item in listed.json()["items"]] == ["reversed"]
    # The lost message resent (a retry queue) is refused: it was reversed, and never settles
    # again; a new message settles the visit again.
    refused(await his.post(lost), "reversed by 2601")
    again = ok(await his.call("2207", settle_input(mdtrt_id, "55.00")))
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    items = listed.json()["items"]
    assert [item["status"] for item in items] == ["settled", "reversed"]
    assert again["setlinfo"]["medfee_sumamt"] == Decimal("55.00")


async def test_2601_of_a_message_never_received_is_safe_both_ways(gateway: Gateway) -> None:
    his = await his_of(gateway)
    mdtrt_id = await register(his)
    await upload_two_lines(his, mdtrt_id)
    never_sent = his.envelope("2207", settle_input(mdtrt_id, "55.00"))
    answer = await his.call(
        "2601", {"data": {"psn_no": MEMBER, "omsgid": never_sent["msgid"], "oinfno": "2207"}}
    )
    assert ok(answer) == {}
    assert "no message" in answer["warn_msg"]
    late = await his.post(never_sent)
    refused(late, "reversed by 2601", "nothing was done")
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    assert listed.json()["items"] == []


async def test_refusals_name_the_field_and_change_nothing(gateway: Gateway) -> None:
    his = await his_of(gateway)
    mdtrt_id = await register(his)
    refused(
        await his.call("1101", {"data": {}}, fixmedins_code="H99999999999"),
        "fixmedins_code",
        "H99999999999",
    )
    refused(
        await his.call("1101", {"data": {}}, mdtrtarea_admvs="520100"),
        "mdtrtarea_admvs",
        "520100",
    )
    refused(await his.call("9999", {}), "infno", "9999", "not served")
    refused(
        await his.call(
            "2204",
            {
                "feedetail": [
                    fee_line("X1", mdtrt_id, "RMYY-0020", "FA10", "1", "8.0000001", "8.00")
                ]
            },
        ),
        "input.feedetail[0].pric",
        "more than 6 decimals",
    )
    refused(
        await his.call(
            "2204",
            {"feedetail": [fee_line("X1", mdtrt_id, "RMYY-0020", "FA10", "1", "8.00", "8.001")]},
        ),
        "det_item_fee_sumamt",
        "more than 2 decimals",
    )
    refused(
        await his.call(
            "2204",
            {"feedetail": [fee_line("X1", mdtrt_id, "RMYY-0020", "XA01", "1", "8.00", "8.00")]},
        ),
        "med_list_codg",
        "串换",
    )
    refused(
        await his.call(
            "2204",
            {"feedetail": [fee_line("X1", mdtrt_id, "NO-SUCH", "", "1", "8.00", "8.00")]},
        ),
        "medins_list_codg",
        "UNMAPPED_CODES",
    )
    refused(
        await his.call("2207", settle_input(mdtrt_id, "55.00")),
        "no fee lines",
    )
    await upload_two_lines(his, mdtrt_id)
    refused(
        await his.call("2207", settle_input(mdtrt_id, "55.01")),
        "medfee_sumamt",
        "55.01",
        "55.00",
    )
    refused(
        await his.call("2201", {"data": {"psn_no": MEMBER}}, insured_region="520100"),
        "begntime",
    )
    message = his.envelope("9001", {"signIn": {"opter_no": "1", "ip": "x"}})
    ok(await his.post(message))
    reused = {**message, "input": {"signIn": {"opter_no": "2", "ip": "x"}}}
    refused(await his.post(reused), "msgid", "another message")
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    assert listed.json()["items"] == []


async def test_a_client_without_a_signature_gets_the_native_401(gateway: Gateway) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        answer = await http.post("/fsi/api/1101", json={"infno": "1101"})
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/fsi/api", "/fsi/api/1101"])
async def test_both_doors_answer(gateway: Gateway, path: str) -> None:
    his = await his_of(gateway)
    message = his.envelope("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": ID_NUMBER}})
    answer = await his.post(message, path=path)
    assert ok(answer)["baseinfo"]["psn_no"] == MEMBER


def at_days_ago(days: int, hour: int = 9) -> str:
    moment = datetime.now(SHANGHAI) - timedelta(days=days)
    return moment.replace(hour=hour, minute=0, second=0).strftime("%Y-%m-%d %H:%M:%S")


def inpatient_line(
    serial: str, mdtrt_id: str, his_code: str, code: str, price: str, when: str, quantity: str = "1"
) -> dict[str, Any]:
    total = Decimal(price) * Decimal(quantity)
    return {
        "feedetl_sn": serial,
        "init_feedetl_sn": "",
        "mdtrt_id": mdtrt_id,
        "drord_no": "YZ1",
        "psn_no": MEMBER,
        "med_type": "21",
        "fee_ocur_time": when,
        "med_list_codg": code,
        "medins_list_codg": his_code,
        "det_item_fee_sumamt": total.quantize(Decimal("0.01")),
        "cnt": Decimal(quantity),
        "pric": Decimal(price),
        "bilg_dept_codg": "D02",
        "bilg_dept_name": "外科",
        "bilg_dr_codg": "DR2",
        "bilg_dr_name": "李医生",
        "hosp_appr_flag": "1",
    }


def inpatient_settle(mdtrt_id: str, total: Decimal) -> dict[str, Any]:
    return {
        "data": {
            "psn_no": MEMBER,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": ID_NUMBER,
            "medfee_sumamt": total,
            "psn_setlway": "01",
            "mdtrt_id": mdtrt_id,
            "acct_used_flag": "0",
            "insutype": "390",
            "mid_setl_flag": "0",
        }
    }


@ON_BOTH
async def test_the_full_inpatient_flow(gateway: Gateway) -> None:
    """2401 -> 2301 x2 -> 2302 -> 2301 -> 2303 -> 2402 -> 2304 -> 2305 -> 2304."""
    his = await his_of(gateway)
    admitted = ok(
        await his.call(
            "2401",
            {
                "mdtrtinfo": {
                    "psn_no": MEMBER,
                    "insutype": "390",
                    "begntime": at_days_ago(3, 8),
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": ID_NUMBER,
                    "med_type": "21",
                    "ipt_no": "ZY0001",
                    "atddr_no": "DR2",
                    "chfpdr_name": "李医生",
                    "adm_diag_dscr": "阑尾炎",
                    "adm_dept_codg": "D02",
                    "adm_dept_name": "外科",
                    "adm_bed": "12",
                    "dscg_maindiag_code": "K35.8",
                    "dscg_maindiag_name": "急性阑尾炎",
                },
                "diseinfo": [
                    {
                        "psn_no": MEMBER,
                        "diag_type": "1",
                        "maindiag_flag": "1",
                        "diag_srt_no": 1,
                        "diag_code": "K35.8",
                        "diag_name": "急性阑尾炎",
                        "diag_dept": "外科",
                        "dise_dor_no": "DR2",
                        "dise_dor_name": "李医生",
                        "diag_time": at_days_ago(3, 8),
                    }
                ],
            },
        )
    )
    mdtrt_id = admitted["result"]["mdtrt_id"]
    first = ok(
        await his.call(
            "2301",
            {
                "feedetail": [
                    inpatient_line("L1", mdtrt_id, "RMYY-0012", "FA02", "40.00", at_days_ago(3)),
                    inpatient_line("L2", mdtrt_id, "RMYY-0012", "FA02", "40.00", at_days_ago(2)),
                ]
            },
        )
    )
    assert [row["feedetl_sn"] for row in first["result"]] == ["L1", "L2"]
    ok(
        await his.call(
            "2301",
            {
                "feedetail": [
                    inpatient_line("L3", mdtrt_id, "RMYY-0013", "FA03", "3800.00", at_days_ago(2)),
                    inpatient_line("L4", mdtrt_id, "RMYY-0012", "FA02", "40.00", at_days_ago(1)),
                ]
            },
        )
    )
    # The surgery was uploaded at the wrong price: cancelled and uploaded again.
    ok(
        await his.call(
            "2302", {"data": [{"feedetl_sn": "L3", "mdtrt_id": mdtrt_id, "psn_no": MEMBER}]}
        )
    )
    ok(
        await his.call(
            "2301",
            {
                "feedetail": [
                    inpatient_line("L5", mdtrt_id, "RMYY-0013", "FA03", "3600.00", at_days_ago(2))
                ]
            },
        )
    )
    total = Decimal("40.00") * 3 + Decimal("3600.00")
    preview = ok(await his.call("2303", inpatient_settle(mdtrt_id, total)))
    assert preview["setlinfo"]["setl_id"] is None
    assert relationships_broken(preview["setlinfo"]) == []
    refused(await his.call("2304", inpatient_settle(mdtrt_id, total)), "2402 first")
    ok(
        await his.call(
            "2402",
            {
                "dscginfo": {
                    "mdtrt_id": mdtrt_id,
                    "psn_no": MEMBER,
                    "insutype": "390",
                    "endtime": at_days_ago(0, 0).replace("00:00:00", "00:30:00"),
                    "dscg_dept_codg": "D02",
                    "dscg_dept_name": "外科",
                    "dscg_way": "1",
                }
            },
        )
    )
    settled = ok(await his.call("2304", inpatient_settle(mdtrt_id, total)))
    info = settled["setlinfo"]
    assert relationships_broken(info) == []
    assert info["medfee_sumamt"] == total
    assert info["med_type"] == "21"
    assert info["clr_type"] == "21"
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    [receipt] = listed.json()["items"]
    assert receipt["visit_type"] == "inpatient"
    for native, national in FUNDS_TO_NATIONAL.items():
        assert info[national] == yuan(receipt["amounts"][native]), native
    assert [line["catalog_code"] for line in receipt["lines"]] == ["FA02", "FA02", "FA03", "FA02"]

    cancelled = ok(
        await his.call(
            "2305", {"data": {"mdtrt_id": mdtrt_id, "setl_id": info["setl_id"], "psn_no": MEMBER}}
        )
    )
    assert cancelled["setlinfo"]["medfee_sumamt"] == -total
    assert relationships_broken(cancelled["setlinfo"]) == []
    again = ok(await his.call("2304", inpatient_settle(mdtrt_id, total)))
    assert again["setlinfo"]["setl_id"] != info["setl_id"]
    assert again["setlinfo"]["hifp_pay"] == info["hifp_pay"]
    assert relationships_broken(again["setlinfo"]) == []
    # Settled: lines, discharge and admission are frozen.
    refused(
        await his.call(
            "2302", {"data": {"feedetl_sn": "0000", "mdtrt_id": mdtrt_id, "psn_no": MEMBER}}
        ),
        "is settled",
    )
    refused(
        await his.call("2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": MEMBER}}), "is settled"
    )


def purchase(total: str, *lines: dict[str, Any]) -> dict[str, Any]:
    return {
        "druginfo": {
            "psn_no": MEMBER,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": ID_NUMBER,
            "begntime": now_text(),
            "medfee_sumamt": Decimal(total),
            "insutype": "390",
            "acct_used_flag": "1",
            "med_type": "41",
        },
        "drugdetail": list(lines),
    }


def drug(serial: str, his_code: str, code: str, quantity: str, price: str) -> dict[str, Any]:
    return {
        "feedetl_sn": serial,
        "rx_circ_flag": "0",
        "fee_ocur_time": now_text(),
        "med_list_codg": code,
        "medins_list_codg": his_code,
        "det_item_fee_sumamt": (Decimal(quantity) * Decimal(price)).quantize(Decimal("0.01")),
        "cnt": Decimal(quantity),
        "pric": Decimal(price),
    }


@ON_BOTH
async def test_a_pharmacy_sale_previews_settles_and_cancels(gateway: Gateway) -> None:
    clients = await load_demo_over_http(gateway, [member_record(MEMBER)])
    pharmacy = NationalHis(clients["ZZP1"], "ZZP1", REGION, name="康泰大药房")
    sale = purchase(
        "70.50",
        drug("D1", "KT.0001", "XA01", "1", "23.50"),
        drug("D2", "KT.0001", "XA01", "2", "23.50"),
    )
    preview = ok(await pharmacy.call("2101", sale))
    assert preview["setlinfo"]["setl_id"] is None
    assert "hosp_part_amt" not in preview["setlinfo"]
    settled = ok(await pharmacy.call("2102", sale))
    info = settled["setlinfo"]
    assert relationships_broken({**info, "hosp_part_amt": 0}) == []
    assert info["clr_type"] == "41"
    assert [row["feedetl_sn"] for row in settled["detlcutinfo"]] == ["D1", "D2"]
    assert sum(row["det_item_fee_sumamt"] for row in settled["detlcutinfo"]) == Decimal("70.50")
    assert info["acct_pay"] > 0  # the personal account paid
    # A second 2102 is a second sale (a new mdtrt_id); each settles once.
    second = ok(await pharmacy.call("2102", sale))
    assert second["setlinfo"]["mdtrt_id"] != info["mdtrt_id"]
    cancelled = ok(
        await pharmacy.call(
            "2103",
            {"data": {"setl_id": info["setl_id"], "mdtrt_id": info["mdtrt_id"], "psn_no": MEMBER}},
        )
    )
    assert cancelled["setlinfo"]["acct_pay"] == -info["acct_pay"]
    # A line that does not add up is named by its serial.
    wrong = purchase(
        "23.60",
        {**drug("D9", "KT.0001", "XA01", "1", "23.50"), "det_item_fee_sumamt": Decimal("23.60")},
    )
    refused(await pharmacy.call("2102", wrong), "feedetl_sn D9", "AMOUNT_MISMATCH")


async def test_catalog_mapping_and_price_cap_queries_page_the_clients_view(
    gateway: Gateway,
) -> None:
    his = await his_of(gateway)

    def query(**extra: Any) -> dict[str, Any]:
        return {
            "data": {"updt_time": "2020-01-01 00:00:00", "page_num": 1, "page_size": 5, **extra}
        }

    catalog = ok(await his.call("1312", query()))
    assert catalog["pageNum"] == 1
    assert catalog["firstPage"] is True
    assert len(catalog["data"]) == catalog["size"] == 5
    assert catalog["recordCounts"] > 5
    assert catalog["pages"] == -(-catalog["recordCounts"] // 5)
    last = ok(await his.call("1312", query(page_num=catalog["pages"])))
    assert last["lastPage"] is True
    one = ok(await his.call("1312", query(hilist_code="FA10")))
    [item] = one["data"]
    assert item["list_type"] == "201"
    assert item["chrgitm_lv"] in ("01", "02", "03")
    assert item["med_chrgitm_type"] == "02"  # the catalog's column: 诊察费

    mapping = ok(await his.call("1316", query(hilist_code="XA01", page_size=100)))
    assert {row["medins_list_codg"] for row in mapping["data"]} == {"RMYY-0001"}
    caps = ok(await his.call("1318", query(page_size=100)))
    assert caps["data"]
    assert all(row["hilist_pric_uplmt_amt"] > 0 for row in caps["data"])
    refused(await his.call("1312", query(page_size=0)), "input.data.page_size")


@ON_BOTH
async def test_3201_and_3202_reconcile_the_day_by_group_and_by_settlement(
    gateway: Gateway,
) -> None:
    his = await his_of(gateway)
    mdtrt_id = await register(his)
    await upload_two_lines(his, mdtrt_id)
    info = ok(await his.call("2207", settle_input(mdtrt_id, "55.00")))["setlinfo"]
    today = datetime.now(SHANGHAI).date().isoformat()

    def totals(medfee: Decimal, count: int, **extra: Any) -> dict[str, Any]:
        return {
            "data": {
                "insutype": "390",
                "clr_type": "11",
                "setl_optins": REGION,
                "stmt_begndate": today,
                "stmt_enddate": today,
                "medfee_sumamt": medfee,
                "fund_pay_sumamt": info["fund_pay_sumamt"],
                "acct_pay": info["acct_pay"],
                "fixmedins_setl_cnt": count,
                **extra,
            }
        }

    balanced = ok(await his.call("3201", totals(info["medfee_sumamt"], 1)))
    assert balanced["stmtinfo"]["stmt_rslt"] == "0"
    off = ok(await his.call("3201", totals(info["medfee_sumamt"] - Decimal("0.01"), 1)))
    assert off["stmtinfo"]["stmt_rslt"] == "1"
    assert "medfee_sumamt" in off["stmtinfo"]["stmt_rslt_dscr"]
    inpatient = ok(
        await his.call(
            "3201",
            {
                **totals(Decimal(0), 0),
                "data": {
                    **totals(Decimal(0), 0)["data"],
                    "clr_type": "21",
                    "fund_pay_sumamt": 0,
                    "acct_pay": 0,
                },
            },
        )
    )
    assert inpatient["stmtinfo"]["stmt_rslt"] == "0"

    def row(medfee: Decimal) -> dict[str, Any]:
        return {
            "setl_id": info["setl_id"],
            "mdtrt_id": mdtrt_id,
            "psn_no": MEMBER,
            "medfee_sumamt": medfee,
            "fund_pay_sumamt": info["fund_pay_sumamt"],
            "acct_pay": info["acct_pay"],
            "refd_setl_flag": "0",
        }

    detail = {
        "setl_optins": REGION,
        "stmt_begndate": today,
        "stmt_enddate": today,
        "medfee_sumamt": info["medfee_sumamt"],
        "fund_pay_sumamt": info["fund_pay_sumamt"],
        "cash_payamt": info["psn_cash_pay"],
        "fixmedins_setl_cnt": 1,
    }
    agreed = ok(await his.call("3202", {"data": detail, "detail": [row(info["medfee_sumamt"])]}))
    assert [entry["stmt_rslt"] for entry in agreed["result"]] == ["0"]
    answer = await his.call(
        "3202",
        {
            "data": detail,
            "detail": [
                row(info["medfee_sumamt"] + Decimal("0.01")),
                {**row(Decimal("1.00")), "setl_id": "S00000000000000000000000"},
            ],
        },
    )
    result = {entry["setl_id"]: entry for entry in ok(answer)["result"]}
    assert result[info["setl_id"]]["stmt_rslt"] == "1"
    assert "medfee_sumamt" in result[info["setl_id"]]["memo"]
    assert result["S00000000000000000000000"]["stmt_rslt"] == "1"
    assert answer["warn_msg"] == "2 settlements differ"


async def test_registrations_and_lines_are_cancelled_and_lines_returned(gateway: Gateway) -> None:
    his = await his_of(gateway)
    # 2202: a registration cancelled; the visit then takes nothing more.
    cancelled_visit = await register(his)
    ok(
        await his.call(
            "2202",
            {"data": {"psn_no": MEMBER, "mdtrt_id": cancelled_visit, "ipt_otp_no": "MZ0001"}},
        )
    )
    refused(
        await his.call(
            "2204",
            {
                "feedetail": [
                    fee_line("C1", cancelled_visit, "RMYY-0020", "FA10", "1", "8.00", "8.00")
                ]
            },
        ),
        "was cancelled",
    )
    # 2205: a batch removed, another kept; 0000 removes every unsettled line.
    mdtrt_id = await register(his)
    ok(
        await his.call(
            "2204",
            {
                "feedetail": [
                    fee_line(
                        "B1-1", mdtrt_id, "RMYY-0020", "FA10", "1", "8.00", "8.00", chrg_bchno="B1"
                    )
                ]
            },
        )
    )
    ok(
        await his.call(
            "2204",
            {
                "feedetail": [
                    fee_line(
                        "B2-1",
                        mdtrt_id,
                        "RMYY-0001",
                        "XA01",
                        "2",
                        "23.50",
                        "47.00",
                        chrg_bchno="B2",
                    )
                ]
            },
        )
    )
    ok(
        await his.call(
            "2205", {"data": {"psn_no": MEMBER, "mdtrt_id": mdtrt_id, "chrg_bchno": "B1"}}
        )
    )
    refused(await his.call("2207", settle_input(mdtrt_id, "55.00")), "medfee_sumamt", "47.00")
    ok(
        await his.call(
            "2205", {"data": {"psn_no": MEMBER, "mdtrt_id": mdtrt_id, "chrg_bchno": "0000"}}
        )
    )
    refused(await his.call("2207", settle_input(mdtrt_id, "47.00")), "no fee lines")
    # A return line (negative cnt) nets into the line it returns.
    ok(
        await his.call(
            "2204",
            {"feedetail": [fee_line("R1", mdtrt_id, "RMYY-0001", "XA01", "3", "23.50", "70.50")]},
        )
    )
    returned = ok(
        await his.call(
            "2204",
            {
                "feedetail": [
                    fee_line(
                        "R2",
                        mdtrt_id,
                        "RMYY-0001",
                        "XA01",
                        "-1",
                        "23.50",
                        "-23.50",
                        init_feedetl_sn="R1",
                    )
                ]
            },
        )
    )
    assert returned["result"][0]["det_item_fee_sumamt"] == Decimal("-23.50")
    refused(
        await his.call(
            "2204",
            {"feedetail": [fee_line("R3", mdtrt_id, "RMYY-0001", "XA01", "-1", "23.50", "-23.50")]},
        ),
        "init_feedetl_sn",
    )
    settled = ok(await his.call("2207", settle_input(mdtrt_id, "47.00")))
    assert settled["setlinfo"]["medfee_sumamt"] == Decimal("47.00")
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    [receipt] = listed.json()["items"]
    assert [(line["catalog_code"], line["amount"]) for line in receipt["lines"]] == [("XA01", 4700)]


async def test_an_admission_is_cancelled_with_its_lines(gateway: Gateway) -> None:
    his = await his_of(gateway)
    admitted = ok(
        await his.call(
            "2401",
            {
                "mdtrtinfo": {
                    "psn_no": MEMBER,
                    "insutype": "390",
                    "begntime": at_days_ago(2),
                    "med_type": "21",
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": ID_NUMBER,
                    "ipt_no": "ZY9",
                }
            },
        )
    )
    mdtrt_id = admitted["result"]["mdtrt_id"]
    ok(
        await his.call(
            "2301",
            {
                "feedetail": [
                    inpatient_line("A1", mdtrt_id, "RMYY-0012", "FA02", "40.00", at_days_ago(1))
                ]
            },
        )
    )
    ok(await his.call("2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": MEMBER}}))
    refused(await his.call("2303", inpatient_settle(mdtrt_id, Decimal("40.00"))), "cancelled")
    # A pharmacy admits no one.
    clients = {client: gateway.client(client) for client in ("ZZP1",)}
    pharmacy = NationalHis(clients["ZZP1"], "ZZP1", REGION)
    refused(
        await pharmacy.call(
            "2401",
            {
                "mdtrtinfo": {
                    "psn_no": MEMBER,
                    "insutype": "390",
                    "begntime": at_days_ago(2),
                    "med_type": "21",
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": ID_NUMBER,
                    "ipt_no": "ZY9",
                }
            },
        ),
        "[FORBIDDEN]",
    )


async def test_a_client_allowed_national_codes_bills_in_them(gateway: Gateway) -> None:
    await load_demo_over_http(gateway, [member_record(MEMBER)])
    key = gateway.keys["ZZH3"]
    answer = await gateway.agency.request(
        "PUT",
        "/v1/admin/clients/ZZH3",
        json_body={
            "kind": "hospital",
            "name": "省人民医院",
            "level": "level3",
            "region": REGION,
            "public_key": public_pem(key.public_key()),
            "national_code": "H41010000001",
            "national_codes_allowed": True,
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["national_code"] == "H41010000001"
    his = NationalHis(SignedClient(gateway.base_url, "ZZH3", key), "H41010000001", REGION)
    try:
        refused(await his.call("1101", {"data": {}}, fixmedins_code="ZZH3"), "fixmedins_code")
        mdtrt_id = await register(his)
        # the national code alone, no HIS code; a code the catalog lacks is refused
        ok(
            await his.call(
                "2204", {"feedetail": [fee_line("N1", mdtrt_id, "", "FA10", "1", "8.00", "8.00")]}
            )
        )
        refused(
            await his.call(
                "2204",
                {
                    "feedetail": [
                        fee_line("N2", mdtrt_id, "", "NOT-IN-CATALOG", "1", "8.00", "8.00")
                    ]
                },
            ),
            "med_list_codg",
            "UNMAPPED_CODES",
        )
        settled = ok(await his.call("2207", settle_input(mdtrt_id, "8.00")))
        assert relationships_broken(settled["setlinfo"]) == []
    finally:
        await his.transport.close()


async def test_a_social_security_card_number_is_the_id_number(gateway: Gateway) -> None:
    his = await his_of(gateway)
    for cert_type, extra in (("03", {}), ("01", {"psn_cert_type": "01", "certno": ID_NUMBER})):
        person = ok(
            await his.call(
                "1101",
                {
                    "data": {
                        "mdtrt_cert_type": cert_type,
                        "mdtrt_cert_no": ID_NUMBER if cert_type == "03" else "e-voucher-token",
                        **extra,
                    }
                },
            )
        )
        assert person["baseinfo"]["psn_no"] == MEMBER
    refused(
        await his.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": "token"}}),
        "e-voucher",
    )


async def test_a_message_cut_short_is_answered_safely_then_processed_again(
    gateway: Gateway, redis_url: str
) -> None:
    """A gateway that died mid-message leaves it pending.

    The same msgid is asked to wait while a settlement it started could still commit (and a
    2601 of it likewise), and is processed, once, after that.
    """
    his = await his_of(gateway)
    mdtrt_id = await register(his)
    await upload_two_lines(his, mdtrt_id)
    message = his.envelope("2207", settle_input(mdtrt_id, "55.00"))
    key = layout.national_message_key("ZZH3", message["msgid"])
    # what an arrival writes before it does anything (white box: the adapter's own digest)
    digest = message_digest(message["infno"], message["input"])
    redis = sync_client(redis_url)
    try:
        young = NationalMessage(
            NationalMessageState.PENDING, "2207", digest, now_ms(), MEMBER, mdtrt_id
        )
        redis.set(key, young.to_json())
        refused(await his.post(message), "still being processed", "again in")
        reversal = {"data": {"psn_no": MEMBER, "omsgid": message["msgid"], "oinfno": "2207"}}
        refused(await his.call("2601", reversal), "still being processed", "2601 again")
        old = NationalMessage(
            NationalMessageState.PENDING, "2207", digest, now_ms() - 600_000, MEMBER, mdtrt_id
        )
        redis.set(key, old.to_json())
        settled = ok(await his.post(message))
        assert ok(await his.post(message)) == settled
        listed = await his.transport.request(
            "GET", "/v1/settlements", params={"visit_id": mdtrt_id}
        )
        assert [item["status"] for item in listed.json()["items"]] == ["settled"]
    finally:
        redis.close()


def test_the_provincial_profile_is_a_setting_refusing_unknown_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def settings() -> GatewaySettings:
        return GatewaySettings(
            adjudicator="127.0.0.1:1", redis_url="redis://127.0.0.1:1", key_dir=tmp_path
        )

    assert settings().national_profile is Profile.NATIONAL
    monkeypatch.setenv("ONESTOP_GATEWAY_NATIONAL_PROFILE", "hunan")
    assert settings().national_profile is Profile.HUNAN
    monkeypatch.setenv("ONESTOP_GATEWAY_NATIONAL_PROFILE", "atlantis")
    with pytest.raises(ValidationError, match="national_profile"):
        settings()


async def test_a_settling_message_whose_answer_failed_is_found_again_not_settled_twice(
    gateway: Gateway, redis_url: str
) -> None:
    """A 2207 that committed but was answered -1 is found again, never settled twice.

    (The adjudicator's answer timed out: the message is recorded as failed.) Sent again, it
    answers that very settlement; a 2601 of it undoes it.
    """
    his = await his_of(gateway)
    mdtrt_id = await register(his)
    await upload_two_lines(his, mdtrt_id)
    first = ok(await his.call("2207", settle_input(mdtrt_id, "55.00")))["setlinfo"]
    ok(
        await his.call(
            "2208", {"data": {"setl_id": first["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": MEMBER}}
        )
    )
    message = his.envelope("2207", settle_input(mdtrt_id, "55.00"))
    settled = ok(await his.post(message))["setlinfo"]  # settles again (resettle_of the first)
    key = layout.national_message_key("ZZH3", message["msgid"])
    redis = sync_client(redis_url)
    try:
        record = NationalMessage.from_json(cast(bytes, redis.get(key)))
        assert record.fingerprint  # recorded before settling
        redis.set(key, replace(record, state=NationalMessageState.FAILED, answer=None).to_json())
    finally:
        redis.close()
    again = ok(await his.post(message))["setlinfo"]
    assert again["setl_id"] == settled["setl_id"]
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    assert [item["status"] for item in listed.json()["items"]] == ["settled", "reversed"]
    reversal = {"data": {"psn_no": MEMBER, "omsgid": message["msgid"], "oinfno": "2207"}}
    assert ok(await his.call("2601", reversal)) == {}
    listed = await his.transport.request("GET", "/v1/settlements", params={"visit_id": mdtrt_id})
    assert [item["status"] for item in listed.json()["items"]] == ["reversed", "reversed"]
    refused(await his.post(message), "reversed by 2601")


async def test_a_visit_is_found_only_by_its_own_member(gateway: Gateway) -> None:
    # Two members of one slot group: a message naming the other finds no visit.
    first = MEMBER
    group = layout.member_group(first)
    other = next(
        f"M9{n:05d}"
        for n in range(100_000)
        if layout.member_group(f"M9{n:05d}") == group and f"M9{n:05d}" != first
    )
    clients = await load_demo_over_http(gateway, [member_record(first), member_record(other)])
    his = NationalHis(clients["ZZH3"], "ZZH3", REGION)
    mdtrt_id = await register(his)
    refused(
        await his.call(
            "2202", {"data": {"psn_no": other, "mdtrt_id": mdtrt_id, "ipt_otp_no": "MZ0001"}}
        ),
        f"no visit {mdtrt_id} of psn_no {other}",
    )


async def test_hostile_values_are_refused_naming_the_field_never_a_server_error(
    gateway: Gateway,
) -> None:
    his = await his_of(gateway)
    mdtrt_id = await register(his)

    async def upload(*lines: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await his.call("2204", {"feedetail": list(lines)})
        return answer

    line = fee_line("H1", mdtrt_id, "RMYY-0020", "FA10", "1", "8.00", "8.00")
    refused(await upload({**line, "det_item_fee_sumamt": Decimal("1e999999999")}), "out of range")
    refused(await upload({**line, "cnt": "1" * 41}), "input.feedetail[0].cnt")
    refused(await upload({**line, "fee_ocur_time": "0999-01-01 00:00:00"}), "fee_ocur_time")
    refused(
        await upload(
            {**line, "pric": Decimal("90000000000"), "det_item_fee_sumamt": Decimal("90000000000")}
        ),
        "input.feedetail[0]",
    )
    refused(await upload({**line, "dise_codg": "=cmd|x"}), "dise_codg", "not a code")
    refused(await upload({**line, "det_item_fee_sumamt": Decimal("-8.00")}), "sign")
    refused(await upload({**line, "init_feedetl_sn": "H0"}), "only a return line")
    ok(await upload(line))
    back = {
        **line,
        "feedetl_sn": "H2",
        "cnt": Decimal(-1),
        "det_item_fee_sumamt": Decimal("-8.00"),
        "init_feedetl_sn": "H1",
    }
    ok(await upload(back))
    refused(await upload({**back, "feedetl_sn": "H3"}), "more of H1 is returned")
    refused(await upload({**back, "feedetl_sn": "H4", "init_feedetl_sn": "H2"}), "not a line")
    refused(
        await his.call(
            "2302",
            {
                "data": [
                    {"feedetl_sn": "H1", "mdtrt_id": mdtrt_id, "psn_no": MEMBER},
                    {"feedetl_sn": "X", "mdtrt_id": "ANOTHER", "psn_no": MEMBER},
                ]
            },
        ),
        "same visit",
    )
    refused(
        await his.call("2305", {"data": {"setl_id": "S1", "mdtrt_id": mdtrt_id, "psn_no": MEMBER}}),
        "2305 cancels inpatient",
    )
    refused(
        await his.call(
            "1312", {"data": {"updt_time": "2026-01-01", "page_num": "²", "page_size": 10}}
        ),
        "page_num",
    )
    refused(
        await his.call(
            "3201",
            {
                "data": {
                    "insutype": "390",
                    "clr_type": "11",
                    "stmt_begndate": "2026-01-01",
                    "stmt_enddate": "2026-02-01",
                    "medfee_sumamt": 0,
                    "fund_pay_sumamt": 0,
                    "acct_pay": 0,
                    "fixmedins_setl_cnt": 0,
                }
            },
        ),
        "31 days",
    )


async def test_a_price_below_one_fen_settles_exactly(gateway: Gateway) -> None:
    """Pric has six decimals of yuan: 7.833333 yuan is 783.3333 fen (domain section 14)."""
    his = await his_of(gateway)
    mdtrt_id = await register(his)
    refused(
        await his.call(
            "2204",
            {
                "feedetail": [
                    fee_line("P2", mdtrt_id, "RMYY-0001", "XA01", "3", "7.833333", "23.52")
                ]
            },
        ),
        "AMOUNT_MISMATCH",
    )
    uploaded = ok(
        await his.call(
            "2204",
            {
                "feedetail": [
                    fee_line("P1", mdtrt_id, "RMYY-0001", "XA01", "3", "7.833333", "23.50")
                ]
            },
        )
    )
    assert uploaded["result"][0]["pric"] == Decimal("7.833333")
    settled = ok(await his.call("2207", settle_input(mdtrt_id, "23.50")))
    assert settled["setlinfo"]["medfee_sumamt"] == Decimal("23.50")
