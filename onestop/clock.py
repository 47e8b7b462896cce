"""Time as the contract speaks it: ISO 8601 with offset, in Asia/Shanghai."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone

# China has kept UTC+8 without daylight saving since 1991: a fixed offset needs no tz database.
SHANGHAI_OFFSET = timedelta(hours=8)
SHANGHAI = timezone(SHANGHAI_OFFSET, "Asia/Shanghai")


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def iso_from_ms(epoch_ms: int) -> str:
    """``2026-03-09T10:15:02.123+08:00`` for an epoch time in milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).astimezone(SHANGHAI)
    return moment.isoformat(timespec="milliseconds")


def settlement_day(epoch_ms: int) -> date:
    """The Asia/Shanghai calendar day of a moment (the settlement day of reconciliation)."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).astimezone(SHANGHAI).date()


def today() -> date:
    """Today in Asia/Shanghai (the settlement day now)."""
    return settlement_day(now_ms())


def day_closes_ms(day: date) -> int:
    """When a settlement day closes: the next midnight in Asia/Shanghai (epoch ms)."""
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
    return int(midnight.timestamp() * 1000)
