from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from onestop.domain import InvalidDocument, MalformedDocument, parse_policy
from onestop.domain.documents import parse_document_text, parse_json, parse_yaml
from onestop.domain.policy import BeyondCap, CriticalIllness, policy_to_document
from tests.support.builders import policy_document

CONTRACT_EXAMPLE = """
{
  "region": "410100", "scheme": "resident", "year": 2026, "name": "Zhengzhou urban resident",
  "inpatient": {
    "deductible": {"community": 20000, "level1": 30000, "level2": 60000, "level3": 90000},
    "ratio": {"community": "0.60", "level1": "0.60", "level2": "0.55", "level3": "0.50"},
    "halved_deductible_groups": []
  },
  "annual_cap": 2500000,
  "continuous_bonus": {"from_years": 3, "step": "0.02", "max": "0.20"},
  "waiting_period_months": 0,
  "outpatient_special": {"diagnoses": ["C", "N18", "Z94"], "ratio": "0.50", "deductible": 0},
  "outpatient_pooling": {"ratio": "0.50", "annual_cap": 5000},
  "personal_account": {"pays_self_pay_items": false},
  "supplementary": {"kind": "beyond_cap", "requires_enrollment": true, "annual_cap": 3500000},
  "assistance": {
    "dibao": {"threshold": 300000, "ratio": "0.70", "annual_cap": 2000000},
    "tekun": {"threshold": 0, "ratio": "1.00", "annual_cap": null}
  }
}
"""

CRITICAL_ILLNESS_BLOCK = {
    "kind": "critical_illness",
    "requires_enrollment": False,
    "threshold": 1500000,
    "bands": [{"width": 5000000, "ratio": "0.60"}, {"width": None, "ratio": "0.70"}],
    "annual_cap": 30000000,
    "hardship": {
        "groups": ["dibao", "tekun"],
        "threshold_factor": "0.5",
        "ratio_bonus": "0.05",
        "uncapped": True,
    },
}


DISEASE = {
    "code": "MT002",
    "name": "尿毒症透析",
    "diagnoses": ["N18"],
    "ratio": "0.80",
    "deductible": 0,
    "annual_cap": 100000,
    "requires_registration": True,
}
SINGLE = {
    "code": "DB01",
    "name": "急性阑尾炎",
    "diagnoses": ["K35"],
    "price": 450000,
    "patient_ratio": "0.30",
}
TERMS = {"threshold": 0, "ratio": "0.50", "annual_cap": None}


def test_contract_example_is_accepted() -> None:
    policy = parse_policy(parse_json(CONTRACT_EXAMPLE))
    assert policy.key == ("410100", "resident", 2026)
    assert policy.inpatient.ratio.level2 == Decimal("0.55")
    assert isinstance(policy.supplementary, BeyondCap)
    assert policy.assistance["tekun"].annual_cap is None


def test_critical_illness_block_is_accepted() -> None:
    policy = parse_policy(policy_document(supplementary=CRITICAL_ILLNESS_BLOCK))
    assert isinstance(policy.supplementary, CriticalIllness)
    assert policy.supplementary.bands[-1].width is None


def test_optional_blocks_may_be_absent() -> None:
    policy = parse_policy(policy_document())
    assert policy.supplementary is None
    assert policy.assistance == {}
    assert policy.waiting_period_months == 0
    assert not policy.pays_self_pay_items


def _fields_at_fault(document: dict[str, Any]) -> list[str | None]:
    with pytest.raises(InvalidDocument) as caught:
        parse_policy(document)
    return [problem.field for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (policy_document(surprise=1), "surprise"),
        (
            policy_document(
                inpatient={
                    "deductible": {"community": 1, "level1": 1, "level2": 1, "level3": 1},
                    "ratio": {
                        "community": "0.6",
                        "level1": "0.6",
                        "level2": "0.6",
                        "level3": "0.6",
                    },
                    "copay": 1,
                }
            ),
            "inpatient.copay",
        ),
        (
            policy_document(
                inpatient={
                    "deductible": {"community": 1, "level1": 1, "level2": 1},
                    "ratio": {
                        "community": "0.6",
                        "level1": "0.6",
                        "level2": "0.6",
                        "level3": "0.6",
                    },
                }
            ),
            "inpatient.deductible.level3",
        ),
        (
            policy_document(
                inpatient={
                    "deductible": {"community": 1, "level1": 1, "level2": 1, "level3": 1},
                    "ratio": {
                        "community": "0.6",
                        "level1": "1.2",
                        "level2": "0.6",
                        "level3": "0.6",
                    },
                }
            ),
            "inpatient.ratio.level1",
        ),
        (policy_document(annual_cap=-1), "annual_cap"),
        (policy_document(annual_cap="2500000"), "annual_cap"),  # fen are integers, not text
        (policy_document(annual_cap=True), "annual_cap"),
        (
            policy_document(outpatient_pooling={"ratio": 0.5, "annual_cap": 5000}),
            "outpatient_pooling.ratio",
        ),
        (
            policy_document(
                assistance={"rich": {"threshold": 0, "ratio": "1", "annual_cap": None}}
            ),
            "assistance.rich.[key]",
        ),
        (
            policy_document(
                supplementary={
                    **CRITICAL_ILLNESS_BLOCK,
                    "bands": [{"width": None, "ratio": "0.6"}, {"width": 100, "ratio": "0.7"}],
                }
            ),
            "supplementary.critical_illness",
        ),
        (policy_document(supplementary={"kind": "lottery"}), "supplementary"),
        (policy_document(scheme="private"), "scheme"),
        # domain section 13: a version takes effect within its own year
        (policy_document(year=2026, effective_from="2027-01-01"), "effective_from"),
        (policy_document(year=2026, effective_from="2025-12-31"), "effective_from"),
        (policy_document(effective_from="2026-7-1"), "effective_from"),
        # domain sections 8, 10, 11, 12: strict like the rest
        (policy_document(outpatient_special=[{**DISEASE, "ratio": "1.5"}]),
         "outpatient_special.list.0.ratio"),
        (policy_document(outpatient_special=[{**DISEASE, "extra": 1}]),
         "outpatient_special.list.0.extra"),
        (policy_document(outpatient_special=[DISEASE, DISEASE]), "outpatient_special"),
        (policy_document(outpatient_special=[]), "outpatient_special"),
        (policy_document(outpatient_special={"diagnoses": ["C"], "ratio": "2", "deductible": 0}),
         "outpatient_special.one_block.ratio"),
        (policy_document(outpatient_special="C"), "outpatient_special"),
        (policy_document(single_disease=[{**SINGLE, "price": 0}]), "single_disease.0.price"),
        (policy_document(single_disease=[SINGLE, SINGLE]), "single_disease"),
        (policy_document(single_disease=[{**SINGLE, "patient_ratio": "-0.1"}]),
         "single_disease.0.patient_ratio"),
        (policy_document(out_of_region={"registered_ratio_reduction": "0.05",
                                        "unregistered_ratio_reduction": "0.15"}),
         "out_of_region.pooling"),
        (policy_document(referral={"levels": ["level3", "level3"],
                                   "unreferred_ratio_reduction": "0.1"}), "referral"),
        (policy_document(referral={"levels": [], "unreferred_ratio_reduction": "0.1"}),
         "referral.levels"),
        (policy_document(assistance={"general": {**TERMS, "outpatient": {**TERMS, "x": 1}}}),
         "assistance.general.outpatient.x"),
        (policy_document(assistance={"everyone": TERMS}), "assistance.everyone.[key]"),
    ],
)  # fmt: skip
def test_invalid_policies_name_the_field_at_fault(document: dict[str, Any], field: str) -> None:
    assert field in _fields_at_fault(document)


def test_yaml_reads_ratios_exactly() -> None:
    text = (
        "region: '410100'\nscheme: resident\nyear: 2026\nname: plan\n"
        "inpatient:\n"
        "  deductible: {community: 1, level1: 1, level2: 1, level3: 1}\n"
        "  ratio: {community: 0.60, level1: 0.1, level2: 0.55, level3: 0.5}\n"
        "annual_cap: 100\n"
    )
    policy = parse_policy(parse_document_text(text, "plan.yaml"))
    assert policy.inpatient.ratio.level1 == Decimal("0.1")  # not 0.1000000000000000055...
    assert str(policy.inpatient.ratio.community) == "0.60"


def test_json_file_round_trips() -> None:
    policy = parse_policy(parse_json(CONTRACT_EXAMPLE))
    text = "\ufeff" + json.dumps(policy_to_document(policy))  # as a spreadsheet tool saves it
    assert parse_policy(parse_document_text(text, "PLAN.JSON")) == policy


def test_broken_files_are_malformed(tmp_path: Path) -> None:
    with pytest.raises(MalformedDocument):
        parse_json("{not json")
    with pytest.raises(MalformedDocument):
        parse_yaml("a: [unclosed")
    with pytest.raises(MalformedDocument):
        parse_json('{"ratio": NaN}')


def test_a_version_is_in_force_from_its_first_day_and_written_only_when_set() -> None:
    plain = parse_policy(policy_document(year=2026))
    assert plain.effective_from is None
    assert plain.in_force_from == date(2026, 1, 1)
    assert "effective_from" not in policy_to_document(plain)  # stored as before versions
    july = parse_policy(policy_document(year=2026, effective_from="2026-07-01"))
    assert july.in_force_from == date(2026, 7, 1)
    assert policy_to_document(july)["effective_from"] == "2026-07-01"
    assert parse_policy(policy_to_document(july)) == july


def test_round_two_blocks_load_and_are_written_back_as_loaded() -> None:
    document = policy_document(
        outpatient_special=[DISEASE],
        single_disease=[SINGLE],
        out_of_region={
            "registered_ratio_reduction": "0.05",
            "unregistered_ratio_reduction": "0.15",
            "pooling": False,
        },
        referral={"levels": ["level3"], "unreferred_ratio_reduction": "0.10"},
        assistance={"general": {**TERMS, "outpatient": TERMS}},
    )
    policy = parse_policy(document)
    assert parse_policy(policy_to_document(policy)) == policy
    # a policy without them is written exactly as before they existed
    plain = policy_to_document(parse_policy(policy_document(assistance={"dibao": TERMS})))
    assert not {"single_disease", "out_of_region", "referral"} & set(plain)
    assert "outpatient" not in plain["assistance"]["dibao"]
