"""Server-side SVG chart geometry shared by the pages (no JavaScript chart library, nothing from
another origin: the CSP allows 'self' only): axis ticks on "nice" steps, time axes in months,
and horizontal bar charts whose labels sit above the bars (never cut, never over a bar)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

TICKS_MAX = 6
HEADROOM = 1.08


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


class PlotFrame:
    """What a chart's template reads of its plotting area (the chart dataclasses give the
    edges as fields): the middle of each axis, where the axis titles go."""

    left: int
    right: int
    top: int
    bottom: int

    @property
    def middle_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def middle_y(self) -> float:
        return (self.top + self.bottom) / 2


def nice_axis(highest: float, ticks_max: int = TICKS_MAX) -> tuple[float, float]:
    """The axis' top and tick step: the smallest step of 1, 2 or 5 x 10^n (n >= 0) that covers
    `highest` with 8 % headroom in at most `ticks_max` steps (at least one step)."""
    wanted = highest * HEADROOM
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * 10**exponent
            top = max(math.ceil(wanted / step), 1) * step
            if top / step <= ticks_max:
                return float(top), float(step)
        exponent += 1


def value_ticks(top: float, step: float, position: Callable[[float], float]) -> tuple[Tick, ...]:
    """A tick at every `step` from 0 to `top`, placed by `position(value)`."""
    return tuple(
        Tick(position(step * index), f"{step * index:g}") for index in range(round(top / step) + 1)
    )


def add_months(day: date, months: int) -> date:
    """`day` + whole calendar `months` (the day of the month kept, capped at 28)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, min(day.day, 28))


MONTH_STEPS = (1, 3, 6, 12, 24, 60)


def month_ticks(first: date, last: date, ticks_max: int = 9) -> tuple[date, ...]:
    """Dates from `first` every 1, 3, 6, 12, 24 or 60 months (the smallest step giving at
    most `ticks_max` ticks) up to `last`."""
    span = (last.year - first.year) * 12 + last.month - first.month
    step = next((s for s in MONTH_STEPS if span // s + 1 <= ticks_max), MONTH_STEPS[-1])
    return tuple(add_months(first, k * step) for k in range(span // step + 1))


# --- horizontal bar charts --------------------------------------------------------------------

BAR_WIDTH = 720
BAR_MARGIN, BAR_RIGHT = 16, 660
BAR_ROW_ABOVE = 40  # px per bar with its label above it
BAR_ROW_BESIDE = 24  # px per bar with its label to its left
SHORT_LABEL_CHARS = 24  # labels up to this long sit to the left of their bars
CHAR_PX = 7.5  # a generous width of a 13 px character, for the label column
GROUP_ROW = 24  # px for a group's heading
BAR_AXIS = 44  # px under the bars: the axis, its ticks and its title


@dataclass(frozen=True)
class BarRow:
    """One bar: what it counts and how many."""

    label: str
    value: int


@dataclass(frozen=True)
class Bar:
    """A bar from `left` to `end`, its top at `y`; its label's anchor point and alignment."""

    label: str
    value: int
    y: float
    left: float
    length: float
    label_x: float
    label_y: float
    label_anchor: str

    @property
    def end(self) -> float:
        return self.left + self.length


@dataclass(frozen=True)
class Heading:
    text: str
    y: float


@dataclass(frozen=True)
class BarChart:
    bars: tuple[Bar, ...]
    headings: tuple[Heading, ...]
    ticks: tuple[Tick, ...]
    axis_title: str
    aria_label: str
    height: float
    left: float
    width: int = BAR_WIDTH
    margin: int = BAR_MARGIN
    right: int = BAR_RIGHT
    bar_height: int = 14

    @property
    def bottom(self) -> float:
        return self.height - BAR_AXIS

    @property
    def middle_x(self) -> float:
        return (self.left + BAR_RIGHT) / 2


def bar_chart(
    groups: Sequence[tuple[str, Sequence[BarRow]]], axis_title: str, aria_label: str
) -> BarChart:
    """Bars in groups (a group's heading is its name; "" for none), scaled on one axis of
    counts with ticks on nice steps; short labels to the left of their bars, long ones above
    them (whole, never cut)."""
    rows_all = [row for _, rows in groups for row in rows]
    highest = max((row.value for row in rows_all), default=0)
    top, step = nice_axis(max(highest, 1))
    longest = max((len(row.label) for row in rows_all), default=0)
    beside = longest <= SHORT_LABEL_CHARS
    left = BAR_MARGIN + (longest * CHAR_PX + 8 if beside else 0)
    scale = (BAR_RIGHT - left) / top
    bars: list[Bar] = []
    headings: list[Heading] = []
    y = 8.0
    for name, rows in groups:
        if name:
            headings.append(Heading(name, y + 14))
            y += GROUP_ROW
        for row in rows:
            if beside:
                bar_y, label = y + 4, (left - 8, y + 15, "end")
            else:
                bar_y, label = y + 20, (left, y + 14, "start")
            bars.append(Bar(row.label, row.value, bar_y, left, row.value * scale, *label))
            y += BAR_ROW_BESIDE if beside else BAR_ROW_ABOVE
    return BarChart(
        bars=tuple(bars),
        headings=tuple(headings),
        ticks=value_ticks(top, step, lambda value: left + value * scale),
        axis_title=axis_title,
        aria_label=aria_label,
        height=y + 8 + BAR_AXIS,
        left=left,
    )
