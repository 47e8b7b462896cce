"""The national interface's state in Redis: messages by ``msgid``, visits, uploaded lines.

Every key and name is the layout module's. Messages are claimed with ``SET NX`` (one
arrival processes a ``msgid``; the same ``msgid`` again finds what it did); visits and their
lines live in the member's slot group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, cast

from onestop.redis_client import RedisClient, redis_calls
from onestop.storage import layout
from onestop.storage.national import NationalMessage, NationalVisit, StagedLine

_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class NationalStore:
    """Reads and writes of the national interface's state."""

    def __init__(self, client: RedisClient) -> None:
        self.client = client

    async def _call(self, call: Awaitable[Any]) -> Any:
        async with redis_calls():
            return await call

    # -- messages ------------------------------------------------------------------------------

    async def claim(
        self, client_id: str, msgid: str, message: NationalMessage
    ) -> NationalMessage | None:
        """Record a message as arrived, unless its ``msgid`` is known: then what is kept."""
        key = layout.national_message_key(client_id, msgid)
        created = await self._call(self.client.set(key, message.to_json(), nx=True))
        if created:
            return None
        return await self.message(client_id, msgid)

    async def message(self, client_id: str, msgid: str) -> NationalMessage | None:
        """What is kept of a message, ``None`` when its ``msgid`` never came."""
        raw = await self._call(self.client.get(layout.national_message_key(client_id, msgid)))
        return None if raw is None else NationalMessage.from_json(cast(bytes, raw))

    async def swap(
        self, client_id: str, msgid: str, expected: NationalMessage, message: NationalMessage
    ) -> bool:
        """Replace what is kept of a message only if it is still ``expected`` (one script).

        A resent message taking over and a 2601 revoking it may meet: exactly one wins.
        """
        key = layout.national_message_key(client_id, msgid)
        swapped = await self._call(
            self.client.eval(_SWAP, 1, key, expected.to_json(), message.to_json())
        )
        return bool(swapped)

    async def keep(self, client_id: str, msgid: str, message: NationalMessage) -> None:
        """Overwrite what is kept of a message (its progress, its answer)."""
        key = layout.national_message_key(client_id, msgid)
        await self._call(self.client.set(key, message.to_json()))

    # -- visits --------------------------------------------------------------------------------

    async def visit(self, member_id: str, client_id: str, mdtrt_id: str) -> NationalVisit | None:
        """A registered visit, ``None`` when the member has none by that id."""
        key = layout.national_visit_key(member_id, client_id, mdtrt_id)
        raw = await self._call(self.client.hgetall(key))
        return NationalVisit.from_hash(cast(dict[bytes, bytes], raw))

    async def put_visit(
        self, member_id: str, client_id: str, mdtrt_id: str, visit: NationalVisit
    ) -> None:
        """Write a visit (all its fields)."""
        key = layout.national_visit_key(member_id, client_id, mdtrt_id)
        await self._call(self.client.hset(key, mapping=visit.fields()))  # type: ignore[arg-type]

    # -- fee lines -----------------------------------------------------------------------------

    async def lines(self, member_id: str, client_id: str, mdtrt_id: str) -> dict[str, StagedLine]:
        """The visit's uploaded lines by ``feedetl_sn``."""
        key = layout.national_lines_key(member_id, client_id, mdtrt_id)
        raw = cast(dict[bytes, bytes], await self._call(self.client.hgetall(key)))
        return {name.decode(): StagedLine.from_json(value) for name, value in raw.items()}

    async def add_lines(
        self, member_id: str, client_id: str, mdtrt_id: str, lines: Mapping[str, StagedLine]
    ) -> None:
        """Add lines (one command: all of them or none)."""
        key = layout.national_lines_key(member_id, client_id, mdtrt_id)
        values = {sn: line.to_json() for sn, line in lines.items()}
        await self._call(self.client.hset(key, mapping=values))  # type: ignore[arg-type]

    async def remove_lines(
        self, member_id: str, client_id: str, mdtrt_id: str, serials: Iterable[str]
    ) -> int:
        """Remove lines; how many there were."""
        names = list(serials)
        if not names:
            return 0
        key = layout.national_lines_key(member_id, client_id, mdtrt_id)
        return int(cast(int, await self._call(self.client.hdel(key, *names))))
