from __future__ import annotations

import json

import pytest

from onestop.domain import mask_id_number, mask_name, parse_members_jsonl
from onestop.domain.member import AcceptedLine, RejectedLine
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
