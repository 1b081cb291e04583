"""The CONSORT flow diagram as inline SVG: enrolment down the middle, exclusions to the right,
then one column per randomized arm (CONSORT 2010 flow diagram, Schulz et al., BMJ 2010)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from startrt.analysis.consort import ArmFlow, ConsortFlow
from startrt.protocol.vocabulary import EndOfTreatmentReason

WIDTH = 720
LINE_HEIGHT = 16
PADDING = 8
INDENT = 14
GAP = 22
CENTRE_X, CENTRE_WIDTH = 170, 250
SIDE_X, SIDE_WIDTH = 450, 265
COLUMN_WIDTH = 320
COLUMNS_X = (10, 380)


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
            f'<tspan x="{self.x + PADDING + (INDENT if line.startswith(" ") else 0)}" '
            f'dy="{LINE_HEIGHT if index else 0}">{escape(line.strip())}</tspan>'
            for index, line in enumerate(self.lines)
        )
        first_baseline = self.y + PADDING + LINE_HEIGHT * 0.75
        return (
            f'<rect x="{self.x}" y="{self.y}" width="{self.width}" height="{self.height}" '
            'fill="#f7f9fc" stroke="#33415c" rx="3"/>'
            f'<text x="{self.x + PADDING}" y="{first_baseline}" font-size="12">{text}</text>'
        )


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#33415c" '
        'marker-end="url(#consort-arrow)"/>'
    )


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


def consort_svg(flow: ConsortFlow) -> str:
    """The flow diagram of `flow` as an <svg> element sized to its content."""
    centre = _Box(CENTRE_X, 10, CENTRE_WIDTH, (f"Screened (n={flow.screened})",))
    parts = [centre.svg()]
    steps: list[tuple[str, tuple[str, ...]]] = [
        (
            f"Eligible (n={flow.eligible})",
            (
                f"Not eligible (n={flow.not_eligible})",
                f"Eligibility pending (n={flow.eligibility_pending})",
            ),
        ),
        (
            f"Randomized (n={flow.randomized})",
            (f"Eligible, not randomized (n={flow.eligible_not_randomized})",),
        ),
    ]
    for line, side in steps:
        below = _Box(centre.x, centre.bottom + GAP, centre.width, (line,))
        aside = _Box(SIDE_X, centre.bottom + 2, SIDE_WIDTH, side)
        level = aside.y + aside.height / 2
        parts += [_arrow(centre.middle_x, centre.bottom, centre.middle_x, below.y), below.svg()]
        parts += [_arrow(centre.middle_x, level, aside.x, level), aside.svg()]
        centre = below
    top = centre.bottom + GAP
    bottom = top
    for x, arm in zip(COLUMNS_X, flow.arms, strict=False):
        previous_bottom, previous_x = centre.bottom, centre.middle_x
        y = top
        for lines in _arm_lines(arm):
            box = _Box(x, y, COLUMN_WIDTH, lines)
            parts += [_arrow(previous_x, previous_bottom, box.middle_x, box.y), box.svg()]
            previous_bottom, previous_x = box.bottom, box.middle_x
            y = box.bottom + GAP
        bottom = max(bottom, previous_bottom)
    height = bottom + 10
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
