"""Re-sealing every member's identity under the current member-data key, online.

``onestop keys rotate-member`` runs this while the adjudicators serve (docs/operations.md has
the whole procedure). Each member is read, opened with whichever configured key sealed it,
sealed again under the current key and written back only if it did not change meanwhile (a
compare-and-set script); its id-number index entry moves to the current key's index (the new
entry is claimed first, then the old one released, so one always names the member). Running
it again after an interruption finishes the job; a run that finds nothing left reports so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from cryptography.exceptions import InvalidTag

from adjudicator.store import lua_script
from onestop.redis_client import RedisClient, RedisPipeline, run_pipeline
from onestop.storage.crypto import MemberCipher, UnknownMemberKey
from onestop.storage.layout import (
    MEMBER_KEY_PATTERN,
    MemberField,
    identity_index_key,
    member_id_of_key,
)

BATCH = 200
ATTEMPTS = 5


@dataclass
class RotationReport:
    """What a rotation did.

    Attributes:
        resealed: identities sealed again under the current key.
        current: found already under the current key.
        indexes_moved: id-number index entries moved to the current key's index.
        unreadable: members whose identity no configured key opens (member id: why).
    """

    scanned: int = 0
    resealed: int = 0
    current: int = 0
    indexes_moved: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every identity is under the current key: the previous keys can be retired."""
        return not self.unreadable


class MemberKeyRotation:
    """Moves the stored identities and their index entries to the cipher's current key."""

    def __init__(self, client: RedisClient, cipher: MemberCipher) -> None:
        self.client = client
        self.cipher = cipher
        self._reseal = lua_script("reseal_identity.lua")
        self._claim = lua_script("claim_identity.lua")
        self._release = lua_script("release_identity.lua")

    async def run(self, progress: Callable[[RotationReport], None] | None = None) -> RotationReport:
        """Rotate every member; the report."""
        report = RotationReport()
        batch: list[str] = []
        async for raw in self.client.scan_iter(match=MEMBER_KEY_PATTERN, count=1000):
            batch.append(raw.decode() if isinstance(raw, bytes) else str(raw))
            if len(batch) >= BATCH:
                await self._batch(batch, report)
                batch = []
                if progress is not None:
                    progress(report)
        if batch:
            await self._batch(batch, report)
        if progress is not None:
            progress(report)
        return report

    async def _batch(self, keys: list[str], report: RotationReport) -> None:
        pending = keys
        for _ in range(ATTEMPTS):
            pending = await self._attempt(pending, report)
            if not pending:
                return
        for key in pending:
            report.unreadable[member_id_of_key(key)] = "changed on every attempt; run again"

    async def _attempt(self, keys: list[str], report: RotationReport) -> list[str]:
        """Reseal what is not current; the keys that changed meanwhile (to try again)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, MemberField.IDENTITY.value)
        sealed_values = cast(list[bytes | None], await pipe.execute())
        reseals: list[tuple[str, bytes, bytes]] = []
        identities: list[tuple[str, str]] = []
        for key, sealed in zip(keys, sealed_values, strict=True):
            if sealed is None:
                continue  # deleted meanwhile
            member_id = member_id_of_key(key)
            report.scanned += 1
            try:
                id_number, name = self.cipher.open(member_id, sealed)
            except (UnknownMemberKey, InvalidTag) as error:
                report.unreadable[member_id] = str(error) or "does not open with any key"
                continue
            identities.append((member_id, id_number))
            if self.cipher.is_current(sealed):
                report.current += 1
            else:
                reseals.append((key, sealed, self.cipher.seal(member_id, id_number, name)))

        def queue_reseals(pipe: RedisPipeline) -> None:
            for key, old, new in reseals:
                self._reseal.queue(pipe, [key], [MemberField.IDENTITY.value, old, new])

        changed: list[str] = []
        if reseals:
            answers = await run_pipeline(self.client, queue_reseals, [self._reseal])
            for (key, _, _), replaced in zip(reseals, answers, strict=True):
                if replaced:
                    report.resealed += 1
                else:
                    changed.append(key)
        moved_members = {member_id_of_key(key) for key in changed}
        await self._move_indexes(
            [entry for entry in identities if entry[0] not in moved_members], report
        )
        return changed

    async def _move_indexes(
        self, identities: list[tuple[str, str]], report: RotationReport
    ) -> None:
        """Point the current key's index at each member that an older key's index names."""
        pipe = self.client.pipeline(transaction=False)
        all_indexes = [self.cipher.blind_indexes(id_number) for _, id_number in identities]
        for indexes in all_indexes:
            for index in indexes:
                pipe.get(identity_index_key(index))
        answers = cast(list[bytes | None], await pipe.execute())
        moves: list[tuple[str, str, str, list[str]]] = []
        position = 0
        for (member_id, _), indexes in zip(identities, all_indexes, strict=True):
            holders = [
                (holder or b"").decode() for holder in answers[position : position + len(indexes)]
            ]
            position += len(indexes)
            older = [
                identity_index_key(index)
                for index, holder in zip(indexes[1:], holders[1:], strict=True)
                if holder == member_id
            ]
            if older:
                # Only an index that named the member moves: an inactive member has none.
                moves.append((member_id, identity_index_key(indexes[0]), holders[0], older))
        if not moves:
            return

        def claim(pipe: RedisPipeline) -> None:
            for member_id, current, holder, _ in moves:
                self._claim.queue(pipe, [current], [member_id, holder])

        claimed = await run_pipeline(self.client, claim, [self._claim])

        def release(pipe: RedisPipeline) -> None:
            for member_id, _, _, older in moves:
                for key in older:
                    self._release.queue(pipe, [key], [member_id])

        await run_pipeline(self.client, release, [self._release])
        report.indexes_moved += sum(1 for answer in claimed if answer)


async def rotate_member_key(
    client: RedisClient,
    cipher: MemberCipher,
    progress: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Re-seal every identity under ``cipher``'s current key (see the module); the report."""
    return await MemberKeyRotation(client, cipher).run(progress)
