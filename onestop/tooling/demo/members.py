"""Demo members: a few named patients the walk-through follows, and a seeded crowd."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from onestop.domain.types import AssistanceCategory

_CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = (
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
)


def id_number(region: str, birth: date, sequence: int) -> str:
    """A well-formed resident identity number with its ISO 7064 MOD 11-2 check character."""
    body = f"{region[:6]}{birth:%Y%m%d}{sequence % 1000:03d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, _CHECK_WEIGHTS, strict=True))
    return body + _CHECK_CHARS[total % 11]


def _member(
    member_id: str,
    name: str,
    region: str,
    birth: date,
    sex: str,
    enrolled_since: date,
    *,
    supplementary: bool = False,
    category: AssistanceCategory | None = None,
    groups: tuple[str, ...] = (),
    balance: int = 0,
    sequence: int = 1,
    registrations: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    return (registrations or {}) | {
        "member_id": member_id,
        "id_number": id_number(region, birth, sequence),
        "name": name,
        "birth_date": birth.isoformat(),
        "sex": sex,
        "region": region,
        "scheme": "resident",
        "status": "active",
        "enrolled_since": enrolled_since.isoformat(),
        "supplementary_enrolled": supplementary,
        "assistance_category": category.value if category else None,
        "groups": list(groups),
        "personal_account_balance": balance,
    }


FEATURED = (
    _member(
        "ZZ000001",
        "张伟",
        "410100",
        date(1958, 4, 12),
        "M",
        date(2012, 1, 1),
        supplementary=True,
        balance=5000,
        sequence=11,
    ),
    _member(
        "ZZ000002",
        "李秀英",
        "410100",
        date(1949, 9, 3),
        "F",
        date(2010, 1, 1),
        category=AssistanceCategory.DIBAO,
        sequence=22,
    ),
    _member("GY000001", "王芳", "520100", date(1990, 2, 14), "F", date(2026, 9, 1), sequence=33),
    _member(
        "GY000002",
        "赵强",
        "520100",
        date(1962, 7, 30),
        "M",
        date(2015, 1, 1),
        category=AssistanceCategory.TEKUN,
        sequence=44,
    ),
    _member("FG000001", "刘洋", "610822", date(1975, 11, 5), "M", date(2016, 1, 1), sequence=55),
    _member(
        "ZZ000003",
        "陈静",
        "410100",
        date(1968, 6, 21),
        "F",
        date(2013, 1, 1),
        sequence=66,
        registrations={
            # moved to live with her daughter in Guiyang: registered for care there (备案)
            "out_of_region_registrations": [{"region": "520100", "from": "2026-01-01", "to": None}]
        },
    ),
    _member(
        "ZZ000004",
        "周磊",
        "410100",
        date(1971, 3, 9),
        "M",
        date(2011, 1, 1),
        sequence=77,
        registrations={
            "registered_diseases": [{"code": "MT002", "from": "2026-02-01", "to": None}]
        },
    ),
    _member("FG000002", "孙娜", "610822", date(1996, 8, 17), "F", date(2018, 1, 1), sequence=88),
)
"""The patients the walk-through follows, as members-file records."""


def crowd(count: int, seed: int = 2026) -> Iterator[dict[str, Any]]:
    """``count`` further members across the demo regions and every assistance category."""
    rng = random.Random(seed)
    regions = ("410100", "520100", "610822")
    categories: tuple[AssistanceCategory | None, ...] = (None, *AssistanceCategory)
    # The 3-digit sequence of an id number counts people born on one day in one region.
    born: dict[tuple[str, date], int] = {}
    for number in range(count):
        region = regions[number % len(regions)]
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(80 * 365))
        sequence = born.get((region, birth), 0)
        born[(region, birth)] = sequence + 1
        yield _member(
            f"{region[:2]}{number + 100:07d}",
            rng.choice(_SURNAMES) + rng.choice(_GIVEN),
            region,
            birth,
            rng.choice("MF"),
            date(rng.randrange(2008, 2026), rng.randrange(1, 13), 1),
            supplementary=region == "410100" and rng.random() < 0.6,
            category=categories[number % len(categories)],
            balance=rng.randrange(0, 20000),
            sequence=sequence,
        )
