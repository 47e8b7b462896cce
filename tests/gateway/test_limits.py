"""The process-local bounds: costly works in flight, and the agency's day figures kept."""

from __future__ import annotations

import time
from datetime import date

import pytest

from gateway.limits import DayTotalsCache, UploadSlots
from onestop.errors import RateLimited, Unavailable


def test_pdf_statements_are_laid_out_two_at_a_time_and_one_per_client() -> None:
    slots = UploadSlots(2, per_client=1, work="PDF statement")
    with slots.slot("H1"):
        with pytest.raises(RateLimited, match="1 PDF statement"), slots.slot("H1"):
            pass
        with (
            slots.slot("H2"),
            pytest.raises(Unavailable, match="PDF statements under way"),
            slots.slot("H3"),
        ):
            pass
    with slots.slot("H1"), slots.slot("H3"):
        pass


def test_day_figures_are_kept_a_few_seconds_and_a_closed_day_longer() -> None:
    cache = DayTotalsCache(open_seconds=0.05, closed_seconds=60, entries=2)
    today, yesterday = date(2026, 3, 9), date(2026, 3, 8)
    cache.put(today, "", "today's", closed=False)
    cache.put(yesterday, "", "yesterday's", closed=True)
    assert cache.get(today, "") == "today's"
    assert cache.get(today, "H1") is None, "one client's figures are not all clients'"
    time.sleep(0.06)
    assert cache.get(today, "") is None
    assert cache.get(yesterday, "") == "yesterday's"
    cache.put(date(2026, 3, 7), "", "older", closed=True)
    assert len(cache._kept) == 2, "the oldest entry goes when full"
