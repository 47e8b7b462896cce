"""The agency's administration: clients, policies, catalog, mappings, members, exports.

Every route here takes :data:`~gateway.dependencies.AgencyDep` (or, for the streamed members
upload, :data:`~gateway.dependencies.AgencyUploadDep`): only the agency may call them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path as FilePath
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.background import BackgroundTask

from gateway import convert
from gateway.dependencies import AgencyDep, AgencyUploadDep, GatewayDep
from gateway.errors import BODY, SIGNED, UPLOAD, refusals
from gateway.schemas import (
    MAPPING_CSV_EXAMPLE,
    MEMBERS_EXAMPLE,
    POLICY_EXAMPLE,
    POLICY_REF_EXAMPLE,
    AuditEntry,
    CatalogLoaded,
    ClientOut,
    ClientRegistration,
    DayReconciliations,
    LookupOut,
    MappingLoaded,
    MembersLoaded,
)
from onestop.clock import day_closes_ms, iso_from_ms, settlement_day
from onestop.domain.clients import Client, providers
from onestop.domain.documents import validate_document
from onestop.domain.errors import ErrorCode, InvalidDocument, Problem
from onestop.domain.policy import Policy, policy_to_document
from onestop.domain.settlement import PolicyRef
from onestop.exports import write_export, zip_export

router = APIRouter(prefix="/v1/admin", tags=["admin"])

UPLOAD_CHUNK = 256 * 1024
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""Client ids: no ``:`` (keys join a client id and a visit id with one), no spaces."""

ClientIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=CLIENT_ID_PATTERN)]
AnyClientIdPath = Annotated[str, Path(min_length=1, max_length=64)]

CATALOG_CSV_EXAMPLE = (
    "code,name,kind,category,self_pay_ratio,price_cap,unit,max_level,max_daily_qty\n"
    "XB02,头孢呋辛酯片,drug,B,0.10,5000,box,,\n"
)


def _csv_body(example: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": example}},
        }
    }


@router.put(
    "/clients/{client_id}",
    response_model=ClientOut,
    responses=refusals(*SIGNED, *BODY, ErrorCode.FORBIDDEN),
)
async def put_client(
    client_id: ClientIdPath,
    registration: ClientRegistration,
    caller: AgencyDep,
    gateway: GatewayDep,
) -> ClientOut:
    """Register or update a hospital, pharmacy or agency client and its public key."""
    client = validate_document(
        Client, {"client_id": client_id, **registration.model_dump()}, what="client"
    )
    stored = await gateway.adjudicator.put_client(client)
    gateway.versions.invalidate()  # this process knows the client from its next request
    return convert.client_out(stored)


@router.get(
    "/clients",
    response_model=list[ClientOut],
    responses=refusals(*SIGNED, ErrorCode.FORBIDDEN),
)
async def list_clients(caller: AgencyDep, gateway: GatewayDep) -> list[ClientOut]:
    """Every registered client."""
    listed, _ = await gateway.adjudicator.list_clients()
    return [ClientOut.model_validate(client.model_dump()) for client in listed]


@router.put(
    "/policies",
    response_model=PolicyRef,
    responses={
        200: {
            "description": "the policy stored: which region, scheme and year, and the "
            "version that settlements under it will name",
            "content": {"application/json": {"example": POLICY_REF_EXAMPLE}},
        },
        **refusals(*SIGNED, *BODY, ErrorCode.FORBIDDEN),
    },
    openapi_extra={"requestBody": {"content": {"application/json": {"example": POLICY_EXAMPLE}}}},
)
async def put_policy(policy: Policy, caller: AgencyDep, gateway: GatewayDep) -> PolicyRef:
    """Store the policy of one region, scheme and year (unknown keys are refused)."""
    document = json.dumps(policy_to_document(policy), ensure_ascii=False).encode()
    stored = await gateway.adjudicator.put_policy(document)
    gateway.versions.invalidate()
    return stored


@router.put(
    "/catalog",
    response_model=CatalogLoaded,
    responses=refusals(*SIGNED, *BODY, *UPLOAD),
    openapi_extra=_csv_body(CATALOG_CSV_EXAMPLE),
)
async def put_catalog(upload: AgencyUploadDep, gateway: GatewayDep) -> CatalogLoaded:
    """Replace the catalog (CSV); faulty rows are listed with their numbers."""
    loaded = await gateway.adjudicator.put_catalog(_chunks(upload.body))
    gateway.versions.invalidate()
    # Read into this process beside the answer: the next settlement need not wait for the
    # parse. (Not a response's background task: the upload's slot would stay taken till then.)
    gateway.start_warming()
    return convert.catalog_loaded(loaded)


@router.put(
    "/clients/{client_id}/mappings",
    response_model=MappingLoaded,
    responses=refusals(*SIGNED, *BODY, ErrorCode.FORBIDDEN, ErrorCode.RISKY_MAPPING_CHANGE),
    openapi_extra=_csv_body(MAPPING_CSV_EXAMPLE),
)
async def put_mapping(
    client_id: AnyClientIdPath,
    upload: AgencyUploadDep,
    gateway: GatewayDep,
    confirm: Annotated[bool, Query(description="accept risky changes")] = False,
) -> MappingLoaded:
    """Replace a client's mapping (CSV). Risky changes are refused unless confirmed."""
    reply = await gateway.adjudicator.put_mapping(
        client_id, upload.body.read(), confirm=confirm, changed_by=upload.caller.client_id
    )
    gateway.versions.invalidate()
    return convert.mapping_loaded(reply)


@router.get(
    "/clients/{client_id}/mappings",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "the mapping as CSV",
            "content": {"text/csv": {"example": MAPPING_CSV_EXAMPLE}},
        },
        **refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND),
    },
)
async def get_mapping(
    client_id: AnyClientIdPath, caller: AgencyDep, gateway: GatewayDep
) -> PlainTextResponse:
    """A client's current mapping (CSV)."""
    text = await gateway.adjudicator.mapping_text(client_id)
    return PlainTextResponse(text, media_type="text/csv; charset=utf-8")


@router.get(
    "/clients/{client_id}/mappings/audit",
    response_model=list[AuditEntry],
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN),
)
async def mapping_audit(
    client_id: AnyClientIdPath, caller: AgencyDep, gateway: GatewayDep
) -> list[AuditEntry]:
    """Every change to a client's mapping: who, when, old, new."""
    return convert.audit_entries(await gateway.adjudicator.mapping_audit(client_id))


@router.post(
    "/members",
    response_model=MembersLoaded,
    responses=refusals(*SIGNED, *UPLOAD, ErrorCode.MALFORMED),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}, "example": MEMBERS_EXAMPLE}
            },
        }
    },
)
async def put_members(upload: AgencyUploadDep, gateway: GatewayDep) -> MembersLoaded:
    """Load members (JSON Lines). Each bad line is reported; the rest loads."""
    reply = await gateway.adjudicator.put_members(_chunks(upload.body))
    return convert.members_loaded(reply)


async def _chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := spool.read(UPLOAD_CHUNK):
        yield chunk


DayQuery = Annotated[date, Query(alias="date", description="YYYY-MM-DD (Asia/Shanghai)")]
"""``?date=``: a settlement day."""

ClientFilter = Annotated[
    str | None, Query(min_length=1, max_length=64, description="one client's only")
]
"""``?client_id=``: one client's records only."""


@router.get(
    "/lookups",
    response_model=list[LookupOut],
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN),
)
async def lookups(
    caller: AgencyDep,
    gateway: GatewayDep,
    day: DayQuery,
    client_id: ClientFilter = None,
) -> list[LookupOut]:
    """Every eligibility check and member lookup of a day: who asked, when, for whom, found."""
    return convert.lookup_entries(await gateway.adjudicator.lookups(day, client_id or ""))


@router.get(
    "/reconciliations",
    response_model=DayReconciliations,
    responses=refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN),
)
async def reconciliations(
    caller: AgencyDep,
    gateway: GatewayDep,
    day: DayQuery,
    client_id: ClientFilter = None,
) -> DayReconciliations:
    """Which clients balanced a day, which did not and by how much, and who never reconciled.

    Each client's `status` is its latest answer's result (`not_reconciled` when it never
    asked); `history` holds every answer it was given that day, in order.
    """
    kept = await gateway.adjudicator.reconciliations(day, client_id or "")
    if client_id is not None:
        registered = [client_id]
    else:
        listed, _ = await gateway.adjudicator.list_clients()
        registered = [client.client_id for client in providers(listed)]
    return convert.day_reconciliations(day, registered, kept)


@router.get(
    "/exports/{day}",
    response_class=FileResponse,
    responses={
        200: {
            "description": "a zip of settlements.csv, summary.csv, recoveries.csv and "
            "manifest.json",
            "content": {"application/zip": {"example": "(binary zip)"}},
        },
        **refusals(*SIGNED, ErrorCode.INVALID, ErrorCode.FORBIDDEN),
    },
)
async def export(
    day: date,
    caller: AgencyDep,
    gateway: GatewayDep,
    provisional: Annotated[
        bool,
        Query(
            description="a file of a day still open, its manifest saying `final: false` "
            "(without it, a day is exported only once closed)"
        ),
    ] = False,
) -> FileResponse:
    """The day's signed files for the agency, as one zip.

    A day closes at the next midnight, Asia/Shanghai; its final export is refused until
    `export_grace_seconds` later (settings), so that two final files of one day never differ.
    Meanwhile `?provisional=true` gives a file marked `final: false`. A future day is
    refused either way.
    """
    final = check_day_closed(day, gateway.clock(), gateway.export_grace_seconds, provisional)
    scratch = FilePath(tempfile.mkdtemp(prefix="onestop-export-"))
    try:
        await write_export(
            gateway.adjudicator.read_journal(day),
            day,
            scratch / "files",
            gateway.signer.export_signer(),
            final=final,
            recoveries=await gateway.adjudicator.recoveries(day),
        )
        zip_export(scratch / "files", scratch / "export.zip")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FileResponse(
        scratch / "export.zip",
        media_type="application/zip",
        filename=f"onestop-{day.isoformat()}.zip",
        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
    )


def check_day_closed(day: date, now: int, grace_seconds: int, provisional: bool = False) -> bool:
    """Whether ``day``'s export is final; refuse one that cannot be made now.

    Args:
        day: the settlement day asked for.
        now: the time (epoch ms).
        grace_seconds: how long after the day's midnight it is still treated as open.
        provisional: a provisional file of an open day is asked for.

    Returns:
        ``True`` when the day has closed (the export is final), ``False`` for a provisional
        export of a day still open.

    Raises:
        InvalidDocument: the day is in the future, or open and no provisional file was asked
            for (422 ``INVALID``, field ``date``).
    """
    ready_ms = day_closes_ms(day) + grace_seconds * 1000
    if now >= ready_ms:
        return True
    today = settlement_day(now)
    if day > today:
        why = f"{day} is in the future (today is {today}, Asia/Shanghai)"
    elif provisional:
        return False
    else:
        why = (
            f"{day} is not closed yet: its final export is made once the day can change no "
            f"more, from {iso_from_ms(ready_ms)}; ?provisional=true gives a file marked "
            "final: false meanwhile, and POST /v1/reconciliation provisional figures"
        )
    raise InvalidDocument(why, (Problem(ErrorCode.INVALID, why, field="date"),))
