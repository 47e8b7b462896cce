from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from onestop.domain import ClientKind, VisitNotAllowed, VisitRequest, VisitType
from onestop.domain.bill import check_client_may_settle, request_identity
from onestop.domain.documents import parse_json
from tests.support.builders import make_visit


def _request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "visit_id": "ZY1",
        "member_id": "M1",
        "visit_type": "inpatient",
        "admission_date": "2026-03-01",
        "discharge_date": "2026-03-09",
        "lines": [
            {
                "line_no": 1,
                "his_code": "YP1",
                "quantity": "2",
                "unit_price": 1500,
                "amount": 3000,
                "date": "2026-03-02",
            }
        ],
    }
    body.update(overrides)
    return body


def test_contract_example_request() -> None:
    request = VisitRequest.model_validate(_request(diagnoses=["C34.9"]))
    assert (request.first_day.isoformat(), request.last_day.isoformat()) == (
        "2026-03-01",
        "2026-03-09",
    )
    assert request.lines[0].quantity == Decimal(2)


@pytest.mark.parametrize("quantity", ["1.2345", 2, Decimal("0.5"), 1.25])
def test_quantity_as_string_or_number(quantity: Any) -> None:
    line = {
        "line_no": 1,
        "his_code": "YP1",
        "quantity": quantity,
        "unit_price": 1,
        "amount": 1,
        "date": "2026-03-02",
    }
    request = VisitRequest.model_validate(_request(lines=[line]))
    assert request.lines[0].quantity == Decimal(str(quantity))


def test_quantity_from_json_number_is_exact() -> None:
    body = parse_json(
        '{"visit_id": "V", "member_id": "M", "visit_type": "outpatient",'
        ' "service_date": "2026-01-02", "lines": [{"line_no": 1, "his_code": "A",'
        ' "quantity": 0.1, "unit_price": 3, "amount": 0,'
        ' "date": "2026-01-02"}]}'
    )
    assert VisitRequest.model_validate(body).lines[0].quantity == Decimal("0.1")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"discharge_date": None}, None),
        ({"service_date": "2026-03-02"}, None),
        ({"discharge_date": "2026-02-27"}, None),
        ({"visit_type": "outpatient"}, None),
        ({"visit_type": "dental"}, "visit_type"),
        ({"lines": []}, "lines"),
        ({"admission_date": "2026/03/01"}, "admission_date"),
        ({"admission_date": 1772323200}, "admission_date"),
        ({"visit_id": ""}, "visit_id"),
        ({"visit_id": "ZY\x001"}, "visit_id"),
        ({"visit_id": " ZY1"}, "visit_id"),
        ({"use_personal_account": "yes"}, "use_personal_account"),
        ({"extra": 1}, "extra"),
    ],
)
def test_malformed_requests(overrides: dict[str, Any], field: str | None) -> None:
    with pytest.raises(ValidationError) as caught:
        VisitRequest.model_validate(_request(**overrides))
    if field is not None:
        assert caught.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    "line_overrides",
    [
        {"quantity": "1.23456"},  # at most 4 places
        {"quantity": "abc"},
        {"quantity": "NaN"},
        {"unit_price": 15.00001},  # at most 4 places, as a JSON number too
        {"amount": "3000"},
        {"his_code": "YP\t1"},
        {"line_no": 0},
    ],
)
def test_malformed_lines(line_overrides: dict[str, Any]) -> None:
    line = {
        "line_no": 1,
        "his_code": "YP1",
        "quantity": "2",
        "unit_price": 1500,
        "amount": 3000,
        "date": "2026-03-02",
    }
    with pytest.raises(ValidationError):
        VisitRequest.model_validate(_request(lines=[{**line, **line_overrides}]))


def test_unicode_codes_are_codes() -> None:
    line = {
        "line_no": 1,
        "his_code": "药品-阿莫西林",
        "quantity": "1",
        "unit_price": 1,
        "amount": 1,
        "date": "2026-03-02",
    }
    assert VisitRequest.model_validate(_request(lines=[line])).lines[0].his_code == "药品-阿莫西林"


@pytest.mark.parametrize(
    ("client", "visit_type", "allowed"),
    [
        (ClientKind.PHARMACY, VisitType.PHARMACY, True),
        (ClientKind.HOSPITAL, VisitType.PHARMACY, False),
        (ClientKind.PHARMACY, VisitType.INPATIENT, False),
        (ClientKind.HOSPITAL, VisitType.INPATIENT, True),
        (ClientKind.HOSPITAL, VisitType.OUTPATIENT_SPECIAL, True),
        (ClientKind.AGENCY, VisitType.OUTPATIENT, False),
    ],
)
def test_who_may_settle_what(client: ClientKind, visit_type: VisitType, allowed: bool) -> None:
    if allowed:
        check_client_may_settle(client, visit_type)
    else:
        with pytest.raises(VisitNotAllowed):
            check_client_may_settle(client, visit_type)


@pytest.mark.parametrize("code", ["=HYPERLINK(1)", "+1", "-A", "@SUM"])
def test_codes_never_start_like_a_formula(code: str) -> None:
    line = {
        "line_no": 1,
        "his_code": code,
        "quantity": "1",
        "unit_price": 1,
        "amount": 1,
        "date": "2026-03-02",
    }
    with pytest.raises(ValidationError):
        VisitRequest.model_validate(_request(lines=[line]))


_IDENTITY_BODY: dict[str, Any] = {
    "visit_id": "ZY1",
    "member_id": "M1",
    "visit_type": "inpatient",
    "admission_date": "2026-03-01",
    "discharge_date": "2026-03-03",
    "diagnoses": ["k35.8", "C34.9"],
    "lines": [
        {"line_no": 2, "his_code": "药-02", "quantity": "1.50", "unit_price": 4000,
         "amount": 6000, "date": "2026-03-02"},
        {"line_no": 1, "his_code": "RMYY-0012", "quantity": 2, "unit_price": 1500,
         "amount": 3000, "date": "2026-03-01"},
        {"line_no": 3, "his_code": "X", "quantity": "0.3330", "unit_price": 520,
         "amount": 173, "date": "2026-03-03"},
    ],
}  # fmt: skip


def test_a_requests_identity_is_pinned() -> None:
    # Visit indexes keep it: a change of these bytes makes every stored request another
    # one, and retries of requests settled before the change would be refused.
    identity = request_identity(VisitRequest.model_validate(_IDENTITY_BODY))
    assert identity.hex() == "d4bc79cf33e81bc39cbb748234867583e7da010b314ee5f60daccd36d9c9dadb"


def test_identical_values_are_one_identity_and_any_other_value_another() -> None:
    same = {
        **_IDENTITY_BODY,
        "diagnoses": ["K35.8", "c34.9"],
        "use_personal_account": False,
        "lines": [
            {**_IDENTITY_BODY["lines"][1], "quantity": "2.000"},
            {**_IDENTITY_BODY["lines"][2], "quantity": 0.333},
            {**_IDENTITY_BODY["lines"][0], "quantity": 1.5},
        ],
    }
    identity = request_identity(VisitRequest.model_validate(_IDENTITY_BODY))
    assert request_identity(VisitRequest.model_validate(same)) == identity
    for changed in (
        {**_IDENTITY_BODY, "use_personal_account": True},
        {**_IDENTITY_BODY, "resettle_of": "S1"},
        {**_IDENTITY_BODY, "lines": [{**_IDENTITY_BODY["lines"][0], "his_code": "药-03"},
                                     *_IDENTITY_BODY["lines"][1:]]},
        {**_IDENTITY_BODY, "lines": [{**_IDENTITY_BODY["lines"][0], "quantity": "1.51"},
                                     *_IDENTITY_BODY["lines"][1:]]},
    ):  # fmt: skip
        assert request_identity(VisitRequest.model_validate(changed)) != identity


@pytest.mark.parametrize(
    ("price", "kept"),
    [
        (1500, 1500),
        ("1500", 1500),
        ("1500.0000", 1500),
        ("783.3333", Decimal("783.3333")),
        ("783.33330", Decimal("783.3333")),
        # a JSON number, as domain section 17 reads section 14
        (783.3333, Decimal("783.3333")),
        (1500.0, 1500),
    ],
)
def test_a_unit_price_is_whole_fen_or_a_decimal_string_of_four_places(
    price: Any, kept: int | Decimal
) -> None:
    line = {**_request()["lines"][0], "unit_price": price}
    parsed = VisitRequest.model_validate(_request(lines=[line])).lines[0].unit_price
    assert parsed == kept
    assert type(parsed) is type(kept)


@pytest.mark.parametrize("price", ["783.33333", 783.33333, True, "1e999999999", 10**13, "abc"])
def test_a_unit_price_that_is_not_exact_fen_is_refused(price: Any) -> None:
    line = {**_request()["lines"][0], "unit_price": price}
    with pytest.raises(ValidationError, match="unit_price"):
        VisitRequest.model_validate(_request(lines=[line]))


def test_a_price_below_one_fen_is_one_identity_however_written() -> None:
    def identity(price: Any) -> bytes:
        line = {**_request()["lines"][0], "unit_price": price, "amount": 1567}
        return request_identity(VisitRequest.model_validate(_request(lines=[line])))

    assert identity("783.3333") == identity("783.333300")
    assert identity("783.3333") != identity("783.3334")
    assert identity(1500) == identity("1500.0000")


@pytest.mark.parametrize(
    ("first", "last", "policy_year", "policy_day"),
    [
        (date(2026, 6, 30), date(2026, 7, 5), 2026, date(2026, 6, 30)),  # the first day
        (date(2026, 12, 30), date(2027, 1, 2), 2027, date(2027, 1, 1)),  # crossing January 1
        (date(2026, 12, 31), date(2026, 12, 31), 2026, date(2026, 12, 31)),
    ],
)
def test_the_policy_year_is_the_last_day_s_and_its_version_is_chosen_by_the_first(
    first: date, last: date, policy_year: int, policy_day: date
) -> None:
    visit = make_visit(first=first, last=last)
    assert (visit.policy_year, visit.policy_day) == (policy_year, policy_day)
