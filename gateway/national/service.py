"""The national interface's transactions, each translated to onestop's own calls.

One message is handled at a time per ``msgid`` (docs/adr/0009): it is claimed in Redis before
anything is done, so that the same ``msgid`` again answers the original answer and a 2601
finds what the message did. Settling goes through the same path as ``POST /v1/settlements``
(mapping, checks, the adjudicator), so a national settlement is an onestop settlement, with
its signed receipt, its journal entry and its reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from gateway.national.base import (
    PENDING_WINDOW_MS,
    Call,
    Output,
    answer_json,
    message_digest,
)
from gateway.national.people import People
from gateway.national.settling import Settling
from gateway.national.statements import Statements
from gateway.national.store import NationalStore
from gateway.national.visits import Visits
from gateway.service import Gateway
from onestop.domain.clients import Client
from onestop.domain.errors import DomainError, ErrorCode
from onestop.national.amounts import (
    parse_body,
)
from onestop.national.codes import (
    Profile,
)
from onestop.national.envelope import (
    NationalRefusal,
    RequestEnvelope,
    answer,
    refusal_of,
    validation_refusal,
)
from onestop.storage.layout import NationalMessageState
from onestop.storage.national import (
    NationalMessage,
)

log = logging.getLogger("onestop.gateway.national")


class NationalService(People, Visits, Settling, Statements):
    """Handles one national message from an authenticated client."""

    def __init__(
        self,
        gateway: Gateway,
        store: NationalStore,
        profile: Profile,
        clock: Callable[[], int],
    ) -> None:
        super().__init__(gateway, store, profile, clock)
        self.handlers: dict[str, Callable[[Call], Awaitable[Output]]] = {
            "9001": self._sign_in,
            "1101": self._person_info,
            "2001": self._benefits,
            "2201": self._register_outpatient,
            "2202": self._cancel_registration,
            "2204": self._upload_outpatient_lines,
            "2205": self._cancel_outpatient_lines,
            "2206": self._preview_outpatient,
            "2207": self._settle_outpatient,
            "2208": self._cancel_outpatient_settlement,
            "2401": self._admit,
            "2402": self._discharge,
            "2404": self._cancel_admission,
            "2301": self._upload_inpatient_lines,
            "2302": self._cancel_inpatient_lines,
            "2303": self._preview_inpatient,
            "2304": self._settle_inpatient,
            "2305": self._cancel_inpatient_settlement,
            "2101": self._preview_purchase,
            "2102": self._settle_purchase,
            "2103": self._cancel_purchase,
            "2601": self._reverse_message,
            "3201": self._reconcile_totals,
            "3202": self._reconcile_detail,
            "1312": self._catalog_query,
            "1316": self._mapping_query,
            "1318": self._price_cap_query,
            "5203": self._query_settlement,
        }

    async def handle(self, client: Client, body: bytes, path_infno: str | None) -> bytes:
        """The answer's envelope for one message, as JSON (every refusal is ``infcode -1``).

        The same ``msgid`` again gets these very bytes.
        """
        received_ms = self.clock()
        try:
            call = self._call(client, body, path_infno, received_ms)
        except NationalRefusal as refusal:
            return answer_json(answer(self._timing(client, received_ms), err_msg=refusal.err_msg))
        return await self._handle_once(call)

    def _call(self, client: Client, body: bytes, path_infno: str | None, received_ms: int) -> Call:
        try:
            payload = parse_body(body)
        except DomainError as error:
            raise NationalRefusal(error.message) from None
        if not isinstance(payload, dict):
            raise NationalRefusal("the message must be a JSON object (the national envelope)")
        try:
            envelope = RequestEnvelope.model_validate(payload)
        except ValidationError as error:
            raise validation_refusal(error) from None
        if path_infno is not None and path_infno != envelope.infno:
            raise NationalRefusal(
                f"infno: {envelope.infno} in the message, {path_infno} in the path; send the "
                "same transaction number in both (or POST /fsi/api)"
            )
        if envelope.fixmedins_code != client.fixmedins_code():
            raise NationalRefusal(
                f"fixmedins_code: {envelope.fixmedins_code} is not the code registered for "
                f"client {client.client_id} ({client.fixmedins_code()}); a client sends only "
                "its own institution code"
            )
        if client.region is not None and envelope.mdtrtarea_admvs != client.region:
            raise NationalRefusal(
                f"mdtrtarea_admvs: {envelope.mdtrtarea_admvs} is not this institution's region "
                f"({client.region})"
            )
        if envelope.infno not in self.handlers:
            raise NationalRefusal(
                f"infno: {envelope.infno} is not served by onestop; it serves "
                f"{', '.join(sorted(self.handlers))}"
            )
        return Call(client, envelope, received_ms)

    async def _handle_once(self, call: Call) -> bytes:
        envelope = call.envelope
        client_id = call.client.client_id
        pending = NationalMessage(
            state=NationalMessageState.PENDING,
            infno=envelope.infno,
            digest=message_digest(envelope.infno, envelope.input),
            at_ms=call.received_ms,
        )
        known = await self.store.claim(client_id, envelope.msgid, pending)
        while known is not None:
            again = self._known_answer(call, known, pending)
            if again is not None:
                return again
            # Processed again, keeping what the first attempt recorded (its visit, its
            # request's identity): a settlement it made is found, never made twice.
            retaken = replace(
                known, state=NationalMessageState.PENDING, at_ms=call.received_ms, answer=None
            )
            if await self.store.swap(client_id, envelope.msgid, known, retaken):
                break
            known = await self.store.message(client_id, envelope.msgid)  # changed meanwhile
            if known is None:
                known = await self.store.claim(client_id, envelope.msgid, pending)
        try:
            output, warn = await self.handlers[envelope.infno](call)
        except NationalRefusal as refusal:
            reply = answer(self._timing(call.client, call.received_ms), err_msg=refusal.err_msg)
        except DomainError as error:
            reply = answer(
                self._timing(call.client, call.received_ms), err_msg=refusal_of(error).err_msg
            )
            if error.code in (ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL_ERROR):
                # Not known to be done for good (a settlement may even have committed before
                # the answer was lost): the same message again is processed again, and finds
                # by its request's identity whatever the first attempt did.
                record = await self.store.message(client_id, envelope.msgid) or pending
                failed = replace(record, state=NationalMessageState.FAILED, answer=None)
                await self.store.keep(client_id, envelope.msgid, failed)
                _log_answer(call, reply)
                return answer_json(reply)
        else:
            reply = answer(
                self._timing(call.client, call.received_ms), output=output, warn_msg=warn
            )
        record = await self.store.message(client_id, envelope.msgid) or pending
        if record.state is NationalMessageState.REVOKED:
            # A 2601 undid it while it was processed: that is its outcome.
            revoked = self._known_answer(call, record, pending)
            assert revoked is not None
            return revoked
        body = answer_json(reply)
        await self.store.keep(client_id, envelope.msgid, record.answered(body.decode()))
        _log_answer(call, reply)
        return body

    def _known_answer(
        self, call: Call, known: NationalMessage, arriving: NationalMessage
    ) -> bytes | None:
        """The answer for a ``msgid`` seen before, ``None`` when the message is to be processed."""
        timing = self._timing(call.client, call.received_ms)
        msgid = call.envelope.msgid
        if known.state is NationalMessageState.REVOKED:
            return answer_json(
                answer(
                    timing,
                    err_msg=f"msgid: {msgid} was reversed by 2601 (msgid {known.revoked_by}) "
                    "before it arrived; nothing was done. Send a new message with a new msgid",
                )
            )
        if known.digest != arriving.digest:
            return answer_json(
                answer(
                    timing,
                    err_msg=f"msgid: {msgid} was used for another message (infno {known.infno}); "
                    "every message needs its own msgid",
                )
            )
        if known.state is NationalMessageState.ANSWERED and known.answer is not None:
            return known.answer.encode()
        if (
            known.state is NationalMessageState.PENDING
            and call.received_ms - known.at_ms < PENDING_WINDOW_MS
        ):
            seconds = (PENDING_WINDOW_MS - (call.received_ms - known.at_ms)) // 1000 + 1
            return answer_json(
                answer(
                    timing,
                    err_msg=f"msgid: {msgid} is still being processed; send the same message "
                    f"again in {seconds} s to get its answer",
                )
            )
        return None  # failed, or pending past its window: processed again (idempotent)


def _log_answer(call: Call, reply: Mapping[str, Any]) -> None:
    """One line per message answered: which, for whom, how (never the person's data)."""
    log.info(
        "national",
        extra={
            "infno": call.envelope.infno,
            "msgid": call.envelope.msgid,
            "client_id": call.client.client_id,
            "infcode": reply["infcode"],
            "err_msg": reply["err_msg"],
        },
    )
