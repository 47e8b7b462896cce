"""``onestop demo``: settle the walk-through and print what the cashier hands each patient."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from onestop.demo.members import FEATURED
from onestop.demo.regions import DEMO_CLIENTS, demo_catalog, demo_mapping, demo_policies
from onestop.demo.scenarios import scenarios
from onestop.domain import (
    BillRejected,
    Member,
    VisitRequest,
    YearToDate,
    adjudicate,
    check_client_may_settle,
    map_bill,
    mask_id_number,
    mask_name,
)
from onestop.statement import render_refusal, render_statement


def run_in_process(write: Callable[[str], None] = print) -> int:
    """Settle every scenario with the engine in this process and print the statements.

    Returns:
        The number of scenarios settled (the refused one is not counted).
    """
    policies = {policy.key: policy for policy in demo_policies()}
    catalog = demo_catalog()
    clients = {client.client_id: client for client in DEMO_CLIENTS}
    members = {record["member_id"]: Member.model_validate(record) for record in FEATURED}
    balances = {
        member_id: member.personal_account_balance or 0 for member_id, member in members.items()
    }
    state: dict[tuple[str, int], YearToDate] = {}
    settled = 0
    for scenario in scenarios():
        client = clients[scenario.client_id]
        request = VisitRequest.model_validate(scenario.body)
        member = members[request.member_id]
        write("")
        write(scenario.title)
        try:
            check_client_may_settle(client.kind, request.visit_type)
            visit = map_bill(request, demo_mapping(client), catalog)
        except BillRejected as error:
            problem: dict[str, Any] = {
                "status": 422,
                "code": error.code,
                "detail": error.message,
                "errors": [dataclasses.asdict(problem) for problem in error.problems],
            }
            write(render_refusal(problem, client_name=client.name))
            continue
        key = (member.member_id, visit.policy_year)
        result = adjudicate(
            visit,
            client.level,
            member,
            policies[(member.region, member.scheme, visit.policy_year)],
            catalog,
            state.get(key, YearToDate()),
            balances[member.member_id],
        )
        state[key] = state.get(key, YearToDate()).plus(result.delta)
        balances[member.member_id] -= result.delta.personal_account
        settled += 1
        document = {
            "visit_id": request.visit_id,
            "visit_type": request.visit_type.value,
            "status": "settled",
            "amounts": dataclasses.asdict(result.amounts),
            "notes": [dataclasses.asdict(note) for note in result.notes],
        }
        patient = f"{mask_name(member.name)}  {mask_id_number(member.id_number)}"
        write(render_statement(document, client_name=client.name, patient=patient))
    return settled
