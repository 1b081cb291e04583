"""Kidney function and blood counts of the safety population over time: the per-patient eGFR
slope and the blood-count nadirs.

eGFR slope: the ordinary least-squares slope of eGFR (mL/min/1.73 m2) against years since the
first administration (365.25 days a year), over the last value on or before it (the baseline,
as `safety.egfr_over_time` takes it) and every later value; a patient needs at least
MIN_EGFR_VALUES values spanning MIN_SPAN_DAYS days. Losing more than RAPID_DECLINE_PER_YEAR a
year is "rapid progression" (KDIGO 2012 Clinical Practice Guideline for the Evaluation and
Management of Chronic Kidney Disease, Kidney Int Suppl 2013;3:1-150, chapter 2.1: a sustained
decline in eGFR of more than 5 mL/min/1.73 m2/yr).

Nadir: per patient and blood count (the CTCAE terms of `clinical.ctcae.LabTerm`: haemoglobin
as "Anemia", platelets, neutrophils, white blood cells, lymphocytes), the lowest value drawn on
or after the first administration (treatment-emergent, as in `safety`; of equal values the
highest graded, then the first), its recorded CTCAE grade, and the days from the last cycle
given on or before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from startrt.analysis import report as trial_report
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.groups import dataset_protocol, grouped, treated, with_groups
from startrt.analysis.safety import EGFR_TERM
from startrt.analysis.safety_tables import SEVERE_FROM_GRADE
from startrt.clinical.ctcae import LabTerm

DAYS_PER_YEAR = 365.25
MIN_EGFR_VALUES = 2
MIN_SPAN_DAYS = 90
RAPID_DECLINE_PER_YEAR = 5.0
"""mL/min/1.73 m2 lost a year above which the decline is rapid (KDIGO 2012, module docstring)."""
BLOOD_COUNTS = tuple(
    term.ctcae_term
    for term in (
        LabTerm.PLATELETS,
        LabTerm.NEUTROPHILS,
        LabTerm.ANEMIA,
        LabTerm.WBC,
        LabTerm.LYMPHOCYTES,
    )
)


def least_squares_slope(x: np.ndarray, y: np.ndarray) -> float:
    """The ordinary least-squares slope of y on x: sum((x - mean x)(y - mean y)) /
    sum((x - mean x)^2)."""
    dx = x - x.mean()
    return float((dx * (y - y.mean())).sum() / (dx * dx).sum())


def egfr_slopes(dataset: TrialDataset) -> pd.DataFrame:
    """Per treated patient with enough values (module docstring): trial_id, arm,
    treatment_arm, egfr_values, span_days, baseline_egfr_ml_min_173,
    egfr_slope_per_year (mL/min/1.73 m2 per year)."""
    population = treated(dataset)
    labs = dataset.labs[dataset.labs["term"] == EGFR_TERM].merge(
        population[["trial_id", "first_cycle_on"]], on="trial_id"
    )
    labs = labs.assign(days=(labs["drawn_on"] - labs["first_cycle_on"]).dt.days)
    before = labs[labs["days"] <= 0].sort_values("drawn_on").groupby("trial_id").tail(1)
    used = pd.concat([before, labs[labs["days"] > 0]]).sort_values(["trial_id", "drawn_on"])
    rows: list[dict[str, Any]] = []
    for trial_id, drawn in used.groupby("trial_id"):
        days = drawn["days"].to_numpy(dtype=float)
        span = int(days.max() - days.min())
        if len(drawn) < MIN_EGFR_VALUES or span < MIN_SPAN_DAYS:
            continue
        baseline = drawn["value"].iloc[0] if drawn["days"].iloc[0] <= 0 else None
        slope = least_squares_slope(days / DAYS_PER_YEAR, drawn["value"].to_numpy(dtype=float))
        rows.append(
            {"trial_id": trial_id, "egfr_values": len(drawn), "span_days": span}
            | {"baseline_egfr_ml_min_173": baseline, "egfr_slope_per_year": slope}
        )
    values = ["egfr_values", "span_days", "baseline_egfr_ml_min_173", "egfr_slope_per_year"]
    frame = with_groups(pd.DataFrame(rows, columns=["trial_id", *values]), population)
    return frame[["trial_id", "arm", "treatment_arm", *values]]


def egfr_slope_summary(dataset: TrialDataset) -> pd.DataFrame:
    """Per group: patients with a slope, median, q1 and q3 of the slopes (type 7 quantiles)
    and rapid_decline (patients losing more than RAPID_DECLINE_PER_YEAR a year)."""
    slopes = egfr_slopes(dataset)
    rows: list[dict[str, Any]] = []
    for group, members in grouped(slopes, dataset_protocol(dataset)):
        values = members["egfr_slope_per_year"].to_numpy(dtype=float)
        quartiles = np.quantile(values, [0.5, 0.25, 0.75]) if len(values) else [None] * 3
        rows.append(
            {"group": group, "patients": len(values)}
            | dict(zip(("slope_median", "slope_q1", "slope_q3"), quartiles, strict=True))
            | {"rapid_decline": int((values < -RAPID_DECLINE_PER_YEAR).sum())}
        )
    return pd.DataFrame(rows)


def nadirs(dataset: TrialDataset) -> pd.DataFrame:
    """Per treated patient and blood count (module docstring): trial_id, arm, treatment_arm,
    term, nadir, unit, grade, nadir_on, days_from_cycle."""
    population = treated(dataset)
    labs = dataset.labs[dataset.labs["term"].isin(BLOOD_COUNTS)].merge(
        population[["trial_id", "first_cycle_on"]], on="trial_id"
    )
    labs = labs[labs["drawn_on"] >= labs["first_cycle_on"]]
    lowest = labs.sort_values(
        ["value", "grade", "drawn_on"], ascending=[True, False, True], na_position="last"
    )
    frame = lowest.groupby(["trial_id", "term"]).head(1)  # one whole row (not `first`, which
    # takes each column's first non-empty value, so a nadir without a grade borrowed another's)
    cycles = dataset.cycles[["trial_id", "administered_on"]].merge(
        frame[["trial_id", "term", "drawn_on"]], on="trial_id"
    )
    preceding = (
        cycles[cycles["administered_on"] <= cycles["drawn_on"]]
        .groupby(["trial_id", "term"])["administered_on"]
        .max()
        .rename("cycle_on")
    )
    frame = frame.merge(preceding.reset_index(), on=["trial_id", "term"])
    frame = frame.assign(
        nadir=frame["value"],
        nadir_on=frame["drawn_on"],
        days_from_cycle=(frame["drawn_on"] - frame["cycle_on"]).dt.days,
    )
    frame = with_groups(frame, population).sort_values(["trial_id", "term"])
    columns = ["trial_id", "arm", "treatment_arm", "term", "nadir", "unit", "grade", "nadir_on"]
    return frame[[*columns, "days_from_cycle"]].reset_index(drop=True)


def nadir_summary(dataset: TrialDataset) -> pd.DataFrame:
    """Per blood count and group: term, unit, group, patients, nadir_median, nadir_min,
    nadir_max, days_from_cycle_median, grade_3_plus (patients whose nadir is graded >= 3)."""
    per_patient = nadirs(dataset)
    rows: list[dict[str, Any]] = []
    for term in BLOOD_COUNTS:
        of_term = per_patient[per_patient["term"] == term]
        if of_term.empty:
            continue
        unit = ", ".join(sorted(set(of_term["unit"])))
        for group, members in grouped(of_term, dataset_protocol(dataset)):
            values = members["nadir"]
            rows.append(
                {"term": term, "unit": unit, "group": group, "patients": len(members)}
                | {
                    "nadir_median": values.median() if len(values) else None,
                    "nadir_min": values.min() if len(values) else None,
                    "nadir_max": values.max() if len(values) else None,
                    "days_from_cycle_median": (
                        members["days_from_cycle"].median() if len(values) else None
                    ),
                    "grade_3_plus": int((members["grade"].fillna(0) >= SEVERE_FROM_GRADE).sum()),
                }
            )
    return pd.DataFrame(rows)


def report_part(
    view: trial_report.ReportView,
) -> Iterator[trial_report.ReportTable | trial_report.ReportFigure]:
    """The eGFR slope and blood-count nadir summaries (and, closed report, their per-patient
    listings), in the report's safety section."""
    section, dataset = trial_report.Section.SAFETY, view.dataset
    yield trial_report.ReportTable(
        "safety_egfr_slope",
        section,
        "eGFR slope per patient: summary by group",
        view.table(egfr_slope_summary(dataset)),
        f"Least-squares slope of eGFR against years since the first cycle, from the baseline "
        f"value on; patients with at least {MIN_EGFR_VALUES} values over {MIN_SPAN_DAYS} days "
        f"or more. Rapid decline: losing more than {RAPID_DECLINE_PER_YEAR:g} "
        "mL/min/1.73 m\u00b2 a year (KDIGO 2012 CKD guideline, 2.1).",
    )
    yield trial_report.ReportTable(
        "safety_nadirs",
        section,
        "Blood-count nadirs on treatment",
        view.table(nadir_summary(dataset)),
        "Lowest value per patient from the first cycle on, its CTCAE v5.0 grade as recorded, "
        "and the days from the cycle before it.",
    )
    yield from view.listing(
        "safety_egfr_slope_per_patient", section, "eGFR slope per patient", egfr_slopes(dataset)
    )
    yield from view.listing(
        "safety_nadirs_per_patient", section, "Blood-count nadirs per patient", nadirs(dataset)
    )
