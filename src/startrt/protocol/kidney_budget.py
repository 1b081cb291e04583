"""The kidney-dose budget of a course, cycle by cycle: each kidney's dose, Gy/GBq and cumulative
dose, and the cumulative quantity the protocol's renal limit reads (absorbed dose or BED of the
mean of both kidneys, one kidney, or the worse one: `course.GOVERNING_SIDES`) with its share of
the limit, the budget left, and whether the limit is kept, reached or exceeded.

The limit is read as the planner reads it (`cycle_planning`): the cumulative of every side the
limit names, exactly (`fractions.Fraction` of the values as entered), the highest of them
governing; a cumulative equal to the limit keeps it (a full cycle that lands on it is planned),
so exactly 30.00 Gy of a 30 Gy limit is "reached" (no budget left for another cycle) and 30.01 Gy
is "exceeded".
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from startrt import fields
from startrt.protocol.course import GOVERNING_SIDES, Course, CycleDose, Side, exact
from startrt.protocol.definition import RenalLimit

LimitState = Literal["within", "reached", "exceeded"]
PERCENT_OF_LIMIT = "percent_of_kidney_limit"
fields.register(PERCENT_OF_LIMIT, "Of the limit", "%", 1)


def limit_state(cumulative: Fraction, limit: RenalLimit) -> LimitState:
    """Kept (under), reached (equal: no budget left) or exceeded (over), exactly."""
    limit_gy = exact(limit.limit_gy)
    if cumulative > limit_gy:
        return "exceeded"
    return "reached" if cumulative == limit_gy else "within"


def limited_cumulative(course: Course, limit: RenalLimit) -> tuple[Side, Fraction] | None:
    """The side whose cumulative quantity (AD or BED, as the limit reads) governs, and that
    quantity, exactly: the highest over the sides the limit names (the first on a tie). None
    when a cycle lacks what the limit reads."""
    totals: list[tuple[Side, Fraction]] = []
    for side in GOVERNING_SIDES[limit.kidney]:
        total = (
            course.exact_cumulative_gy(side)
            if limit.quantity == "AD"
            else course.exact_cumulative_bed_gy(side, limit)
        )
        if total is None:
            return None
        totals.append((side, total))
    return max(totals, key=lambda item: item[1])


@dataclass(frozen=True)
class KidneyDoseRow:
    """One cycle of the budget: doses in Gy, activities in GBq, `percent_of_kidney_limit` in %
    (None where a dose is missing)."""

    cycle: int
    activity_gbq: float
    left_kidney_dose_gy: float | None
    right_kidney_dose_gy: float | None
    left_kidney_dose_sd_gy: float | None
    right_kidney_dose_sd_gy: float | None
    left_kidney_gy_per_gbq: float | None
    right_kidney_gy_per_gbq: float | None
    cumulative_left_kidney_dose_gy: float | None
    cumulative_right_kidney_dose_gy: float | None
    cumulative_limited_gy: float | None
    governing_side: Side | None
    percent_of_kidney_limit: float | None
    remaining_kidney_budget_gy: float | None
    state: LimitState | None


def _per_gbq(dose: Fraction | None, cycle: CycleDose) -> float | None:
    return None if dose is None else float(dose / cycle.exact_activity_gbq)


def _as_float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def kidney_dose_rows(course: Course, limit: RenalLimit) -> tuple[KidneyDoseRow, ...]:
    """The budget after each cycle of `course` (module docstring)."""
    rows = []
    limit_gy = exact(limit.limit_gy)
    for index, cycle in enumerate(course.cycles):
        so_far = Course(course.cycles[: index + 1])
        left, right = cycle.exact_dose_gy("left"), cycle.exact_dose_gy("right")
        governing = limited_cumulative(so_far, limit)
        side, total = governing if governing is not None else (None, None)
        rows.append(
            KidneyDoseRow(
                cycle=index + 1,
                activity_gbq=cycle.activity_gbq,
                left_kidney_dose_gy=_as_float(left),
                right_kidney_dose_gy=_as_float(right),
                left_kidney_dose_sd_gy=cycle.left_kidney_dose_sd_gy,
                right_kidney_dose_sd_gy=cycle.right_kidney_dose_sd_gy,
                left_kidney_gy_per_gbq=_per_gbq(left, cycle),
                right_kidney_gy_per_gbq=_per_gbq(right, cycle),
                cumulative_left_kidney_dose_gy=_as_float(so_far.exact_cumulative_gy("left")),
                cumulative_right_kidney_dose_gy=_as_float(so_far.exact_cumulative_gy("right")),
                cumulative_limited_gy=_as_float(total),
                governing_side=side,
                percent_of_kidney_limit=None if total is None else float(100 * total / limit_gy),
                remaining_kidney_budget_gy=None if total is None else float(limit_gy - total),
                state=None if total is None else limit_state(total, limit),
            )
        )
    return tuple(rows)


def limited_quantity_name(limit: RenalLimit) -> str:
    """The field name of the cumulative quantity the limit reads, for its label:
    `cumulative_mean_kidney_dose_gy`, `cumulative_worse_kidney_dose_gy`; for a BED limit
    `cumulative_kidney_bed_gy`."""
    if limit.quantity == "BED":
        return "cumulative_kidney_bed_gy"
    return f"cumulative_{limit.kidney}_kidney_dose_gy"


def limit_text(limit: RenalLimit) -> str:
    """The limit as people read it: "30 Gy" or "40 Gy BED"."""
    unit = "Gy" if limit.quantity == "AD" else "Gy BED"
    return f"{limit.limit_gy:g} {unit}"


def quantity_text(limit: RenalLimit) -> str:
    """What the limit reads, in words: "mean-kidney dose", "worse-kidney BED"."""
    return f"{limit.kidney}-kidney {'dose' if limit.quantity == 'AD' else 'BED'}"


def limit_flag(row: KidneyDoseRow, limit: RenalLimit) -> str | None:
    """The sentence flagging a cumulative at or over the limit (None while under it):
    "Cumulative mean-kidney dose 30.25 Gy exceeds the 30 Gy limit (100.8 %)"."""
    if row.state not in ("reached", "exceeded"):
        return None
    unit = "Gy" if limit.quantity == "AD" else "Gy BED"
    side = f" ({row.governing_side} kidney)" if limit.kidney == "worse" else ""
    total = fields.format_value("cumulative_kidney_dose_gy", row.cumulative_limited_gy)
    share = fields.format_value(PERCENT_OF_LIMIT, row.percent_of_kidney_limit)
    verb = "exceeds" if row.state == "exceeded" else "has reached"
    text = (
        f"Cumulative {quantity_text(limit)}{side} {total} {unit} {verb} the "
        f"{limit_text(limit)} limit ({share} %)"
    )
    return text if row.state == "exceeded" else text + ": no budget is left for another cycle"


def kidneys_at_or_over(course: Course, limit: RenalLimit) -> tuple[tuple[Side, float], ...]:
    """Each kidney whose own cumulative absorbed dose is at or over the limit's value, with that
    dose (exactly compared): worth naming where the limit reads the mean of both kidneys."""
    limit_gy = exact(limit.limit_gy)
    over = []
    for side in GOVERNING_SIDES["worse"]:
        total = course.exact_cumulative_gy(side)
        if total is not None and total >= limit_gy:
            over.append((side, float(total)))
    return tuple(over)
