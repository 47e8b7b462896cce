"""A settlement as the national interface answers it: ``setlinfo``, ``setldetail``, line splits.

national.md section 5, with contract section 9's decisions: ``insutype`` from the scheme,
the supplementary layer as ``hifmi_pay`` (residents) or ``hifob_pay`` (employees),
``fund_pay_sumamt`` without the personal account (R2 as written), ``hosp_part_amt`` =
``amounts.hospital_part``. The relationships R1-R4 hold on every answer by construction and
are checked by :func:`check_relationships` (tests run it on every answer they get).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from onestop.domain.catalog import CatalogItem
from onestop.domain.engine import Amounts, LineSplit
from onestop.domain.settlement import Settlement
from onestop.domain.types import Scheme
from onestop.national.amounts import decimal_number, yuan
from onestop.national.codes import (
    CHRGITM_LV,
    CLR_TYPE,
    CLR_WAY,
    FUND_PAY_TYPE_NAMES,
    INSUTYPE,
    POOL_FUND,
    SUPPLEMENTARY_FUND,
    FundPayType,
    med_chrgitm_type_of,
)
from onestop.national.envelope import DATETIME_FORMAT

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ID_DIGITS = 31
"""Hex digits of a settlement id after its ``S``."""


def national_setl_id(settlement_id: str) -> str:
    """The ``setl_id`` of a settlement: its id in base 36 behind ``S`` (at most 25 characters).

    onestop's ids have 32 characters; the interface's ``setl_id`` has at most 30. The
    encoding is exact both ways, so nothing has to be stored to go back.
    """
    number = int(settlement_id[1:], 16)
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
    return "S" + (digits or "0")


def settlement_id_of(setl_id: str) -> str | None:
    """The settlement id a ``setl_id`` names, ``None`` when it is not one onestop issued."""
    text = setl_id.upper()
    if not text.startswith("S") or not 2 <= len(text) <= 26:
        return None
    number = 0
    for char in text[1:]:
        value = _BASE36.find(char)
        if value < 0:
            return None
        number = number * 36 + value
    if number >= 16**_ID_DIGITS:
        return None
    return "S" + format(number, f"0{_ID_DIGITS}x")


@dataclass(frozen=True, slots=True)
class Person:
    """What an answer shows of the member (masked as contract section 1 requires).

    Attributes:
        gend: ``1`` male, ``2`` female.
        brdy: birth date, ``yyyy-MM-dd``.
        psn_type: 人员类别 (from the scheme).
    """

    psn_name: str
    certno: str
    gend: str
    brdy: str
    psn_type: str

    def as_json(self) -> dict[str, str]:
        """By name, as a visit keeps it."""
        return {
            "psn_name": self.psn_name,
            "certno": self.certno,
            "gend": self.gend,
            "brdy": self.brdy,
            "psn_type": self.psn_type,
        }

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> Person:
        """As :meth:`as_json` wrote it."""
        return cls(
            psn_name=str(values.get("psn_name", "")),
            certno=str(values.get("certno", "")),
            gend=str(values.get("gend", "")),
            brdy=str(values.get("brdy", "")),
            psn_type=str(values.get("psn_type", "")),
        )


def age_on(brdy: str, day: date) -> Decimal | None:
    """Age in years with one decimal (``num(4,1)``), as captures show (35.1)."""
    try:
        born = date.fromisoformat(brdy)
    except ValueError:
        return None
    days = (day - born).days
    return (Decimal(days) / Decimal("365.25")).quantize(Decimal("0.1"), rounding="ROUND_DOWN")


@dataclass(frozen=True, slots=True)
class SettlementContext:
    """What the answer names besides the settlement: the visit and the message.

    Attributes:
        mdtrt_id: the visit.
        med_type: the visit's 医疗类别 as the HIS sent it.
        cert_type: the certificate the HIS identified the patient with.
        msgid: this message's id (``medins_setl_id``).
        clearing_agency: ``clr_optins``: the region whose agency settles with the client.
    """

    mdtrt_id: str
    med_type: str
    cert_type: str
    msgid: str
    clearing_agency: str
    person: Person


def _settled_time(settlement: Settlement) -> str | None:
    if settlement.settled_at is None:
        return None
    return datetime.fromisoformat(settlement.settled_at).strftime(DATETIME_FORMAT)


def fund_sum(amounts: Amounts) -> int:
    """``fund_pay_sumamt`` (R2): every fund, neither the personal account nor the hospital."""
    return amounts.basic_fund + amounts.supplementary + amounts.assistance


def setlinfo(
    settlement: Settlement, context: SettlementContext, *, sign: int = 1
) -> dict[str, Any]:
    """The ``setlinfo`` block of a settlement (a preview has no ``setl_id``).

    Args:
        settlement: the settlement (or preview) as onestop answered it.
        context: the visit and the message it answers.
        sign: ``-1`` for a cancellation's answer: every amount negated (national.md R6).
    """
    amounts = settlement.amounts
    scheme = settlement.policy.scheme
    funds = fund_sum(amounts)
    person_part = amounts.total - funds - amounts.hospital_part
    supplementary_resident = amounts.supplementary if scheme is Scheme.RESIDENT else 0
    supplementary_employee = amounts.supplementary if scheme is Scheme.EMPLOYEE else 0
    settled_time = _settled_time(settlement)
    person = context.person
    age = (
        age_on(person.brdy, datetime.fromisoformat(settlement.settled_at).date())
        if settlement.settled_at
        else None
    )

    def money(fen: int) -> Any:
        return yuan(sign * fen)

    return {
        "setl_id": (
            national_setl_id(settlement.settlement_id) if settlement.settlement_id else None
        ),
        "mdtrt_id": context.mdtrt_id,
        "psn_no": settlement.member_id,
        "psn_name": person.psn_name,
        "psn_cert_type": "01",
        "certno": person.certno,
        "gend": person.gend,
        "naty": None,
        "brdy": person.brdy,
        "age": decimal_number(age, 1) if age is not None else None,
        "insutype": INSUTYPE[scheme],
        "psn_type": person.psn_type,
        "cvlserv_flag": "0",
        "setl_time": settled_time,
        "mdtrt_cert_type": context.cert_type,
        "med_type": context.med_type,
        "medfee_sumamt": money(amounts.total),
        "fulamt_ownpay_amt": money(amounts.full_self_pay),
        "overlmt_selfpay": money(amounts.over_limit_self_pay),
        "preselfpay_amt": money(amounts.pre_self_pay),
        "inscp_scp_amt": money(amounts.in_scope),
        "act_pay_dedc": money(amounts.deductible),
        "hifp_pay": money(amounts.basic_fund),
        "pool_prop_selfpay": decimal_number(Decimal(0), 4),
        "cvlserv_pay": money(0),
        "hifes_pay": money(0),
        "hifmi_pay": money(supplementary_resident),
        "hifob_pay": money(supplementary_employee),
        "hifdm_pay": money(0),
        "maf_pay": money(amounts.assistance),
        "oth_pay": money(0),
        "fund_pay_sumamt": money(funds),
        "psn_part_amt": money(person_part),
        "acct_pay": money(amounts.personal_account),
        "psn_cash_pay": money(amounts.cash),
        "hosp_part_amt": money(amounts.hospital_part),
        "balc": yuan(settlement.year_to_date.personal_account_balance),
        "acct_mulaid_pay": money(0),
        "medins_setl_id": context.msgid,
        "clr_optins": context.clearing_agency if settled_time else None,
        "clr_way": CLR_WAY if settled_time else None,
        "clr_type": CLR_TYPE[settlement.visit_type],
    }


def setldetail(settlement: Settlement, *, sign: int = 1) -> list[dict[str, Any]]:
    """The ``setldetail`` rows: one per fund that paid, the personal account, the hospital.

    Do not add them up to ``fund_pay_sumamt`` (national.md 5.3): the account and the
    hospital's part have rows of their own.
    """
    amounts = settlement.amounts
    scheme = settlement.policy.scheme
    paid: list[tuple[FundPayType, int]] = [
        (POOL_FUND[scheme], amounts.basic_fund),
        (SUPPLEMENTARY_FUND[scheme], amounts.supplementary),
        (FundPayType.ASSISTANCE, amounts.assistance),
        (FundPayType.EMPLOYEE_ACCOUNT, amounts.personal_account),
        (FundPayType.HOSPITAL_PART, amounts.hospital_part),
    ]
    return [
        {
            "fund_pay_type": fund.value,
            "inscp_scp_amt": yuan(sign * amounts.in_scope),
            "crt_payb_lmt_amt": None,
            "fund_payamt": yuan(sign * fen),
            "fund_pay_type_name": FUND_PAY_TYPE_NAMES[fund],
            "setl_proc_info": None,
        }
        for fund, fen in paid
        if fen
    ]


@dataclass(frozen=True, slots=True)
class UploadedLine:
    """A fee line as uploaded, for its per-line answer (2204, 2301)."""

    feedetl_sn: str
    amount: int
    quantity: Decimal
    price_fen: Decimal


def line_result(line: UploadedLine, split: LineSplit, item: CatalogItem) -> dict[str, Any]:
    """One line's classification as the interface answers it (national.md 4.6 ``result``)."""
    ratio = item.self_pay_ratio or Decimal(0)
    if split.full_self_pay == split.amount and split.amount:
        ratio = Decimal(1)
    price_cap = (
        decimal_number(Decimal(item.price_cap) / 100, 6)
        if item.price_cap is not None
        else decimal_number(Decimal(999999), 6)
    )
    return {
        "feedetl_sn": line.feedetl_sn,
        "det_item_fee_sumamt": yuan(line.amount),
        "cnt": decimal_number(line.quantity, 4),
        "pric": decimal_number(line.price_fen / 100, 6),
        "pric_uplmt_amt": price_cap,
        "selfpay_prop": decimal_number(ratio, 4),
        "fulamt_ownpay_amt": yuan(split.full_self_pay),
        "overlmt_amt": yuan(split.over_limit_self_pay),
        "preselfpay_amt": yuan(split.pre_self_pay),
        "inscp_scp_amt": yuan(split.in_scope),
        "chrgitm_lv": CHRGITM_LV[item.category],
        "med_chrgitm_type": med_chrgitm_type_of(item).value,
        "bas_medn_flag": "0",
        "hi_nego_drug_flag": "0",
        "chld_medc_flag": "0",
        "list_sp_item_flag": "0",
        "lmt_used_flag": "0",
        "drt_reim_flag": "0",
        "memo": ", ".join(split.reasons) or None,
    }


def check_relationships(info: Mapping[str, Any]) -> list[str]:
    """Which of national.md's R1-R4 a ``setlinfo`` (parsed, decimals) breaks; empty when none."""

    def value(name: str) -> Decimal:
        raw = info.get(name)
        return Decimal(str(raw)) if raw is not None else Decimal(0)

    broken = []
    if value("inscp_scp_amt") != value("medfee_sumamt") - value("fulamt_ownpay_amt") - value(
        "overlmt_selfpay"
    ) - value("preselfpay_amt"):
        broken.append("R1")
    funds = ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay")
    if value("fund_pay_sumamt") != sum(
        (value(name) for name in (*funds, "oth_pay", "hifdm_pay")), Decimal(0)
    ):
        broken.append("R2")
    if value("medfee_sumamt") != value("fund_pay_sumamt") + value("psn_part_amt") + value(
        "hosp_part_amt"
    ):
        broken.append("R3")
    if value("psn_cash_pay") != value("psn_part_amt") - value("acct_pay"):
        broken.append("R4")
    return broken
