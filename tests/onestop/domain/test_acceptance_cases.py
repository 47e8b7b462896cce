"""Every shared acceptance case through the pure engine, in process.

The ledger below keeps state in dictionaries the way the adjudicator keeps it in Redis:
settlements by (client, visit), year-to-date state per member and year, account balances and
active stays. Its only purpose is to carry state from step to step so that the engine's
figures can be compared with every step's expected answer; the same cases run through the
real HTTP API against real Redis in the gateway's tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from onestop.domain import (
    Adjudication,
    BillRejected,
    CatalogItem,
    ClientKind,
    DomainError,
    HospitalLevel,
    MappingRow,
    MappingTable,
    Member,
    Policy,
    VisitRequest,
    VisitType,
    YearToDate,
    YearToDateView,
    adjudicate,
    check_client_may_settle,
    map_bill,
    parse_catalog_items,
    parse_policy,
    stays_overlap,
)
from onestop.errors import STATUS
from tests.support.cases import Case, assert_subset, case_params, load_cases, step_request

CASES = load_cases()


@dataclass
class Client:
    kind: ClientKind
    level: HospitalLevel


@dataclass
class Settled:
    client_id: str
    request: dict[str, Any]
    member_id: str
    adjudication: Adjudication
    stay: tuple[date, date] | None
    reversed: bool = False


class Refused(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code = status, code


@dataclass
class Ledger:
    policies: dict[tuple[str, str, int], Policy]
    catalog: dict[str, CatalogItem]
    clients: dict[str, Client]
    mappings: dict[str, MappingTable]
    members: dict[str, Member]
    balances: dict[str, int]
    state: dict[tuple[str, int], YearToDate] = field(default_factory=dict)
    settled: dict[tuple[str, str], Settled] = field(default_factory=dict)

    @classmethod
    def of(cls, case: Case) -> Ledger:
        data = case.data
        members = {row["member_id"]: Member.model_validate(row) for row in data["members"]}
        catalog = {
            item.code: item for item in parse_catalog_items(enumerate(data["catalog"], start=2))
        }
        return cls(
            policies={policy.key: policy for policy in map(parse_policy, data["policies"])},
            catalog=catalog,
            clients={
                row["client_id"]: Client(ClientKind(row["kind"]), HospitalLevel(row["level"]))
                for row in data["clients"]
            },
            mappings={
                client_id: MappingTable.from_rows(MappingRow.model_validate(row) for row in rows)
                for client_id, rows in data["mappings"].items()
            },
            members=members,
            balances={
                member_id: member.personal_account_balance or 0
                for member_id, member in members.items()
            },
        )

    def _compute(self, client_id: str, body: dict[str, Any]) -> tuple[Adjudication, Member]:
        client = self.clients[client_id]
        request = VisitRequest.model_validate(body)
        try:
            check_client_may_settle(client.kind, request.visit_type)
            visit = map_bill(request, self.mappings[client_id], self.catalog)
        except BillRejected as error:
            raise Refused(422, error.code) from error
        except DomainError as error:
            raise Refused(STATUS[error.code].http, error.code) from error
        member = self.members.get(request.member_id)
        if member is None:
            raise Refused(404, "UNKNOWN_MEMBER")
        policy = self.policies.get((member.region, member.scheme, visit.policy_year))
        if policy is None:
            raise Refused(404, "NO_POLICY")
        year = visit.policy_year
        try:
            result = adjudicate(
                visit,
                client.level,
                member,
                policy,
                self.catalog,
                self.state.get((member.member_id, year), YearToDate()),
                self.balances[member.member_id],
            )
        except DomainError as error:
            raise Refused(STATUS[error.code].http, error.code) from error
        return result, member

    def preview(self, client_id: str, body: dict[str, Any]) -> tuple[int, Adjudication]:
        return 200, self._compute(client_id, body)[0]

    def settle(self, client_id: str, body: dict[str, Any]) -> tuple[int, Adjudication, bool]:
        existing = self.settled.get((client_id, body["visit_id"]))
        if existing is not None and not existing.reversed:
            if existing.request == body:
                return 200, existing.adjudication, True
            raise Refused(409, "VISIT_ALREADY_SETTLED")
        result, member = self._compute(client_id, body)
        stay = None
        if body["visit_type"] == VisitType.INPATIENT.value:
            stay = (
                date.fromisoformat(body["admission_date"]),
                date.fromisoformat(body["discharge_date"]),
            )
            for other in self.settled.values():
                if (
                    other.member_id == member.member_id
                    and not other.reversed
                    and other.stay is not None
                    and stays_overlap(stay, other.stay)
                ):
                    raise Refused(409, "OVERLAPPING_STAY")
        key = (member.member_id, result.policy_year)
        self.state[key] = self.state.get(key, YearToDate()).plus(result.delta)
        self.balances[member.member_id] -= result.delta.personal_account
        self.settled[(client_id, body["visit_id"])] = Settled(
            client_id, body, member.member_id, result, stay
        )
        return 201, result, False

    def reverse(self, client_id: str, visit_id: str) -> tuple[Adjudication, YearToDateView]:
        record = self.settled[(client_id, visit_id)]
        result = record.adjudication
        key = (record.member_id, result.policy_year)
        if not record.reversed:
            self.state[key] = self.state[key].minus(result.delta)
            self.balances[record.member_id] += result.delta.personal_account
            record.reversed = True
        view = YearToDateView.of(
            self.state[key], result.entitlement.annual_cap, self.balances[record.member_id]
        )
        return result, view

    def snapshot(self) -> tuple[object, ...]:
        return (
            dict(self.state),
            dict(self.balances),
            {key: (value.reversed, id(value)) for key, value in self.settled.items()},
        )


def _answer(
    status: int,
    result: Adjudication,
    view: YearToDateView | None = None,
    replayed: bool | None = None,
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "status": status,
        "amounts": dataclasses.asdict(result.amounts),
        "year_to_date": dataclasses.asdict(view or result.year_to_date),
    }
    if replayed is not None:
        answer["replayed"] = replayed
    return answer


@pytest.mark.parametrize("case", case_params(CASES))
def test_case_through_the_engine(case: Case) -> None:
    ledger = Ledger.of(case)
    visit_of_step: dict[int, tuple[str, str]] = {}
    # The ledger has no settlement ids: a step's own index stands for its settlement's id.
    id_of_step = {index: f"step-{index}" for index in range(len(case.steps))}
    for index, step in enumerate(case.steps):
        expect = step["expect"]
        where = f"{case.name} step {index} ({step['action']})"
        before = ledger.snapshot()
        try:
            if step["action"] == "settle":
                request = step_request(step, id_of_step)
                status, result, replayed = ledger.settle(step["client_id"], request)
                visit_of_step[index] = (step["client_id"], request["visit_id"])
                answer = _answer(status, result, replayed=replayed)
            elif step["action"] == "preview":
                status, result = ledger.preview(step["client_id"], step_request(step, id_of_step))
                answer = _answer(status, result)
            elif step["action"] == "reverse":
                client_id, visit_id = visit_of_step[step["reverse_step"]]
                result, view = ledger.reverse(client_id, visit_id)
                answer = _answer(200, result, view)
            else:
                pytest.fail(f"{where}: the in-process run has no action {step['action']}")
        except Refused as refusal:
            answer = {"status": refusal.status, "code": refusal.code}
            assert ledger.snapshot() == before, f"{where}: a refused request changed state"
        try:
            assert_subset(expect, answer)
        except AssertionError as error:
            raise AssertionError(f"{where}: {error}") from None
