"""The stored layout, pinned: what a fixed history writes to Redis equals the golden file.

A fixed history (reference data, two members, an inpatient stay, a pharmacy swipe with the
personal account, and the reversal of the stay) runs through the real service into a real
Redis, with a fixed clock and fixed settlement ids. Every key, field and journal entry it
leaves is compared with ``golden/layout-2.json``.

When this fails, the stored layout changed. That is never a detail: data written by the
current version must stay readable. A field or key only *added* (older data without it still
reads, shown by a test that reads data written before it) keeps the layout's version; anything
renamed, removed or given another meaning needs a new one: bump ``LAYOUT_VERSION`` in
``onestop/storage/layout.py`` and add the conversion of the previous layout to
``onestop/storage/migrate.py`` with a test on data the previous version wrote. Either way,
record the change in ``CHANGELOG.md`` and in the layout module's history, then regenerate the
golden file with ``ONESTOP_UPDATE_GOLDEN=1`` and review its diff.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from datetime import date
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf.json_format import MessageToDict

from adjudicator.loading import LoadingService
from adjudicator.members import MemberLoader, lines_of
from adjudicator.reconciliation import reconcile_day
from adjudicator.reference import Reference
from adjudicator.service import SettleCommand, SettlementService
from adjudicator.store import Store
from onestop.domain import VisitRequest, map_bill
from onestop.domain.catalog import catalog_csv, parse_catalog_items
from onestop.domain.clients import Client
from onestop.domain.mapping import MappingRow, MappingTable, mapping_csv
from onestop.domain.member import Member
from onestop.domain.reconciliation import DayFigures, GroupKey, HospitalDay, funds_of
from onestop.domain.reviews import ReviewDecision, ReviewStatus
from onestop.domain.settlement import SettlementStatus
from onestop.domain.state import StateDelta
from onestop.redis_client import connect
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import record_pb2 as record_pb
from onestop.signing import public_pem
from onestop.storage import layout
from onestop.storage.crypto import MemberCipher
from onestop.storage.records import (
    delta_text,
    member_cleared_fields,
    member_fields,
    member_increments,
    state_capture,
)
from tests.support import round1
from tests.support.adjudicator import fingerprint
from tests.support.cases import CASES_DIR
from tests.support.redis import sync_client

GOLDEN = Path(__file__).parent / "golden" / f"layout-{layout.LAYOUT_VERSION}.json"
START_MS = 1_772_323_200_000  # 2026-03-01 08:00 +08:00
CASE = json.loads((CASES_DIR / "11_outpatient_special_and_pharmacy.json").read_text("utf-8"))


def _names() -> dict[str, Any]:
    """Every key shape and field name, from the layout module."""
    group = layout.member_group("M1")
    return {
        "prefix": layout.PREFIX,
        "groups": layout.GROUPS,
        "keys": {
            "member": layout.member_key("M1"),
            "stays": layout.stays_key("M1"),
            "visit": layout.visit_key("M1", "H1", "ZY:001"),
            "visit_claim": layout.visit_claim_key("H1", "ZY:001"),
            "migrations": layout.MIGRATIONS_KEY,
            "settlement": layout.settlement_key(group, "S" + "0" * 31),
            "journal": layout.journal_key(group),
            "day_totals": layout.day_totals_key(group, "20260301", "H1"),
            "day_settlements": layout.day_settlements_key(group, "20260301", "H1"),
            "day_reversals": layout.day_reversals_key(group, "20260301", "H1"),
            "reconciliations": layout.reconciliations_key("20260301"),
            "national_message": layout.national_message_key("H1", "H1202603010800000001"),
            "national_visit": layout.national_visit_key("M1", "H1", "V0001"),
            "national_lines": layout.national_lines_key("M1", "H1", "V0001"),
            "identity_index": layout.identity_index_key("abc"),
            "versions": layout.VERSIONS_KEY,
            "policies": layout.POLICIES_KEY,
            "catalog": layout.CATALOG_KEY,
            "clients": layout.CLIENTS_KEY,
            "mapping": layout.mapping_key("H1"),
            "mapping_audit": layout.mapping_audit_key("H1"),
            "nonce": layout.nonce_key("H1", "n" * 16),
            "lookups": layout.lookups_key("20260301", "H1"),
            "unknown_members": layout.unknown_members_key("H1", 491_000),
            "replication_barrier": layout.replication_barrier_key(layout.member_key("M1")),
            "restored": layout.restored_key(group),
            "history": layout.history_key("M1"),
            "review": layout.review_key(group, "S" + "0" * 31),
            "day_reviews": layout.day_reviews_key(group, "20260301"),
            "day_recoveries": layout.day_recoveries_key(group, "20260301"),
            "refusals": layout.refusals_key("20260301"),
            "console_login": layout.console_login_key("ab" * 32),
            "console_session": layout.console_session_key("cd" * 32),
        },
        "refusals_ttl_seconds": layout.REFUSALS_TTL_SECONDS,
        "console_session_fields": {field.name: field.value for field in layout.ConsoleSessionField},
        "history_fields": {field.name: field.value for field in layout.HistoryField},
        "history_visit_types": layout.HISTORY_VISIT_TYPES,
        "review_fields": {field.name: field.value for field in layout.ReviewField},
        "gateway_key_patterns": list(layout.GATEWAY_KEY_PATTERNS),
        "lookup_fields": {field.name: field.value for field in layout.LookupField},
        "member_fields": {field.name: field.value for field in layout.MemberField},
        "year_figures": layout.YEAR_FIGURES,
        "visit_fields": {field.name: field.value for field in layout.VisitField},
        "visit_request_field": layout.request_field(bytes(32)),
        "visit_claim_fields": {field.name: field.value for field in layout.VisitClaimField},
        "settlement_fields": {field.name: field.value for field in layout.SettlementField},
        "journal_fields": {field.name: field.value for field in layout.JournalField},
        "amounts": list(layout.AMOUNT_FIELDS),
        "delta": list(layout.DELTA_FIELDS),
        "state_after": list(layout.STATE_AFTER_FIGURES),
        "day_total_fields": {field.name: field.value for field in layout.DayTotalField},
        "day_total_group_field": layout.group_total_field("inpatient", "resident", "settled:cash"),
        "reconciliation_fields": {field.name: field.value for field in layout.ReconciliationField},
        "national_message_fields": {
            field.name: field.value for field in layout.NationalMessageField
        },
        "national_message_states": [state.value for state in layout.NationalMessageState],
        "national_visit_fields": {field.name: field.value for field in layout.NationalVisitField},
        "national_line_fields": {field.name: field.value for field in layout.NationalLineField},
        "audit_fields": {field.name: field.value for field in layout.AuditField},
        "policy_field": layout.policy_field("410100", "resident", 2026),
        "policy_field_jan1": layout.policy_field("410100", "resident", 2026, date(2026, 1, 1)),
        "policy_field_mid_year": layout.policy_field("410100", "resident", 2026, date(2026, 7, 1)),
        "year_disease_field": layout.year_disease_field(2026, "MT002"),
        "round2_forms": _round2_forms(),
    }


def _round2_forms() -> dict[str, Any]:
    """Stored forms of the round-2 figures (domain sections 8, 10, 11), written by the code."""
    member = Member.model_validate(
        {
            **CASE["members"][0],
            "out_of_region_registrations": [{"region": "520100", "from": "2026-01-01", "to": None}],
            "registered_diseases": [{"code": "MT002", "from": "2026-01-01", "to": "2026-12-31"}],
        }
    )
    fields = member_fields(member, MemberCipher(bytes(32)))
    delta = StateDelta(
        basic_fund=36000,
        assistance_outpatient=2350,
        assistance_outpatient_base=4700,
        diseases=(("MT002", 36000),),
    )
    forms = {
        "member_lists": {
            str(name): fields[name]
            for name in (
                layout.MemberField.OUT_OF_REGION_REGISTRATIONS,
                layout.MemberField.REGISTERED_DISEASES,
            )
        },
        "member_cleared_without_lists": member_cleared_fields(
            Member.model_validate(CASE["members"][0])
        ),
        "delta": delta_text(delta),
        "member_increments": member_increments(2026, delta),
        "state_capture": state_capture(2026, delta),
    }
    return cast(dict[str, Any], json.loads(json.dumps(forms)))


def _with_controls(policy: dict[str, Any]) -> dict[str, Any]:
    """The case's policy with controls that flag its stays and keep one item's quantities."""
    codes = sorted({row["catalog_code"] for rows in CASE["mappings"].values() for row in rows})
    return {
        **policy,
        "controls": {
            "paper_bed": {"action": "flag", "bed_items": codes, "min_days": 1},
            "quantity": {
                "action": "flag",
                "limits": [{"code": code, "per_visit": "0.5"} for code in codes],
            },
        },
    }


def _shown(key: str, field: str, value: bytes) -> Any:
    """A stored value as the golden file shows it: readable, with what is random masked."""
    if field == layout.MemberField.IDENTITY and ":m:" in key:
        # The key is the test's own (random); the format and the length are the layout's.
        return f"<sealed identity, format {value[1]}, {len(value)} bytes>"
    if field == layout.SettlementField.RECORD:
        return MessageToDict(pb.Settlement.FromString(value), preserving_proto_field_name=True)
    if field == layout.SettlementField.PACKED:
        packed = record_pb.PackedSettlement.FromString(zlib.decompress(value))
        return {"zlib": MessageToDict(packed, preserving_proto_field_name=True)}
    if ":vc:" in key and field == layout.VisitClaimField.TOKEN:
        return "<the claiming request's token>"
    if key == layout.VERSIONS_KEY and field in (layout.POLICIES_KIND, layout.CLIENTS_KIND):
        return "<fresh version>"
    if key.startswith(f"{layout.PREFIX}:mapaudit:") and field in (layout.AuditField.AT, "id"):
        return "<time of the upload>"
    if key.startswith(f"{layout.PREFIX}:recon:") and field == "id":
        return "<stream id: time of the answer>"
    text = value.decode()
    if key in (layout.CATALOG_KEY, layout.POLICIES_KEY, layout.CLIENTS_KEY) or ":mapping:" in key:
        return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}>"
    return text


def _dump(url: str) -> dict[str, Any]:
    client = sync_client(url)
    stored: dict[str, Any] = {}
    try:
        for raw_key in sorted(client.scan_iter(count=1000)):
            key = raw_key.decode()
            kind = cast(bytes, client.type(raw_key)).decode()
            if kind == "hash":
                fields = cast(dict[bytes, bytes], client.hgetall(raw_key))
                stored[key] = {
                    name.decode(): _shown(key, name.decode(), value)
                    for name, value in sorted(fields.items())
                }
            elif kind == "string":
                stored[key] = _shown(key, "", cast(bytes, client.get(raw_key)))
            elif kind == "list":
                items = cast(list[bytes], client.lrange(raw_key, 0, -1))
                stored[key] = [_shown(key, "", item) for item in items]
            elif kind == "zset":
                scored = cast(
                    list[tuple[bytes, float]], client.zrange(raw_key, 0, -1, withscores=True)
                )
                stored[key] = {_shown(key, "", item): int(score) for item, score in scored}
            elif kind == "set":
                members = cast(set[bytes], client.smembers(raw_key))
                stored[key] = sorted(_shown(key, "", item) for item in members)
            else:
                entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(raw_key))
                stored[key] = [
                    {
                        "id": _shown(key, "id", stream_id),
                        **{
                            name.decode(): _shown(key, name.decode(), value)
                            for name, value in fields.items()
                        },
                    }
                    for stream_id, fields in entries
                ]
    finally:
        client.close()
    return stored


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = iter(range(1, 100))

    def settlement_id(member_id: str, now_ms: int) -> str:
        return f"S{layout.member_group(member_id):03x}{now_ms:012x}{next(numbers):016x}"

    monkeypatch.setattr("adjudicator.service.new_settlement_id", settlement_id)


async def _write_history(url: str) -> None:
    client = await connect(url, timeout_seconds=5, wait_seconds=5)
    clock = iter(range(START_MS, START_MS + 1_000_000, 1000))
    cipher = MemberCipher(base64.b64decode(round1.member_key_text()))
    store = Store(client, cipher)
    reference = Reference(store)
    service = SettlementService(store, reference, clock=lambda: next(clock))
    loading = LoadingService(reference)
    try:
        for document in CASE["policies"]:
            await loading.put_policy(json.dumps(_with_controls(document)).encode())
        items = parse_catalog_items(enumerate(CASE["catalog"], start=2))
        await loading.put_catalog(catalog_csv(items))
        for client_data in CASE["clients"]:
            await loading.put_client(
                Client.model_validate(
                    {
                        **client_data,
                        "public_key": public_pem(
                            round1.client_key(client_data["client_id"]).public_key()
                        ),
                    }
                )
            )
        tables = {}
        for client_id, rows in CASE["mappings"].items():
            table = MappingTable.from_rows(MappingRow.model_validate(row) for row in rows)
            tables[client_id] = table
            await loading.put_mapping(client_id, mapping_csv(table), confirm=False, changed_by="t")

        async def members() -> Any:
            for member in CASE["members"]:
                yield json.dumps(member, ensure_ascii=False).encode() + b"\n"
            second = {**CASE["members"][0], "member_id": "M2", "id_number": "410102199001011234"}
            yield json.dumps(second, ensure_ascii=False).encode() + b"\n"

        report = await MemberLoader(store).load(lines_of(members()))
        assert report.loaded == len(CASE["members"]) + 1, report.rejected
        catalog = {item.code: item for item in items}
        settled = []
        for step in CASE["steps"]:
            if step["action"] != "settle" or step["expect"]["status"] != 201:
                continue
            body = step["request"]
            request = VisitRequest.model_validate(body)
            visit = map_bill(request, tables[step["client_id"]], catalog)
            settlement, _ = await service.settle(
                SettleCommand(
                    step["client_id"], request.visit_id, request.member_id, visit, fingerprint(body)
                )
            )
            settled.append(settlement)
        stay = {
            **CASE["steps"][0]["request"],
            "visit_id": "ZY-GOLDEN",
            "visit_type": "inpatient",
            "admission_date": "2026-03-01",
            "discharge_date": "2026-03-03",
        }
        stay.pop("service_date")
        for line in stay["lines"]:
            line["date"] = "2026-03-02"
        request = VisitRequest.model_validate(stay)
        visit = map_bill(request, tables["H3"], catalog)
        inpatient, _ = await service.settle(
            SettleCommand("H3", "ZY-GOLDEN", request.member_id, visit, fingerprint(stay))
        )
        assert inpatient.settlement_id is not None
        await service.reverse(inpatient.settlement_id, "H3")
        # A stay that stays settled, so that the stays hash shows its form.
        later = {**stay, "visit_id": "ZY-GOLDEN-2"}
        later_request = VisitRequest.model_validate(later)
        await service.settle(
            SettleCommand(
                "H3",
                "ZY-GOLDEN-2",
                later_request.member_id,
                map_bill(later_request, tables["H3"], catalog),
                fingerprint(later),
            )
        )
        assert len(settled) >= 2
        assert date.fromisoformat(stay["admission_date"]).year == 2026
        # Every visit was flagged (each item over its limit, stays also as beds only); the
        # standing one the funds paid most for is recovered in part.
        flagged = max(
            (
                review
                for review in await service.reviews(date(2026, 3, 1), ReviewStatus.OPEN)
                if review.settlement_status is SettlementStatus.SETTLED
            ),
            key=lambda review: review.funds_paid,
        )
        await service.decide_review(
            flagged.settlement_id, ReviewDecision.RECOVER, 100, "agency-1", "bed empty"
        )
        # A reconciliation of the day, by amount and by group, kept for the agency.
        first = settled[0]
        assert first.settlement_id is not None
        await reconcile_day(
            client,
            first.client_id,
            date(2026, 3, 1),
            HospitalDay(
                totals=DayFigures(1, 0, funds_of(first.amounts)),
                settlement_amounts={first.settlement_id: funds_of(first.amounts)},
                groups={
                    GroupKey(first.visit_type, first.policy.scheme): DayFigures(
                        1, 0, funds_of(first.amounts)
                    )
                },
            ),
            at_ms=START_MS + 86_000_000,
            provisional=False,
        )
    finally:
        await client.aclose()


async def test_the_stored_layout_is_the_golden_one(redis_url: str, fixed_ids: None) -> None:
    await _write_history(redis_url)
    current = {"names": _names(), "redis": _dump(redis_url)}
    text = json.dumps(current, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    if os.environ.get("ONESTOP_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert current["names"] == golden["names"], (
        "a key or field name changed: see this module's docstring"
    )
    assert current["redis"] == golden["redis"], (
        "what a settlement stores changed: see this module's docstring"
    )
