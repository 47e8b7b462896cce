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
from onestop.domain.bill import request_identity
from onestop.errors import STATUS
from tests.support.cases import Case, assert_subset, case_params, load_cases, step_request

CASES = load_cases()


@dataclass
class Client:
    kind: ClientKind
    level: HospitalLevel
    region: str | None


@dataclass
class Settled:
    settlement_id: str
    client_id: str
    visit_id: str
    identity: bytes
    member_id: str
    adjudication: Adjudication
    policy: Policy
    stay: tuple[date, date] | None
    reversal: YearToDateView | None = None  # the year to date its reversal left

    @property
    def reversed(self) -> bool:
        return self.reversal is not None


class Refused(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code = status, code


@dataclass
class Ledger:
    """An independent model of the rules: the engine plus the visit rules of sections 15-16."""

    policies: dict[tuple[str, str, int], list[Policy]]  # every version of a policy year
    catalog: dict[str, CatalogItem]
    clients: dict[str, Client]
    mappings: dict[str, MappingTable]
    members: dict[str, Member]
    balances: dict[str, int]
    state: dict[tuple[str, int], YearToDate] = field(default_factory=dict)
    by_id: dict[str, Settled] = field(default_factory=dict)
    visits: dict[tuple[str, str], list[Settled]] = field(default_factory=dict)

    @classmethod
    def of(cls, case: Case) -> Ledger:
        data = case.data
        members = {row["member_id"]: Member.model_validate(row) for row in data["members"]}
        catalog = {
            item.code: item for item in parse_catalog_items(enumerate(data["catalog"], start=2))
        }
        policies: dict[tuple[str, str, int], list[Policy]] = {}
        for policy in map(parse_policy, data["policies"]):
            versions = policies.setdefault(policy.key, [])
            # a version of the same first day replaces the one loaded before (section 13)
            versions[:] = [v for v in versions if v.in_force_from != policy.in_force_from]
            versions.append(policy)
        return cls(
            policies=policies,
            catalog=catalog,
            clients={
                row["client_id"]: Client(
                    ClientKind(row["kind"]), HospitalLevel(row["level"]), row.get("region")
                )
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

    def _map(self, client_id: str, body: dict[str, Any]) -> VisitRequest:
        """Step 1, as the gateway does it before any state is read."""
        request = VisitRequest.model_validate(body)
        try:
            check_client_may_settle(self.clients[client_id].kind, request.visit_type)
            map_bill(request, self.mappings[client_id], self.catalog)
        except BillRejected as error:
            raise Refused(422, error.code) from error
        except DomainError as error:
            raise Refused(STATUS[error.code].http, error.code) from error
        return request

    def _compute(
        self, client_id: str, request: VisitRequest
    ) -> tuple[Adjudication, Member, Policy]:
        client = self.clients[client_id]
        visit = map_bill(request, self.mappings[client_id], self.catalog)
        member = self.members.get(request.member_id)
        if member is None:
            raise Refused(404, "UNKNOWN_MEMBER")
        in_force = [
            version
            for version in self.policies.get((member.region, member.scheme, visit.policy_year), [])
            if version.in_force_from <= visit.policy_day
        ]
        if not in_force:
            raise Refused(404, "NO_POLICY")
        policy = max(in_force, key=lambda version: version.in_force_from)
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
                client_region=client.region,
            )
        except DomainError as error:
            raise Refused(STATUS[error.code].http, error.code) from error
        return result, member, policy

    def _check_resettle_of(self, client_id: str, request: VisitRequest) -> None:
        if request.resettle_of is None:
            return
        named = self.by_id.get(request.resettle_of)
        if (
            named is None
            or not named.reversed
            or (named.client_id, named.visit_id, named.member_id)
            != (client_id, request.visit_id, request.member_id)
        ):
            raise Refused(422, "INVALID")

    def _active(self, client_id: str, visit_id: str) -> Settled | None:
        history = self.visits.get((client_id, visit_id), [])
        return next((settled for settled in history if not settled.reversed), None)

    def _stay(self, member_id: str, request: VisitRequest) -> tuple[date, date] | None:
        if request.visit_type is not VisitType.INPATIENT:
            return None
        assert request.admission_date is not None
        assert request.discharge_date is not None
        stay = (request.admission_date, request.discharge_date)
        for other in self.by_id.values():
            if (
                other.member_id == member_id
                and not other.reversed
                and other.stay is not None
                and stays_overlap(stay, other.stay)
            ):
                raise Refused(409, "OVERLAPPING_STAY")
        return stay

    def preview(self, client_id: str, body: dict[str, Any]) -> tuple[int, Adjudication, Policy]:
        request = self._map(client_id, body)
        self._check_resettle_of(client_id, request)
        if self._active(client_id, request.visit_id) is not None:
            raise Refused(409, "VISIT_ALREADY_SETTLED")  # a preview is never a replay
        result, member, policy = self._compute(client_id, request)
        self._stay(member.member_id, request)
        return 200, result, policy

    def settle(
        self, client_id: str, body: dict[str, Any], settlement_id: str
    ) -> tuple[int, Adjudication, Policy, bool, YearToDateView | None]:
        request = self._map(client_id, body)
        self._check_resettle_of(client_id, request)
        identity = request_identity(request)
        history = self.visits.setdefault((client_id, request.visit_id), [])
        for earlier in history:
            if earlier.identity == identity:
                return 200, earlier.adjudication, earlier.policy, True, earlier.reversal
        if self._active(client_id, request.visit_id) is not None:
            raise Refused(409, "VISIT_ALREADY_SETTLED")
        result, member, policy = self._compute(client_id, request)
        stay = self._stay(member.member_id, request)
        key = (member.member_id, result.policy_year)
        self.state[key] = self.state.get(key, YearToDate()).plus(result.delta)
        self.balances[member.member_id] -= result.delta.personal_account
        settled = Settled(
            settlement_id,
            client_id,
            request.visit_id,
            identity,
            member.member_id,
            result,
            policy,
            stay,
        )
        history.append(settled)
        self.by_id[settlement_id] = settled
        return 201, result, policy, False, None

    def reverse(self, settlement_id: str) -> tuple[Adjudication, Policy, YearToDateView]:
        record = self.by_id[settlement_id]
        result = record.adjudication
        key = (record.member_id, result.policy_year)
        if record.reversal is None:
            self.state[key] = self.state[key].minus(result.delta)
            self.balances[record.member_id] += result.delta.personal_account
            record.reversal = YearToDateView.of(
                self.state[key], result.entitlement.annual_cap, self.balances[record.member_id]
            )
        return result, record.policy, record.reversal

    def snapshot(self) -> tuple[object, ...]:
        return (
            dict(self.state),
            dict(self.balances),
            {key: (value.reversed, id(value)) for key, value in self.by_id.items()},
        )


def _answer(
    status: int,
    result: Adjudication,
    policy: Policy,
    view: YearToDateView | None = None,
    replayed: bool | None = None,
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "status": status,
        "policy": {
            "region": policy.region,
            "scheme": policy.scheme.value,
            "year": policy.year,
            "effective_from": policy.in_force_from.isoformat(),
        },
        "amounts": dataclasses.asdict(result.amounts),
        "year_to_date": dataclasses.asdict(view or result.year_to_date),
    }
    if replayed is not None:
        answer["replayed"] = replayed
    return answer


@pytest.mark.parametrize("case", case_params(CASES))
def test_case_through_the_engine(case: Case) -> None:
    ledger = Ledger.of(case)
    settlement_of_step: dict[int, str] = {}
    # The ledger has no settlement ids: a step's own index stands for its settlement's id.
    id_of_step = {index: f"step-{index}" for index in range(len(case.steps))}
    for index, step in enumerate(case.steps):
        expect = step["expect"]
        where = f"{case.name} step {index} ({step['action']})"
        before = ledger.snapshot()
        try:
            if step["action"] == "settle":
                request = step_request(step, {**id_of_step, **settlement_of_step})
                status, result, policy, replayed, view = ledger.settle(
                    step["client_id"], request, id_of_step[index]
                )
                # A replay answers its settlement's id: the step whose id it is.
                settled_by = next(
                    (
                        earlier
                        for earlier, settled_id in id_of_step.items()
                        if ledger.by_id.get(settled_id) is not None
                        and ledger.by_id[settled_id].adjudication is result
                    ),
                    index,
                )
                settlement_of_step[index] = id_of_step[settled_by]
                answer = _answer(status, result, policy, view, replayed=replayed)
            elif step["action"] == "preview":
                status, result, policy = ledger.preview(
                    step["client_id"], step_request(step, {**id_of_step, **settlement_of_step})
                )
                answer = _answer(status, result, policy)
            elif step["action"] == "reverse":
                result, policy, view = ledger.reverse(settlement_of_step[step["reverse_step"]])
                answer = _answer(200, result, policy, view)
            else:
                pytest.fail(f"{where}: the in-process run has no action {step['action']}")
        except Refused as refusal:
            answer = {"status": refusal.status, "code": refusal.code}
            assert ledger.snapshot() == before, f"{where}: a refused request changed state"
        try:
            assert_subset(expect, answer)
        except AssertionError as error:
            raise AssertionError(f"{where}: {error}") from None
