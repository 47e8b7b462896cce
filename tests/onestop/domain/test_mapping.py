from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from onestop.domain import (
    BillRejected,
    CatalogItem,
    InvalidDocument,
    MappingRow,
    MappingTable,
    VisitRequest,
    map_bill,
    parse_mapping_csv,
)
from onestop.domain.mapping import MAPPING_COLUMNS
from tests.support.builders import make_item

HEADER = ",".join(MAPPING_COLUMNS)
CATALOG = {
    item.code: item
    for item in (
        make_item("XA01"),
        make_item("XB02", "B", price_cap=5000),
        make_item("FA01", kind="service", unit="hour", max_daily_qty="24"),
        make_item("CB01", "B", kind="material", self_pay_ratio="0.20"),
        make_item("XC99", "C"),
    )
}


def _mapping(*rows: dict[str, Any]) -> MappingTable:
    return MappingTable.from_rows(MappingRow.model_validate(row) for row in rows)


def _row(
    his_code: str,
    catalog_code: str,
    factor: str = "1",
    valid_from: str = "2020-01-01",
    valid_to: str | None = None,
) -> dict[str, Any]:
    return {
        "his_code": his_code,
        "his_name": his_code,
        "catalog_code": catalog_code,
        "factor": factor,
        "valid_from": valid_from,
        "valid_to": valid_to,
    }


MAPPING = _mapping(
    _row("YP1", "XA01"),
    _row("YP2", "XB02"),
    _row("YP2T", "XB02", "0.1"),
    _row("ECG", "FA01"),
    # the stent was remapped from 2026-07-01 (the seed's coronary stent incident)
    _row("HC1", "CB01", valid_to="2026-06-30"),
    _row("HC1", "XC99", valid_from="2026-07-01"),
    _row("OLD", "XA01", valid_to="2025-12-31"),
)


def test_mapping_csv_with_windows_and_factors() -> None:
    text = (
        HEADER + "\n"
        "YP2T,头孢呋辛酯(片),XB02,0.1,2020-01-01,\n"
        "HC1,支架,CB01,1,2020-01-01,2026-06-30\n"
        "HC1,支架,XC99,1,2026-07-01,\n"
    )
    table = parse_mapping_csv(text, CATALOG)
    assert table.lookup("YP2T", date(2026, 1, 1)).factor == Decimal("0.1")  # type: ignore[union-attr]
    assert table.lookup("HC1", date(2026, 6, 30)).catalog_code == "CB01"  # type: ignore[union-attr]
    assert table.lookup("HC1", date(2026, 7, 1)).catalog_code == "XC99"  # type: ignore[union-attr]
    assert table.lookup("HC1", date(2019, 12, 31)) is None
    assert table.lookup("NOPE", date(2026, 1, 1)) is None


def test_mapping_rows_at_fault() -> None:
    text = (
        HEADER + "\n"
        "A,a,XA01,1,2020-01-01,\n"
        "B,b,NOT-IN-CATALOG,1,2020-01-01,\n"  # row 3
        "C,c,XA01,0,2020-01-01,\n"  # row 4: factor must be above zero
        "D,d,XA01,1,2021-01-01,2020-01-01\n"  # row 5: window backwards
        "A,a,XA01,1,2025-01-01,\n"  # row 6: overlaps row 2's open window
        "E,e,XA01,1,2020-13-01,\n"  # row 7: no such date
    )
    with pytest.raises(InvalidDocument) as caught:
        parse_mapping_csv(text, CATALOG)
    rows = [problem.row for problem in caught.value.problems]
    assert rows == [3, 4, 5, 6, 7]
    assert "not in the catalog" in caught.value.problems[0].message


def _bill(
    *lines: dict[str, Any], admission: str = "2026-03-01", discharge: str = "2026-03-03"
) -> VisitRequest:
    numbered = [{"line_no": index, **line} for index, line in enumerate(lines, start=1)]
    return VisitRequest.model_validate(
        {
            "visit_id": "V1",
            "member_id": "M1",
            "visit_type": "inpatient",
            "admission_date": admission,
            "discharge_date": discharge,
            "lines": numbered,
        }
    )


def _line(
    his_code: str,
    quantity: str,
    unit_price: int,
    amount: int | None = None,
    day: str = "2026-03-02",
    **extra: Any,
) -> dict[str, Any]:
    if amount is None:
        amount = int(Decimal(quantity) * unit_price)
    return {
        "his_code": his_code,
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": amount,
        "date": day,
        **extra,
    }


def test_lines_are_mapped_with_factors_and_validity() -> None:
    visit = map_bill(
        _bill(_line("YP2T", "5", 520), _line("HC1", "1", 95000, day="2026-03-03")),
        MAPPING,
        CATALOG,
    )
    assert [(line.catalog_code, line.catalog_qty) for line in visit.lines] == [
        ("XB02", Decimal("0.5")),
        ("CB01", Decimal(1)),
    ]
    later = map_bill(
        _bill(
            _line("HC1", "1", 95000, day="2026-07-02"),
            admission="2026-07-01",
            discharge="2026-07-03",
        ),
        MAPPING,
        CATALOG,
    )
    assert later.lines[0].catalog_code == "XC99"


def _refusal(request: VisitRequest) -> BillRejected:
    with pytest.raises(BillRejected) as caught:
        map_bill(request, MAPPING, CATALOG)
    return caught.value


@pytest.mark.parametrize(
    ("lines", "code", "faulty"),
    [
        ([_line("NOPE01", "1", 100)], "UNMAPPED_CODES", [1]),
        ([_line("YP1", "2", 2350, 4800)], "AMOUNT_MISMATCH", [1]),
        ([_line("YP1", "0", 2350, 0)], "INVALID", [1]),
        ([_line("YP1", "-1", 2350, 0)], "INVALID", [1]),
        ([_line("YP1", "1", 0, 0)], "INVALID", [1]),
        ([_line("YP1", "1", 2350, day="2026-03-05")], "DATE_OUT_OF_VISIT", [1]),
        ([_line("YP1", "1", 2350, day="2026-02-28")], "DATE_OUT_OF_VISIT", [1]),
        # 240 hours of ECG in one day, the seed's incident
        ([_line("ECG", "240", 500)], "IMPLAUSIBLE_QUANTITY", [1]),
        # two lines that together pass 24 hours on one day; a third on another day is fine
        (
            [
                _line("ECG", "12", 500),
                _line("ECG", "13", 500),
                _line("ECG", "24", 500, day="2026-03-03"),
            ],
            "IMPLAUSIBLE_QUANTITY",
            [1, 2],
        ),
        # a HIS code mapped before the stay but not during it
        ([_line("OLD", "1", 100)], "UNMAPPED_CODES", [1]),
    ],
)
def test_each_check_lists_the_offending_lines(
    lines: list[dict[str, Any]], code: str, faulty: list[int]
) -> None:
    refusal = _refusal(_bill(*lines))
    assert refusal.code == code
    assert [problem.line_no for problem in refusal.problems] == faulty
    assert all(problem.code == code for problem in refusal.problems)
    assert all(problem.his_code for problem in refusal.problems)


def test_amount_may_differ_by_one_fen() -> None:
    visit = map_bill(_bill(_line("YP2T", "0.3333", 520, 174)), MAPPING, CATALOG)  # 173.316
    assert visit.lines[0].amount == 174
    refusal = _refusal(_bill(_line("YP2T", "0.3333", 520, 175)))
    assert refusal.code == "AMOUNT_MISMATCH"


def test_duplicate_line_numbers_are_refused() -> None:
    request = VisitRequest.model_validate(
        {
            "visit_id": "V1",
            "member_id": "M1",
            "visit_type": "outpatient",
            "service_date": "2026-03-02",
            "lines": [
                {"line_no": 4, **_line("YP1", "1", 10)},
                {"line_no": 4, **_line("YP1", "1", 10)},
            ],
        }
    )
    refusal = _refusal(request)
    assert refusal.code == "INVALID"
    assert refusal.problems[0].field == "line_no"


def test_all_faults_are_reported_at_once_with_a_stable_top_code() -> None:
    refusal = _refusal(
        _bill(
            _line("NOPE", "1", 100),
            _line("YP1", "2", 2350, 4800),
            _line("ECG", "30", 500),
            _line("YP1", "1", 0, 0),
        )
    )
    assert refusal.code == "UNMAPPED_CODES"  # domain.md section 16: step 1's first check
    assert sorted(problem.code for problem in refusal.problems) == [
        "AMOUNT_MISMATCH",
        "IMPLAUSIBLE_QUANTITY",
        "INVALID",
        "UNMAPPED_CODES",
    ]


# Step 1's order (domain.md section 16): unmapped, amount, non-positive, date, duplicate
# line_no, quantity. Each pair below has one fault of two adjacent checks; the earlier leads.
@pytest.mark.parametrize(
    ("earlier", "later", "code"),
    [
        (_line("NOPE", "1", 100), _line("YP1", "2", 2350, 4800), "UNMAPPED_CODES"),
        (_line("YP1", "2", 2350, 4800), _line("YP1", "1", 0, 0), "AMOUNT_MISMATCH"),
        (_line("YP1", "1", 0, 0), _line("YP1", "1", 10, day="2026-04-01"), "INVALID"),
        (_line("YP1", "1", 10, day="2026-04-01"), _line("ECG", "30", 500), "DATE_OUT_OF_VISIT"),
    ],
)
def test_the_top_code_is_the_first_failing_check_in_step_1s_order(
    earlier: dict[str, Any], later: dict[str, Any], code: str
) -> None:
    for lines in ((earlier, later), (later, earlier)):
        refusal = _refusal(_bill(*lines))
        assert refusal.code == code
        assert len(refusal.problems) == 2


def test_a_duplicate_line_number_leads_an_implausible_quantity() -> None:
    lines = [
        {"line_no": 4, **_line("YP1", "1", 10)},
        {"line_no": 4, **_line("YP1", "1", 10)},
        {"line_no": 5, **_line("ECG", "30", 500)},
    ]
    request = VisitRequest.model_validate(
        {
            "visit_id": "V1",
            "member_id": "M1",
            "visit_type": "outpatient",
            "service_date": "2026-03-02",
            "lines": lines,
        }
    )
    refusal = _refusal(request)
    assert refusal.code == "INVALID"
    assert {problem.code for problem in refusal.problems} == {"INVALID", "IMPLAUSIBLE_QUANTITY"}


def test_a_mapping_to_an_item_since_removed_from_the_catalog_is_unmapped() -> None:
    catalog: dict[str, CatalogItem] = {
        code: item for code, item in CATALOG.items() if code != "XA01"
    }
    with pytest.raises(BillRejected) as caught:
        map_bill(_bill(_line("YP1", "1", 100)), MAPPING, catalog)
    assert caught.value.code == "UNMAPPED_CODES"
    assert "not in the catalog" in caught.value.problems[0].message
