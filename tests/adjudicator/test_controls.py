"""Controls across visits, end to end: the seeds' stories on a real adjudicator and Redis.

Each story is refused, flagged or deducted exactly as the region's policy says, and nothing
else changes: a refusal leaves Redis as it was, a flag settles as if unchecked and opens a
review, a deduction moves only the lines at fault to self-pay. On one Redis and on the cluster.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest

from adjudicator.store import DecisionOutcome
from onestop.clock import SHANGHAI
from onestop.domain import VisitRequest, map_bill
from onestop.domain.catalog import CatalogItem
from onestop.domain.mapping import MappingRow, MappingTable
from onestop.domain.policy import policy_to_document
from onestop.domain.reviews import ReviewDecision, decide
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.storage import layout
from onestop.tooling.demo.regions import demo_catalog, demo_policy
from onestop.wire import settle_request_of
from tests.support.adjudicator import (
    Adjudicator,
    error_code,
    error_problems,
    fingerprint,
    load_reference,
    open_adjudicator,
)
from tests.support.redis import ON_BOTH, dump_state, sync_client
from tests.support.scenario import member_record

CITY_HOSPITAL = "ZZH3"
COMMUNITY = "ZZC1"
TODAY = date(2026, 11, 20)

CONTROLS: dict[str, Any] = {
    "duplicate_bill": {"action": "refuse"},
    "split_admission": {"action": "flag", "within_days": 15},
    "quantity": {"action": "deduct"},
    "patient": {"action": "refuse"},
    "paper_bed": {"action": "flag", "bed_items": ["FA02"], "min_days": 5},
    "concurrent_visit": {"action": "flag"},
}


def controlled_catalog() -> dict[str, CatalogItem]:
    """The demo catalog, dialysis limited to 24 a year, and an obstetric item for women."""
    catalog = dict(demo_catalog())
    catalog["FA04"] = catalog["FA04"].model_copy(update={"max_year_qty": Decimal(24)})
    catalog["FB01"] = CatalogItem.model_validate(
        {
            "code": "FB01",
            "name": "产前检查",
            "kind": "service",
            "category": "A",
            "price_cap": 20000,
            "unit": "time",
            "sex": "F",
            "min_age": 14,
            "max_age": 60,
        }
    )
    return catalog


def mapping_of(prefix: str, catalog: dict[str, CatalogItem]) -> MappingTable:
    """Each catalog item under the client's own code, ``prefix`` + catalog code."""
    return MappingTable.from_rows(
        MappingRow(
            his_code=f"{prefix}{item.code}",
            his_name=item.name,
            catalog_code=item.code,
            factor=1,
            valid_from=date(2026, 1, 1),
        )
        for item in catalog.values()
    )


PREFIXES = {CITY_HOSPITAL: "RM-", COMMUNITY: "JS-"}


@dataclass
class World:
    adjudicator: Adjudicator
    tables: dict[str, MappingTable]
    catalog: dict[str, CatalogItem]
    counter: int = 0

    @property
    def stub(self) -> pb_grpc.AdjudicatorAsyncStub:
        return self.adjudicator.stub

    def request(self, client_id: str, body: dict[str, Any]) -> pb.SettleRequest:
        request = VisitRequest.model_validate(body)
        visit = map_bill(request, self.tables[client_id], self.catalog)
        return settle_request_of(
            visit,
            client_id=client_id,
            visit_id=request.visit_id,
            member_id=request.member_id,
            fingerprint=fingerprint(body),
        )

    async def settle(self, client_id: str, body: dict[str, Any]) -> pb.Settlement:
        self.counter += 1
        self.adjudicator.running.service.clock = functools.partial(noon_ms, TODAY, self.counter)
        return await self.stub.Settle(self.request(client_id, body))

    async def refused(self, client_id: str, body: dict[str, Any]) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await self.settle(client_id, body)
        return refused.value

    async def reviews(self, status: str = "") -> list[pb.Review]:
        listed = await self.stub.ListReviews(
            pb.ListReviewsRequest(date=TODAY.isoformat(), status=status)
        )
        return list(listed.items)


def noon_ms(day: date, second: int = 0) -> int:
    moment = datetime(day.year, day.month, day.day, 12, 0, tzinfo=SHANGHAI)
    return int(moment.timestamp() * 1000) + second * 1000


MEMBERS = [
    member_record("CT00001"),
    member_record("CT00002"),
    member_record(
        "CT00003",
        registered_diseases=[{"code": "MT002", "from": "2026-01-01", "to": None}],
    ),
    member_record("CT00004", sex="M"),
    member_record("CT00005"),
    member_record("CT00006"),
]


@pytest.fixture
async def world(redis_url: str) -> AsyncIterator[World]:
    catalog = controlled_catalog()
    policy = policy_to_document(demo_policy("410100"))
    policy["controls"] = CONTROLS
    clients = [
        {
            "client_id": CITY_HOSPITAL,
            "kind": "hospital",
            "name": "省人民医院",
            "level": "level3",
            "region": "410100",
        },
        {
            "client_id": COMMUNITY,
            "kind": "hospital",
            "name": "金水社区",
            "level": "community",
            "region": "410100",
        },
    ]
    async with open_adjudicator(redis_url) as adjudicator:
        tables = await load_reference(
            adjudicator.stub,
            policies=[policy],
            catalog=[item.model_dump(mode="json") for item in catalog.values()],
            clients=clients,
            mappings={
                client: [row.model_dump(mode="json") for row in mapping_of(prefix, catalog).rows()]
                for client, prefix in PREFIXES.items()
            },
            members=MEMBERS,
        )
        yield World(adjudicator, tables, catalog)


def line(
    number: int, client: str, code: str, day: date, price: int, qty: int = 1
) -> dict[str, Any]:
    return {
        "line_no": number,
        "his_code": f"{PREFIXES[client]}{code}",
        "quantity": str(qty),
        "unit_price": price,
        "amount": price * qty,
        "date": day.isoformat(),
    }


def stay(
    visit_id: str,
    member_id: str,
    client: str,
    admission: date,
    days: int,
    diagnoses: list[str],
    *,
    surgery: bool = True,
) -> dict[str, Any]:
    lines = [
        line(day + 1, client, "FA02", admission + timedelta(days=day), 4000) for day in range(days)
    ]
    if surgery:
        lines.append(line(days + 1, client, "FA03", admission, 150_000))
    return {
        "visit_id": visit_id,
        "member_id": member_id,
        "visit_type": "inpatient",
        "admission_date": admission.isoformat(),
        "discharge_date": (admission + timedelta(days=days)).isoformat(),
        "diagnoses": diagnoses,
        "lines": lines,
    }


def outpatient(
    visit_id: str,
    member_id: str,
    client: str,
    day: date,
    lines: list[tuple[str, int, int]],
    visit_type: str = "outpatient",
    diagnoses: tuple[str, ...] = ("J06.9",),
) -> dict[str, Any]:
    return {
        "visit_id": visit_id,
        "member_id": member_id,
        "visit_type": visit_type,
        "service_date": day.isoformat(),
        "diagnoses": list(diagnoses),
        "lines": [
            line(number, client, code, day, price, qty)
            for number, (code, price, qty) in enumerate(lines, start=1)
        ],
    }


async def year_to_date(world: World, member_id: str) -> pb.YearToDate:
    answer = await world.stub.Eligibility(
        pb.EligibilityRequest(member_id=member_id, date="2026-06-01", client_id=CITY_HOSPITAL)
    )
    return answer.year_to_date


@ON_BOTH
async def test_a_stay_split_at_midnight_is_settled_and_flagged_for_review(
    world: World, redis_url: str
) -> None:
    first = await world.settle(
        CITY_HOSPITAL, stay("SPLIT-1", "CT00001", CITY_HOSPITAL, date(2026, 3, 1), 4, ["K35.8"])
    )
    assert not await world.reviews()
    # Discharged on the 5th, admitted again the same day (midnight) for the same appendicitis.
    second = await world.settle(
        CITY_HOSPITAL,
        stay("SPLIT-2", "CT00001", CITY_HOSPITAL, date(2026, 3, 5), 4, ["K35.9"], surgery=False),
    )
    assert second.status == "settled"  # settled as if unchecked: a flag refuses nothing
    [review] = await world.reviews()
    assert review.settlement_id == second.settlement_id
    assert review.status == "open"
    assert review.settlement_status == "settled"
    [finding] = review.findings
    assert (finding.control, finding.action) == ("SPLIT_ADMISSION", "flag")
    assert finding.related_settlement == first.settlement_id
    assert "K35" in finding.message
    assert review.funds_paid == second.amounts.basic_fund + second.amounts.supplementary + (
        second.amounts.assistance
    )
    # A readmission for something else, or long after, is not flagged.
    await world.settle(
        CITY_HOSPITAL,
        stay("OTHER", "CT00001", CITY_HOSPITAL, date(2026, 3, 9), 2, ["S52.5"], surgery=False),
    )
    await world.settle(
        CITY_HOSPITAL,
        stay("LATER", "CT00001", CITY_HOSPITAL, date(2026, 5, 1), 2, ["K35.8"], surgery=False),
    )
    assert [r.settlement_id for r in await world.reviews()] == [second.settlement_id]


@ON_BOTH
async def test_the_same_bill_from_a_second_hospital_is_refused_and_changes_nothing(
    world: World, redis_url: str
) -> None:
    items = [
        (code, 1000 + number, 1)
        for number, code in enumerate(
            [
                "XA01",
                "XA02",
                "XA03",
                "XB02",
                "XB06",
                "XB07",
                "FA01",
                "FA06",
                "FA08",
                "FA10",
                "CB02",
                "XC03",
                "FA07",
                "XA01",
                "XA02",
                "FA06",
                "FA08",
                "CB02",
                "FA01",
                "XB02",
            ]
        )
    ]
    day = date(2026, 4, 2)
    first = await world.settle(
        CITY_HOSPITAL, outpatient("CITY-77", "CT00002", CITY_HOSPITAL, day, items)
    )
    assert len(first.lines.line_no) == 20
    before = dump_state(redis_url)
    before_ytd = await year_to_date(world, "CT00002")
    refused = await world.refused(
        COMMUNITY, outpatient("COMM-12", "CT00002", COMMUNITY, day, list(reversed(items)))
    )
    assert error_code(refused) == "DUPLICATE_CLAIM"
    assert refused.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "same bill" in (refused.details() or "")
    assert CITY_HOSPITAL not in (refused.details() or ""), "another hospital is never named"
    assert dump_state(redis_url) == before
    assert await year_to_date(world, "CT00002") == before_ytd
    assert not await world.reviews()
    # Once the first hospital reverses its settlement, the bill may be settled by the other.
    await world.stub.Reverse(
        pb.ReverseRequest(client_id=CITY_HOSPITAL, settlement_id=first.settlement_id)
    )
    again = await world.settle(
        COMMUNITY, outpatient("COMM-12", "CT00002", COMMUNITY, day, list(reversed(items)))
    )
    assert again.status == "settled"


@ON_BOTH
async def test_a_month_of_daily_dialysis_over_its_yearly_limit_is_deducted(
    world: World, redis_url: str
) -> None:
    answers = []
    for number in range(30):
        day = date(2026, 6, 1) + timedelta(days=number)
        answers.append(
            await world.settle(
                CITY_HOSPITAL,
                outpatient(
                    f"HD-{number:02d}",
                    "CT00003",
                    CITY_HOSPITAL,
                    day,
                    [("FA04", 45000, 1)],
                    visit_type="outpatient_special",
                    diagnoses=("N18.5",),
                ),
            )
        )
    paid = [answer for answer in answers if answer.amounts.basic_fund > 0]
    deducted = [answer for answer in answers if answer.amounts.basic_fund == 0]
    assert len(paid) == 24
    assert len(deducted) == 6
    assert answers[:24] == paid, "the first 24 of the year are paid, the rest deducted"
    for answer in paid:
        assert answer.amounts.basic_fund == 36000  # 80 % of 450 yuan
    for answer in deducted:
        assert answer.amounts.full_self_pay == 45000
        assert list(answer.lines.reasons) == ["QUANTITY_LIMIT"]
    reviews = await world.reviews()
    assert [review.settlement_id for review in reviews] == [a.settlement_id for a in deducted]
    for review in reviews:
        [finding] = review.findings
        assert (finding.control, finding.action) == ("QUANTITY_LIMIT", "deduct")
        assert list(finding.line_nos) == [1]
        assert "24" in finding.message
    # Reversing a paid session frees its place in the year: the next one is paid.
    await world.stub.Reverse(
        pb.ReverseRequest(client_id=CITY_HOSPITAL, settlement_id=paid[0].settlement_id)
    )
    next_one = await world.settle(
        CITY_HOSPITAL,
        outpatient(
            "HD-31",
            "CT00003",
            CITY_HOSPITAL,
            date(2026, 7, 1),
            [("FA04", 45000, 1)],
            visit_type="outpatient_special",
            diagnoses=("N18.5",),
        ),
    )
    assert next_one.amounts.basic_fund == 36000


@ON_BOTH
async def test_a_male_patient_billed_an_obstetric_item_is_refused_per_line(
    world: World, redis_url: str
) -> None:
    before = dump_state(redis_url)
    refused = await world.refused(
        CITY_HOSPITAL,
        outpatient(
            "OB-1",
            "CT00004",
            CITY_HOSPITAL,
            date(2026, 5, 6),
            [("FA10", 1000, 1), ("FB01", 15000, 1)],
        ),
    )
    assert error_code(refused) == "SEX_RESTRICTED"
    assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION
    [problem] = error_problems(refused)
    assert (problem.code, problem.line_no) == ("SEX_RESTRICTED", 2)
    assert "FB01" in problem.message
    assert dump_state(redis_url) == before
    # The same bill for a woman of the right age settles.
    settled = await world.settle(
        CITY_HOSPITAL,
        outpatient(
            "OB-2",
            "CT00005",
            CITY_HOSPITAL,
            date(2026, 5, 6),
            [("FA10", 1000, 1), ("FB01", 15000, 1)],
        ),
    )
    assert settled.status == "settled"


@ON_BOTH
async def test_ten_days_of_bed_fee_only_are_flagged_as_a_paper_bed(
    world: World, redis_url: str
) -> None:
    settled = await world.settle(
        CITY_HOSPITAL,
        stay("BED-10", "CT00006", CITY_HOSPITAL, date(2026, 8, 1), 10, ["I10"], surgery=False),
    )
    assert settled.status == "settled"
    assert settled.amounts.total == 40000
    [review] = await world.reviews("open")
    [finding] = review.findings
    assert (finding.control, finding.action) == ("PAPER_BED", "flag")
    assert list(finding.line_nos) == list(range(1, 11))
    assert "10 day(s)" in finding.message
    history = sync_client(redis_url).hgetall(layout.history_key("CT00006"))
    assert list(history) == [settled.settlement_id.encode()]


@ON_BOTH
async def test_a_recovered_settlement_is_not_reversed_and_a_reversed_one_not_recovered(
    world: World, redis_url: str
) -> None:
    """A recovery and a reversal both give funds back: one settlement never gets both."""
    first = await world.settle(
        CITY_HOSPITAL,
        # surgery on the first day, then five days of a bed and nothing else
        stay("BED-A", "CT00006", CITY_HOSPITAL, date(2026, 8, 1), 6, ["I10"]),
    )
    second = await world.settle(
        CITY_HOSPITAL,
        stay("BED-B", "CT00001", CITY_HOSPITAL, date(2026, 8, 1), 6, ["I10"]),
    )
    assert {review.settlement_id for review in await world.reviews("open")} == {
        first.settlement_id,
        second.settlement_id,
    }
    service = world.adjudicator.running.service
    # Read for a decision while the settlement stands, then reversed before it is written.
    review = await service.store.review(second.settlement_id)
    assert review is not None
    await world.stub.Reverse(
        pb.ReverseRequest(client_id=CITY_HOSPITAL, settlement_id=second.settlement_id)
    )
    decided = decide(review, ReviewDecision.RECOVER, 100, "AG", "why", 1, settlement_reversed=False)
    assert await service.store.record_decision(decided) is DecisionOutcome.REVERSED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.stub.DecideReview(
            pb.DecideReviewRequest(
                settlement_id=second.settlement_id,
                decision="recover",
                amount=100,
                reviewer="AG",
                reason="why",
            )
        )
    assert error_code(refused.value) == "INVALID"
    # Recovered first: the reversal is refused, and changes nothing.
    await world.stub.DecideReview(
        pb.DecideReviewRequest(
            settlement_id=first.settlement_id,
            decision="recover",
            amount=100,
            reviewer="AG",
            reason="no care on six days",
        )
    )
    before = dump_state(redis_url)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.stub.Reverse(
            pb.ReverseRequest(client_id=CITY_HOSPITAL, settlement_id=first.settlement_id)
        )
    assert error_code(refused.value) == "SETTLEMENT_RECOVERED"
    assert dump_state(redis_url) == before
    # A decision names who decides and why.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.stub.DecideReview(
            pb.DecideReviewRequest(
                settlement_id=second.settlement_id, decision="accept", reviewer="", reason="x"
            )
        )
    assert error_code(refused.value) == "INVALID"
