"""Hypothesis strategies for random policies, catalogs, members, visits and states."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from onestop.domain import (
    CatalogItem,
    CodedLine,
    HospitalLevel,
    Member,
    Policy,
    Visit,
    VisitType,
    YearToDate,
    parse_policy,
)
from onestop.domain.catalog import CATALOG_COLUMNS
from onestop.domain.mapping import MAPPING_COLUMNS
from onestop.domain.state import disease_figures

LEVELS = [level.value for level in HospitalLevel]
CATEGORIES = ["dibao", "tekun", "youfu", "low_income"]
GROUPS = ["severe_disability", "low_income_elderly", "veteran"]
DIAGNOSES = ["C34.9", "N18.5", "Z94.0", "I10", "J45.9", "K35.8"]
YEAR = 2026

fen = st.integers(min_value=0, max_value=5_000_000)
ratio = st.integers(min_value=0, max_value=100).map(lambda hundredths: f"{hundredths / 100:.2f}")


def _level_table(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(dict.fromkeys(LEVELS, values))


_bands = st.lists(
    st.fixed_dictionaries({"width": st.integers(1, 3_000_000), "ratio": ratio}),
    min_size=0,
    max_size=2,
).flatmap(
    lambda closed: st.one_of(st.none(), st.integers(1, 3_000_000)).flatmap(
        lambda last_width: ratio.map(
            lambda last_ratio: [*closed, {"width": last_width, "ratio": last_ratio}]
        )
    )
)

_supplementary = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"kind": st.just("beyond_cap"), "requires_enrollment": st.booleans(), "annual_cap": fen}
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("critical_illness"),
            "requires_enrollment": st.booleans(),
            "threshold": fen,
            "bands": _bands,
            "annual_cap": st.one_of(st.none(), fen),
            "hardship": st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "groups": st.lists(st.sampled_from(CATEGORIES + GROUPS), max_size=3),
                        "threshold_factor": ratio,
                        "ratio_bonus": ratio,
                        "uncapped": st.booleans(),
                    }
                ),
            ),
        }
    ),
)

DISEASE_CODES = ["MT001", "MT002", "MT003"]
REGIONS = ["410100", "520100"]
"""The member's own region, and another one."""

_one_block = st.fixed_dictionaries(
    {
        "diagnoses": st.lists(st.sampled_from(["C", "N18", "Z94", "I10"]), min_size=1, max_size=3),
        "ratio": ratio,
        "deductible": st.integers(0, 50_000),
    }
)

_disease_list = st.lists(
    st.sampled_from(DISEASE_CODES), min_size=1, max_size=3, unique=True
).flatmap(
    lambda codes: st.tuples(
        *(
            st.fixed_dictionaries(
                {
                    "code": st.just(code),
                    "name": st.just(f"disease {code}"),
                    "diagnoses": st.lists(
                        st.sampled_from(["C", "N18", "Z94", "I10"]), min_size=1, max_size=2
                    ),
                    "ratio": ratio,
                    "deductible": st.integers(0, 50_000),
                    "annual_cap": st.one_of(st.none(), st.integers(0, 500_000)),
                    "requires_registration": st.booleans(),
                }
            )
            for code in codes
        )
    ).map(list)
)

_single_diseases = st.lists(
    st.sampled_from([("DB01", "K35"), ("DB02", "C"), ("DB03", "I10")]),
    max_size=2,
    unique_by=lambda pair: pair[0],
).flatmap(
    lambda pairs: st.tuples(
        *(
            st.fixed_dictionaries(
                {
                    "code": st.just(code),
                    "name": st.just(f"fixed price {code}"),
                    "diagnoses": st.just([prefix]),
                    "price": st.integers(1, 3_000_000),
                    "patient_ratio": ratio,
                }
            )
            for code, prefix in pairs
        )
    ).map(list)
)

_assistance_terms = {"threshold": fen, "ratio": ratio, "annual_cap": st.one_of(st.none(), fen)}

policies: st.SearchStrategy[Policy] = st.fixed_dictionaries(
    {
        "region": st.just("410100"),
        "scheme": st.just("resident"),
        "year": st.just(YEAR),
        "name": st.just("random plan"),
        "inpatient": st.fixed_dictionaries(
            {
                "deductible": _level_table(st.integers(0, 200_000)),
                "ratio": _level_table(ratio),
                "halved_deductible_groups": st.lists(
                    st.sampled_from(CATEGORIES + GROUPS), max_size=3
                ),
            }
        ),
        "annual_cap": fen,
        "continuous_bonus": st.one_of(
            st.none(),
            st.fixed_dictionaries({"from_years": st.integers(1, 5), "step": ratio, "max": ratio}),
        ),
        "waiting_period_months": st.sampled_from([0, 0, 6, 12]),
        "outpatient_special": st.one_of(st.none(), _one_block, _disease_list),
        "outpatient_pooling": st.one_of(
            st.none(), st.fixed_dictionaries({"ratio": ratio, "annual_cap": st.integers(0, 20_000)})
        ),
        "personal_account": st.one_of(
            st.none(), st.fixed_dictionaries({"pays_self_pay_items": st.booleans()})
        ),
        "supplementary": _supplementary,
        "assistance": st.dictionaries(
            st.sampled_from([*CATEGORIES, "general"]),
            st.fixed_dictionaries(
                _assistance_terms,
                optional={"outpatient": st.fixed_dictionaries(_assistance_terms)},
            ),
        ),
    },
    optional={
        "cap_by_continuous_years": st.lists(
            st.fixed_dictionaries({"from_years": st.integers(1, 10), "annual_cap": fen}),
            max_size=2,
            unique_by=lambda step: step["from_years"],
        ),
        "single_disease": _single_diseases,
        "out_of_region": st.fixed_dictionaries(
            {
                "registered_ratio_reduction": ratio,
                "unregistered_ratio_reduction": ratio,
                "pooling": st.booleans(),
            }
        ),
        "referral": st.fixed_dictionaries(
            {
                "levels": st.lists(st.sampled_from(LEVELS), min_size=1, max_size=2, unique=True),
                "unreferred_ratio_reduction": ratio,
            }
        ),
    },
).map(parse_policy)


@st.composite
def catalog_items(draw: st.DrawFn, code: str) -> CatalogItem:
    category = draw(st.sampled_from(["A", "B", "C"]))
    return CatalogItem.model_validate(
        {
            "code": code,
            "name": code,
            "kind": draw(st.sampled_from(["drug", "service", "material"])),
            "category": category,
            "self_pay_ratio": draw(ratio) if category == "B" else None,
            "price_cap": draw(st.one_of(st.none(), st.integers(0, 100_000))),
            "unit": "unit",
            "max_level": draw(st.one_of(st.none(), st.sampled_from(LEVELS))),
        }
    )


catalogs: st.SearchStrategy[dict[str, CatalogItem]] = (
    st.integers(1, 6)
    .flatmap(lambda size: st.tuples(*(catalog_items(f"I{index}") for index in range(size))))
    .map(lambda items: {item.code: item for item in items})
)


@st.composite
def members(draw: st.DrawFn) -> Member:
    return Member.model_validate(
        {
            "member_id": "M1",
            "id_number": "410102198001011234",
            "name": "测试",
            "birth_date": "1970-01-01",
            "sex": "F",
            "region": "410100",
            "scheme": "resident",
            "status": "active",
            "enrolled_since": draw(st.dates(date(2010, 1, 1), date(YEAR, 12, 31))).isoformat(),
            "supplementary_enrolled": draw(st.booleans()),
            "assistance_category": draw(st.one_of(st.none(), st.sampled_from(CATEGORIES))),
            "groups": draw(st.lists(st.sampled_from(GROUPS), max_size=2, unique=True)),
            "personal_account_balance": draw(st.integers(0, 100_000)),
            "out_of_region_registrations": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "region": st.sampled_from(REGIONS),
                            "from": st.just(f"{YEAR}-01-01"),
                            "to": st.sampled_from([None, f"{YEAR}-06-30"]),
                        }
                    ),
                    max_size=1,
                )
            ),
            "registered_diseases": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "code": st.sampled_from(DISEASE_CODES),
                            "from": st.sampled_from([f"{YEAR}-01-01", f"{YEAR}-07-01"]),
                            "to": st.none(),
                        }
                    ),
                    max_size=2,
                    unique_by=lambda entry: entry["code"],
                )
            ),
        }
    )


@st.composite
def visits(draw: st.DrawFn, catalog: dict[str, CatalogItem]) -> Visit:
    visit_type = draw(st.sampled_from(list(VisitType)))
    first = draw(st.dates(date(YEAR, 1, 1), date(YEAR, 12, 31)))
    last = first
    if visit_type is VisitType.INPATIENT:
        last = min(date(YEAR, 12, 31), first + timedelta(days=draw(st.integers(0, 30))))
    codes = sorted(catalog)
    count = draw(st.integers(1, 8))
    lines = tuple(
        CodedLine(
            line_no=index + 1,
            catalog_code=draw(st.sampled_from(codes)),
            catalog_qty=draw(
                st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(2), Decimal("3.25")])
            ),
            amount=draw(st.integers(1, 3_000_000)),
            service_date=first,
        )
        for index in range(count)
    )
    return Visit(
        visit_type=visit_type,
        first_day=first,
        last_day=last,
        diagnoses=tuple(draw(st.lists(st.sampled_from(DIAGNOSES), max_size=2))),
        use_personal_account=draw(st.booleans()),
        lines=lines,
        referral_no=draw(st.sampled_from([None, "REF-1"])),
    )


year_states: st.SearchStrategy[YearToDate] = st.builds(
    YearToDate,
    basic_fund=fen,
    outpatient_pooling=st.integers(0, 20_000),
    supplementary=fen,
    critical_illness_base=st.integers(0, 10_000_000),
    assistance=fen,
    assistance_base=st.integers(0, 10_000_000),
    admissions=st.integers(0, 5),
    assistance_outpatient=st.integers(0, 100_000),
    assistance_outpatient_base=st.integers(0, 1_000_000),
    diseases=st.dictionaries(st.sampled_from(DISEASE_CODES), st.integers(1, 600_000)).map(
        disease_figures
    ),
)

client_regions = st.sampled_from([None, *REGIONS])
"""The billing client's region: unknown, the member's own, another."""

levels = st.sampled_from(list(HospitalLevel))


# -- hostile uploads, as HIS vendors and spreadsheets produce them -----------------------------

HOSTILE_CELLS = (
    "=1+2",
    "@SUM(A1:A9)",
    "+8613800000000",
    "-1",
    '"quoted, with comma"',
    'a "quote" inside',
    "1e309",
    "0.0000000000000000001",
    "99999999999999999999999999",
    "ＲＭＹＹ－００１２",
    "\u202ereversed",
    "tab\there",
    "line\nbreak",
    "\x00nul",
    "",
)


def _cells() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE_CELLS),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=24),
    )


@st.composite
def csv_uploads(draw: st.DrawFn) -> bytes:
    """A catalog or mapping CSV as it arrives from the field.

    BOMs, CRLF or CR, wrong or missing columns, quotes, formula cells, control characters, or
    another encoding.
    """
    header = draw(
        st.one_of(
            st.just(list(CATALOG_COLUMNS)),
            st.just(list(MAPPING_COLUMNS)),
            st.lists(_cells(), min_size=1, max_size=8),
            st.just([]),
        )
    )
    width = max(1, len(header))
    rows = draw(
        st.lists(st.lists(_cells(), min_size=max(0, width - 2), max_size=width + 2), max_size=6)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    text = draw(st.sampled_from(["", "\ufeff"])) + out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "gb18030", "utf-16"]))
    return text.encode(encoding, errors="replace")


@st.composite
def jsonl_uploads(draw: st.DrawFn) -> bytes:
    """A members file with good-looking, broken and hostile lines."""
    fields = st.fixed_dictionaries(
        {},
        optional={
            "member_id": _cells(),
            "id_number": st.one_of(_cells(), st.just("410102199001011234")),
            "name": _cells(),
            "region": st.sampled_from(["410100", "520100", "610822", "", "999999"]),
            "status": st.sampled_from(["active", "deceased", "suspended", ""]),
            "personal_account_balance": st.one_of(
                st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
            ),
            "enrolled_since": st.one_of(st.dates().map(str), _cells()),
        },
    )
    lines = draw(
        st.lists(
            st.one_of(
                fields.map(lambda value: json.dumps(value, ensure_ascii=False)),
                _cells(),
                st.just('{"member_id": "M1", '),
                st.just("[1, 2, 3]"),
                st.just("\ufeff{}"),
                st.just('{"a": ' * 200 + "1" + "}" * 200),
            ),
            max_size=6,
        )
    )
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")
