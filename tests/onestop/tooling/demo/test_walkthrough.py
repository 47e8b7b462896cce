from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from onestop.domain import Member
from onestop.tooling.demo.members import FEATURED, crowd, id_number
from onestop.tooling.demo.regions import (
    DEMO_CLIENTS,
    demo_catalog,
    demo_mapping_rows,
    demo_policies,
)
from onestop.tooling.demo.walkthrough import run_demo


def test_demo_region_is_valid_data() -> None:
    assert {policy.region for policy in demo_policies()} == {"410100", "520100", "610822"}
    catalog = demo_catalog()
    for client in DEMO_CLIENTS:
        rows = demo_mapping_rows(client)
        assert rows
        assert all(row.catalog_code in catalog for row in rows)
    members = [Member.model_validate(record) for record in (*FEATURED, *crowd(200))]
    assert len({member.id_number for member in members}) == len(members)
    assert {member.assistance_category for member in members} >= {
        None,
        "dibao",
        "tekun",
        "youfu",
        "low_income",
    }


def test_id_numbers_carry_a_valid_check_character() -> None:
    # GB 11643 example: 11010519491231002X
    assert id_number("110105", date(1949, 12, 31), 2) == "11010519491231002X"


def test_demo_settles_through_the_real_stack_and_prints_statements(tmp_path: Path) -> None:
    printed: list[str] = []
    statements = tmp_path / "statements"
    assert run_demo(printed.append, statements) == 0
    text = "\n".join(printed)
    # Each settled visit's statement, fetched as PDF through the route, where it says.
    saved = sorted(statements.glob("statement-S*.pdf"))
    assert len(saved) == 10
    assert all(path.read_bytes().startswith(b"%PDF-") for path in saved)
    assert text.count("  statement (PDF, GET .../statement?format=pdf): ") == 10
    assert str(saved[0]) in text
    assert f"Their statements, as PDF files: {statements}" in text
    assert "members: 308 loaded, 0 rejected" in text
    assert text.count("个人现金 Cash to pay") == 10
    assert "The basic fund's annual cap is reached: it pays 25,000.00" in text
    assert "In the waiting period" in text
    assert "医疗救助 Medical assistance                           788.73" in text
    assert "422 UNMAPPED_CODES" in text
    assert "Nothing was settled." in text
    assert "4101**********0118" in text
    assert "410100195804120118" not in text  # never the clear id number
    assert text.count("receipt signed with key") == 10
    assert "10 visits settled; everything stopped." in text
    # controls across visits (domain section 18): one refusal, one flag in the review queue
    assert "409 DUPLICATE_CLAIM" in text
    assert "(GET /v1/admin/reviews): 1 open" in text
    assert (
        "ZZH3 visit RMYY2026041901: SPLIT_ADMISSION (flag) a stay within 15 days 0 day(s)" in text
    )
    # the agency's day: by the API, and the same count in the console opened by a link
    day = re.search(r"\(GET /v1/admin/day-totals\): (\d+) settlements, 0 reversals", text)
    assert day, text[-3000:]
    assert int(day.group(1)) == 10
    assert "  refused: 2 (" in text
    assert "The agency console (onestop console-login) showed 10 settlements" in text
    # the round-2 patients (domain sections 8, 11, 12), each with what the cashier reads out:
    # out of region, registered: (1,239.00 - 900.00) x (0.50 - 0.05) = 152.55
    assert "统筹基金 Basic fund                                   152.55" in text
    assert "Treated out of region (520100), registered for care there" in text
    # registered dialysis: 468.00 x 0.80 = 374.40, counted against MT002's own cap
    assert "慢特病 MT002 basic fund this year                     374.40" in text
    # a 6,045.00 bill at a 4,500.00 price: basic 3,150.00, patient 1,350.00, hospital 1,545.00
    assert "医院承担 Borne by the hospital                      1,545.00" in text
    assert "Single-disease price DB01 急性阑尾炎: 4,500.00 yuan" in text
