"""A settable clock for the adjudicator, and Asia/Shanghai wall-clock times as epoch ms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from onestop.clock import SHANGHAI
from tests.support.adjudicator import Adjudicator


def at(text: str) -> int:
    """Epoch ms of an Asia/Shanghai wall-clock time."""
    moment = datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)
    return int(moment.astimezone(UTC).timestamp() * 1000)


class Clock:
    """A clock the test sets."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(adjudicator: Adjudicator) -> Clock:
    """The adjudicator's clock, set by the test."""
    fake = Clock()
    adjudicator.running.service.clock = fake
    return fake
