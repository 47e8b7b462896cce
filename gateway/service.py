"""What the gateway does for each call, apart from HTTP: map, check, settle, sign."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path

import orjson

from gateway import convert
from gateway.adjudicator_client import AdjudicatorClient
from gateway.auth import Authenticator
from gateway.console.sessions import ConsoleSessions, ConsoleSettings
from gateway.limits import DayTotalsCache, UnknownMemberGuard, UploadSlots
from gateway.receipts import ReceiptSigner
from gateway.reference import GatewayReference
from gateway.refusals import RefusalCounts
from gateway.schemas import Signature
from onestop import metrics
from onestop.clock import now_ms
from onestop.domain.bill import (
    MAX_BILL_LINES,
    VisitRequest,
    check_client_may_settle,
    request_identity,
)
from onestop.domain.clients import Client
from onestop.domain.errors import (
    BillRejected,
    DomainError,
    MalformedDocument,
    NoPolicy,
    NotFound,
    UnknownMember,
    VisitAlreadySettled,
)
from onestop.domain.mapping import CodeLookup, map_bill
from onestop.domain.types import ClientKind
from onestop.errors import NoStatementFont, TooLarge, Unavailable
from onestop.national.codes import Profile
from onestop.redis_client import RedisClient, redis_failures_unavailable
from onestop.reference_versions import VersionsCache
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.signing import canonical_json
from onestop.statement.model import Statement, build_statement
from onestop.statement.pdf import FONT_PACKAGE, find_cjk_font

log = logging.getLogger("onestop.gateway")


def require_utf8_json(body: bytes) -> None:
    """Refuse a JSON body the contract does not allow (RFC 8259: UTF-8).

    Raises:
        MalformedDocument: the body is not UTF-8 (FastAPI's parser also accepts UTF-16 and
            UTF-32, which the contract does not).
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedDocument(
            "the body is not UTF-8 JSON; send JSON encoded as UTF-8 (RFC 8259)"
        ) from error


def round1_fingerprint(body: bytes) -> bytes:
    """What round 1 indexed a settled request by: SHA-256 of its body as canonical JSON.

    Visits settled before identical requests were defined by their values (CHANGELOG) keep
    this fingerprint; asked only when a request is refused as another request for a settled
    visit, so that a retry of such a request still answers its settlement.
    """
    return hashlib.sha256(canonical_json(orjson.loads(body))).digest()


@dataclass
class Gateway:
    """The gateway's parts, shared by every request of one process."""

    adjudicator: AdjudicatorClient
    reference: GatewayReference
    auth: Authenticator
    signer: ReceiptSigner
    redis: RedisClient
    uploads: UploadSlots
    unknown_members: UnknownMemberGuard
    versions: VersionsCache
    """The reference-data versions, kept for a bounded time (no hot key)."""
    export_grace_seconds: int = 900
    """How long after its midnight a day's export is still refused (settings)."""
    clock: Callable[[], int] = now_ms
    """Now (epoch ms): which settlement days have closed."""
    national_profile: Profile = Profile.NATIONAL
    """The national interface's provincial code dialect (settings)."""
    metrics_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    """The networks ``GET /metrics`` answers (settings)."""
    statement_font: Path | None = None
    """The CJK font PDF statements embed, as the settings name it (``None``: looked for)."""
    _found_font: tuple[Path | None] | None = field(default=None, init=False, repr=False)
    statement_slots: UploadSlots = field(
        default_factory=lambda: UploadSlots(2, per_client=1, work="PDF statement")
    )
    """PDF statements laid out at once (a second of a core each, beside the settlements)."""
    day_totals_cache: DayTotalsCache = field(default_factory=DayTotalsCache)
    """The agency's day figures, read again at most every few seconds (the console's)."""
    refusals: RefusalCounts = field(init=False)
    """The day's refusal counts of every process (the console's), kept in Redis."""
    console: ConsoleSessions = field(init=False)
    """The agency console's login codes and sessions, kept in Redis."""
    console_settings: ConsoleSettings = field(default_factory=ConsoleSettings)
    """How long console logins and sessions last (settings)."""
    _warming: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.refusals = RefusalCounts(self.redis, self.clock)
        self.console = ConsoleSessions(self.redis, self.console_settings, self.clock)

    def metrics_allowed(self, host: str) -> bool:
        """Whether a scrape from ``host`` is answered."""
        try:
            address = ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.metrics_networks)

    def receipt(self, message: pb.Settlement) -> bytes:
        """A settlement as the contract's result, signed, as the JSON body of the answer."""
        # Enums, tuples and nested values as Python objects: orjson writes them as JSON, the
        # same way for the signature's canonical bytes and for the answer.
        with metrics.stage("gateway", "signing"):
            result = convert.settlement_result(message).model_dump()
            signature = Signature.model_validate(self.signer.signature(result))
            result["signature"] = signature.model_dump()
            return orjson.dumps(result)

    def start_warming(self) -> asyncio.Task[None]:
        """Start :meth:`warm` beside what the process is doing; its task (kept till done)."""
        task = asyncio.create_task(self.warm())
        self._warming.add(task)
        task.add_done_callback(self._warmed)
        return task

    def _warmed(self, task: asyncio.Task[None]) -> None:
        self._warming.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("reading the reference data failed", exc_info=error)

    def stop_warming(self) -> None:
        """Cancel reads :meth:`start_warming` started (the process is stopping)."""
        for task in list(self._warming):
            task.cancel()

    async def warm(self) -> None:
        """Read the registry and the catalog before the first request needs them.

        A failure (Redis or the adjudicator not up yet) is logged and changes nothing: the
        first request that needs them reads them, as it always could.
        """
        try:
            async with redis_failures_unavailable("Redis is unavailable"):
                versions = await self.versions.current()
            await self.reference.warm(versions)
        except DomainError as error:
            log.warning(
                "reference data not read at start (%s): read by the first request instead",
                error,
            )

    async def settle(
        self,
        client: Client,
        visit: VisitRequest,
        body: bytes,
        *,
        preview: bool,
        codes: CodeLookup | None = None,
    ) -> pb.Settlement:
        """Map and check the bill, then settle (or preview) it.

        Args:
            client: who settles.
            visit: the bill.
            body: the request's bytes (checked to be UTF-8 JSON; a pre-upgrade retry's
                fingerprint is taken from them).
            preview: compute only, commit nothing.
            codes: what the lines' codes map through (default: the client's mapping).

        Raises:
            DomainError: a refusal (the bill's faults, the adjudicator's refusal, a bill over
                the size limit); nothing was settled.
        """
        if len(visit.lines) > MAX_BILL_LINES:
            raise TooLarge(
                f"a bill may have at most {MAX_BILL_LINES} lines, not {len(visit.lines)}"
            )
        check_client_may_settle(client.kind, visit.visit_type)
        if preview:
            await self.unknown_members.check(client.client_id)
        with metrics.stage("gateway", "validation"):
            require_utf8_json(body)
            fingerprint = request_identity(visit)
        catalog = await self.reference.catalog()
        mapping = codes if codes is not None else await self.reference.mapping(client.client_id)
        try:
            with metrics.stage("gateway", "mapping"):
                coded = map_bill(visit, mapping, catalog)
        except BillRejected:
            if not preview:
                # The identical request may have settled before the mapping changed: its
                # answer then stands. Otherwise the bill's faults are the answer.
                earlier = await self._earlier(client, visit, fingerprint)
                if earlier is not None:
                    return earlier
            raise
        async with self.counting_unknown_members(client):
            try:
                with metrics.stage("gateway", "adjudication"):
                    return await self.adjudicator.settle(
                        coded,
                        client_id=client.client_id,
                        visit_id=visit.visit_id,
                        member_id=visit.member_id,
                        fingerprint=fingerprint,
                        resettle_of=visit.resettle_of,
                        preview=preview,
                    )
            except VisitAlreadySettled:
                if preview:
                    raise
                # A retry of a request settled before identities were defined (domain
                # section 15) was indexed by its bytes' fingerprint: it is a replay too.
                earlier = await self._earlier(client, visit, round1_fingerprint(body))
                if earlier is None:
                    raise
                return earlier

    async def statement(self, caller: Client, settlement_id: str) -> Statement:
        """The patient's statement of a settlement, its seal signed now.

        Who may read it is who may read the settlement: the client that settled it, or the
        agency. The patient is shown masked, as the entitlement check shows them (and the
        read is kept in the audit trail, as that check's is).

        Raises:
            NotFound: no such settlement, or another client's.
        """
        message = await self.adjudicator.get(settlement_id, self.owner_filter(caller))
        result = orjson.loads(self.receipt(message))
        catalog = await self.reference.catalog()
        client = await self.reference.client(message.client_id)
        name, id_number = "—", "—"
        try:
            day = date.fromisoformat(message.settled_at[:10])
            identity = await self.adjudicator.eligibility(message.member_id, day, caller.client_id)
            name, id_number = identity.name_masked, identity.id_number_masked
        except (ValueError, UnknownMember, NoPolicy):
            # A member removed since, or a year whose policy is gone: the statement still
            # names the member by id; the settlement is what it vouches for.
            pass
        return build_statement(
            result,
            catalog,
            hospital=client.name if client else message.client_id,
            patient_name=name,
            patient_id_number=id_number,
            seal=self.signer.seal(result),
        )

    def pdf_font(self) -> Path:
        """The CJK font PDF statements embed, looked for once.

        Raises:
            NoStatementFont: none is installed, or the one the settings name is missing.
        """
        if self._found_font is None:
            self._found_font = (find_cjk_font(self.statement_font),)
        (found,) = self._found_font
        if found is None:
            where = (
                f"ONESTOP_GATEWAY_STATEMENT_FONT names {self.statement_font}, which is not a file"
                if self.statement_font is not None
                else "no CJK font is installed"
            )
            raise NoStatementFont(
                f"{where}: install the {FONT_PACKAGE} package (Debian, Ubuntu) or set "
                "ONESTOP_GATEWAY_STATEMENT_FONT to a TrueType CJK font, then restart the "
                "gateway; the HTML statement (format=html) needs no font"
            )
        return found

    @contextlib.asynccontextmanager
    async def counting_unknown_members(self, client: Client) -> AsyncIterator[None]:
        """Count the unknown member a call names; past the client's limit, answer 429.

        Raises:
            RateLimited: in place of ``UnknownMember``, once the client is past its limit.
        """
        try:
            yield
        except UnknownMember:
            refusal = await self.unknown_members.record(client.client_id)
            if refusal is not None:
                raise refusal from None
            raise

    async def _earlier(
        self, client: Client, visit: VisitRequest, fingerprint: bytes
    ) -> pb.Settlement | None:
        try:
            return await self.adjudicator.find(
                client_id=client.client_id,
                visit_id=visit.visit_id,
                member_id=visit.member_id,
                fingerprint=fingerprint,
            )
        except (NotFound, Unavailable):
            return None  # not found, or not known now: the bill's faults are the answer

    @staticmethod
    def owner_filter(client: Client) -> str:
        """The client whose settlements a caller may see: its own; the agency's, anyone's."""
        return "" if client.kind is ClientKind.AGENCY else client.client_id
