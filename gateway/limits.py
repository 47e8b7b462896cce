"""Limits on what one caller may ask of a gateway process.

Requests per client, refused authentications per address, uploads in flight.

All of them live in the process (a gateway of N processes allows N times the rates; the
settings say per process). They cost no Redis call and keep a bounded amount of state.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from onestop.errors import RateLimited, Unavailable
from onestop.redis_client import RedisClient, redis_failures_unavailable
from onestop.storage.layout import unknown_members_key


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst`` saved up.

    Keys that have not been seen for longest are forgotten beyond ``max_keys`` (a forgotten
    key starts again with a full bucket, which only ever favours the caller).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``key`` may spend ``cost`` (0 when it may now); nothing is spent."""
        bucket = self._refilled(key)
        return 0.0 if bucket.tokens >= cost else (cost - bucket.tokens) / self.rate

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` of ``key``'s tokens if it has them: 0 then, else the seconds to wait."""
        bucket = self._refilled(key)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate

    def _refilled(self, key: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            self._buckets.move_to_end(key)
        return bucket


class RequestLimiter:
    """Requests per client, and refused authentications per network address.

    A client over its rate is answered 429 with the seconds to wait; an address that keeps
    failing authentication (a forger, or a terminal with a wrong key) is answered 429 before
    its request is even read.
    """

    def __init__(
        self,
        *,
        per_client_rate: float,
        per_client_burst: float,
        refusals_rate: float,
        refusals_burst: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients = TokenBuckets(per_client_rate, per_client_burst, clock=clock)
        self.refusals = TokenBuckets(refusals_rate, refusals_burst, clock=clock)

    def admit_address(self, address: str) -> None:
        """Refuse an address whose refusals used up its allowance.

        Raises:
            RateLimited: too many refused requests from this address lately.
        """
        wait = self.refusals.wait(address)
        if wait:
            raise RateLimited(
                "too many refused requests from this address; check the client's key and "
                "clock, then send again",
                retry_after=wait,
            )

    def refused(self, address: str) -> None:
        """Count a refused authentication against the address."""
        self.refusals.take(address)

    def admit_client(self, client_id: str) -> None:
        """Spend one of the client's requests.

        Raises:
            RateLimited: the client is over its rate.
        """
        wait = self.clients.take(client_id)
        if wait:
            raise RateLimited(
                f"more requests than {self.clients.rate:g} a second (bursts of "
                f"{self.clients.burst:g}) from this client; send again after Retry-After",
                retry_after=wait,
            )


class UploadSlots:
    """How many large uploads (or other costly works) may be under way at once, per client too.

    A members file is spooled to disk and a catalog or mapping to memory before its signature
    can be checked; a PDF statement takes a second of a core to lay out. Bounding how many are
    in flight bounds what they can cost the settlements sharing the process.
    """

    def __init__(self, total: int, per_client: int, work: str = "upload") -> None:
        self.total = total
        self.per_client = per_client
        self.work = work
        self._in_flight: dict[str, int] = {}

    @contextmanager
    def slot(self, client_id: str) -> Iterator[None]:
        """Hold one upload slot for ``client_id`` while the body is read and used.

        Raises:
            RateLimited: the client already has its uploads in flight.
            Unavailable: the process already reads as many uploads as it may.
        """
        if self._in_flight.get(client_id, 0) >= self.per_client:
            raise RateLimited(
                f"this client already has {self.per_client} {self.work}(s) in progress; send "
                "the next when it is answered",
                retry_after=5,
            )
        if sum(self._in_flight.values()) >= self.total:
            raise Unavailable(f"the gateway has as many {self.work}s under way as it may; retry")
        self._in_flight[client_id] = self._in_flight.get(client_id, 0) + 1
        try:
            yield
        finally:
            self._in_flight[client_id] -= 1
            if not self._in_flight[client_id]:
                del self._in_flight[client_id]


class UnknownMemberGuard:
    """How often each client names a member id nobody has, counted in Redis for every process.

    A client past ``limit`` unknown ids in a window gets 429 for its eligibility checks,
    lookups and previews until the window ends, whatever member they name: trying ids one by
    one cannot tell which exist. Settlements naming an unknown member are answered 429 then
    too, instead of 404.
    """

    def __init__(
        self,
        redis: RedisClient,
        limit: int,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds
        self.clock = clock

    def _key(self) -> tuple[int, float]:
        now = self.clock()
        window = int(now // self.window)
        return window, (window + 1) * self.window - now

    async def check(self, client_id: str) -> None:
        """Refuse a client past its limit.

        Raises:
            RateLimited: too many unknown member ids this window.
            Unavailable: Redis cannot be asked.
        """
        window, remaining = self._key()
        async with redis_failures_unavailable("Redis is unavailable; retry"):
            count = await self.redis.get(unknown_members_key(client_id, window))
        if count is not None and int(count) >= self.limit:
            raise self._refusal(remaining)

    async def record(self, client_id: str) -> RateLimited | None:
        """Count one unknown member id; the refusal to answer instead, once past the limit."""
        window, remaining = self._key()
        key = unknown_members_key(client_id, window)
        async with redis_failures_unavailable("Redis is unavailable; retry"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, self.window + 60)
            count, _ = await pipe.execute()
        return self._refusal(remaining) if int(count) > self.limit else None

    def _refusal(self, remaining: float) -> RateLimited:
        return RateLimited(
            f"more than {self.limit} unknown member ids in {self.window} s from this client: "
            "check how the member id is read at the window; member lookups wait until the "
            "limit resets",
            retry_after=remaining,
        )


class DayTotalsCache:
    """The agency's day figures, read again at most every few seconds per process.

    A day's figures cost one read of each slot group's hash per client (1,024 per hospital):
    a console left open on the overview, or several staff reloading it, must not read them
    for every page. A closed day (past its grace) no longer changes and is kept longer.
    """

    def __init__(
        self, *, open_seconds: float = 5.0, closed_seconds: float = 3600.0, entries: int = 64
    ) -> None:
        self.open_seconds = open_seconds
        self.closed_seconds = closed_seconds
        self.entries = entries
        self._kept: dict[tuple[date, str], tuple[float, Any]] = {}

    def get(self, day: date, client_id: str) -> Any | None:
        """What was kept for the day and client (``""``: all), if still fresh."""
        kept = self._kept.get((day, client_id))
        if kept is None or kept[0] < time.monotonic():
            return None
        return kept[1]

    def put(self, day: date, client_id: str, figures: Any, *, closed: bool) -> None:
        """Keep the day's figures (the oldest entry goes when full)."""
        if len(self._kept) >= self.entries:
            del self._kept[next(iter(self._kept))]
        fresh_for = self.closed_seconds if closed else self.open_seconds
        self._kept[(day, client_id)] = (time.monotonic() + fresh_for, figures)
