"""A small loaded world for adjudicator tests: the demo region's data on a real adjudicator."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from onestop.domain import VisitRequest, map_bill
from onestop.domain.mapping import MappingTable
from onestop.domain.policy import policy_to_document
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.tooling.demo.regions import (
    DEMO_CLIENTS,
    demo_catalog,
    demo_mapping_rows,
    demo_policies,
)
from onestop.wire import settle_request_of
from tests.support.adjudicator import fingerprint, load_reference

HOSPITAL = "ZZH3"


def member_record(member_id: str, **fields: Any) -> dict[str, Any]:
    """A Zhengzhou resident member record, enrolled since 2015."""
    record: dict[str, Any] = {
        "member_id": member_id,
        "id_number": f"4101{int(''.join(filter(str.isdigit, member_id)) or 0):013d}X",
        "name": "测试",
        "birth_date": "1980-01-01",
        "sex": "F",
        "region": "410100",
        "scheme": "resident",
        "status": "active",
        "enrolled_since": "2015-01-01",
        "supplementary_enrolled": False,
        "assistance_category": None,
        "groups": [],
        "personal_account_balance": 10000,
    }
    record.update(fields)
    return record


async def load_demo_world(
    stub: pb_grpc.AdjudicatorAsyncStub, members: list[dict[str, Any]]
) -> dict[str, MappingTable]:
    """Load the demo region (policies, catalog, clients, mappings) and ``members``."""
    catalog = demo_catalog()
    return await load_reference(
        stub,
        policies=[policy_to_document(policy) for policy in demo_policies()],
        catalog=[item.model_dump(mode="json") for item in catalog.values()],
        clients=[
            {
                "client_id": client.client_id,
                "kind": client.kind.value,
                "name": client.name,
                "level": client.level.value,
                "region": client.region,
            }
            for client in DEMO_CLIENTS
        ],
        mappings={
            client.client_id: [row.model_dump(mode="json") for row in demo_mapping_rows(client)]
            for client in DEMO_CLIENTS
        },
        members=members,
    )


def stay_body(
    visit_id: str, member_id: str, admission: date, days: int, surgery_fen: int
) -> dict[str, Any]:
    """A Zhengzhou level-3 stay: a bed a day and one surgery of ``surgery_fen``."""
    lines = [
        {
            "line_no": day + 1,
            "his_code": "RMYY-0012",  # FA02 bed, 40 yuan a day
            "quantity": "1",
            "unit_price": 4000,
            "amount": 4000,
            "date": (admission + timedelta(days=day)).isoformat(),
        }
        for day in range(days)
    ]
    lines.append(
        {
            "line_no": days + 1,
            "his_code": "RMYY-0013",  # FA03 surgery, no cap
            "quantity": "1",
            "unit_price": surgery_fen,
            "amount": surgery_fen,
            "date": admission.isoformat(),
        }
    )
    return {
        "visit_id": visit_id,
        "member_id": member_id,
        "visit_type": "inpatient",
        "admission_date": admission.isoformat(),
        "discharge_date": (admission + timedelta(days=days - 1)).isoformat(),
        "diagnoses": ["K35.8"],
        "use_personal_account": False,
        "lines": lines,
    }


def settle_request(
    tables: dict[str, MappingTable], body: dict[str, Any], client_id: str = HOSPITAL
) -> pb.SettleRequest:
    """Map a bill as the gateway does and wrap it for the adjudicator."""
    request = VisitRequest.model_validate(body)
    visit = map_bill(request, tables[client_id], demo_catalog())
    return settle_request_of(
        visit,
        client_id=client_id,
        visit_id=request.visit_id,
        member_id=request.member_id,
        fingerprint=fingerprint(body),
    )
