"""Controls across a member's visits (domain section 18), each rule on plain values.

Every control is run through :func:`check_controls` with the smallest visit and history that
make it find (or not find) something; the boundaries each rule turns on (a gap of exactly
``within_days``, a birthday, a window's first day, the calendar year, the history's horizon)
are cases of their own. The catalog columns, the policy block and the engine's ``deducted``
argument that carry the controls are at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from onestop.domain import (
    CatalogItem,
    Category,
    HospitalLevel,
    InvalidDocument,
    MalformedDocument,
    Member,
    Visit,
    VisitType,
    YearToDate,
    adjudicate,
    parse_catalog_csv,
    parse_policy,
)
from onestop.domain.catalog import CATALOG_COLUMNS, OPTIONAL_CATALOG_COLUMNS, catalog_csv
from onestop.domain.controls import (
    HISTORY_DAYS,
    HISTORY_ENTRIES,
    NO_FINDINGS,
    Control,
    ControlAction,
    ControlOutcome,
    Controls,
    Finding,
    PastVisit,
    age_on,
    bill_digest,
    check_controls,
    diagnosis_categories,
    history_entry,
    history_to_forget,
    limited_codes,
    limits_of,
    refusal,
)
from onestop.domain.engine import classify_lines
from onestop.domain.errors import ControlRefused, ErrorCode
from onestop.domain.policy import policy_to_document
from onestop.tooling.demo.regions import demo_catalog, demo_policy
from tests.support.builders import (
    line,
    make_item,
    make_member,
    make_policy,
    make_visit,
    policy_document,
)

HERE, ELSEWHERE = "H1", "H2"
"""The client settling the visit, and another one."""

ITEMS = (
    make_item("A1"),
    make_item("BED", kind="service", unit="day"),
    make_item("MALE", sex="M"),
    make_item("FEMALE", sex="F"),
    make_item("ADULT", min_age=18, max_age=60),
    make_item("Q", max_visit_qty="3"),
    make_item("Y", max_year_qty="10"),
)
CATALOG: dict[str, CatalogItem] = {item.code: item for item in ITEMS}


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


def past(
    settlement_id: str = "S0",
    *,
    client_id: str = ELSEWHERE,
    visit_type: VisitType = VisitType.INPATIENT,
    first: date = date(2026, 3, 1),
    last: date | None = None,
    diagnoses: tuple[str, ...] = ("K35.8",),
    digest: str = "0" * 16,
    quantities: tuple[tuple[str, Decimal], ...] = (),
) -> PastVisit:
    """A history entry (one day long unless told)."""
    return PastVisit(
        settlement_id,
        client_id,
        visit_type,
        first,
        last or first,
        diagnosis_categories(diagnoses),
        digest,
        quantities,
    )


def controls(**blocks: Any) -> Controls:
    return Controls.model_validate(blocks)


def check(
    blocks: Mapping[str, Any] | Controls | None,
    visit: Visit,
    *,
    history: Sequence[PastVisit] = (),
    member: Member | None = None,
    catalog: Mapping[str, CatalogItem] = CATALOG,
    client: str = HERE,
) -> ControlOutcome:
    if blocks is not None and not isinstance(blocks, Controls):
        blocks = Controls.model_validate(blocks)
    return check_controls(blocks, visit, client, member or make_member(), catalog, history)


def outpatient(*lines: Any, day: date = date(2026, 3, 10)) -> Visit:
    return make_visit(*lines, visit_type=VisitType.OUTPATIENT, first=day)


def qty_lines(*quantities: str, code: str = "Q", day: date = date(2026, 3, 10)) -> list[Any]:
    """Lines 1, 2, ... of ``code`` with these quantities, all on ``day``."""
    return [line(100, code, qty, n, day) for n, qty in enumerate(quantities, start=1)]


# -- every control and every action --------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A visit that one control finds at fault, and what it finds."""

    block: str
    settings: dict[str, Any]
    visit: Visit
    control: Control
    line_nos: tuple[int, ...] = ()
    history: tuple[PastVisit, ...] = ()
    member: Member = field(default_factory=make_member)
    related: str | None = None


_DUPLICATE = make_visit(line(1000, "A1"))
_CASES = {
    "duplicate_bill": Case(
        "duplicate_bill",
        {},
        _DUPLICATE,
        Control.DUPLICATE_CLAIM,
        history=(past("S-dup", digest=bill_digest(_DUPLICATE)),),
        related="S-dup",
    ),
    "split_admission": Case(
        "split_admission",
        {"within_days": 15},
        make_visit(line(1000), first=d(3, 20), last=d(3, 25), diagnoses=("K35.9",)),
        Control.SPLIT_ADMISSION,
        history=(past("S-stay", first=d(3, 1), last=d(3, 15)),),
        related="S-stay",
    ),
    "concurrent_visit": Case(
        "concurrent_visit",
        {},
        make_visit(line(1000), first=d(3, 1), last=d(3, 9)),
        Control.CONCURRENT_VISIT,
        history=(past("S-out", visit_type=VisitType.OUTPATIENT, first=d(3, 5)),),
        related="S-out",
    ),
    "paper_bed": Case(
        "paper_bed",
        {"bed_items": ["BED"], "min_days": 2},
        make_visit(
            line(100, "BED", line_no=1, day=d(3, 1)), line(100, "BED", line_no=2, day=d(3, 2))
        ),
        Control.PAPER_BED,
        line_nos=(1, 2),
    ),
    "quantity": Case(
        "quantity",
        {},
        outpatient(*qty_lines("2", "2")),
        Control.QUANTITY_LIMIT,
        line_nos=(2,),
    ),
    "patient_sex": Case(
        "patient",
        {},
        outpatient(line(100, "A1", line_no=1), line(100, "MALE", line_no=2)),
        Control.SEX_RESTRICTED,
        line_nos=(2,),
    ),
    "patient_age": Case(
        "patient",
        {},
        outpatient(line(100, "ADULT", line_no=1), line(100, "A1", line_no=2)),
        Control.AGE_RESTRICTED,
        line_nos=(1,),
        member=make_member(birth_date="2010-01-01"),
    ),
}
LINE_CONTROLS = ("quantity", "patient_sex", "patient_age")
VISIT_CONTROLS = ("duplicate_bill", "split_admission", "concurrent_visit", "paper_bed")


def run_case(case: Case, action: ControlAction) -> ControlOutcome:
    blocks = {case.block: {"action": action.value, **case.settings}}
    return check(blocks, case.visit, history=case.history, member=case.member)


@pytest.mark.parametrize("name", list(_CASES))
def test_refuse_raises_with_the_controls_code_and_a_problem_per_line(name: str) -> None:
    case = _CASES[name]
    with pytest.raises(ControlRefused) as caught:
        run_case(case, ControlAction.REFUSE)
    code = case.control.error_code
    assert caught.value.code is code
    expected: list[tuple[ErrorCode, int | None]] = [(code, n) for n in case.line_nos]
    expected = expected or [(code, None)]
    assert [(problem.code, problem.line_no) for problem in caught.value.problems] == expected


@pytest.mark.parametrize("name", list(_CASES))
def test_flag_reports_the_finding_and_deducts_nothing(name: str) -> None:
    case = _CASES[name]
    outcome = run_case(case, ControlAction.FLAG)
    assert outcome.flagged
    assert outcome.deducted == {}
    assert outcome.bill_digest == bill_digest(case.visit)
    [finding] = outcome.findings
    assert (finding.control, finding.action) == (case.control, ControlAction.FLAG)
    assert finding.line_nos == case.line_nos
    assert finding.related_settlement == case.related
    assert finding.message


@pytest.mark.parametrize("name", LINE_CONTROLS)
def test_deduct_maps_each_line_at_fault_to_the_controls_code(name: str) -> None:
    case = _CASES[name]
    outcome = run_case(case, ControlAction.DEDUCT)
    assert outcome.deducted == dict.fromkeys(case.line_nos, case.control.value)
    [finding] = outcome.findings
    assert (finding.control, finding.action) == (case.control, ControlAction.DEDUCT)
    assert outcome.flagged  # a deduction goes to the review queue too


@pytest.mark.parametrize("name", list(_CASES))
def test_nothing_is_found_without_the_history_or_fault(name: str) -> None:
    """The same visit, with a clean history and an unrestricted member, passes every control."""
    case = _CASES[name]
    clean = case.visit
    if name == "paper_bed":
        clean = make_visit(
            line(100, "BED", line_no=1, day=d(3, 1)), line(100, "A1", line_no=2, day=d(3, 2))
        )
    elif name == "quantity":
        clean = outpatient(*qty_lines("2", "1"))
    elif name == "patient_sex":
        clean = outpatient(line(100, "FEMALE"))
    blocks = {case.block: {"action": "refuse", **case.settings}}
    outcome = check(blocks, clean, member=make_member(birth_date="1980-01-01"))
    assert outcome.findings == ()
    assert not outcome.flagged


@pytest.mark.parametrize("name", VISIT_CONTROLS)
def test_visit_controls_cannot_deduct(name: str) -> None:
    settings = {**_CASES[name].settings, "action": "deduct"}
    with pytest.raises(ValidationError, match="deduct applies to lines"):
        controls(**{name: settings})
    with pytest.raises(InvalidDocument) as caught:
        parse_policy(policy_document(controls={name: settings}))
    assert [problem.field for problem in caught.value.problems] == [f"controls.{name}"]


@pytest.mark.parametrize("name", ["quantity", "patient"])
def test_line_controls_may_deduct(name: str) -> None:
    block = controls(**{name: {"action": "deduct"}})
    assert getattr(block, name).action is ControlAction.DEDUCT


def test_only_refusing_findings_are_refused_and_the_first_names_the_code() -> None:
    visit = outpatient(line(100, "MALE", line_no=1), line(100, "ADULT", line_no=2))
    blocks = {
        "duplicate_bill": {"action": "refuse"},
        "patient": {"action": "refuse"},
        "quantity": {"action": "flag"},
    }
    history = (past(digest=bill_digest(visit)),)
    with pytest.raises(ControlRefused) as caught:
        check(blocks, visit, history=history, member=make_member(birth_date="2015-01-01"))
    assert caught.value.code is ErrorCode.DUPLICATE_CLAIM
    assert [(problem.code, problem.line_no) for problem in caught.value.problems] == [
        (ErrorCode.DUPLICATE_CLAIM, None),
        (ErrorCode.SEX_RESTRICTED, 1),
        (ErrorCode.AGE_RESTRICTED, 2),
    ]


def test_flag_and_deduct_findings_are_kept_together() -> None:
    outcome = check(
        {"patient": {"action": "flag"}, "quantity": {"action": "deduct"}},
        outpatient(line(100, "MALE", line_no=1), line(100, "Q", "2", 2), line(100, "Q", "2", 3)),
    )
    assert [finding.control for finding in outcome.findings] == [
        Control.SEX_RESTRICTED,
        Control.QUANTITY_LIMIT,
    ]
    assert outcome.deducted == {3: "QUANTITY_LIMIT"}  # the flagged line 1 stays settled


def test_a_line_two_deducting_controls_find_is_deducted_once() -> None:
    catalog = {**CATALOG, "QM": make_item("QM", sex="M", max_visit_qty="1")}
    visit = outpatient(line(100, "QM", "2", 1))
    outcome = check(
        {"patient": {"action": "deduct"}, "quantity": {"action": "deduct"}}, visit, catalog=catalog
    )
    assert len(outcome.findings) == 2
    assert list(outcome.deducted) == [1]
    assert outcome.deducted[1] in {"SEX_RESTRICTED", "QUANTITY_LIMIT"}


def test_refusal_lists_a_problem_per_line_and_one_per_visit_finding() -> None:
    findings = (
        Finding(Control.PAPER_BED, ControlAction.REFUSE, "beds", line_nos=(4, 7)),
        Finding(Control.CONCURRENT_VISIT, ControlAction.REFUSE, "elsewhere"),
    )
    error = refusal(findings)
    assert error.code is ErrorCode.PAPER_BED
    assert error.message.startswith("beds")
    assert [(p.code, p.message, p.line_no) for p in error.problems] == [
        (ErrorCode.PAPER_BED, "beds", 4),
        (ErrorCode.PAPER_BED, "beds", 7),
        (ErrorCode.CONCURRENT_VISIT, "elsewhere", None),
    ]


def test_every_control_is_named_by_its_error_code() -> None:
    for control in Control:
        assert control.error_code.value == control.value


# -- no controls -----------------------------------------------------------------------------


def _unreadable_history() -> Iterator[PastVisit]:
    raise AssertionError("the history was read")
    yield  # pragma: no cover


def test_no_controls_runs_nothing() -> None:
    visit = outpatient(line(100, "NOT-IN-THE-CATALOG"))
    outcome = check_controls(None, visit, HERE, make_member(), {}, _unreadable_history())
    assert outcome is NO_FINDINGS
    assert (outcome.findings, dict(outcome.deducted), outcome.bill_digest) == ((), {}, "")
    assert not outcome.flagged


def test_an_empty_controls_block_runs_nothing() -> None:
    visit = outpatient(line(100, "A1"))
    outcome = check(Controls(), visit, history=(past(digest=bill_digest(visit)),))
    assert outcome == NO_FINDINGS
    assert not Controls().active
    assert Controls.model_validate(
        {"paper_bed": {"action": "flag", "bed_items": ["B"], "min_days": 1}}
    ).active


# -- duplicate bill --------------------------------------------------------------------------

BILL = make_visit(
    line(1000, "A1", "2", 1, d(3, 1)),
    line(500, "BED", "1", 2, d(3, 2)),
    line(700, "Q", "1.5", 3, d(3, 3)),
)


def _bill(
    *lines: Any,
    visit_type: VisitType = VisitType.INPATIENT,
    first: date = date(2026, 3, 1),
    last: date = date(2026, 3, 9),
) -> Visit:
    return make_visit(*lines, visit_type=visit_type, first=first, last=last)


def test_the_same_bill_reordered_and_renumbered_has_the_same_digest() -> None:
    same = _bill(
        line(700, "Q", "1.50", 10, d(3, 3)),
        line(1000, "A1", "2.0", 20, d(3, 1)),
        line(500, "BED", "1", 30, d(3, 2)),
    )
    assert bill_digest(same) == bill_digest(BILL)
    assert len(bill_digest(BILL)) == 16


@pytest.mark.parametrize(
    "other",
    [
        # another amount
        _bill(
            line(1001, "A1", "2", 1, d(3, 1)),
            line(500, "BED", "1", 2, d(3, 2)),
            line(700, "Q", "1.5", 3, d(3, 3)),
        ),
        # another quantity
        _bill(
            line(1000, "A1", "3", 1, d(3, 1)),
            line(500, "BED", "1", 2, d(3, 2)),
            line(700, "Q", "1.5", 3, d(3, 3)),
        ),
        # another line date
        _bill(
            line(1000, "A1", "2", 1, d(3, 4)),
            line(500, "BED", "1", 2, d(3, 2)),
            line(700, "Q", "1.5", 3, d(3, 3)),
        ),
        # another item
        _bill(
            line(1000, "Y", "2", 1, d(3, 1)),
            line(500, "BED", "1", 2, d(3, 2)),
            line(700, "Q", "1.5", 3, d(3, 3)),
        ),
        # a line less
        _bill(line(1000, "A1", "2", 1, d(3, 1)), line(500, "BED", "1", 2, d(3, 2))),
        # a line twice
        _bill(*BILL.lines, line(500, "BED", "1", 4, d(3, 2))),
        # other visit dates
        _bill(*BILL.lines, last=d(3, 10)),
    ],
    ids=["amount", "quantity", "date", "item", "fewer-lines", "line-twice", "discharge"],
)
def test_a_different_bill_has_a_different_digest(other: Visit) -> None:
    assert bill_digest(other) != bill_digest(BILL)


def test_the_visit_type_is_part_of_the_bill() -> None:
    lines = (line(1000, "A1", day=d(3, 1)),)
    kinds = [VisitType.OUTPATIENT, VisitType.OUTPATIENT_SPECIAL, VisitType.PHARMACY]
    digests = {bill_digest(_bill(*lines, visit_type=kind, first=d(3, 1))) for kind in kinds}
    assert len(digests) == 3


def test_the_same_bill_from_another_client_is_a_duplicate() -> None:
    same = _bill(*reversed([coded._replace(line_no=coded.line_no + 100) for coded in BILL.lines]))
    history = (past("S1", client_id=ELSEWHERE, digest=bill_digest(BILL)),)
    outcome = check({"duplicate_bill": {"action": "flag"}}, same, history=history, client=HERE)
    [finding] = outcome.findings
    assert (finding.control, finding.related_settlement) == (Control.DUPLICATE_CLAIM, "S1")


def test_a_bill_that_differs_in_one_amount_is_no_duplicate() -> None:
    other = _bill(line(1001, "A1", "2", 1, d(3, 1)), *BILL.lines[1:])
    history = (past("S1", digest=bill_digest(BILL)),)
    assert check({"duplicate_bill": {"action": "refuse"}}, other, history=history).findings == ()


# -- split admission -------------------------------------------------------------------------

DISCHARGE = d(3, 15)


@pytest.mark.parametrize(
    ("admitted", "earlier_diagnoses", "earlier_type", "found"),
    [
        (DISCHARGE, ("K35.8",), VisitType.INPATIENT, True),  # gap 0: admitted the same day
        (DISCHARGE + timedelta(days=15), ("K35.8",), VisitType.INPATIENT, True),  # gap 15
        (DISCHARGE + timedelta(days=16), ("K35.8",), VisitType.INPATIENT, False),  # gap 16
        (DISCHARGE + timedelta(days=3), ("J18.9",), VisitType.INPATIENT, False),  # unrelated
        (DISCHARGE + timedelta(days=3), ("K35.8",), VisitType.OUTPATIENT, False),  # not a stay
        (DISCHARGE - timedelta(days=1), ("K35.8",), VisitType.INPATIENT, False),  # gap -1
        # one shared category among several diagnoses is enough
        (DISCHARGE + timedelta(days=3), ("I10", "K35.1"), VisitType.INPATIENT, True),
        # the category is the first three characters, not a prefix of another length
        (DISCHARGE + timedelta(days=3), ("K36",), VisitType.INPATIENT, False),
    ],
    ids=[
        "gap-0",
        "gap-within",
        "gap-beyond",
        "unrelated",
        "outpatient",
        "negative-gap",
        "one-shared",
        "other-category",
    ],
)
def test_split_admission(
    admitted: date, earlier_diagnoses: tuple[str, ...], earlier_type: VisitType, found: bool
) -> None:
    earlier = past(
        "S-first",
        visit_type=earlier_type,
        first=DISCHARGE - timedelta(days=5) if earlier_type is VisitType.INPATIENT else DISCHARGE,
        last=DISCHARGE,
        diagnoses=earlier_diagnoses,
    )
    visit = make_visit(
        line(1000), first=admitted, last=admitted + timedelta(days=4), diagnoses=("K35.9",)
    )
    outcome = check(
        {"split_admission": {"action": "flag", "within_days": 15}}, visit, history=(earlier,)
    )
    assert [f.related_settlement for f in outcome.findings] == (["S-first"] if found else [])


def test_split_admission_checks_only_inpatient_visits() -> None:
    earlier = past(first=d(3, 10), last=DISCHARGE)
    visit = outpatient(line(1000), day=DISCHARGE + timedelta(days=1))
    outcome = check(
        {"split_admission": {"action": "refuse", "within_days": 15}}, visit, history=(earlier,)
    )
    assert outcome.findings == ()


def test_split_admission_names_the_latest_related_discharge() -> None:
    history = (
        past("S-old", first=d(3, 1), last=d(3, 5)),
        past("S-new", first=d(3, 8), last=d(3, 12)),
    )
    visit = make_visit(line(1000), first=d(3, 14), last=d(3, 16), diagnoses=("K35.2",))
    outcome = check(
        {"split_admission": {"action": "flag", "within_days": 15}}, visit, history=history
    )
    assert [f.related_settlement for f in outcome.findings] == ["S-new"]


@pytest.mark.parametrize("within_days", [-1, 31, "15", 1.5])
def test_split_admission_window_is_a_whole_number_of_days_up_to_30(within_days: Any) -> None:
    with pytest.raises(ValidationError):
        controls(split_admission={"action": "flag", "within_days": within_days})


# -- concurrent visit ------------------------------------------------------------------------

STAY_FIRST, STAY_LAST = d(3, 1), d(3, 9)


@pytest.mark.parametrize(
    ("kind", "day", "client", "found"),
    [
        (VisitType.OUTPATIENT, d(3, 5), ELSEWHERE, True),
        (VisitType.OUTPATIENT_SPECIAL, d(3, 5), ELSEWHERE, True),
        (VisitType.OUTPATIENT, STAY_FIRST, ELSEWHERE, True),  # the admission day
        (VisitType.OUTPATIENT, STAY_LAST, ELSEWHERE, True),  # the discharge day
        (VisitType.OUTPATIENT, d(3, 5), HERE, False),  # the same hospital
        (VisitType.PHARMACY, d(3, 5), ELSEWHERE, False),
        (VisitType.OUTPATIENT, STAY_LAST + timedelta(days=1), ELSEWHERE, False),
        (VisitType.OUTPATIENT, STAY_FIRST - timedelta(days=1), ELSEWHERE, False),
    ],
    ids=[
        "outpatient",
        "special",
        "first-day",
        "last-day",
        "same-client",
        "pharmacy",
        "day-after",
        "day-before",
    ],
)
def test_a_stay_against_earlier_outpatient_visits(
    kind: VisitType, day: date, client: str, found: bool
) -> None:
    visit = make_visit(line(1000), first=STAY_FIRST, last=STAY_LAST)
    history = (past("S-out", client_id=client, visit_type=kind, first=day),)
    outcome = check({"concurrent_visit": {"action": "flag"}}, visit, history=history, client=HERE)
    assert [f.related_settlement for f in outcome.findings] == (["S-out"] if found else [])


@pytest.mark.parametrize(
    ("kind", "day", "client", "found"),
    [
        (VisitType.OUTPATIENT, d(3, 5), ELSEWHERE, True),
        (VisitType.OUTPATIENT_SPECIAL, d(3, 5), ELSEWHERE, True),
        (VisitType.OUTPATIENT, STAY_FIRST, ELSEWHERE, True),
        (VisitType.OUTPATIENT, STAY_LAST, ELSEWHERE, True),
        (VisitType.OUTPATIENT, d(3, 5), HERE, False),
        (VisitType.PHARMACY, d(3, 5), ELSEWHERE, False),
        (VisitType.OUTPATIENT, STAY_LAST + timedelta(days=1), ELSEWHERE, False),
        (VisitType.OUTPATIENT, STAY_FIRST - timedelta(days=1), ELSEWHERE, False),
    ],
    ids=[
        "outpatient",
        "special",
        "first-day",
        "last-day",
        "same-client",
        "pharmacy",
        "day-after",
        "day-before",
    ],
)
def test_an_outpatient_visit_against_an_earlier_stay(
    kind: VisitType, day: date, client: str, found: bool
) -> None:
    visit = make_visit(line(1000, day=day), visit_type=kind, first=day)
    history = (past("S-stay", client_id=client, first=STAY_FIRST, last=STAY_LAST),)
    outcome = check({"concurrent_visit": {"action": "flag"}}, visit, history=history, client=HERE)
    assert [f.related_settlement for f in outcome.findings] == (["S-stay"] if found else [])


def test_two_overlapping_stays_are_not_a_concurrent_visit() -> None:
    """Overlapping stays are refused elsewhere (OVERLAPPING_STAY), not by this control."""
    visit = make_visit(line(1000), first=STAY_FIRST, last=STAY_LAST)
    history = (past(first=d(3, 3), last=d(3, 4)),)
    outcome = check({"concurrent_visit": {"action": "refuse"}}, visit, history=history)
    assert outcome.findings == ()


def test_two_outpatient_visits_the_same_day_are_not_a_concurrent_visit() -> None:
    history = (past(visit_type=VisitType.OUTPATIENT, first=d(3, 10)),)
    outcome = check(
        {"concurrent_visit": {"action": "refuse"}}, outpatient(line(100)), history=history
    )
    assert outcome.findings == ()


# -- paper bed -------------------------------------------------------------------------------

PAPER_STAY = make_visit(
    line(100, "BED", line_no=1, day=d(3, 1)),  # bed only
    line(100, "BED", line_no=2, day=d(3, 2)),  # bed and a drug: not counted
    line(100, "A1", line_no=3, day=d(3, 2)),
    line(100, "BED", line_no=4, day=d(3, 3)),  # two bed lines and nothing else
    line(100, "BED2", line_no=5, day=d(3, 3)),
    line(100, "A1", line_no=6, day=d(3, 4)),  # no bed: not counted
    line(100, "BED", line_no=7, day=d(3, 5)),  # bed only
    first=d(3, 1),
    last=d(3, 5),
)


@pytest.mark.parametrize(("min_days", "line_nos"), [(3, (1, 4, 5, 7)), (4, None)])
def test_paper_bed_counts_days_with_only_bed_items(
    min_days: int, line_nos: tuple[int, ...] | None
) -> None:
    blocks = {"paper_bed": {"action": "flag", "bed_items": ["BED", "BED2"], "min_days": min_days}}
    outcome = check(blocks, PAPER_STAY)
    assert [f.line_nos for f in outcome.findings] == ([line_nos] if line_nos else [])


def test_paper_bed_checks_only_stays() -> None:
    visit = outpatient(line(100, "BED", day=d(3, 10)))
    blocks = {"paper_bed": {"action": "refuse", "bed_items": ["BED"], "min_days": 1}}
    assert check(blocks, visit).findings == ()


@pytest.mark.parametrize(
    "block",
    [
        {"action": "flag", "bed_items": [], "min_days": 1},
        {"action": "flag", "bed_items": ["BED"], "min_days": 0},
        {"action": "flag", "bed_items": ["BED"]},
    ],
)
def test_paper_bed_needs_bed_items_and_a_day_count(block: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        controls(paper_bed=block)


# -- patient restrictions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (date(2000, 3, 15), date(2026, 3, 14), 25),  # the day before the birthday
        (date(2000, 3, 15), date(2026, 3, 15), 26),  # the birthday
        (date(2000, 3, 15), date(2026, 12, 31), 26),
        (date(2000, 12, 31), date(2026, 1, 1), 25),
        (date(2000, 2, 29), date(2024, 2, 29), 24),
        (date(2026, 3, 15), date(2026, 3, 15), 0),  # born that day
    ],
)
def test_age_on(birth: date, day: date, age: int) -> None:
    assert age_on(birth, day) == age


@pytest.mark.parametrize(("sex", "found"), [("F", False), ("M", True)])
def test_items_for_one_sex(sex: str, found: bool) -> None:
    outcome = check(
        {"patient": {"action": "flag"}},
        outpatient(line(100, "FEMALE")),
        member=make_member(sex=sex),
    )
    assert [f.control for f in outcome.findings] == ([Control.SEX_RESTRICTED] if found else [])


@pytest.mark.parametrize(
    ("birth", "found"),
    [
        ("2008-03-10", False),  # 18 on the visit day: the lower bound is inclusive
        ("2008-03-11", True),  # 17, a day short of 18
        ("1966-03-10", False),  # 60 on the visit day: the upper bound is inclusive
        ("1965-03-11", False),  # 60, turning 61 the next day
        ("1965-03-10", True),  # 61 on the visit day
    ],
)
def test_items_for_an_age_range_include_both_bounds(birth: str, found: bool) -> None:
    outcome = check(
        {"patient": {"action": "flag"}},
        outpatient(line(100, "ADULT", day=d(3, 10))),
        member=make_member(birth_date=birth),
    )
    assert [f.control for f in outcome.findings] == ([Control.AGE_RESTRICTED] if found else [])


def test_age_is_taken_on_each_lines_own_day() -> None:
    """A patient who turns 18 during the stay: the lines before the birthday are at fault."""
    visit = make_visit(
        line(100, "ADULT", line_no=1, day=d(3, 4)),
        line(100, "ADULT", line_no=2, day=d(3, 5)),
        first=d(3, 1),
        last=d(3, 9),
    )
    outcome = check(
        {"patient": {"action": "deduct"}}, visit, member=make_member(birth_date="2008-03-05")
    )
    assert outcome.deducted == {1: "AGE_RESTRICTED"}


def test_only_a_min_or_only_a_max_age() -> None:
    catalog = {
        "KID": make_item("KID", max_age=14),
        "OLD": make_item("OLD", min_age=65),
    }
    visit = outpatient(line(100, "KID", line_no=1), line(100, "OLD", line_no=2))
    outcome = check(
        {"patient": {"action": "deduct"}},
        visit,
        catalog=catalog,
        member=make_member(birth_date="1960-03-10"),
    )  # 66
    assert outcome.deducted == {1: "AGE_RESTRICTED"}


# -- quantities ------------------------------------------------------------------------------

QUANTITY = {"quantity": {"action": "deduct"}}


def with_limits(*limits: dict[str, Any], action: str = "deduct") -> dict[str, Any]:
    return {"quantity": {"action": action, "limits": list(limits)}}


@pytest.mark.parametrize(
    ("quantities", "over"),
    [
        (("1", "2"), ()),  # exactly the limit of 3
        (("2", "2"), (2,)),
        (("1", "1", "1", "1"), (4,)),  # only as many lines as needed
        (("3", "1", "1"), (2, 3)),
        (("4",), (1,)),
        (("0.5", "2.5", "0.0001"), (3,)),
    ],
)
def test_per_visit_limit_deducts_the_latest_lines_only_as_needed(
    quantities: tuple[str, ...], over: tuple[int, ...]
) -> None:
    outcome = check(QUANTITY, outpatient(*qty_lines(*quantities)))
    assert outcome.deducted == dict.fromkeys(over, "QUANTITY_LIMIT")


def test_the_latest_lines_are_by_date_then_line_number() -> None:
    catalog = {"Q1": make_item("Q1", max_visit_qty="1")}
    visit = make_visit(
        line(100, "Q1", line_no=1, day=d(3, 3)),
        line(100, "Q1", line_no=2, day=d(3, 1)),  # the earliest day: kept
        line(100, "Q1", line_no=3, day=d(3, 3)),
        first=d(3, 1),
        last=d(3, 3),
    )
    outcome = check(QUANTITY, visit, catalog=catalog)
    assert outcome.deducted == {1: "QUANTITY_LIMIT", 3: "QUANTITY_LIMIT"}
    [finding] = outcome.findings
    assert finding.line_nos == (1, 3)


def test_other_items_lines_are_untouched() -> None:
    visit = outpatient(*qty_lines("2", "2"), line(100, "A1", "50", 3), line(100, "Y", "5", 4))
    assert check(QUANTITY, visit).deducted == {2: "QUANTITY_LIMIT"}


WINDOW = {"code": "A1", "per_days": {"days": 7, "quantity": "4"}}
VISIT_DAY = d(3, 10)  # a 7-day window: March 4 to March 10


@pytest.mark.parametrize(
    ("first", "last", "before", "found"),
    [
        (d(3, 4), d(3, 4), "2", False),  # 2 + 2 = 4 in the window: at the limit
        (d(3, 4), d(3, 4), "3", True),  # March 4 is the window's first day
        (d(3, 3), d(3, 3), "9", False),  # March 3 is outside
        (d(2, 1), d(3, 4), "3", True),  # an entry counts by its last day
        (d(3, 10), d(3, 10), "3", True),  # the visit's own day
    ],
)
def test_per_days_window_ends_on_the_visits_last_day(
    first: date, last: date, before: str, found: bool
) -> None:
    history = (past(first=first, last=last, quantities=(("A1", Decimal(before)),)),)
    visit = outpatient(line(100, "A1", "2", 1, VISIT_DAY), day=VISIT_DAY)
    outcome = check(with_limits(WINDOW), visit, history=history)
    assert outcome.deducted == ({1: "QUANTITY_LIMIT"} if found else {})


def test_per_days_window_of_a_stay_ends_on_its_discharge() -> None:
    history = (past(first=d(3, 1), last=d(3, 1), quantities=(("A1", Decimal(3)),)),)
    stay = make_visit(line(100, "A1", "2", 1, d(3, 2)), first=d(3, 2), last=d(3, 8))
    assert check(with_limits(WINDOW), stay, history=history).deducted == {}  # March 2 to 8
    stay = make_visit(line(100, "A1", "2", 1, d(3, 2)), first=d(3, 2), last=d(3, 7))
    assert check(with_limits(WINDOW), stay, history=history).deducted == {1: "QUANTITY_LIMIT"}


def test_per_days_window_does_not_reach_past_the_visits_last_day() -> None:
    # A visit of March 10 settled (again) after one of April 20: April is not in March 4-10.
    history = (past(first=d(4, 20), quantities=(("A1", Decimal(4)),)),)
    visit = outpatient(line(100, "A1", "2", 1, VISIT_DAY), day=VISIT_DAY)
    assert check(with_limits(WINDOW), visit, history=history).deducted == {}


@pytest.mark.parametrize(
    ("entry_day", "before", "found"),
    [
        (d(1, 5), "8", False),  # 8 + 2 = 10: at the limit
        (d(1, 5), "9", True),
        (d(12, 31, 2025), "9", False),  # another year does not count
        (d(1, 1), "9", True),
    ],
)
def test_per_year_limit_counts_the_calendar_year(entry_day: date, before: str, found: bool) -> None:
    history = (past(first=entry_day, quantities=(("Y", Decimal(before)),)),)
    visit = outpatient(line(100, "Y", "2", 1, VISIT_DAY), day=VISIT_DAY)
    assert check(QUANTITY, visit, history=history).deducted == (
        {1: "QUANTITY_LIMIT"} if found else {}
    )


def test_per_year_is_the_year_of_the_last_day() -> None:
    """A stay over New Year counts in the year of its discharge, against that year's history."""
    history = (
        past("S-2025", first=d(12, 1, 2025), quantities=(("Y", Decimal(9)),)),
        past("S-2026", first=d(1, 10), quantities=(("Y", Decimal(7)),)),
    )
    stay = make_visit(
        line(100, "Y", "2", 1, d(12, 30, 2025)),
        line(100, "Y", "1", 2, d(1, 2)),
        first=d(12, 28, 2025),
        last=d(1, 3),
    )
    assert check(QUANTITY, stay, history=history).deducted == {}  # 7 + 3 = 10
    more = (*history, past("S-2026b", first=d(2, 1), quantities=(("Y", Decimal(1)),)))
    assert check(QUANTITY, stay, history=more).deducted == {2: "QUANTITY_LIMIT"}


def test_history_at_the_limit_leaves_nothing_for_the_visit() -> None:
    history = (past(first=d(1, 5), quantities=(("Y", Decimal(10)),)),)
    visit = outpatient(*qty_lines("1", "1", code="Y"))
    assert check(QUANTITY, visit, history=history).deducted == {
        1: "QUANTITY_LIMIT",
        2: "QUANTITY_LIMIT",
    }


def test_history_quantities_of_other_items_do_not_count() -> None:
    history = (past(first=d(1, 5), quantities=(("Q", Decimal(100)), ("A1", Decimal(100)))),)
    visit = outpatient(line(100, "Y", "10", 1))
    assert check(QUANTITY, visit, history=history).deducted == {}


def test_every_limit_must_fit() -> None:
    catalog = {"QY": make_item("QY", max_visit_qty="5", max_year_qty="6")}
    history = (past(first=d(1, 5), quantities=(("QY", Decimal(3)),)),)
    visit = outpatient(*qty_lines("1", "1", "1", "1", code="QY"))  # 4 per visit; 7 in the year
    outcome = check(QUANTITY, visit, history=history, catalog=catalog)
    assert outcome.deducted == {4: "QUANTITY_LIMIT"}


@pytest.mark.parametrize(
    ("catalog_limit", "policy_limit", "over"),
    [
        ("10", "2", (3,)),  # the policy's is tighter
        ("2", "10", ()),  # ... or looser: it replaces the catalog's all the same
    ],
)
def test_a_policy_limit_replaces_the_catalogs(
    catalog_limit: str, policy_limit: str, over: tuple[int, ...]
) -> None:
    catalog = {"P": make_item("P", max_visit_qty=catalog_limit)}
    visit = outpatient(*qty_lines("1", "1", "1", code="P"))
    outcome = check(with_limits({"code": "P", "per_visit": policy_limit}), visit, catalog=catalog)
    assert outcome.deducted == dict.fromkeys(over, "QUANTITY_LIMIT")


def test_a_policy_limit_replaces_only_its_own_kind() -> None:
    catalog = {"P": make_item("P", max_visit_qty="10", max_year_qty="3")}
    limits = with_limits({"code": "P", "per_visit": "20"})
    visit = outpatient(*qty_lines("1", "1", "1", "1", code="P"))
    assert check(limits, visit, catalog=catalog).deducted == {4: "QUANTITY_LIMIT"}  # the year's 3


def test_limits_of_takes_each_kind_from_the_policy_else_the_catalog() -> None:
    item = make_item("P", max_visit_qty="10", max_year_qty="30")
    block = controls(**with_limits({"code": "P", "per_days": {"days": 7, "quantity": "5"}}))
    limits = limits_of(block, item)
    assert limits is not None
    assert (limits.per_visit, limits.per_year) == (Decimal(10), Decimal(30))
    assert limits.per_days is not None
    assert (limits.per_days.days, limits.per_days.quantity) == (7, Decimal(5))
    block = controls(**with_limits({"code": "P", "per_visit": "2", "per_year": "4"}))
    limits = limits_of(block, item)
    assert limits is not None
    assert (limits.per_visit, limits.per_days, limits.per_year) == (Decimal(2), None, Decimal(4))
    assert limits_of(controls(**QUANTITY), make_item("FREE")) is None


def test_limited_codes_are_the_visits_codes_with_a_limit() -> None:
    visit = outpatient(
        line(1, "A1", line_no=1),
        line(1, "Q", line_no=2),
        line(1, "Y", line_no=3),
        line(1, "BED", line_no=4),
    )
    assert limited_codes(None, CATALOG, visit) == set()
    assert limited_codes(controls(patient={"action": "flag"}), CATALOG, visit) == set()
    assert limited_codes(controls(**QUANTITY), CATALOG, visit) == {"Q", "Y"}
    assert limited_codes(
        controls(**with_limits({"code": "A1", "per_year": "5"})), CATALOG, visit
    ) == {
        "A1",
        "Q",
        "Y",
    }


@pytest.mark.parametrize(
    "block",
    [
        {"action": "deduct", "limits": [{"code": "A1"}]},  # no limit at all
        {
            "action": "deduct",
            "limits": [{"code": "A1", "per_visit": "1"}, {"code": "A1", "per_year": "2"}],
        },
        {"action": "deduct", "limits": [{"code": "A1", "per_visit": "0"}]},
        {"action": "deduct", "limits": [{"code": "A1", "per_days": {"days": 0, "quantity": "1"}}]},
        {
            "action": "deduct",
            "limits": [{"code": "A1", "per_days": {"days": 367, "quantity": "1"}}],
        },
        {"action": "deduct", "limits": [{"code": "A1", "per_visit": 1.5}]},  # a binary float
        {"action": "cap"},
    ],
)
def test_invalid_quantity_blocks_are_refused(block: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        controls(quantity=block)


# -- history ---------------------------------------------------------------------------------


def test_history_entry_keeps_the_limited_quantities_not_deducted() -> None:
    visit = make_visit(
        line(100, "Q", "1", 1, d(3, 1)),
        line(100, "Q", "2", 2, d(3, 2)),
        line(100, "Q", "4", 3, d(3, 3)),  # deducted: not settled, not counted
        line(100, "Y", "1.5", 4, d(3, 3)),
        line(100, "A1", "9", 5, d(3, 3)),  # no limit: not kept
        first=d(3, 1),
        last=d(3, 5),
        diagnoses=tuple(f"K{n:02d}" for n in range(10)),
    )
    entry = history_entry("S9", HERE, visit, "digest", {"Q", "Y"}, {3: "QUANTITY_LIMIT"})
    assert entry == PastVisit(
        settlement_id="S9",
        client_id=HERE,
        visit_type=VisitType.INPATIENT,
        first_day=d(3, 1),
        last_day=d(3, 5),
        categories=tuple(f"K{n:02d}" for n in range(8)),
        bill_digest="digest",
        quantities=(("Q", Decimal(3)), ("Y", Decimal("1.5"))),
    )


def test_a_deducted_visit_leaves_what_it_settled_for_the_next() -> None:
    """Settle 2 of 3 units, keep them: the next visit of the year has 8 of 10 left."""
    first = outpatient(*qty_lines("2", "5", "4", code="Y"), day=d(3, 1))
    catalog = {"Y": make_item("Y", max_year_qty="10")}
    outcome = check(QUANTITY, first, catalog=catalog)
    assert outcome.deducted == {3: "QUANTITY_LIMIT"}
    entry = history_entry(
        "S1",
        HERE,
        first,
        outcome.bill_digest,
        limited_codes(controls(**QUANTITY), catalog, first),
        outcome.deducted,
    )
    assert entry.quantities == (("Y", Decimal(7)),)
    second = outpatient(*qty_lines("3", "1", code="Y"), day=d(3, 2))
    assert check(QUANTITY, second, catalog=catalog, history=(entry,)).deducted == {
        2: "QUANTITY_LIMIT"
    }


def test_history_entry_without_limited_codes_keeps_no_quantities() -> None:
    visit = outpatient(*qty_lines("2", "2"))
    assert history_entry("S1", HERE, visit, "x", (), {}).quantities == ()


TODAY = date(2026, 11, 20)
HORIZON = TODAY - timedelta(days=HISTORY_DAYS)


def test_history_older_than_the_horizon_is_forgotten() -> None:
    history = [
        past("S-edge", first=HORIZON),
        past("S-old", first=HORIZON - timedelta(days=1)),
        past("S-older", first=HORIZON - timedelta(days=100)),
        past("S-stay", first=HORIZON - timedelta(days=10), last=HORIZON),  # by its last day
        past("S-new", first=TODAY),
    ]
    assert sorted(history_to_forget(history, TODAY)) == ["S-old", "S-older"]


@pytest.mark.parametrize(
    ("count", "forgotten"),
    [(HISTORY_ENTRIES - 1, 0), (HISTORY_ENTRIES, 1), (HISTORY_ENTRIES + 5, 6)],
)
def test_history_keeps_room_for_the_entry_being_added(count: int, forgotten: int) -> None:
    # Entries on days TODAY, TODAY-1, ...; past the cap the days repeat (ids break the tie).
    history = [
        past(f"S{n:04d}", first=TODAY - timedelta(days=n % HISTORY_ENTRIES)) for n in range(count)
    ]
    dropped = history_to_forget(history, TODAY)
    assert len(dropped) == forgotten
    kept = [entry for entry in history if entry.settlement_id not in dropped]
    assert len(kept) == min(count, HISTORY_ENTRIES - 1)
    # the oldest go first
    newest_dropped = max((e.last_day for e in history if e.settlement_id in dropped), default=None)
    if newest_dropped is not None:
        assert all(entry.last_day >= newest_dropped for entry in kept)


def test_history_forgets_old_entries_and_then_the_oldest_recent_ones() -> None:
    recent = [past(f"R{n:04d}", first=TODAY - timedelta(days=n)) for n in range(HISTORY_ENTRIES)]
    old = [past("OLD", first=HORIZON - timedelta(days=1))]
    dropped = history_to_forget(old + recent, TODAY)
    assert dropped == ["OLD", f"R{HISTORY_ENTRIES - 1:04d}"]


def test_empty_history_forgets_nothing() -> None:
    assert history_to_forget([], TODAY) == []


# -- the catalog's optional columns ----------------------------------------------------------

RESTRICTED = (
    make_item(
        "FB01",
        kind="service",
        unit="time",
        price_cap=20000,
        sex="F",
        min_age=14,
        max_age=60,
        med_chrgitm_type="03",
    ),
    make_item("XQ01", max_visit_qty="2.5", max_year_qty="24"),
    make_item("XB01", "B", max_daily_qty="3", max_level="level2"),
)


def header_of(text: str) -> str:
    return text.split("\n", 1)[0]


def test_a_catalog_without_the_new_columns_is_written_as_before() -> None:
    # The demo catalog without its fee categories: none of the optional columns.
    items = [item.model_copy(update={"med_chrgitm_type": None}) for item in demo_catalog().values()]
    text = catalog_csv(items)
    assert header_of(text) == ",".join(CATALOG_COLUMNS)
    assert len(CATALOG_COLUMNS) == 9
    assert parse_catalog_csv(text) == items


def test_a_catalog_with_the_new_columns_round_trips() -> None:
    text = catalog_csv(RESTRICTED)
    assert header_of(text) == ",".join(CATALOG_COLUMNS + OPTIONAL_CATALOG_COLUMNS)
    assert parse_catalog_csv(text) == list(RESTRICTED)


@pytest.mark.parametrize("column", OPTIONAL_CATALOG_COLUMNS)
def test_only_the_optional_columns_in_use_are_written(column: str) -> None:
    value: Any = {
        "sex": "M",
        "min_age": 3,
        "max_age": 12,
        "max_visit_qty": "1",
        "max_year_qty": "7",
        "med_chrgitm_type": "01",
    }[column]
    items = [make_item("P1", **{column: value}), make_item("P2")]
    text = catalog_csv(items)
    assert header_of(text) == ",".join((*CATALOG_COLUMNS, column))
    assert parse_catalog_csv(text) == items


def test_the_optional_columns_may_come_in_any_order() -> None:
    header = ",".join((*CATALOG_COLUMNS, "max_year_qty", "sex"))
    text = header + "\nFB02,检查,service,A,,,time,,,12,F\nA9,plain,drug,A,,,box,,,,\n"
    items = {item.code: item for item in parse_catalog_csv(text)}
    assert (items["FB02"].max_year_qty, items["FB02"].sex) == (Decimal(12), "F")
    assert (items["A9"].max_year_qty, items["A9"].sex, items["A9"].min_age) == (None, None, None)


def test_max_age_below_min_age_is_refused() -> None:
    with pytest.raises(ValidationError, match="max_age 10 is below min_age 12"):
        make_item("P", min_age=12, max_age=10)
    assert make_item("P", min_age=12, max_age=12).max_age == 12
    header = ",".join((*CATALOG_COLUMNS, "min_age", "max_age"))
    with pytest.raises(InvalidDocument) as caught:
        parse_catalog_csv(header + "\nA1,ok,drug,A,,,box,,,,\nP,x,drug,A,,,box,,,12,10\n")
    assert [problem.row for problem in caught.value.problems] == [3]


@pytest.mark.parametrize(
    ("column", "cell"),
    [
        ("sex", "X"),
        ("sex", "m"),
        ("min_age", "-1"),
        ("min_age", "1.5"),
        ("max_age", "151"),
        ("max_visit_qty", "0"),
        ("max_year_qty", "-2"),
        ("max_year_qty", "many"),
    ],
)
def test_invalid_optional_cells_are_refused_with_their_row(column: str, cell: str) -> None:
    text = ",".join((*CATALOG_COLUMNS, column)) + f"\nA1,x,drug,A,,,box,,,{cell}\n"
    with pytest.raises(InvalidDocument) as caught:
        parse_catalog_csv(text)
    assert not isinstance(caught.value, MalformedDocument)
    assert [(problem.row, problem.field) for problem in caught.value.problems] == [(2, column)]


@pytest.mark.parametrize(
    "header",
    [
        (*CATALOG_COLUMNS, "colour"),
        (*CATALOG_COLUMNS, "sex", "sex"),
        (*(name for name in CATALOG_COLUMNS if name != "unit"), "sex"),
    ],
    ids=["unknown", "repeated", "missing-required"],
)
def test_other_headers_are_still_malformed(header: tuple[str, ...]) -> None:
    cells = ",".join("" for _ in header)
    with pytest.raises(MalformedDocument):
        parse_catalog_csv(",".join(header) + "\n" + cells + "\n")


# -- the policy's controls block -------------------------------------------------------------

FULL_CONTROLS: dict[str, Any] = {
    "duplicate_bill": {"action": "refuse"},
    "split_admission": {"action": "flag", "within_days": 15},
    "quantity": {
        "action": "deduct",
        "limits": [
            {"code": "FA04", "per_year": "24"},
            {"code": "XA01", "per_visit": "2", "per_days": {"days": 30, "quantity": "6.5"}},
        ],
    },
    "patient": {"action": "refuse"},
    "paper_bed": {"action": "flag", "bed_items": ["FA02"], "min_days": 5},
    "concurrent_visit": {"action": "flag"},
}


def test_the_controls_block_loads_and_is_written_back_as_loaded() -> None:
    policy = parse_policy(policy_document(controls=FULL_CONTROLS))
    assert policy.controls is not None
    assert policy.controls.quantity_limits()["XA01"].per_visit == Decimal(2)
    document = policy_to_document(policy)
    assert parse_policy(document) == policy
    assert parse_policy(json.loads(json.dumps(document))) == policy
    assert document["controls"]["quantity"]["limits"][1]["per_days"] == {
        "days": 30,
        "quantity": "6.5",
    }


def test_a_policy_without_controls_is_written_without_them() -> None:
    policy = make_policy()
    assert policy.controls is None
    assert "controls" not in policy_to_document(policy)
    demo = demo_policy("410100")
    assert "controls" not in policy_to_document(demo)
    assert parse_policy(policy_to_document(demo)) == demo


def test_controls_quantity_limits_are_empty_without_the_block() -> None:
    assert controls(patient={"action": "flag"}).quantity_limits() == {}


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"surprise": {"action": "flag"}}, "controls.surprise"),
        ({"patient": {"action": "flag", "extra": 1}}, "controls.patient.extra"),
        ({"patient": {"action": "ignore"}}, "controls.patient.action"),
        ({"patient": {}}, "controls.patient.action"),
        (
            {"split_admission": {"action": "flag", "within_days": 31}},
            "controls.split_admission.within_days",
        ),
        (
            {"quantity": {"action": "flag", "limits": [{"code": "A1"}]}},
            "controls.quantity.limits.0",
        ),
        (
            {"quantity": {"action": "flag", "limits": [{"code": "A", "per_visit": "1"}] * 2}},
            "controls.quantity",
        ),
    ],
)
def test_invalid_controls_blocks_name_the_field(block: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidDocument) as caught:
        parse_policy(policy_document(controls=block))
    assert [problem.field for problem in caught.value.problems] == [field]


# -- the engine's deducted lines -------------------------------------------------------------

ENGINE_ITEMS = {
    item.code: item
    for item in (make_item("A1"), make_item("B1", "B", price_cap=5000), make_item("C1", "C"))
}
ENGINE_VISIT = make_visit(
    line(4000, "A1", line_no=1), line(13000, "B1", "2", line_no=2), line(30000, "C1", line_no=3)
)


@pytest.mark.parametrize("deducted_line", [1, 2, 3])
def test_a_deducted_line_is_wholly_self_paid_for_the_controls_code(deducted_line: int) -> None:
    plain = adjudicate(
        ENGINE_VISIT,
        HospitalLevel.LEVEL3,
        make_member(),
        make_policy(),
        ENGINE_ITEMS,
        YearToDate(),
        0,
    )
    result = adjudicate(
        ENGINE_VISIT,
        HospitalLevel.LEVEL3,
        make_member(),
        make_policy(),
        ENGINE_ITEMS,
        YearToDate(),
        0,
        deducted={deducted_line: "QUANTITY_LIMIT"},
    )
    for before, after in zip(plain.lines, result.lines, strict=True):
        if after.line_no == deducted_line:
            assert after.full_self_pay == after.amount == before.amount
            assert (after.over_limit_self_pay, after.pre_self_pay, after.in_scope) == (0, 0, 0)
            assert after.reasons == ("QUANTITY_LIMIT",)
            assert (after.catalog_code, after.category) == (before.catalog_code, before.category)
        else:
            assert after == before
    amounts = result.amounts
    assert amounts.total == plain.amounts.total == 47000
    assert amounts.total == (
        amounts.full_self_pay
        + amounts.over_limit_self_pay
        + amounts.pre_self_pay
        + amounts.in_scope
    )
    moved = next(split for split in plain.lines if split.line_no == deducted_line)
    assert amounts.full_self_pay == plain.amounts.full_self_pay + moved.amount - moved.full_self_pay
    assert amounts.in_scope == plain.amounts.in_scope - moved.in_scope


def test_deducting_moves_what_the_funds_pay() -> None:
    def paid(deducted: Mapping[int, str]) -> int:
        visit = make_visit(line(200000, "A1", line_no=1), line(100000, "A1", line_no=2))
        result = adjudicate(
            visit,
            HospitalLevel.LEVEL3,
            make_member(),
            make_policy(),
            ENGINE_ITEMS,
            YearToDate(),
            0,
            deducted=deducted,
        )
        return result.amounts.basic_fund

    assert paid({}) == (300000 - 90000) // 2
    assert paid({2: "SEX_RESTRICTED"}) == (200000 - 90000) // 2


def test_classify_lines_keeps_the_controls_code_as_the_only_reason() -> None:
    lines, totals = classify_lines(
        ENGINE_VISIT, ENGINE_ITEMS, HospitalLevel.LEVEL3, {2: "AGE_RESTRICTED", 99: "PAPER_BED"}
    )
    assert [split.reasons for split in lines] == [(), ("AGE_RESTRICTED",), ("CATEGORY_C",)]
    assert lines[1].category is Category.B
    assert (totals.total, totals.full_self_pay, totals.over_limit_self_pay) == (47000, 43000, 0)
    assert (totals.pre_self_pay, totals.in_scope) == (0, 4000)


# -- found in review -----------------------------------------------------------------------


SPLIT = {"split_admission": {"action": "flag", "within_days": 15}}


def test_split_admission_also_finds_a_later_stay_settled_first() -> None:
    """A stay settled after the one that followed it: the gap runs to the later admission."""
    later = past("S-later", first=d(3, 20), last=d(3, 25))
    visit = make_visit(line(1000), first=d(3, 10), last=d(3, 18), diagnoses=("K35.9",))
    outcome = check(SPLIT, visit, history=(later,))
    assert [f.related_settlement for f in outcome.findings] == ["S-later"]


def test_split_admission_reads_every_diagnosis_of_the_visit() -> None:
    visit = make_visit(
        line(1000),
        first=DISCHARGE,
        last=DISCHARGE + timedelta(days=2),
        diagnoses=(*(f"J{n:02d}.1" for n in range(9)), "K35.9"),  # the match is the tenth
    )
    outcome = check(SPLIT, visit, history=(past("S-first", last=DISCHARGE),))
    assert [f.related_settlement for f in outcome.findings] == ["S-first"]


def test_another_providers_stay_is_not_described_to_this_client() -> None:
    earlier = past("S-first", client_id=ELSEWHERE, first=d(3, 10), last=DISCHARGE)
    visit = make_visit(line(1000), first=DISCHARGE, last=d(3, 18), diagnoses=("K35.9",))
    [finding] = check(SPLIT, visit, history=(earlier,)).findings
    assert "elsewhere" in finding.message
    assert "K35" not in finding.message
    assert "2026-03" not in finding.message
    own = past("S-own", client_id=HERE, first=d(3, 10), last=DISCHARGE)
    [finding] = check(SPLIT, visit, history=(own,)).findings
    assert "K35" in finding.message
    assert str(DISCHARGE) in finding.message


def test_a_concurrent_visit_elsewhere_is_not_dated_to_this_client() -> None:
    stay = past("S-stay", client_id=ELSEWHERE, first=d(3, 8), last=d(3, 12))
    visit = outpatient(line(1000), day=d(3, 10))
    [finding] = check({"concurrent_visit": {"action": "flag"}}, visit, history=(stay,)).findings
    assert "2026-03" not in finding.message


def _daily_stay(days: int) -> Visit:
    first = d(3, 1)
    return make_visit(
        *(line(100, "A1", "1", n + 1, first + timedelta(days=n)) for n in range(days)),
        first=first,
        last=first + timedelta(days=days - 1),
    )


def test_per_days_counts_only_the_visits_lines_inside_the_window() -> None:
    """A month's stay with one unit a day never holds more than 7 in any 7 days."""
    stay = _daily_stay(30)
    seven = {"code": "A1", "per_days": {"days": 7, "quantity": "7"}}
    assert check(with_limits(seven), stay).deducted == {}
    six = {"code": "A1", "per_days": {"days": 7, "quantity": "6"}}
    assert check(with_limits(six), stay).deducted == {30: "QUANTITY_LIMIT"}
