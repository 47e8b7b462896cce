"""The settlement statement a cashier hands the patient (结算单), from a contract result.

This module owns the statement's labels (Chinese with English), for the terminal table here
and for the HTML and PDF statements (:mod:`onestop.statement.model` and its renderers).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from onestop.domain.engine import FUND_PAYERS
from onestop.domain.money import format_yuan
from onestop.domain.types import Category, FeeCategory

_WIDTH = 60

_VISIT_TYPE_LABEL = {
    "inpatient": "住院 inpatient",
    "outpatient_special": "门诊特病 outpatient special disease",
    "outpatient": "门诊 outpatient",
    "pharmacy": "药店 pharmacy",
}

# (field of "amounts", label, indent) in the order a statement reads.
_ROWS = (
    ("total", "医疗费总额 Total bill", 0),
    ("full_self_pay", "全自费 Fully self-paid", 2),
    ("over_limit_self_pay", "超限价自付 Over price cap", 2),
    ("pre_self_pay", "先行自付 Self-pay-first", 2),
    ("in_scope", "政策范围内 In scope", 2),
    ("deductible", "起付标准 Deductible", 4),
    ("basic_fund", "统筹基金 Basic fund", 0),
    ("supplementary", "补充/大病保险 Supplementary", 0),
    ("assistance", "医疗救助 Medical assistance", 0),
    ("personal_account", "个人账户 Personal account", 0),
    ("cash", "个人现金 Cash to pay", 0),
    ("hospital_part", "医院承担 Borne by the hospital", 0),
)


AMOUNT_LABELS: Mapping[str, str] = MappingProxyType({field: label for field, label, _ in _ROWS})
"""The label of each field of ``amounts``."""

VISIT_TYPE_LABELS: Mapping[str, str] = MappingProxyType(_VISIT_TYPE_LABEL)
"""The label of each visit type."""

FEE_CATEGORY_LABELS: Mapping[FeeCategory, str] = MappingProxyType(
    {
        FeeCategory.BED: "床位费 Bed",
        FeeCategory.CONSULTATION: "诊察费 Consultation",
        FeeCategory.EXAMINATION: "检查费 Examination",
        FeeCategory.LABORATORY: "化验费 Laboratory tests",
        FeeCategory.TREATMENT: "治疗费 Treatment",
        FeeCategory.SURGERY: "手术费 Surgery",
        FeeCategory.NURSING: "护理费 Nursing",
        FeeCategory.MATERIAL: "卫生材料费 Medical materials",
        FeeCategory.WESTERN_DRUG: "西药费 Western medicine",
        FeeCategory.HERBAL_PIECES: "中药饮片费 Herbal pieces",
        FeeCategory.PATENT_DRUG: "中成药费 Chinese patent medicine",
        FeeCategory.GENERAL_CONSULTATION: "一般诊疗费 General care",
        FeeCategory.REGISTRATION: "挂号费 Registration",
        FeeCategory.OTHER: "其他费 Other",
    }
)
"""The label of each fee category (national.md section 8.10), in code order."""

CLASS_LABELS: Mapping[Category, str] = MappingProxyType(
    {Category.A: "甲", Category.B: "乙", Category.C: "丙"}
)
"""The catalog category as the statement prints it: 甲类, 乙类, 丙类."""

HEADINGS: Mapping[str, str] = MappingProxyType(
    {
        "title": "医疗费用结算单 Settlement statement",
        "hospital": "医疗机构 Hospital",
        "patient": "患者 Patient",
        "member": "参保人编号 Member",
        "visit": "就诊 Visit",
        "settlement": "结算号 Settlement",
        "settled_at": "结算时间 Settled at",
        "reversed_at": "撤销时间 Reversed at",
        "status": "状态 Status",
        "policy": "政策 Policy",
        "lines": "费用明细 Fee lines",
        "line_no": "序号 No.",
        "code": "编码 Code",
        "name": "名称 Item",
        "class": "等级 Class",
        "amount": "金额 Amount",
        "subtotal": "小计 Subtotal",
        "summary": "结算汇总 Summary (yuan)",
        "notes": "说明 Notes",
        "seal": "电子签章 Signature",
        "key": "密钥 Key id",
        "verify": "扫码核验 Scan to verify: onestop verify-receipt --seal TEXT, keys at "
        "GET /v1/keys",
        "unknown_item": "(目录已无 no longer in the catalog)",
    }
)
"""The statement's other headings."""

STATUS_LABELS: Mapping[str, str] = MappingProxyType(
    {"settled": "已结算 settled", "reversed": "已撤销 reversed", "preview": "预结算 preview"}
)
"""The label of each settlement status."""


def amount_rows(amounts: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """The ``amounts`` a statement shows, in order: ``(label, fen, indent)``.

    The deductible and the hospital's part are left out when they are zero (most bills).
    """
    return [
        (label, int(amounts[field]), indent)
        for field, label, indent in _ROWS
        if field not in ("deductible", "hospital_part") or amounts.get(field)
    ]


def page_label(page: int, pages: int | str) -> str:
    """A page's footer: ``第 2 页 / Page 2 of 9``."""
    return f"第 {page} 页 / Page {page} of {pages}"


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _row(label: str, value: str, indent: int = 0) -> str:
    left = " " * indent + label
    gap = max(1, _WIDTH - display_width(left) - display_width(value))
    return f"{left}{' ' * gap}{value}"


def render_statement(result: Mapping[str, Any], *, client_name: str, patient: str) -> str:
    """Render a settlement result as the table a cashier reads out.

    Args:
        result: a settlement result in the contract's shape (``amounts``, ``notes``...).
        client_name: the hospital or pharmacy.
        patient: how the patient is shown (masked name and id number).
    """
    amounts = result["amounts"]
    visit_type = str(result.get("visit_type", ""))
    rule = "─" * _WIDTH
    lines = [
        rule,
        _row(f"{client_name}  结算单", str(result.get("status", ""))),
        _row("Patient", patient),
        _row("Visit", f"{result.get('visit_id', '')}  {_VISIT_TYPE_LABEL.get(visit_type, '')}"),
    ]
    if result.get("settlement_id"):
        lines.append(_row("Settlement", str(result["settlement_id"])))
    lines.append(rule)
    for label, fen, indent in amount_rows(amounts):
        lines.append(_row(label, format_yuan(fen), indent))
    lines.append(rule)
    funds = sum(int(amounts[key]) for key in FUND_PAYERS)
    lines.append(_row("Paid by the funds (yuan)", format_yuan(funds)))
    lines.append(
        _row(
            "Paid by the patient (account + cash)",
            format_yuan(int(amounts["personal_account"]) + int(amounts["cash"])),
        )
    )
    year = result.get("year_to_date") or {}
    for code, paid in sorted((year.get("diseases") or {}).items()):
        # A registered disease's own figure: what its annual cap is measured against.
        lines.append(_row(f"慢特病 {code} basic fund this year", format_yuan(int(paid))))
    for note in result.get("notes", ()):
        lines.append(f"* {note['message']}")
    lines.append(rule)
    return "\n".join(lines)


def render_refusal(problem: Mapping[str, Any], *, client_name: str) -> str:
    """Render a refused request (a problem+json answer) as the cashier sees it."""
    rule = "─" * _WIDTH
    lines = [
        rule,
        _row(f"{client_name}  REFUSED", f"{problem.get('status', '')} {problem.get('code', '')}"),
        str(problem.get("detail", problem.get("title", ""))),
    ]
    for error in problem.get("errors", ()):
        where = f"line {error['line_no']} ({error.get('his_code')})" if error.get("line_no") else ""
        lines.append(f"  {where} {error.get('code', '')}: {error.get('message', '')}".rstrip())
    lines.append("Nothing was settled.")
    lines.append(rule)
    return "\n".join(lines)
