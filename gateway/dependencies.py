"""Typed dependencies of the routes: the gateway, the authenticated caller and its kind.

A route says who may call it by the type of its caller parameter: ``CallerDep`` (any signed
client), ``ProviderDep`` (hospitals and pharmacies), ``AgencyDep`` (the agency; every
``/v1/admin/*`` route has it, a test checks). The members upload, which is streamed, has its
own: :func:`agency_upload` authenticates the body as it spools it.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from gateway.auth import Claim, body_digest, path_and_query, require_kind
from gateway.middleware import CLAIM
from gateway.service import Gateway, require_utf8_json
from onestop.domain.bill import VisitRequest
from onestop.domain.clients import Client
from onestop.domain.types import ClientKind
from onestop.errors import Unauthenticated

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024


# Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in a worker
# thread, a thread hand-off per request for what is an attribute read.


async def get_gateway(request: Request) -> Gateway:
    """The gateway's parts, made once per process at start."""
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def _claim(request: Request) -> Claim:
    claim = getattr(request.state, CLAIM, None)
    if not isinstance(claim, Claim):  # every signed path passes the middleware
        raise Unauthenticated("the request was not checked for a signature")
    return claim


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


async def caller(request: Request, gateway: GatewayDep) -> Client:
    """The client that signed the request (the body is read once, hashed and checked)."""
    claim = _claim(request)
    body = await request.body()
    return await gateway.auth.prove(
        claim,
        request.method,
        path_and_query(request),
        body_digest(body),
        _address(request),
        len(body),
    )


CallerDep = Annotated[Client, Depends(caller)]


async def provider(client: CallerDep) -> Client:
    """A hospital or a pharmacy; anyone else is refused 403."""
    require_kind(client, ClientKind.HOSPITAL, ClientKind.PHARMACY)
    return client


ProviderDep = Annotated[Client, Depends(provider)]


async def agency(client: CallerDep) -> Client:
    """The agency; anyone else is refused 403."""
    require_kind(client, ClientKind.AGENCY)
    return client


AgencyDep = Annotated[Client, Depends(agency)]


async def visit_body(request: Request) -> VisitRequest:
    """The bill, parsed and validated in one pass from the bytes the signature was checked on.

    pydantic-core reads the JSON and builds the model together (FastAPI's generic path parses
    with the standard library, then validates the dict: a quarter of a 200-line discharge's
    time in the gateway). Refusals are FastAPI's own, located in ``body``: the same answers.
    Declare it after the caller: the signature is checked before the body is looked at.

    Raises:
        MalformedDocument: the body is not UTF-8.
        RequestValidationError: the body is not JSON, or not a bill.
    """
    body = await request.body()
    try:
        return VisitRequest.model_validate_json(body)
    except ValidationError as error:
        if any(detail["type"] == "json_invalid" for detail in error.errors()):
            require_utf8_json(body)  # a body in UTF-16 or UTF-32 is told so
        raise RequestValidationError(
            [{**detail, "loc": ("body", *detail["loc"])} for detail in error.errors()],
            body=body,
        ) from None


VisitBodyDep = Annotated[VisitRequest, Depends(visit_body)]
"""The bill of a settle or preview (documented in the OpenAPI document by the route)."""


@dataclass(frozen=True, slots=True)
class Upload:
    """A streamed upload whose signature verified: who sent it, and the body, spooled."""

    caller: Client
    body: IO[bytes]


async def agency_upload(request: Request, gateway: GatewayDep) -> AsyncIterator[Upload]:
    """The agency's upload, authenticated as it streams in.

    The headers were checked (a registered agency client) before any of it was read; the
    body is then spooled (to disk past a few megabytes) and hashed as it arrives, within an
    upload slot (a few in flight per process, one per client), and the signature is checked
    over the hash. The spool is gone once the answer is sent.
    """
    claim = _claim(request)
    with (
        gateway.uploads.slot(claim.client.client_id),
        tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool,
    ):
        digest = hashlib.sha256()
        received = 0
        async for chunk in request.stream():
            digest.update(chunk)
            spool.write(chunk)
            received += len(chunk)
        client = await gateway.auth.prove(
            claim,
            request.method,
            path_and_query(request),
            digest.hexdigest(),
            _address(request),
            received,
        )
        require_kind(client, ClientKind.AGENCY)
        spool.seek(0)
        yield Upload(client, spool)


AgencyUploadDep = Annotated[Upload, Depends(agency_upload)]

AGENCY_DEPENDENCIES = (agency, agency_upload)
"""What makes a route the agency's alone."""
