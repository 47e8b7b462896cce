from __future__ import annotations

from decimal import Decimal

import pytest

from onestop.domain import InvalidDocument, MalformedDocument, parse_catalog_csv
from onestop.domain.catalog import CATALOG_COLUMNS, CatalogItem, catalog_csv
from onestop.domain.types import FeeCategory, HospitalLevel

HEADER = ",".join(CATALOG_COLUMNS)


def test_catalog_csv_is_read_with_empty_cells_as_absent() -> None:
    text = (
        "\ufeff" + HEADER + "\n"
        "XB02,头孢呋辛酯片,drug,B,0.10,5000,box,,\n"
        "FA01,心电监护,service,A,,500,hour,,24\n"
        'XC03,"营养液, 进口",drug,C,,,bottle,level2,\n'
    )
    items = {item.code: item for item in parse_catalog_csv(text)}
    assert items["XB02"].self_pay_ratio == Decimal("0.10")
    assert items["XB02"].price_cap == 5000
    assert items["XB02"].max_daily_qty is None
    assert items["FA01"].max_daily_qty == Decimal(24)
    assert items["XC03"].name == "营养液, 进口"
    assert items["XC03"].max_level == "level2"


def test_every_faulty_row_is_reported_with_its_number() -> None:
    text = (
        HEADER + "\n"
        "A1,ok,drug,A,,,box,,\n"
        "B1,no ratio,drug,B,,,box,,\n"  # row 3: B needs a ratio
        "A2,ratio on A,drug,A,0.1,,box,,\n"  # row 4: only B has one
        "A3,bad cap,drug,A,,12.5,box,,\n"  # row 5: fen are whole
        "A1,again,drug,A,,,box,,\n"  # row 6: duplicate code
        "A4,bad level,drug,A,,,box,level9,\n"  # row 7
    )
    with pytest.raises(InvalidDocument) as caught:
        parse_catalog_csv(text)
    assert sorted({problem.row for problem in caught.value.problems}) == [3, 4, 5, 6, 7]  # type: ignore[type-var]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "code,name\nA1,x\n",
        HEADER + "\nA1,too,few\n",
        HEADER.replace("unit", "units") + "\n",
    ],
)
def test_wrong_shapes_are_malformed(text: str) -> None:
    with pytest.raises(MalformedDocument):
        parse_catalog_csv(text)


def test_the_fee_category_column_is_read_checked_and_written_back() -> None:
    text = (
        HEADER + ",med_chrgitm_type\n"
        "FA02,床位费,service,A,,4000,day,,1,01\n"
        "XA01,阿莫西林胶囊,drug,A,,,box,,,\n"
    )
    items = {item.code: item for item in parse_catalog_csv(text)}
    assert items["FA02"].med_chrgitm_type is FeeCategory.BED
    assert items["XA01"].med_chrgitm_type is None
    assert catalog_csv(items.values()) == text
    # A catalog that does not use the column is written without it, as before it existed.
    without = HEADER + "\nXA01,阿莫西林胶囊,drug,A,,,box,,\n"
    assert catalog_csv(parse_catalog_csv(without)) == without


@pytest.mark.parametrize("code", ["15", "00", "1", "9", "bed"])
def test_an_unknown_fee_category_is_refused_with_its_row(code: str) -> None:
    text = HEADER + f",med_chrgitm_type\nXA01,阿莫西林胶囊,drug,A,,,box,,,{code}\n"
    with pytest.raises(InvalidDocument) as raised:
        parse_catalog_csv(text)
    (problem,) = raised.value.problems
    assert (problem.row, problem.field) == (2, "med_chrgitm_type")
    assert "'01'" in problem.message
    assert "'14'" in problem.message


def test_a_copy_with_another_ratio_or_level_works_its_fractions_out_again() -> None:
    item = CatalogItem(
        code="B1",
        name="n",
        kind="drug",
        category="B",
        self_pay_ratio="0.1",
        unit="u",
        max_level="level1",
    )
    assert item.self_pay_fraction == (1, 10)
    assert item.max_level_rank == HospitalLevel.LEVEL1.rank
    copy = item.model_copy(update={"self_pay_ratio": Decimal("0.25"), "max_level": None})
    assert copy.self_pay_fraction == (1, 4)
    assert copy.max_level_rank is None
    assert item.self_pay_fraction == (1, 10)
    assert copy == CatalogItem(
        code="B1", name="n", kind="drug", category="B", self_pay_ratio="0.25", unit="u"
    )
    # What was worked out is no field: a model made again from the item's own items is equal.
    assert set(dict(item)) == set(CatalogItem.model_fields)
    assert CatalogItem(**dict(item)) == item
