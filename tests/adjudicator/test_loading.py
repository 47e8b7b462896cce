"""Loading reference data and members through the adjudicator, on real Redis."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from adjudicator.settings import decode_member_key
from onestop.domain.mapping import MAPPING_COLUMNS, MappingTable, mapping_csv
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.storage.crypto import MemberCipher
from onestop.storage.layout import MemberField, identity_index_key, member_key
from onestop.tooling.demo.regions import DEMO_CLIENTS, demo_mapping_rows
from tests.support.adjudicator import Adjudicator, error_code, error_problems
from tests.support.redis import ON_BOTH, dump_everything, sync_client
from tests.support.scenario import load_demo_world, member_record


def _jsonl(*records: dict[str, Any] | str) -> list[pb.TextChunk]:
    text = "\n".join(
        record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
        for record in records
    )
    data = text.encode()
    # chunk boundaries in the middle of lines and of multi-byte characters
    return [pb.TextChunk(data=data[start : start + 7]) for start in range(0, len(data), 7)]


@ON_BOTH
async def test_members_load_line_by_line_with_duplicate_enrolment_refused(
    adjudicator: Adjudicator, redis_url: str
) -> None:
    await load_demo_world(adjudicator.stub, [])
    first = member_record("M100001", name="张三")
    same_person = member_record("M100002", id_number=first["id_number"])
    reply = await adjudicator.stub.PutMembers(
        iter(
            _jsonl(
                first,
                same_person,  # line 2: the same id number, another member id
                '{"member_id": "M100003", ',  # line 3: broken JSON
                member_record("M100004", sex="X"),  # line 4: invalid
                "",
                member_record("M100005"),
            )
        )
    )
    assert reply.loaded == 2
    assert [(line.line, line.member_id, line.code) for line in reply.rejected] == [
        (2, "M100002", "DUPLICATE_ENROLLMENT"),
        (3, "", "MALFORMED"),
        (4, "M100004", "INVALID"),
    ]

    # re-importing updates; the balance stays when the line does not carry it
    update = {k: v for k, v in first.items() if k != "personal_account_balance"}
    reply = await adjudicator.stub.PutMembers(
        iter(_jsonl({**update, "status": "deceased"}, same_person))
    )
    assert reply.loaded == 2, reply.rejected  # the first is no longer active: the second may be
    client = sync_client(redis_url)
    assert client.hget(member_key("M100001"), MemberField.BALANCE) == b"10000"
    cipher = MemberCipher(decode_member_key(adjudicator.settings.member_key.get_secret_value()))  # type: ignore[union-attr]
    index = identity_index_key(cipher.blind_index(first["id_number"]))
    assert client.get(index) == b"M100002"


async def test_personal_data_is_encrypted_at_rest(adjudicator: Adjudicator, redis_url: str) -> None:
    record = member_record("M100010", name="欧阳娜娜")
    await load_demo_world(adjudicator.stub, [record])
    everything = b"".join(key + value for key, value in dump_everything(redis_url).items())
    assert record["id_number"].encode() not in everything
    assert "欧阳娜娜".encode() not in everything
    answer = await adjudicator.stub.Eligibility(
        pb.EligibilityRequest(member_id="M100010", date="2026-06-01")
    )
    assert answer.name_masked == "欧*"
    assert answer.id_number_masked == record["id_number"][:4] + "*" * 10 + record["id_number"][-4:]
    assert answer.continuous_years == 11
    assert answer.year_to_date.basic_cap_remaining == 2500000
    assert answer.personal_account_balance == 10000


@ON_BOTH
async def test_changing_an_id_number_frees_the_old_one(adjudicator: Adjudicator) -> None:
    await load_demo_world(adjudicator.stub, [member_record("M100020")])
    old_id = member_record("M100020")["id_number"]
    moved = member_record("M100020", id_number="410100199001011234")
    assert (await adjudicator.stub.PutMembers(iter(_jsonl(moved)))).loaded == 1
    newcomer = member_record("M100021", id_number=old_id)
    reply = await adjudicator.stub.PutMembers(iter(_jsonl(newcomer)))
    assert reply.loaded == 1, reply.rejected


async def test_invalid_policy_lists_field_paths(adjudicator: Adjudicator, redis_url: str) -> None:
    before = dump_everything(redis_url)
    document = {
        "region": "410100",
        "scheme": "resident",
        "year": 2026,
        "name": "x",
        "inpatient": {"deductible": {}, "ratio": {}},
        "annual_cap": -5,
        "bonus": 1,
    }
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.PutPolicy(
            pb.PutPolicyRequest(document_json=json.dumps(document).encode())
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(caught.value) == "INVALID"
    problems = error_problems(caught.value)
    fields = {problem.field for problem in problems}
    assert {"annual_cap", "bonus", "inpatient.deductible.community"} <= fields
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.PutPolicy(pb.PutPolicyRequest(document_json=b"{"))
    assert error_code(caught.value) == "MALFORMED"
    assert dump_everything(redis_url) == before


async def test_mapping_upload_refuses_risky_changes_and_keeps_an_audit_trail(
    adjudicator: Adjudicator, redis_url: str
) -> None:
    await load_demo_world(adjudicator.stub, [])
    client = next(client for client in DEMO_CLIENTS if client.client_id == "ZZH3")
    rows = demo_mapping_rows(client)
    stent = next(row for row in rows if row.catalog_code == "CB01")
    # the seed's incident: the covered coronary stent remapped to a self-paid item
    remapped = [
        row.model_copy(update={"catalog_code": "CC03"}) if row is stent else row for row in rows
    ]
    csv = mapping_csv(MappingTable.from_rows(remapped)).encode()
    before = dump_everything(redis_url)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.PutMapping(
            pb.PutMappingRequest(client_id="ZZH3", csv=csv, changed_by="clerk-7")
        )
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(caught.value) == "RISKY_MAPPING_CHANGE"
    assert dump_everything(redis_url) == before

    reply = await adjudicator.stub.PutMapping(
        pb.PutMappingRequest(client_id="ZZH3", csv=csv, confirm=True, changed_by="clerk-7")
    )
    assert [(change.his_code, change.change, change.risky) for change in reply.changes] == [
        (stent.his_code, "changed", True)
    ]
    assert "category B" in reply.changes[0].reason
    assert "category C" in reply.changes[0].reason
    audit = await adjudicator.stub.GetMappingAudit(pb.GetMappingAuditRequest(client_id="ZZH3"))
    last = audit.entries[-1]
    assert (last.changed_by, last.change.his_code, last.version) == (
        "clerk-7",
        stent.his_code,
        reply.version,
    )
    assert ",CB01," in last.change.old_row
    assert ",CC03," in last.change.new_row

    stored = b"".join(
        [
            chunk.data
            async for chunk in adjudicator.stub.GetMapping(pb.GetMappingRequest(client_id="ZZH3"))
        ]
    ).decode()
    assert stored.splitlines()[0] == ",".join(MAPPING_COLUMNS)
    assert f"{stent.his_code},{stent.his_name},CC03," in stored


async def test_mapping_rows_at_fault_and_unknown_clients(adjudicator: Adjudicator) -> None:
    await load_demo_world(adjudicator.stub, [])
    csv = ",".join(MAPPING_COLUMNS) + "\nA,a,NOPE,1,2020-01-01,\nB,b,XA01,-1,2020-01-01,\n"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.PutMapping(pb.PutMappingRequest(client_id="ZZH3", csv=csv.encode()))
    problems = error_problems(caught.value)
    assert [problem.row for problem in problems] == [2, 3]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.PutMapping(
            pb.PutMappingRequest(client_id="NOBODY", csv=csv.encode())
        )
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_clients_need_an_ed25519_key(adjudicator: Adjudicator) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.PutClient(
            pb.Client(
                client_id="H9",
                kind="hospital",
                name="x",
                level="level2",
                region="410100",
                public_key_pem="-----BEGIN PUBLIC KEY-----\nAAAA\n",
            )
        )
    assert error_code(caught.value) == "INVALID"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await adjudicator.stub.PutClient(pb.Client(client_id="H9", kind="hospital", name="x"))
    assert error_code(caught.value) == "INVALID"
    listed = await adjudicator.stub.ListClients(pb.ListClientsRequest())
    assert not listed.clients


async def test_catalog_round_trip_and_versions(adjudicator: Adjudicator) -> None:
    await load_demo_world(adjudicator.stub, [])
    versions = await adjudicator.stub.GetVersions(pb.GetVersionsRequest())
    assert versions.catalog
    assert versions.clients
    assert versions.policies
    assert set(versions.mappings) == {client.client_id for client in DEMO_CLIENTS}
    text = b"".join(
        [chunk.data async for chunk in adjudicator.stub.GetCatalog(pb.GetCatalogRequest())]
    ).decode()
    assert text.startswith("code,name,kind,category")
    assert len(text.splitlines()) == 1 + 24
