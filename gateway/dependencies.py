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

from gateway.auth import body_digest, require_kind
from gateway.service import Gateway
from onestop.domain.clients import Client
from onestop.domain.types import ClientKind

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024


# Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in a worker
# thread, a thread hand-off per request for what is an attribute read.


async def get_gateway(request: Request) -> Gateway:
    """The gateway's parts, made once per process at start."""
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def caller(request: Request, gateway: GatewayDep) -> Client:
    """The client that signed the request (the body is read once, hashed and checked)."""
    body = await request.body()
    return await gateway.auth.authenticate(request, body_digest(body))


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


@dataclass(frozen=True, slots=True)
class Upload:
    """A streamed upload whose signature verified: who sent it, and the body, spooled."""

    caller: Client
    body: IO[bytes]


async def agency_upload(request: Request, gateway: GatewayDep) -> AsyncIterator[Upload]:
    """The agency's streamed upload, authenticated.

    The body is spooled (to disk past a few megabytes) and hashed as it arrives, then the
    signature is checked over the hash; the spool is gone once the answer is sent.
    """
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
        digest = hashlib.sha256()
        async for chunk in request.stream():
            digest.update(chunk)
            spool.write(chunk)
        client = await gateway.auth.authenticate(request, digest.hexdigest())
        require_kind(client, ClientKind.AGENCY)
        spool.seek(0)
        yield Upload(client, spool)


AgencyUploadDep = Annotated[Upload, Depends(agency_upload)]

AGENCY_DEPENDENCIES = (agency, agency_upload)
"""What makes a route the agency's alone."""
