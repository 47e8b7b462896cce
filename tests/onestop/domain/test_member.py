from __future__ import annotations

import json
from datetime import date

import pytest

from onestop.domain import mask_id_number, mask_name, parse_members_jsonl
from onestop.domain.member import AcceptedLine, RejectedLine, parse_member_line
from tests.support.builders import make_member

CONTRACT_MEMBER = {
    "member_id": "M0001",
    "id_number": "410102198001011234",
    "name": "张三",
    "birth_date": "1980-01-01",
    "sex": "M",
    "region": "410100",
    "scheme": "resident",
    "status": "active",
    "enrolled_since": "2020-01-01",
    "supplementary_enrolled": True,
    "assistance_category": "dibao",
    "groups": ["severe_disability"],
    "personal_account_balance": 5000,
}


def test_members_file_loads_good_lines_and_reports_bad_ones() -> None:
    without_balance = {k: v for k, v in CONTRACT_MEMBER.items() if k != "personal_account_balance"}
    lines = [
        "\ufeff" + json.dumps(CONTRACT_MEMBER, ensure_ascii=False),
        "",
        '{"member_id": "M0002", "broken',
        json.dumps({**CONTRACT_MEMBER, "member_id": "M0003", "id_number": "12345"}),
        json.dumps({**without_balance, "member_id": "M0004"}),
        json.dumps({**CONTRACT_MEMBER, "member_id": "M0005", "nickname": "x"}),
        "[1, 2]",
    ]
    parsed = list(parse_members_jsonl(lines))
    assert [entry.line for entry in parsed] == [1, 3, 4, 5, 6, 7]
    good = [entry for entry in parsed if isinstance(entry, AcceptedLine)]
    assert [entry.member.member_id for entry in good] == ["M0001", "M0004"]
    assert good[1].member.personal_account_balance is None
    bad = {entry.line: entry for entry in parsed if isinstance(entry, RejectedLine)}
    assert set(bad) == {3, 4, 6, 7}
    assert bad[3].problem.code == "MALFORMED"
    assert bad[4].member_id == "M0003"
    assert bad[4].problem.field == "id_number"
    assert bad[6].problem.field == "nickname"
    assert bad[7].problem.code == "MALFORMED"
    assert bad[7].member_id is None


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [("410102198001011234", "4101**********1234"), ("52010019900214033X", "5201**********033X")],
)
def test_id_numbers_are_masked(id_number: str, masked: str) -> None:
    assert mask_id_number(id_number) == masked


@pytest.mark.parametrize(
    ("name", "masked"), [("张三", "张*"), ("李秀英", "李*"), ("王", "王*"), ("欧阳娜娜", "欧*")]
)
def test_names_are_masked_without_telling_their_length(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_group_membership_counts_the_assistance_category() -> None:
    member = make_member(assistance_category="tekun", groups=["severe_disability"])
    assert member.belongs_to_any(["tekun"])
    assert member.belongs_to_any(["severe_disability", "x"])
    assert not member.belongs_to_any(["dibao"])
    assert not member.belongs_to_any([])


@pytest.mark.parametrize(
    ("fields", "at_fault"),
    [
        ({"out_of_region_registrations": [{"region": "520100", "from": "2026-03-01",
                                           "to": "2026-02-28"}]},
         "out_of_region_registrations.0"),
        ({"out_of_region_registrations": [{"region": "520100", "from": "2026-01-01"}] * 2},
         "out_of_region_registrations"),
        ({"out_of_region_registrations": [{"region": "520100"}]},
         "out_of_region_registrations.0.from"),
        ({"registered_diseases": [{"code": "MT002", "from": "2026-01-01", "until": None}]},
         "registered_diseases.0.until"),
        ({"registered_diseases": [{"code": "MT002", "from": "2026-1-1"}]},
         "registered_diseases.0.from"),
    ],
)  # fmt: skip
def test_registrations_are_checked_like_every_field(
    fields: dict[str, object], at_fault: str
) -> None:
    line = json.dumps(make_member().model_dump(mode="json") | fields)
    parsed = parse_member_line(1, line)
    assert isinstance(parsed, RejectedLine)
    assert parsed.problem.field == at_fault


def test_registrations_cover_their_days_both_included() -> None:
    member = make_member(
        out_of_region_registrations=[
            {"region": "520100", "from": "2026-03-01", "to": "2026-03-31"}
        ],
        registered_diseases=[{"code": "MT002", "from": "2026-03-01", "to": None}],
    )
    assert not member.registered_in("520100", date(2026, 2, 28))
    assert member.registered_in("520100", date(2026, 3, 1))
    assert member.registered_in("520100", date(2026, 3, 31))
    assert not member.registered_in("520100", date(2026, 4, 1))
    assert not member.registered_in("610822", date(2026, 3, 15))
    assert member.registered_for("MT002", date(2030, 1, 1))
    assert not member.registered_for("MT001", date(2026, 3, 15))
