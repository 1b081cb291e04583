"""The report's figures, drawn with matplotlib (Agg) and returned as SVG text: Kaplan-Meier
curves with their bands and the numbers at risk, cumulative kidney dose per patient against the
limit, cycles per patient, worst toxicity grade by term, and eGFR over time. Each arm of the
protocol keeps one colour in every figure (`colours`); the arms pooled (the open report,
`startrt.analysis.pooled`) are drawn in `POOLED_COLOUR`. Legends stand outside the plotting area
so they never cover a line."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to SVG
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from startrt.analysis.groups import arm_ids
from startrt.analysis.pooled import POOLED
from startrt.analysis.survival import KaplanMeier
from startrt.protocol.definition import Protocol

DAYS_PER_MONTH = 365.25 / 12
PALETTE = ("#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
GRADE_COLOURS = ("#fee391", "#fec44f", "#fe9929", "#d95f0e", "#7f2704")
POOLED_COLOUR = "#128a96"
OVER_LIMIT_COLOUR = "#000000"
SOURCE_LABELS = {"lab": "laboratory", "adverse_event": "reported AE"}
OUTSIDE_RIGHT = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}
"""Legend placement beside the plotting area, at its top right."""
matplotlib.rcParams.update(
    {"svg.fonttype": "none", "svg.hashsalt": "startrt", "font.size": 9, "axes.grid": True}
)


def colours(protocol: Protocol) -> dict[str, str]:
    """A colour per arm: the randomized arms, then the treatment arms (an id in both keeps its
    first colour), in the protocol's order."""
    names = dict.fromkeys((*arm_ids(protocol, "arm"), *arm_ids(protocol, "treatment_arm")))
    palette = {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}
    return palette | {POOLED: POOLED_COLOUR}


def svg(figure: Figure) -> str:
    """The figure as SVG text (no date in the metadata: the same data give the same file)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def km_figure(
    curves: Sequence[tuple[str, KaplanMeier]],
    title: str,
    protocol: Protocol,
    step_months: float = 6.0,
) -> str:
    """Kaplan-Meier curves (months) with their pointwise bands, censoring marks, and the
    numbers at risk every `step_months` in a table under the axis."""
    figure = plt.figure(figsize=(7.5, 4.4))
    grid = figure.add_gridspec(2, 1, height_ratios=(4, 1.1), hspace=0.45)
    axis = figure.add_subplot(grid[0])
    table = figure.add_subplot(grid[1], sharex=axis)
    longest = max(float(km.time_days[-1]) for _, km in curves) / DAYS_PER_MONTH
    ticks = np.arange(0.0, longest + 1e-9, step_months)
    palette = colours(protocol)
    for row, (label, km) in enumerate(curves):
        colour = palette[label]
        months = km.time_days / DAYS_PER_MONTH
        axis.step(months, km.survival, where="post", color=colour, label=label)
        axis.fill_between(months, km.lower, km.upper, step="post", color=colour, alpha=0.15)
        censored = km.at_risk - km.events - np.append(km.at_risk[1:], 0) > 0
        axis.plot(months[censored], km.survival[censored], "|", color=colour, markersize=8)
        at_risk = km.numbers_at_risk(ticks * DAYS_PER_MONTH)
        for tick, count in zip(ticks, at_risk, strict=True):
            table.text(tick, -row, str(count), ha="center", va="center", color=colour)
    right = max(longest, float(ticks[-1]), 1.0) * 1.03
    axis.set(title=title, ylabel="probability", ylim=(-0.02, 1.02), xlim=(-0.04 * right, right))
    axis.legend(**OUTSIDE_RIGHT)
    table.set(ylim=(-len(curves) + 0.5, 0.5), xlabel="months since randomization")
    table.set_yticks([-row for row in range(len(curves))], [label for label, _ in curves])
    table.set_title("numbers at risk", loc="left", fontsize=9)
    table.grid(False)
    table.set_xticks(ticks)
    for side in ("top", "right", "left"):
        table.spines[side].set_visible(False)
    return svg(figure)


def kidney_dose_figure(
    cumulative: pd.DataFrame, limit_gy: float | None, protocol: Protocol, groups: Sequence[str]
) -> str:
    """Cumulative kidney absorbed dose per patient after each cycle, by treatment arm (`groups`),
    with the renal limit; a patient over the limit is drawn in black, and named unless the arms
    are pooled (the open report names no patient). `cumulative`: safety.cumulative_doses."""
    return svg(kidney_dose_drawing(cumulative, limit_gy, protocol, groups))


def kidney_dose_drawing(
    cumulative: pd.DataFrame, limit_gy: float | None, protocol: Protocol, groups: Sequence[str]
) -> Figure:
    """The figure of `kidney_dose_figure`, for measuring before it is written."""
    figure, axis = plt.subplots(figsize=(7.5, 4.2))
    palette, named = colours(protocol), tuple(groups) != (POOLED,)
    for (group, trial_id), patient in cumulative.groupby(["treatment_arm", "trial_id"], sort=True):
        cycles = patient["cycle"].astype(int).to_numpy()
        doses = patient["cumulative_kidney_dose_gy"].to_numpy(dtype=float)
        over = limit_gy is not None and float(np.nanmax(doses)) > limit_gy
        colour = OVER_LIMIT_COLOUR if over else palette[str(group)]
        axis.plot(cycles, doses, "o-", color=colour, alpha=1.0 if over else 0.7, markersize=3)
        if over and named:
            axis.annotate(
                str(trial_id),
                (cycles[-1], doses[-1]),
                xytext=(4, 2),
                textcoords="offset points",
                fontsize=8,
                fontweight="bold",
            )
    for group in groups:
        axis.plot([], [], "o-", color=palette[group], label=group)
    if limit_gy is not None:
        axis.axhline(limit_gy, color="#555555", linestyle="--", label=f"limit {limit_gy:g} Gy")
        axis.plot([], [], "o-", color=OVER_LIMIT_COLOUR, label="patient over the limit")
    axis.set(xlabel="cycle", ylabel="cumulative kidney absorbed dose (Gy)", title=protocol.label)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(**OUTSIDE_RIGHT)
    return figure


def cycles_figure(per_patient: pd.DataFrame, protocol: Protocol, groups: Sequence[str]) -> str:
    """Patients by number of cycles received, one bar per treatment arm of `groups` (every
    randomized patient; `per_patient`: resources.resources_per_patient)."""
    figure, axis = plt.subplots(figsize=(7.5, 3.8))
    most = int(per_patient["cycles"].max()) if len(per_patient) else 0
    counts = np.arange(most + 1)
    palette = colours(protocol)
    width = 0.8 / len(groups)
    for index, group in enumerate(groups):
        cycles = per_patient.loc[per_patient["treatment_arm"] == group, "cycles"]
        patients = [int((cycles == count).sum()) for count in counts]
        offset = (index - (len(groups) - 1) / 2) * width
        axis.bar(counts + offset, patients, width, color=palette[group], label=group)
    axis.set(xlabel="cycles received", ylabel="patients", xticks=counts)
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(**OUTSIDE_RIGHT)
    return svg(figure)


def toxicity_labels(rows: pd.DataFrame, pooled: bool) -> list[str]:
    """One label per row of a worst-grade table: the term and its source (a laboratory result
    graded by CTCAE, or an adverse event as reported), then the arm unless `pooled`."""
    return [
        f"{term} ({SOURCE_LABELS[source]})" + ("" if pooled else f", {group}")
        for term, source, group in zip(rows["term"], rows["source"], rows["group"], strict=True)
    ]


def toxicity_figure(worst: pd.DataFrame, protocol: Protocol, groups: Sequence[str]) -> str:
    """Per term and source, the percentage of each group's safety population (`groups`: the
    randomized arms, or the pool) by worst grade (stacked bars); `worst`:
    safety.worst_grade_table without the 'any term' rows."""
    rows = worst[worst["group"].isin(groups)].sort_values(["source", "term"], ascending=False)
    labels = toxicity_labels(rows, pooled=tuple(groups) == (POOLED,))
    figure, axis = plt.subplots(figsize=(7.5, 1.2 + 0.28 * max(len(rows), 1)))
    positions = np.arange(len(rows))
    left = np.zeros(len(rows))
    population = rows["n_patients"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        for grade, colour in enumerate(GRADE_COLOURS, start=1):
            share = np.nan_to_num(100.0 * rows[f"grade_{grade}"].to_numpy() / population)
            axis.barh(positions, share, left=left, color=colour, label=f"grade {grade}")
            left += share
    axis.set_yticks(positions, labels)
    axis.set(xlabel="patients (% of the treated in the group), by worst grade", xlim=(0, 100))
    axis.legend(ncols=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return svg(figure)


def egfr_figure(summary: pd.DataFrame, protocol: Protocol, groups: Sequence[str]) -> str:
    """Median eGFR with the interquartile range per group of `groups` (treatment arms, or the
    pool) and month (`summary`: safety.egfr_summary)."""
    figure, axis = plt.subplots(figsize=(7.5, 3.8))
    palette = colours(protocol)
    for index, group in enumerate(groups):
        rows = summary[summary["group"] == group]
        _median_with_iqr(axis, rows, index - (len(groups) - 1) / 2, group, palette[group])
    axis.set(xlabel="months since the first cycle", ylabel="eGFR (mL/min/1.73 m\u00b2)")
    axis.legend(**OUTSIDE_RIGHT)
    return svg(figure)


def _median_with_iqr(axis: Axes, rows: pd.DataFrame, shift: float, group: str, colour: str) -> None:
    months = rows["month"].to_numpy(dtype=float) + 0.15 * shift
    median = rows["median"].to_numpy(dtype=float)
    spread = [median - rows["q1"].to_numpy(dtype=float), rows["q3"].to_numpy(dtype=float) - median]
    axis.errorbar(months, median, yerr=spread, fmt="o-", color=colour, label=group)
