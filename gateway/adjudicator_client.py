"""The gateway's side of the gRPC contract: calls, deadlines, refusals rebuilt as typed errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from onestop import metrics, tracing, wire
from onestop.domain.bill import Visit
from onestop.domain.clients import Client
from onestop.domain.errors import ErrorCode
from onestop.domain.reconciliation import (
    ClientDay,
    HospitalDay,
    JournalEntry,
    Reconciliation,
    ReconciliationSummary,
)
from onestop.domain.reviews import Review
from onestop.domain.settlement import PolicyRef
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.tls import TlsFiles, aio_channel

T = TypeVar("T")

_TRANSPORT_FAILURES = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL_ERROR})
"""Refusals that are failures of the call, counted (the adjudicator's own refusals are not)."""

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 256 * 1024


class AdjudicatorClient:
    """A channel to the adjudicator and typed calls over it."""

    def __init__(
        self,
        target: str,
        deadline_seconds: float,
        tls: TlsFiles | None = None,
        server_name: str | None = None,
    ) -> None:
        self.target = target
        self.deadline = deadline_seconds
        options: list[tuple[str, object]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.enable_retries", 0),
        ]
        if "," in target or target.startswith("dns:"):
            # Several adjudicator processes (a list of addresses, or a DNS name with one
            # address per process, as a Kubernetes headless Service has): round-robin over
            # those whose health service answers SERVING; a dead or stopping one is skipped.
            if "," in target:
                target = "ipv4:" + target
            options.append(
                (
                    "grpc.service_config",
                    json.dumps(
                        {
                            "loadBalancingConfig": [{"round_robin": {}}],
                            "healthCheckConfig": {"serviceName": ""},
                        }
                    ),
                )
            )
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        interceptors = [TraceContext()] if tracing.enabled() else []
        self.channel = aio_channel(target, tls, options, interceptors)
        self.stub = pb_grpc.AdjudicatorStub(self.channel)
        self._health: Any = health_pb2_grpc.HealthStub(self.channel)

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            refusal = wire.refusal_from_rpc_error(error)
            if refusal.code in _TRANSPORT_FAILURES:
                metrics.ADJUDICATOR_CALL_ERRORS.labels(error.code().name).inc()
            raise refusal from error

    async def serving(self) -> bool:
        """Whether the adjudicator reports itself able to settle."""
        try:
            answer = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def settle(
        self,
        visit: Visit,
        *,
        client_id: str,
        visit_id: str,
        member_id: str,
        fingerprint: bytes,
        resettle_of: str | None = None,
        preview: bool = False,
    ) -> pb.Settlement:
        """Settle (or preview) a mapped visit."""
        request = wire.settle_request_of(
            visit,
            client_id=client_id,
            visit_id=visit_id,
            member_id=member_id,
            fingerprint=fingerprint,
            resettle_of=resettle_of,
        )
        method = self.stub.Preview if preview else self.stub.Settle
        return await self._call(lambda: method(request, timeout=self.deadline))

    async def find(
        self, *, client_id: str, visit_id: str, member_id: str, fingerprint: bytes
    ) -> pb.Settlement:
        """The settlement of an identical earlier request, as a replay."""
        request = pb.FindSettlementRequest(
            client_id=client_id, visit_id=visit_id, member_id=member_id, fingerprint=fingerprint
        )
        return await self._call(lambda: self.stub.FindSettlement(request, timeout=self.deadline))

    async def get(self, settlement_id: str, client_id: str) -> pb.Settlement:
        """A settlement (``client_id`` empty: any client's)."""
        request = pb.GetSettlementRequest(client_id=client_id, settlement_id=settlement_id)
        return await self._call(lambda: self.stub.GetSettlement(request, timeout=self.deadline))

    async def visit_settlements(self, client_id: str, visit_id: str) -> pb.SettlementList:
        """Every settlement of the client's visit, newest first."""
        request = pb.ListSettlementsRequest(client_id=client_id, visit_id=visit_id)
        return await self._call(lambda: self.stub.ListSettlements(request, timeout=self.deadline))

    async def day_settlements(
        self, client_id: str, day: date, cursor: str | None, limit: int
    ) -> pb.SettlementList:
        """A page (at most ``limit``) of the client's settlements and reversals of ``day``."""
        request = pb.ListSettlementsRequest(
            client_id=client_id, date=day.isoformat(), cursor=cursor or "", limit=limit
        )
        return await self._call(lambda: self.stub.ListSettlements(request, timeout=self.deadline))

    async def reverse(self, settlement_id: str, client_id: str) -> pb.Settlement:
        """Reverse a settlement (``client_id`` empty: any client's)."""
        request = pb.ReverseRequest(client_id=client_id, settlement_id=settlement_id)
        return await self._call(lambda: self.stub.Reverse(request, timeout=self.deadline))

    async def eligibility(self, member_id: str, day: date, client_id: str) -> pb.EligibilityAnswer:
        """The member's entitlement on ``day``, as ``client_id`` asks (the audit trail)."""
        request = pb.EligibilityRequest(
            member_id=member_id, date=day.isoformat(), client_id=client_id
        )
        return await self._call(lambda: self.stub.Eligibility(request, timeout=self.deadline))

    async def lookup(self, id_number: str, day: date, client_id: str) -> pb.EligibilityAnswer:
        """The entitlement of the member with this id number, as ``client_id`` asks."""
        request = pb.LookupMemberRequest(
            id_number=id_number, date=day.isoformat(), client_id=client_id
        )
        return await self._call(lambda: self.stub.LookupMember(request, timeout=self.deadline))

    async def lookups(self, day: date, client_id: str) -> pb.LookupAudit:
        """The lookup audit trail of ``day`` (of one client, or of all when empty)."""
        request = pb.ListLookupsRequest(date=day.isoformat(), client_id=client_id)
        return await self._call(lambda: self.stub.ListLookups(request, timeout=self.deadline))

    async def put_policy(self, document_json: bytes) -> PolicyRef:
        """Store a policy document; which policy and version it became."""
        request = pb.PutPolicyRequest(document_json=document_json)
        reply = await self._call(lambda: self.stub.PutPolicy(request, timeout=self.deadline))
        return wire.policy_of(reply.policy)

    async def put_catalog(self, chunks: AsyncIterator[bytes]) -> pb.PutCatalogReply:
        """Replace the catalog with a CSV streamed in chunks."""
        return await self._call(
            lambda: self.stub.PutCatalog(_messages(chunks), timeout=self.deadline * 30)
        )

    async def put_members(self, chunks: AsyncIterator[bytes]) -> pb.PutMembersReply:
        """Load a members file streamed in chunks (no deadline: a million lines take time)."""
        return await self._call(lambda: self.stub.PutMembers(_messages(chunks)))

    async def put_client(self, client: Client) -> pb.Client:
        """Register or update a client."""
        message = wire.client_message(client)
        return await self._call(lambda: self.stub.PutClient(message, timeout=self.deadline))

    async def list_clients(self) -> tuple[list[Client], str]:
        """Every registered client, and the registry's version."""
        listed = await self._call(
            lambda: self.stub.ListClients(pb.ListClientsRequest(), timeout=self.deadline)
        )
        return [wire.client_of(entry) for entry in listed.clients], listed.version

    async def put_mapping(
        self, client_id: str, csv: bytes, *, confirm: bool, changed_by: str
    ) -> pb.PutMappingReply:
        """Replace a client's mapping."""
        request = pb.PutMappingRequest(
            client_id=client_id, csv=csv, confirm=confirm, changed_by=changed_by
        )
        return await self._call(lambda: self.stub.PutMapping(request, timeout=self.deadline * 10))

    async def mapping_text(self, client_id: str) -> str:
        """A client's mapping as CSV."""
        request = pb.GetMappingRequest(client_id=client_id)

        async def read() -> str:
            parts = [
                chunk.data async for chunk in self.stub.GetMapping(request, timeout=self.deadline)
            ]
            return b"".join(parts).decode()

        return await self._call(read)

    async def catalog_text(self) -> str:
        """The catalog as CSV."""

        async def read() -> str:
            parts = [
                chunk.data
                async for chunk in self.stub.GetCatalog(
                    pb.GetCatalogRequest(), timeout=self.deadline * 10
                )
            ]
            return b"".join(parts).decode()

        return await self._call(read)

    async def reconcile(
        self, client_id: str, day: date, hospital: HospitalDay, *, provisional: bool
    ) -> tuple[Reconciliation, int]:
        """对账: the client's day against onestop's (kept for the agency); when, in epoch ms."""
        request = wire.reconcile_request_message(client_id, day, hospital, provisional=provisional)
        reply = await self._call(lambda: self.stub.Reconcile(request, timeout=self.deadline * 6))
        return wire.reconciliation_of(reply)

    async def reconciliations(self, day: date, client_id: str = "") -> list[ReconciliationSummary]:
        """The reconciliations answered for a day (of one client, or all), in order."""
        request = pb.ListReconciliationsRequest(date=day.isoformat(), client_id=client_id)
        reply = await self._call(
            lambda: self.stub.ListReconciliations(request, timeout=self.deadline * 2)
        )
        return [wire.reconciliation_summary_of(item) for item in reply.items]

    async def day_totals(self, day: date, client_id: str = "") -> list[ClientDay]:
        """What each hospital and pharmacy (or one) settled on a day, by visit type and scheme."""
        request = pb.DayTotalsRequest(date=day.isoformat(), client_id=client_id)
        reply = await self._call(lambda: self.stub.GetDayTotals(request, timeout=self.deadline * 6))
        return wire.client_days_of(reply)

    async def read_journal(self, day: date, client_id: str = "") -> AsyncIterator[JournalEntry]:
        """Every journal entry of a day, in time order (streamed)."""
        request = pb.ReadJournalRequest(date=day.isoformat(), client_id=client_id)
        stream = self.stub.ReadJournal(request)
        try:
            async for batch in stream:
                for message in batch.entries:
                    yield wire.journal_entry_of(message)
        except grpc.aio.AioRpcError as error:
            raise wire.refusal_from_rpc_error(error) from error

    async def reviews(self, day: date, status: str = "", client_id: str = "") -> list[Review]:
        """The settlements flagged on ``day`` (of one status and client, or all)."""
        request = pb.ListReviewsRequest(date=day.isoformat(), status=status, client_id=client_id)
        reply = await self._call(lambda: self.stub.ListReviews(request, timeout=self.deadline * 2))
        return [wire.review_of(item) for item in reply.items]

    async def recoveries(self, day: date, client_id: str = "") -> list[Review]:
        """The recoveries decided on ``day`` (of one client, or all), in the order decided."""
        request = pb.ListRecoveriesRequest(date=day.isoformat(), client_id=client_id)
        reply = await self._call(
            lambda: self.stub.ListRecoveries(request, timeout=self.deadline * 2)
        )
        return [wire.review_of(item) for item in reply.items]

    async def decide_review(
        self, settlement_id: str, decision: str, amount: int, reviewer: str, reason: str
    ) -> Review:
        """Record a decision on a flagged settlement (once)."""
        request = pb.DecideReviewRequest(
            settlement_id=settlement_id,
            decision=decision,
            amount=amount,
            reviewer=reviewer,
            reason=reason,
        )
        reply = await self._call(lambda: self.stub.DecideReview(request, timeout=self.deadline))
        return wire.review_of(reply)

    async def mapping_audit(self, client_id: str) -> pb.MappingAudit:
        """Every recorded change to a client's mapping, oldest first."""
        request = pb.GetMappingAuditRequest(client_id=client_id)
        return await self._call(lambda: self.stub.GetMappingAudit(request, timeout=self.deadline))


class TraceContext(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
):
    """Every call to the adjudicator carries the request's trace context (W3C ``traceparent``).

    Installed only when this process sends traces (:mod:`onestop.tracing`).
    """

    @staticmethod
    def _with_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        for key, value in tracing.outgoing_metadata():
            metadata.add(key, value)
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(  # noqa: D102
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._with_context(client_call_details), request)

    async def intercept_unary_stream(  # noqa: D102
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._with_context(client_call_details), request)

    async def intercept_stream_unary(  # noqa: D102
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._with_context(client_call_details), request_iterator)


async def _messages(chunks: AsyncIterator[bytes]) -> AsyncIterator[pb.TextChunk]:
    async for chunk in chunks:
        for start in range(0, len(chunk), CHUNK_BYTES):
            yield pb.TextChunk(data=chunk[start : start + CHUNK_BYTES])
