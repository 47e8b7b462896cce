from __future__ import annotations

from datetime import date

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


def test_demo_settles_through_the_real_stack_and_prints_statements() -> None:
    printed: list[str] = []
    assert run_demo(printed.append) == 0
    text = "\n".join(printed)
    assert "members: 305 loaded, 0 rejected" in text
    assert text.count("个人现金 Cash to pay") == 6
    assert "The basic fund's annual cap is reached: it pays 25,000.00" in text
    assert "In the waiting period" in text
    assert "医疗救助 Medical assistance                           788.73" in text
    assert "422 UNMAPPED_CODES" in text
    assert "Nothing was settled." in text
    assert "4101**********0118" in text
    assert "410100195804120118" not in text  # never the clear id number
    assert text.count("receipt signed with key") == 6
    assert "6 visits settled; everything stopped." in text
