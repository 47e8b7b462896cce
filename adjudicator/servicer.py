"""The gRPC face of the adjudicator: messages in, service calls, messages out.

Refusals become status codes here and only here (:func:`_answer`): a refusal answers the
status of its code (:data:`onestop.errors.STATUS`) with the code and problems in the trailing
metadata; anything else is a failure of the adjudicator itself, logged with its traceback and
answered ``INTERNAL`` (the gateway answers 500, never a "retry" it cannot promise).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from typing import TypeVar

import grpc

from adjudicator import journal, reconciliation
from adjudicator.loading import LoadingService
from adjudicator.members import LoadReport, MemberLoader, lines_of
from adjudicator.observability import REFUSAL_CODE
from adjudicator.service import LIST_PAGE_SIZE, SettleCommand, SettlementService
from onestop import wire as convert
from onestop.domain.clients import Client, providers
from onestop.domain.documents import utf8_text, validate_document
from onestop.domain.errors import DomainError, InvalidDocument
from onestop.domain.reconciliation import Recoveries
from onestop.domain.settlement import PolicyRef, Settlement
from onestop.errors import STATUS, InternalError
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc

log = logging.getLogger("onestop.adjudicator")

CHUNK_BYTES = 256 * 1024
JOURNAL_BATCH = 1000
MAX_UPLOAD_BYTES = 512 * 1024 * 1024

T = TypeVar("T")
Context = grpc.aio.ServicerContext[object, object]


async def _answer(context: Context, call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call``; turn a refusal into the status, code and problems of the answer."""
    try:
        return await call()
    except DomainError as error:
        refusal = error
    except Exception:
        # Not a refusal: a fault of this service. The traceback stays here, in the log; the
        # caller learns only that it failed (and that nothing was committed).
        log.exception("internal error")
        refusal = InternalError("the adjudicator failed; the failure is in its log")
    REFUSAL_CODE.set(refusal.code.value)
    context.set_trailing_metadata(convert.refusal_trailer(refusal))
    await context.abort(STATUS[refusal.code].grpc, refusal.message)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def _command(request: pb.SettleRequest) -> SettleCommand:
    return SettleCommand(
        client_id=request.client_id,
        visit_id=request.visit_id,
        member_id=request.member_id,
        visit=convert.visit_of(request),
        fingerprint=request.fingerprint,
        resettle_of=request.resettle_of or None,
    )


def _chunks(text: str) -> Iterator[pb.TextChunk]:
    data = text.encode()
    for start in range(0, len(data), CHUNK_BYTES):
        yield pb.TextChunk(data=data[start : start + CHUNK_BYTES])


async def _text_of(chunks: AsyncIterable[pb.TextChunk]) -> str:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk.data)
        if size > MAX_UPLOAD_BYTES:
            raise InvalidDocument(f"an upload may not exceed {MAX_UPLOAD_BYTES} bytes")
        parts.append(chunk.data)
    return utf8_text(b"".join(parts))


async def _parse_day(text: str) -> date:
    return convert.day_of(text, "date")


async def _next(entries: AsyncIterator[T]) -> T | None:
    return await anext(entries, None)


class AdjudicatorServicer(pb_grpc.AdjudicatorServicer):
    """Implements ``onestop.settlement.v1.Adjudicator`` (see the proto for each call)."""

    def __init__(
        self, service: SettlementService, loading: LoadingService, members: MemberLoader
    ) -> None:
        self.service = service
        self.loading = loading
        self.members = members

    async def _settlement(
        self, context: Context, call: Callable[[], Awaitable[Settlement]]
    ) -> pb.Settlement:
        return convert.settlement_message(await _answer(context, call))

    async def Preview(self, request: pb.SettleRequest, context: Context) -> pb.Settlement:  # noqa: N802, D102
        return await self._settlement(context, lambda: self.service.preview(_command(request)))

    async def Settle(self, request: pb.SettleRequest, context: Context) -> pb.Settlement:  # noqa: N802, D102
        _, data = await _answer(context, lambda: self.service.settle(_command(request)))
        return convert.settlement_from_bytes(data)

    async def Reverse(self, request: pb.ReverseRequest, context: Context) -> pb.Settlement:  # noqa: N802, D102
        return await self._settlement(
            context, lambda: self.service.reverse(request.settlement_id, request.client_id)
        )

    async def GetSettlement(  # noqa: N802, D102
        self, request: pb.GetSettlementRequest, context: Context
    ) -> pb.Settlement:
        return await self._settlement(
            context, lambda: self.service.get(request.settlement_id, request.client_id)
        )

    async def FindSettlement(  # noqa: N802, D102
        self, request: pb.FindSettlementRequest, context: Context
    ) -> pb.Settlement:
        return await self._settlement(
            context,
            lambda: self.service.find(
                request.client_id, request.visit_id, request.member_id, request.fingerprint
            ),
        )

    async def ListSettlements(  # noqa: N802, D102
        self, request: pb.ListSettlementsRequest, context: Context
    ) -> pb.SettlementList:
        async def listed() -> pb.SettlementList:
            if request.visit_id:
                items = await self.service.visit_settlements(request.client_id, request.visit_id)
                cursor = None
            else:
                items, cursor = await self.service.day_settlements(
                    request.client_id,
                    convert.day_of(request.date, "date"),
                    request.cursor or None,
                    request.limit or LIST_PAGE_SIZE,
                )
            return pb.SettlementList(
                items=[convert.settlement_message(item) for item in items],
                next_cursor=cursor or "",
            )

        return await _answer(context, listed)

    async def Eligibility(  # noqa: N802, D102
        self, request: pb.EligibilityRequest, context: Context
    ) -> pb.EligibilityAnswer:
        answer = await _answer(
            context,
            lambda: self.service.eligibility(
                request.member_id, convert.day_of(request.date, "date"), request.client_id
            ),
        )
        return convert.eligibility_message(answer)

    async def LookupMember(  # noqa: N802, D102
        self, request: pb.LookupMemberRequest, context: Context
    ) -> pb.EligibilityAnswer:
        answer = await _answer(
            context,
            lambda: self.service.lookup(
                request.id_number, convert.day_of(request.date, "date"), request.client_id
            ),
        )
        return convert.eligibility_message(answer)

    async def ListLookups(  # noqa: N802, D102
        self, request: pb.ListLookupsRequest, context: Context
    ) -> pb.LookupAudit:
        entries = await _answer(
            context,
            lambda: self.service.lookups(
                convert.day_of(request.date, "date"),
                [request.client_id] if request.client_id else [],
            ),
        )
        return pb.LookupAudit(entries=[convert.lookup_entry_message(entry) for entry in entries])

    async def PutPolicy(  # noqa: N802, D102
        self, request: pb.PutPolicyRequest, context: Context
    ) -> pb.PutPolicyReply:
        policy, version = await _answer(
            context, lambda: self.loading.put_policy(request.document_json)
        )
        return pb.PutPolicyReply(
            policy=convert.policy_message(
                PolicyRef(policy.region, policy.scheme, policy.year, version, policy.in_force_from)
            )
        )

    async def PutCatalog(  # noqa: N802, D102
        self, request_iterator: AsyncIterator[pb.TextChunk], context: Context
    ) -> pb.PutCatalogReply:
        async def put() -> tuple[int, str]:
            items, version = await self.loading.put_catalog(await _text_of(request_iterator))
            return len(items), version

        loaded, version = await _answer(context, put)
        return pb.PutCatalogReply(loaded=loaded, version=version)

    async def GetCatalog(  # noqa: N802, D102
        self, request: pb.GetCatalogRequest, context: Context
    ) -> AsyncIterator[pb.TextChunk]:
        reference = self.service.reference
        await _answer(context, reference.refresh)
        for chunk in _chunks(reference.catalog_text()):
            yield chunk

    async def PutClient(self, request: pb.Client, context: Context) -> pb.Client:  # noqa: N802, D102
        async def put() -> Client:
            client = validate_document(
                Client,
                {
                    "client_id": request.client_id,
                    "kind": request.kind,
                    "name": request.name,
                    "level": request.level or None,
                    "region": request.region or None,
                    "public_key": request.public_key_pem,
                    "national_code": request.national_code or None,
                    "national_codes_allowed": request.national_codes_allowed,
                },
                what="client",
            )
            return await self.loading.put_client(client)

        return convert.client_message(await _answer(context, put))

    async def ListClients(  # noqa: N802, D102
        self, request: pb.ListClientsRequest, context: Context
    ) -> pb.ClientList:
        reference = self.service.reference
        await _answer(context, reference.refresh)
        return pb.ClientList(
            clients=[convert.client_message(client) for client in reference.clients.values()],
            version=reference.versions.get("clients", ""),
        )

    async def PutMapping(  # noqa: N802, D102
        self, request: pb.PutMappingRequest, context: Context
    ) -> pb.PutMappingReply:
        async def put() -> pb.PutMappingReply:
            table, version, changes = await self.loading.put_mapping(
                request.client_id,
                utf8_text(request.csv),
                confirm=request.confirm,
                changed_by=request.changed_by,
            )
            return pb.PutMappingReply(
                loaded=len(table.rows()),
                version=version,
                changes=[convert.mapping_change_message(change) for change in changes],
            )

        return await _answer(context, put)

    async def GetMapping(  # noqa: N802, D102
        self, request: pb.GetMappingRequest, context: Context
    ) -> AsyncIterator[pb.TextChunk]:
        text = await _answer(context, lambda: self.loading.mapping_text(request.client_id))
        for chunk in _chunks(text):
            yield chunk

    async def GetMappingAudit(  # noqa: N802, D102
        self, request: pb.GetMappingAuditRequest, context: Context
    ) -> pb.MappingAudit:
        entries = await _answer(context, lambda: self.loading.audit(request.client_id))
        return pb.MappingAudit(entries=[convert.audit_entry_message(entry) for entry in entries])

    async def PutMembers(  # noqa: N802, D102
        self, request_iterator: AsyncIterator[pb.TextChunk], context: Context
    ) -> pb.PutMembersReply:
        async def data() -> AsyncIterator[bytes]:
            async for chunk in request_iterator:
                yield chunk.data

        report: LoadReport = await _answer(context, lambda: self.members.load(lines_of(data())))
        log.info(
            "members loaded", extra={"loaded": report.loaded, "rejected": len(report.rejected)}
        )
        return pb.PutMembersReply(
            loaded=report.loaded,
            rejected=[
                pb.RejectedLine(
                    line=rejection.line,
                    member_id=rejection.member_id or "",
                    code=rejection.code,
                    message=rejection.message,
                )
                for rejection in report.rejected
            ],
        )

    async def Reconcile(  # noqa: N802, D102
        self, request: pb.ReconcileRequest, context: Context
    ) -> pb.ReconcileReply:
        async def run() -> pb.ReconcileReply:
            day, hospital = convert.reconcile_request_of(request)
            at_ms = self.service.clock()
            recovered = await self.service.recoveries(day, request.client_id)
            answer = await reconciliation.reconcile_day(
                self.service.store.client,
                request.client_id,
                day,
                hospital,
                at_ms=at_ms,
                provisional=request.provisional,
                archive=self.service.store.archive,
                recoveries=Recoveries(
                    len(recovered), sum(review.recovered for review in recovered)
                ),
            )
            return convert.reconciliation_message(answer, at_ms)

        return await _answer(context, run)

    async def ListReconciliations(  # noqa: N802, D102
        self, request: pb.ListReconciliationsRequest, context: Context
    ) -> pb.ReconciliationLog:
        async def run() -> pb.ReconciliationLog:
            day = convert.day_of(request.date, "date")
            kept = await reconciliation.reconciliations(
                self.service.store.client, day, request.client_id
            )
            return pb.ReconciliationLog(
                items=[convert.reconciliation_summary_message(summary) for summary in kept]
            )

        return await _answer(context, run)

    async def GetDayTotals(  # noqa: N802, D102
        self, request: pb.DayTotalsRequest, context: Context
    ) -> pb.DayTotalsList:
        async def run() -> pb.DayTotalsList:
            day = convert.day_of(request.date, "date")
            if request.client_id:
                client_ids = [request.client_id]
            else:
                reference = self.service.reference
                await reference.refresh()
                client_ids = sorted(
                    client.client_id for client in providers(reference.clients.values())
                )
            days = await reconciliation.client_days(
                self.service.store.client, client_ids, day, self.service.store.archive
            )
            return pb.DayTotalsList(items=[convert.client_day_message(item) for item in days])

        return await _answer(context, run)

    async def ReadJournal(  # noqa: N802, D102
        self, request: pb.ReadJournalRequest, context: Context
    ) -> AsyncIterator[pb.JournalBatch]:
        day = await _answer(context, lambda: _parse_day(request.date))
        entries = journal.day_entries(
            self.service.store.client, day, request.client_id, self.service.store.archive
        )
        batch = pb.JournalBatch()
        while True:
            entry = await _answer(context, lambda: _next(entries))
            if entry is not None:
                batch.entries.append(convert.journal_entry_message(entry))
            if entry is None or len(batch.entries) >= JOURNAL_BATCH:
                if batch.entries:
                    yield batch
                    batch = pb.JournalBatch()
                if entry is None:
                    return

    async def GetVersions(  # noqa: N802, D102
        self, request: pb.GetVersionsRequest, context: Context
    ) -> pb.Versions:
        return convert.versions_message(await _answer(context, self.service.store.versions))

    async def ListReviews(  # noqa: N802, D102
        self, request: pb.ListReviewsRequest, context: Context
    ) -> pb.ReviewList:
        async def run() -> pb.ReviewList:
            day = convert.day_of(request.date, "date")
            status = convert.review_status_of(request.status, "status")
            found = await self.service.reviews(day, status, request.client_id)
            return pb.ReviewList(items=[convert.review_message(review) for review in found])

        return await _answer(context, run)

    async def ListRecoveries(  # noqa: N802, D102
        self, request: pb.ListRecoveriesRequest, context: Context
    ) -> pb.ReviewList:
        async def run() -> pb.ReviewList:
            day = convert.day_of(request.date, "date")
            found = await self.service.recoveries(day, request.client_id)
            return pb.ReviewList(items=[convert.review_message(review) for review in found])

        return await _answer(context, run)

    async def DecideReview(  # noqa: N802, D102
        self, request: pb.DecideReviewRequest, context: Context
    ) -> pb.Review:
        async def run() -> pb.Review:
            decision = convert.review_decision_of(request.decision, "decision")
            decided = await self.service.decide_review(
                request.settlement_id, decision, request.amount, request.reviewer, request.reason
            )
            return convert.review_message(decided)

        return await _answer(context, run)
