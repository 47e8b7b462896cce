"""How many answers of each refusal code a day saw, across every gateway process.

Prometheus counts refusals per process, and forgets them when one restarts; the agency's
console wants the day's figures of the whole fleet. Each refused answer adds one to its code's
field of the day's hash in Redis (:func:`~onestop.storage.layout.refusals_key`), in one write
per process a second at most, after the answers have gone: a slow or lost Redis never delays
nor fails a refused request, and a flood of refusals is not a flood of writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import cast

from onestop import metrics
from onestop.clock import now_ms, settlement_day
from onestop.domain.errors import ErrorCode
from onestop.redis_client import REDIS_ERRORS, RedisClient, redis_calls
from onestop.storage.layout import REFUSALS_TTL_SECONDS, day_text, refusals_key

log = logging.getLogger("onestop.gateway")

FLUSH_SECONDS = 1.0
"""How often a process adds its new counts to Redis: one write a second at most, however many
requests are refused (a flood of unsigned requests costs Redis nothing more)."""


class RefusalCounts:
    """The day's refusal counts in Redis: added to a second after refused answers, read by day."""

    def __init__(self, redis: RedisClient, clock: Callable[[], int] = now_ms) -> None:
        self.redis = redis
        self.clock = clock
        self._counts: Counter[tuple[str, ErrorCode]] = Counter()
        self._flushing: asyncio.Task[None] | None = None

    def record(self, code: ErrorCode) -> None:
        """Count one answer of ``code`` today; Redis learns of it within a second."""
        self._counts[(day_text(settlement_day(self.clock())), code)] += 1
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await self.flush()
        except Exception:
            # A task nobody awaits: what fails here would otherwise go unseen.
            log.exception("refusal counts not kept")

    async def flush(self) -> None:
        """Add the counts not yet written to Redis (at a process's stop, or a test's read)."""
        counts, self._counts = self._counts, Counter()
        if not counts:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for (day, code), count in counts.items():
                pipe.hincrby(refusals_key(day), code.value, count)
            for day in {day for day, _ in counts}:
                pipe.expire(refusals_key(day), REFUSALS_TTL_SECONDS)
            await pipe.execute()
        except REDIS_ERRORS as error:
            # The refusals were answered; only their count in the console is lost (Prometheus
            # still has them).
            metrics.REDIS_ERRORS.labels(type(error).__name__).inc()
            log.warning("%d refusal count(s) not kept: %s", counts.total(), type(error).__name__)

    async def day(self, day: date) -> dict[ErrorCode, int]:
        """Every code answered on ``day`` and how often (codes of a later version left out).

        Raises:
            Unavailable: Redis cannot be read.
        """
        async with redis_calls():
            raw = cast(dict[bytes, bytes], await self.redis.hgetall(refusals_key(day_text(day))))
        known = {code.value: code for code in ErrorCode}
        counts = {
            known[name.decode()]: int(count)
            for name, count in raw.items()
            if name.decode() in known
        }
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0].value)))
