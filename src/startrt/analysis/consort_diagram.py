"""The CONSORT flow diagram as inline SVG: enrolment down the middle, exclusions to the right,
then one column per randomized arm (CONSORT 2010 flow diagram, Schulz et al., BMJ 2010).

Every arrow starts on the border of the box it leaves, or, for an exclusion, on the line
between two boxes of the middle column, at the height of the exclusion box's middle; that box
sits beside the line, between the two boxes, so no arrow starts inside a box and no box
overlaps another (`consort_layout`, which the tests measure)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from html import escape

from startrt.analysis.consort import ArmFlow, ConsortFlow
from startrt.protocol.vocabulary import EndOfTreatmentReason

WIDTH = 720
LINE_HEIGHT = 16
PADDING = 8
INDENT = 14
"""The width of one indent level (two leading spaces of a line) in px."""
GAP = 22
CENTRE_X, CENTRE_WIDTH = 170, 250
SIDE_X, SIDE_WIDTH = 450, 265
COLUMN_WIDTH = 320
COLUMNS_X = (10, 380)
CHARACTER_WIDTH = 7.2
"""The widest mean advance of a character of 12 px DejaVu Sans / Helvetica text (px): lines are
wrapped to fit their box at this width."""


def fitted(lines: tuple[str, ...], width: float) -> tuple[str, ...]:
    """`lines` wrapped to fit a box `width` wide; a line's continuation hangs two spaces
    deeper than the line (a wrapped reason stays apart from the next reason)."""
    wrapped: list[str] = []
    room = int((width - 2 * PADDING) / CHARACTER_WIDTH)
    for line in lines:
        indent = "  " if line.startswith(" ") else ""
        wrapped += textwrap.wrap(
            line.strip(), room, initial_indent=indent, subsequent_indent=indent + "  "
        ) or [""]
    return tuple(wrapped)


def _indent_levels(line: str) -> int:
    """How deep `line` is indented: one level per two leading spaces (`fitted`)."""
    return (len(line) - len(line.lstrip(" "))) // 2


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    width: float
    lines: tuple[str, ...]

    @property
    def height(self) -> float:
        return len(self.lines) * LINE_HEIGHT + 2 * PADDING

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def middle_x(self) -> float:
        return self.x + self.width / 2

    def svg(self) -> str:
        text = "".join(
            f'<tspan x="{self.x + PADDING + INDENT * _indent_levels(line)}" '
            f'dy="{LINE_HEIGHT if index else 0}">{escape(line.strip())}</tspan>'
            for index, line in enumerate(self.lines)
        )
        first_baseline = self.y + PADDING + LINE_HEIGHT * 0.75
        return (
            f'<rect x="{self.x}" y="{self.y}" width="{self.width}" height="{self.height}" '
            'fill="#f7f9fc" stroke="#33415c" rx="3"/>'
            f'<text x="{self.x + PADDING}" y="{first_baseline}" font-size="12">{text}</text>'
        )

    def contains(self, x: float, y: float) -> bool:
        """Whether (x, y) lies strictly inside the box (not on its border)."""
        return self.x < x < self.x + self.width and self.y < y < self.bottom

    def on_border(self, x: float, y: float) -> bool:
        inside = self.x <= x <= self.x + self.width and self.y <= y <= self.bottom
        return inside and not self.contains(x, y)


@dataclass(frozen=True)
class Arrow:
    x1: float
    y1: float
    x2: float
    y2: float

    def svg(self) -> str:
        return (
            f'<line x1="{self.x1}" y1="{self.y1}" x2="{self.x2}" y2="{self.y2}" '
            'stroke="#33415c" marker-end="url(#consort-arrow)"/>'
        )


@dataclass
class Layout:
    """The diagram's boxes and arrows, in drawing order."""

    boxes: list[_Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)

    def link(self, source: _Box, target: _Box) -> None:
        """An arrow from the bottom of `source` to the top of `target`."""
        self.arrows.append(Arrow(source.middle_x, source.bottom, target.middle_x, target.y))


def _arm_lines(flow: ArmFlow) -> list[tuple[str, ...]]:
    allocated: tuple[str, ...] = (f"Allocated to {flow.arm} (n={flow.allocated})",)
    if set(flow.treatment_arms) != {flow.arm}:
        allocated += tuple(f"  {arm}: n={count}" for arm, count in flow.treatment_arms.items())
    reasons = tuple(
        f"  {EndOfTreatmentReason(reason).label}: n={count}"
        for reason, count in flow.discontinued_reasons.items()
    )
    return [
        allocated,
        (f"Treated (n={flow.treated})", f"Not treated (n={flow.not_treated})"),
        (
            f"Completed treatment (n={flow.completed})",
            f"Discontinued (n={flow.discontinued})",
            *reasons,
            f"Ongoing (n={flow.ongoing})",
            f"Died (n={flow.died})",
        ),
        (f"Analysed, intention to treat (n={flow.analysed})",),
    ]


def _overlap_note(flow: ConsortFlow) -> tuple[str, ...]:
    """A line saying why the reasons add up to more than the not-eligible patients, if so."""
    if sum(r.patients for r in flow.not_eligible_reasons) > flow.not_eligible:
        return ("  (a patient counts under each criterion failed)",)
    return ()


def consort_layout(flow: ConsortFlow) -> Layout:
    """The boxes and arrows of `flow`'s diagram (module docstring)."""
    layout = Layout()
    centre = _Box(CENTRE_X, 10, CENTRE_WIDTH, (f"Screened (n={flow.screened})",))
    layout.boxes.append(centre)
    steps: list[tuple[str, tuple[str, ...]]] = [
        (
            f"Eligible (n={flow.eligible})",
            (
                f"Not eligible (n={flow.not_eligible})",
                *(f"  {r.reason}: n={r.patients}" for r in flow.not_eligible_reasons),
                *_overlap_note(flow),
                f"Eligibility pending (n={flow.eligibility_pending})",
            ),
        ),
        (
            f"Randomized (n={flow.randomized})",
            (f"Eligible, not randomized (n={flow.eligible_not_randomized})",),
        ),
    ]
    for line, side in steps:
        aside = _Box(SIDE_X, centre.bottom + GAP / 2, SIDE_WIDTH, fitted(side, SIDE_WIDTH))
        below = _Box(centre.x, aside.bottom + GAP / 2, centre.width, (line,))
        level = aside.y + aside.height / 2
        layout.link(centre, below)
        layout.arrows.append(Arrow(centre.middle_x, level, aside.x, level))
        layout.boxes += [below, aside]
        centre = below
    top = centre.bottom + GAP
    columns = COLUMNS_X if len(flow.arms) > 1 else (centre.middle_x - COLUMN_WIDTH / 2,)
    for x, arm in zip(columns, flow.arms, strict=False):
        previous, y = centre, top
        for lines in _arm_lines(arm):
            box = _Box(x, y, COLUMN_WIDTH, fitted(lines, COLUMN_WIDTH))
            layout.link(previous, box)
            layout.boxes.append(box)
            previous, y = box, box.bottom + GAP
    return layout


def consort_svg(flow: ConsortFlow) -> str:
    """The flow diagram of `flow` as an <svg> element sized to its content."""
    layout = consort_layout(flow)
    height = max(box.bottom for box in layout.boxes) + 10
    parts = [arrow.svg() for arrow in layout.arrows] + [box.svg() for box in layout.boxes]
    marker = (
        '<defs><marker id="consort-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#33415c"/></marker></defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="consort" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="CONSORT flow diagram" font-family="sans-serif">'
        f"{marker}{''.join(parts)}</svg>"
    )
