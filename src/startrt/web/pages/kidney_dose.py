"""The kidney-dose panel of the treatment page: the per-cycle budget (`protocol.kidney_budget`)
as a table, a flag when the cumulative reaches or exceeds the protocol's limit, the planner's
prediction for the proposed cycle with its reasoning (`protocol.plan_reasoning`), and a chart
drawn server-side as SVG (axes with values, cycle numbers, data labels, the limit line, the
predicted point dashed). Numbers are rounded and labelled by `startrt.fields`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from startrt import fields
from startrt.protocol.course import Course
from startrt.protocol.cycle_planning import CyclePlan
from startrt.protocol.definition import Protocol, RenalLimit, protocol_versions
from startrt.protocol.kidney_budget import (
    PERCENT_OF_LIMIT,
    KidneyDoseRow,
    kidney_dose_rows,
    kidneys_at_or_over,
    limit_flag,
    limit_text,
    limited_quantity_name,
    quantity_text,
)
from startrt.protocol.plan_reasoning import plan_reasoning, planned_kidney_dose, probability_text
from startrt.web.pages.charts import PlotFrame, Tick, nice_axis, value_ticks
from startrt.web.treatment.doses import course_of, made_on, planner_inputs
from startrt.web.treatment.models import PlanProposal
from startrt.web.trial.models import Patient
from startrt.web.trial.services import current_protocol

GY = "cumulative_kidney_dose_gy"

# the chart's view box and plot area (px)
WIDTH, HEIGHT = 640, 340
LEFT, RIGHT, TOP, BOTTOM = 58, 530, 18, 250


@dataclass(frozen=True)
class Point:
    """A cycle's cumulative dose on one line: its position, data label ("7.98") and the label's
    y (above the point, or below it for the lower of two kidneys); `over`: past the limit."""

    x: float
    y: float
    cycle: int
    text: str
    label_y: float
    over: bool


COLORS = {"governing": "#1f5f8b", "left": "#2a7f62", "right": "#b8562a"}


@dataclass(frozen=True)
class Series:
    """One line of the chart; `css` is its kind (governing, left, right), which also sets its
    colour and marker (circle, square, triangle: told apart without colour)."""

    name: str
    css: str
    points: tuple[Point, ...]
    labelled: bool

    @property
    def color(self) -> str:
        return COLORS[self.css]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Predicted:
    """The proposed cycle's predicted point, joined to the last measured one by a dash."""

    x: float
    y: float
    from_x: float
    from_y: float
    text: str
    label_y: float
    interval: tuple[float, float] | None  # y of the 90 % interval's ends


@dataclass(frozen=True)
class Chart(PlotFrame):
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    limit_y: float
    limit_text: str
    predicted: Predicted | None
    aria_label: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM

    @property
    def legend(self) -> list[tuple[float, Series]]:
        """Each series with its x under the axis title (never over the data)."""
        return [(LEFT + 170 * index, series) for index, series in enumerate(self.series)]


@dataclass(frozen=True)
class Prediction:
    """The planner's proposal for the next cycle, as the table's last row shows it."""

    cycle: int
    status: str
    activity: str
    added: str
    rate: str
    cumulative: str
    percent: str
    remaining: str
    interval: str | None
    probability: str | None
    total_gy: float  # for the chart: the predicted total and its 90 % interval, unrounded
    interval_gy: tuple[float, float] | None


@dataclass(frozen=True)
class KidneyDosePanel:
    limit: str  # "30 Gy"
    reads: str  # "mean-kidney dose"
    headings: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    over_rows: frozenset[int]  # cycles at or over the limit
    flag: str | None
    flag_state: str | None  # "reached" or "exceeded"
    prediction: Prediction | None
    reasoning: str | None
    chart: Chart | None
    notes: tuple[str, ...] = field(default=())


def _value(name: str, value: float | None) -> str:
    return fields.format_value(name, value)


def _dose_cell(dose: float | None, sd: float | None, name: str) -> str:
    """The dose, "± SD" when its standard uncertainty is known: "3.86 ± 0.20"."""
    text = _value(name, dose)
    return text if sd is None else f"{text} ± {_value(name, sd)}"


def _headings(limit: RenalLimit) -> tuple[str, ...]:
    return (
        "Cycle",
        fields.label("activity_gbq"),
        fields.label("left_kidney_dose_gy"),
        fields.label("right_kidney_dose_gy"),
        fields.label("left_kidney_gy_per_gbq"),
        fields.label("right_kidney_gy_per_gbq"),
        fields.label("cumulative_left_kidney_dose_gy"),
        fields.label("cumulative_right_kidney_dose_gy"),
        fields.label(limited_quantity_name(limit)),
        fields.label(PERCENT_OF_LIMIT),
        fields.label("remaining_kidney_budget_gy"),
    )


def _cells(row: KidneyDoseRow) -> tuple[str, ...]:
    return (
        str(row.cycle),
        _value("activity_gbq", row.activity_gbq),
        _dose_cell(row.left_kidney_dose_gy, row.left_kidney_dose_sd_gy, "left_kidney_dose_gy"),
        _dose_cell(row.right_kidney_dose_gy, row.right_kidney_dose_sd_gy, "right_kidney_dose_gy"),
        _value("left_kidney_gy_per_gbq", row.left_kidney_gy_per_gbq),
        _value("right_kidney_gy_per_gbq", row.right_kidney_gy_per_gbq),
        _value("cumulative_left_kidney_dose_gy", row.cumulative_left_kidney_dose_gy),
        _value("cumulative_right_kidney_dose_gy", row.cumulative_right_kidney_dose_gy),
        _value(GY, row.cumulative_limited_gy),
        _value(PERCENT_OF_LIMIT, row.percent_of_kidney_limit),
        _value("remaining_kidney_budget_gy", row.remaining_kidney_budget_gy),
    )


def _decision(proposal: PlanProposal) -> tuple[CyclePlan, Protocol] | None:
    """The stored plan and the protocol version it names (None if that version is gone)."""
    plan = CyclePlan.model_validate(proposal.plan)
    versions = protocol_versions().versions
    named = [v.protocol for v in versions if v.protocol.label == plan.protocol]
    return (plan, named[0]) if named else None


def proposal_reasoning(proposal: PlanProposal) -> str | None:
    """The planner's reasoning of any stored proposal (`protocol.plan_reasoning`), for the
    cycle page; None if the protocol version it names is no longer shipped."""
    decided = _decision(proposal)
    return None if decided is None else plan_reasoning(*decided)


def _current_proposal(patient: Patient) -> PlanProposal | None:
    """The latest proposal if it was made on the cycles and doses recorded now (proposed, or
    accepted or overridden for a cycle not yet given); None once its cycle is given or its
    inputs were corrected."""
    proposal: PlanProposal | None = (
        patient.plan_proposals.exclude(status=PlanProposal.Status.SUPERSEDED)
        .order_by("-id")
        .first()
    )
    if proposal is None or not made_on(proposal, planner_inputs(patient)):
        return None
    return proposal


def _prediction(
    proposal: PlanProposal, plan: CyclePlan, protocol: Protocol, limit: RenalLimit
) -> Prediction | None:
    planned = planned_kidney_dose(plan, protocol)
    if planned is None:
        return None
    limit_gy = limit.limit_gy
    interval = plan.predicted_cumulative_kidney_gy_interval
    probability = plan.probability_over_limit
    return Prediction(
        cycle=plan.next_cycle,
        status=proposal.get_status_display().lower(),
        activity=_value("activity_gbq", float(planned.activity_gbq)),
        added=_value(GY, float(planned.added)),
        rate=_value("kidney_gy_per_gbq", float(planned.rate)),
        cumulative=_value(GY, float(planned.total)),
        percent=_value(PERCENT_OF_LIMIT, float(100 * planned.total) / limit_gy),
        remaining=_value("remaining_kidney_budget_gy", limit_gy - float(planned.total)),
        interval=None
        if interval is None
        else f"{_value(GY, interval[0])}–{_value(GY, interval[1])}",
        probability=None if probability is None else probability_text(probability),
        total_gy=float(planned.total),
        interval_gy=interval,
    )


def kidney_dose_panel(patient: Patient) -> KidneyDosePanel:
    """Everything the panel shows for `patient`, under the protocol in force."""
    limit = current_protocol().renal_limit
    course, _ = course_of(patient)
    rows = kidney_dose_rows(course, limit)
    latest = rows[-1] if rows else None
    flag = None if latest is None else limit_flag(latest, limit)
    proposal = _current_proposal(patient)
    decided = None if proposal is None else _decision(proposal)
    prediction = reasoning = None
    if proposal is not None and decided is not None:
        plan, protocol = decided
        prediction = _prediction(proposal, plan, protocol, limit)
        reasoning = plan_reasoning(plan, protocol)
    return KidneyDosePanel(
        limit=limit_text(limit),
        reads=quantity_text(limit),
        headings=_headings(limit),
        rows=tuple(_cells(row) for row in rows),
        over_rows=frozenset(row.cycle for row in rows if row.state != "within"),
        flag=flag,
        flag_state=None if flag is None or latest is None else latest.state,
        prediction=prediction,
        reasoning=reasoning,
        chart=kidney_dose_svg(rows, limit, prediction) if rows else None,
        notes=_single_kidney_notes(course, limit, latest),
    )


def _single_kidney_notes(
    course: Course, limit: RenalLimit, latest: KidneyDoseRow | None
) -> tuple[str, ...]:
    """Under a limit on the mean of both kidneys that the mean keeps, a kidney whose own
    cumulative dose is at or over the limit is named."""
    mean_dose_limit = limit.kidney == "mean" and limit.quantity == "AD"
    if latest is None or latest.state != "within" or not mean_dose_limit:
        return ()
    return tuple(
        f"The {side} kidney's cumulative dose {_value(GY, total)} Gy is at or over "
        f"{limit_text(limit)}; the limit reads the mean of both kidneys "
        f"({_value(GY, latest.cumulative_limited_gy)} Gy)."
        for side, total in kidneys_at_or_over(course, limit)
    )


def kidney_dose_svg(
    rows: Sequence[KidneyDoseRow],
    limit: RenalLimit,
    prediction: Prediction | None,
) -> Chart:
    """The chart's geometry: the cumulative per kidney (and the mean a mean-kidney limit reads)
    per cycle, the limit line, the proposed cycle's predicted total dashed with its 90 %
    interval, axis ticks in Gy and cycle numbers."""
    predicted_total = None if prediction is None else prediction.total_gy
    interval = None if prediction is None else prediction.interval_gy
    values = [
        value
        for row in rows
        for value in (
            row.cumulative_left_kidney_dose_gy,
            row.cumulative_right_kidney_dose_gy,
            row.cumulative_limited_gy,
        )
        if value is not None
    ]
    highest = max([limit.limit_gy, *values, predicted_total or 0.0, *(interval or ())])
    top, step = nice_axis(highest)
    cycles = len(rows) + (1 if predicted_total is not None else 0)
    band = (RIGHT - LEFT) / max(cycles, 1)

    def x(cycle: int) -> float:
        return LEFT + band * (cycle - 0.5)

    def y(gy: float) -> float:
        return BOTTOM - (BOTTOM - TOP) * gy / top

    def points(
        values: Sequence[float | None], above: Sequence[bool], over: Sequence[bool]
    ) -> tuple[Point, ...]:
        return tuple(
            Point(x(cycle), y(value), cycle, _value(GY, value), y(value) + (-8 if up else 16), bad)
            for cycle, (value, up, bad) in enumerate(zip(values, above, over, strict=True), 1)
            if value is not None
        )

    def over(side: str) -> list[bool]:
        """Whether the limit's state after each cycle is "exceeded" on `side`'s line."""
        return [row.state == "exceeded" and row.governing_side == side for row in rows]

    left = [row.cumulative_left_kidney_dose_gy for row in rows]
    right = [row.cumulative_right_kidney_dose_gy for row in rows]
    left_higher = [(a or 0) >= (b or 0) for a, b in zip(left, right, strict=True)]
    right_higher = [not higher for higher in left_higher]
    kidneys_labelled = limit.kidney != "mean"
    series = [
        Series("Left kidney", "left", points(left, left_higher, over("left")), kidneys_labelled),
        Series(
            "Right kidney", "right", points(right, right_higher, over("right")), kidneys_labelled
        ),
    ]
    if limit.kidney == "mean":
        mean = [row.cumulative_limited_gy for row in rows]
        everywhere = [True] * len(rows)
        series.append(  # drawn last: on top of the kidneys' lines
            Series(
                "Mean of both kidneys", "governing", points(mean, everywhere, over("mean")), True
            ),
        )
    predicted = None
    if predicted_total is not None and rows[-1].cumulative_limited_gy is not None:
        last = rows[-1]
        predicted = Predicted(
            x=x(cycles),
            y=y(predicted_total),
            from_x=x(last.cycle),
            from_y=y(last.cumulative_limited_gy or 0.0),
            text=f"{_value(GY, predicted_total)} predicted",
            label_y=y(predicted_total) - 8,
            interval=None if interval is None else (y(interval[0]), y(interval[1])),
        )
    unit = "Gy" if limit.quantity == "AD" else "Gy BED"
    return Chart(
        series=tuple(series),
        x_ticks=tuple(Tick(x(cycle), str(cycle)) for cycle in range(1, cycles + 1)),
        y_ticks=value_ticks(top, step, y),
        limit_y=y(limit.limit_gy),
        limit_text=f"Limit {limit_text(limit)}",
        predicted=predicted,
        aria_label=_aria_label(rows, limit, prediction, unit),
    )


def _aria_label(
    rows: Sequence[KidneyDoseRow], limit: RenalLimit, prediction: Prediction | None, unit: str
) -> str:
    """The chart's numbers in words (the table below is its full text alternative)."""

    def listed(name: str) -> str:
        return ", ".join(
            f"cycle {row.cycle} {_value(GY, getattr(row, name))} {unit}" for row in rows
        )

    text = (
        f"Cumulative kidney dose per cycle against the {limit_text(limit)} limit. "
        f"{quantity_text(limit).capitalize()}: {listed('cumulative_limited_gy')}. "
        f"Left kidney: {listed('cumulative_left_kidney_dose_gy')}. "
        f"Right kidney: {listed('cumulative_right_kidney_dose_gy')}."
    )
    if prediction is not None:
        text += (
            f" Predicted after cycle {prediction.cycle} ({prediction.activity} GBq): "
            f"{prediction.cumulative} {unit}."
        )
    return text
