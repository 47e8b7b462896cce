"""The statement as a value: lines grouped by fee category, subtotals, labels."""

from __future__ import annotations

from onestop.domain.types import Category, FeeCategory
from onestop.statement import FEE_CATEGORY_LABELS, HEADINGS, render_statement
from onestop.statement.model import Split, build_statement
from tests.support.statements import long_catalog, long_result

SIGNATURE = {"key_id": "3f2a9c0d1e4b5a67", "algorithm": "ed25519", "value": "q83v"}


def test_lines_are_grouped_by_fee_category_in_code_order_with_subtotals() -> None:
    catalog = long_catalog(40)
    result = {**long_result(catalog), "signature": SIGNATURE}
    statement = build_statement(
        result,
        catalog,
        hospital="郑州市第三人民医院",
        patient_name="张*",
        patient_id_number="4101**********1234",
        seal="onestop-statement:1|...",
    )
    assert [group.fee_category for group in statement.groups] == sorted(
        {group.fee_category for group in statement.groups}
    )
    assert statement.groups[0].fee_category is FeeCategory.BED
    assert statement.line_count == 40
    for group in statement.groups:
        assert [line.line_no for line in group.lines] == sorted(
            line.line_no for line in group.lines
        )
        assert group.subtotal == sum((line.split for line in group.lines), Split())
        for line in group.lines:
            item = catalog[line.code]
            assert line.name == item.name
            assert line.category is item.category
            # the item's own column, else its kind's (service: 14 其他费)
            assert group.fee_category is (item.med_chrgitm_type or FeeCategory.OTHER)
    amounts = result["amounts"]
    total = statement.total
    assert (total.amount, total.pre_self_pay, total.in_scope) == (
        amounts["total"],
        amounts["pre_self_pay"],
        amounts["in_scope"],
    )
    assert statement.key_id == "3f2a9c0d1e4b5a67"
    assert statement.notes == ("起付标准 900.00 yuan <b>paid</b> first",)
    # The deductible is shown (non-zero), the hospital's part is not (zero).
    labels = [label for label, _, _ in statement.summary]
    assert "起付标准 Deductible" in labels
    assert "医院承担 Borne by the hospital" not in labels


def test_a_line_whose_item_left_the_catalog_is_printed_by_its_code() -> None:
    catalog = long_catalog(3)
    result = {**long_result(catalog), "signature": SIGNATURE}
    del catalog["T0002"]
    statement = build_statement(
        result, catalog, hospital="H", patient_name="张*", patient_id_number="-", seal="s"
    )
    (other,) = (group for group in statement.groups if group.fee_category is FeeCategory.OTHER)
    (line,) = other.lines
    assert (line.code, line.name, line.category) == ("T0002", HEADINGS["unknown_item"], Category.C)


def test_every_fee_category_has_a_chinese_and_english_label() -> None:
    assert list(FEE_CATEGORY_LABELS) == list(FeeCategory)
    assert FEE_CATEGORY_LABELS[FeeCategory.WESTERN_DRUG] == "西药费 Western medicine"


def test_the_terminal_statement_keeps_its_rows() -> None:
    catalog = long_catalog(3)
    text = render_statement(long_result(catalog), client_name="H", patient="张*")
    assert "起付标准 Deductible" in text
    assert "医院承担" not in text
    assert "* 起付标准 900.00 yuan <b>paid</b> first" in text
