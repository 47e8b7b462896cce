"""Bar charts drawn on the server: the geometry here, the SVG elements in the templates.

The console loads no script, so a chart is plain SVG in the page. Each bar is a row: its
label, its value as the page prints it, and its segments' widths in the chart's units.
Values are integers (fen, counts); a negative value (a day whose reversals outweigh its
settlements) is drawn as an empty bar, its figure still printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 100.0
"""The widest bar, in the chart's own units (the SVG scales to the page)."""

PALETTE = ("#2f6f9f", "#6aa84f", "#e69138", "#8e7cc3", "#c0504d", "#7f7f7f")
"""Fill colours of the segments, in order (distinct in greyscale print too)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a bar."""

    name: str
    value: int
    start: float
    width: float
    colour: str


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of a chart: its label, its figure and its segments."""

    label: str
    value: int
    shown: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """A horizontal bar chart; ``legend`` names the segments' colours (stacked charts)."""

    title: str
    bars: tuple[Bar, ...]
    legend: tuple[tuple[str, str], ...]

    @property
    def height(self) -> int:
        """Rows of 10 units, a little room at the end."""
        return 10 * len(self.bars) + 2


def _scale(values: Sequence[int]) -> float:
    largest = max((value for value in values if value > 0), default=0)
    return WIDTH / largest if largest else 0.0


def bar_chart(
    title: str, rows: Sequence[tuple[str, int]], shown: Sequence[str] | None = None
) -> Chart:
    """One bar per row, scaled to the largest.

    Args:
        title: what the chart shows (also its accessible name).
        rows: (label, value) in the order drawn.
        shown: how each value is printed (default: the integer).
    """
    scale = _scale([value for _, value in rows])
    bars = tuple(
        Bar(
            label,
            value,
            shown[index] if shown is not None else str(value),
            (Segment(label, value, 0.0, max(0, value) * scale, PALETTE[0]),),
        )
        for index, (label, value) in enumerate(rows)
    )
    return Chart(title, bars, ())


def stacked_chart(
    title: str,
    parts: Sequence[str],
    rows: Sequence[tuple[str, Sequence[int]]],
    shown: Sequence[str],
) -> Chart:
    """One bar per row, each split into ``parts`` (the same order in every row).

    Args:
        title: what the chart shows.
        parts: the segments' names, one colour each.
        rows: (label, one value per part).
        shown: how each row's total is printed.
    """
    totals = [sum(max(0, value) for value in values) for _, values in rows]
    scale = _scale(totals)
    bars = []
    for index, (label, values) in enumerate(rows):
        start = 0.0
        segments = []
        for part, value, colour in zip(parts, values, PALETTE, strict=False):
            width = max(0, value) * scale
            segments.append(Segment(part, value, start, width, colour))
            start += width
        bars.append(Bar(label, sum(values), shown[index], tuple(segments)))
    legend = tuple(zip(parts, PALETTE, strict=False))
    return Chart(title, tuple(bars), legend)
