"""The settlement statement a cashier hands the patient (结算单), from a contract result."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from onestop.domain.money import format_yuan

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
    for field, label, indent in _ROWS:
        if field in ("deductible", "hospital_part") and not amounts.get(field):
            continue
        lines.append(_row(label, format_yuan(int(amounts[field])), indent))
    lines.append(rule)
    funds = sum(int(amounts[key]) for key in ("basic_fund", "supplementary", "assistance"))
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
