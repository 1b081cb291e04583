"""Safety: worst CTCAE v5.0 grade per patient, grade 3-4 rates with exact confidence
intervals, eGFR over time, and cumulative kidney and bone-marrow absorbed doses against the
protocol's limits.

Rules: the safety population is every randomized patient given at least one cycle, counted in
the arm they were randomized to (and their treatment arm). A laboratory result or an adverse
event is treatment-emergent when dated on or after the first administration; grade 0 and
ungraded results are not toxicity. A patient counts once per term, at their worst grade.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from startrt.analysis.dataset import TrialDataset
from startrt.analysis.groups import dataset_protocol, describe, grouped, treated, with_groups
from startrt.analysis.response import exact_proportion
from startrt.protocol.definition import Protocol

SOURCES = {"lab": ("labs", "drawn_on"), "adverse_event": ("adverse_events", "onset_on")}
ANY_TERM = "any term"
GRADES = range(1, 6)
SEVERE_GRADES = (3, 4)
EGFR_TERM = "egfr"
DAYS_PER_MONTH = 365.25 / 12
EGFR_WINDOW_MONTHS = 3
ORGANS = {"kidney": "kidney_dose_gy", "marrow": "marrow_dose_gy"}


def graded_events(dataset: TrialDataset) -> pd.DataFrame:
    """Treatment-emergent graded results and adverse events of the safety population:
    trial_id, source (lab | adverse_event), term, grade, on (date)."""
    population = treated(dataset)[["trial_id", "first_cycle_on"]]
    parts = []
    for source, (table, date_column) in SOURCES.items():
        frame = dataset.table(table)
        frame = frame[frame["grade"].fillna(0) >= 1].merge(population, on="trial_id")
        frame = frame[frame[date_column] >= frame["first_cycle_on"]]
        parts.append(
            pd.DataFrame(
                {
                    "trial_id": frame["trial_id"],
                    "source": source,
                    "term": frame["term"],
                    "grade": frame["grade"].astype(int),
                    "on": frame[date_column],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _by_term(events: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(source, term, its events) for each source: every term of the source, then each term."""
    for source in SOURCES:
        rows = events[events["source"] == source]
        yield source, ANY_TERM, rows
        for term in sorted(set(rows["term"])):
            yield source, term, rows[rows["term"] == term]


def worst_grade_table(dataset: TrialDataset) -> pd.DataFrame:
    """Patients by worst grade, per source, term and group: source, term, group, n_patients
    (the group's safety population), grade_1 ... grade_5, any_grade."""
    population = treated(dataset)
    rows: list[dict[str, Any]] = []
    for source, term, events in _by_term(graded_events(dataset)):
        worst = events.groupby("trial_id")["grade"].max()
        for group, members in grouped(population, dataset_protocol(dataset)):
            grades = worst[worst.index.isin(members["trial_id"])]
            row: dict[str, Any] = {"source": source, "term": term, "group": group}
            row["n_patients"] = len(members)
            row |= {f"grade_{grade}": int((grades == grade).sum()) for grade in GRADES}
            row["any_grade"] = len(grades)
            rows.append(row)
    return pd.DataFrame(rows)


def grade_3_4_rates(dataset: TrialDataset) -> pd.DataFrame:
    """Patients with at least one grade 3 or 4 event or result, per source, term and group,
    with the exact (Clopper-Pearson) 95 % interval: source, term, group, patients,
    n_patients, rate, lower, upper (None for an empty group)."""
    population = treated(dataset)
    rows: list[dict[str, Any]] = []
    for source, term, events in _by_term(graded_events(dataset)):
        severe = set(events.loc[events["grade"].isin(SEVERE_GRADES), "trial_id"])
        for group, members in grouped(population, dataset_protocol(dataset)):
            k = len(severe & set(members["trial_id"]))
            rows.append(
                {"source": source, "term": term, "group": group}
                | _rate(k, len(members), "patients")
            )
    return pd.DataFrame(rows)


def _rate(k: int, n: int, name: str) -> dict[str, Any]:
    """k of n with its exact 95 % interval, as table columns; None when n is 0."""
    row: dict[str, Any] = {name: k, "n_patients": n}
    if n == 0:
        return row | dict.fromkeys(("rate", "lower", "upper"))
    proportion = exact_proportion(k, n)
    return row | {
        "rate": proportion.estimate,
        "lower": proportion.lower,
        "upper": proportion.upper,
    }


def egfr_over_time(dataset: TrialDataset) -> pd.DataFrame:
    """Each treated patient's eGFR at baseline (month 0: the last value on or before the first
    administration) and at months 3, 6, ...: the last value after the first administration whose
    time (days / 30.4375) rounds to that multiple of 3 months (values rounding to 0 are left
    out). Columns: trial_id, arm, treatment_arm, month, egfr, change (from baseline)."""
    population = treated(dataset)
    labs = dataset.labs[dataset.labs["term"] == EGFR_TERM].merge(
        population[["trial_id", "first_cycle_on"]], on="trial_id"
    )
    days = (labs["drawn_on"] - labs["first_cycle_on"]).dt.days
    windows = np.floor(days / DAYS_PER_MONTH / EGFR_WINDOW_MONTHS + 0.5) * EGFR_WINDOW_MONTHS
    labs = labs.assign(month=np.where(days <= 0, 0, windows).astype(int))
    labs = labs[(days <= 0) | (labs["month"] > 0)]
    last = labs.sort_values("drawn_on").groupby(["trial_id", "month"], as_index=False).last()
    baseline = last[last["month"] == 0].set_index("trial_id")["value"]
    values = last.assign(egfr=last["value"], change=last["value"] - last["trial_id"].map(baseline))[
        ["trial_id", "month", "egfr", "change"]
    ]
    frame = with_groups(values, population)
    return frame[["trial_id", "arm", "treatment_arm", "month", "egfr", "change"]]


def egfr_summary(dataset: TrialDataset) -> pd.DataFrame:
    """eGFR (ml/min/1.73 m2) per group and month: n, mean, sd, median, q1, q3, min, max of the
    values and the mean change from baseline (over the patients with a baseline)."""
    values = egfr_over_time(dataset)
    rows: list[dict[str, Any]] = []
    for group, members in grouped(values, dataset_protocol(dataset)):
        for month, at_month in members.groupby("month"):
            change = at_month["change"].dropna()
            rows.append(
                {"group": group, "month": month}
                | describe(at_month["egfr"])
                | {"n_change": len(change), "mean_change": change.mean() if len(change) else None}
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class DoseLimits:
    """Cumulative absorbed-dose limits (Gy) a patient's doses are held against; None when the
    protocol sets none (or limits another quantity). `near_fraction`: from this fraction of a
    limit a patient is at the limit."""

    kidney_limit_gy: float | None
    marrow_limit_gy: float | None
    near_fraction: float = 0.9
    notes: tuple[str, ...] = ()

    def limit(self, organ: str) -> float | None:
        return self.kidney_limit_gy if organ == "kidney" else self.marrow_limit_gy


def dose_limits(protocol: Protocol, near_fraction: float = 0.9) -> DoseLimits:
    """The protocol's renal and marrow limits. A renal limit on BED is not compared: the
    dataset holds absorbed doses."""
    renal = protocol.renal_limit
    notes: tuple[str, ...] = ()
    kidney_limit: float | None = renal.limit_gy
    if renal.quantity != "AD":
        kidney_limit = None
        notes = (
            f"{protocol.label} limits kidney {renal.quantity} ({renal.limit_gy:g} Gy); "
            "the dataset holds absorbed doses, so no patient is classed against it",
        )
    marrow = protocol.marrow_limit
    return DoseLimits(
        kidney_limit, None if marrow is None else marrow.limit_gy, near_fraction, notes
    )


def cumulative_doses(dataset: TrialDataset) -> pd.DataFrame:
    """Per treated patient and cycle: the cycle's kidney and marrow doses and the cumulative
    doses (Gy), unknown (NaN) from the first cycle whose dose is missing. Columns: trial_id,
    arm, treatment_arm, cycle, activity_gbq, kidney_dose_gy, cumulative_kidney_dose_gy,
    marrow_dose_gy, cumulative_marrow_dose_gy."""
    cycles = dataset.cycles.sort_values(["trial_id", "cycle"])
    columns = ["trial_id", "cycle", "activity_gbq", *ORGANS.values()]
    frame = cycles[columns].reset_index(drop=True)
    by_patient = frame.groupby("trial_id")
    for column in ORGANS.values():
        missing_so_far = by_patient[column].transform(lambda dose: dose.isna().cumsum())
        total = by_patient[column].cumsum()
        frame[f"cumulative_{column}"] = total.where(missing_so_far == 0)
    return with_groups(frame, treated(dataset))


def dose_per_patient(dataset: TrialDataset, limits: DoseLimits) -> pd.DataFrame:
    """Per treated patient: cycles, and per organ the cumulative dose (Gy, the sum of the known
    cycle doses), how many cycle doses are missing, the fraction of the limit and the status:
    over (above the limit, even if doses are missing), unknown (doses missing), at (at least
    `near_fraction` of the limit), below, or no limit."""
    cycles = dataset.cycles
    summary = cycles.groupby("trial_id").agg(cycles=("cycle", "size"))
    for organ, column in ORGANS.items():
        dose = cycles.groupby("trial_id")[column]
        summary[f"{organ}_dose_gy"] = dose.sum()
        summary[f"{organ}_doses_missing"] = dose.apply(lambda values: int(values.isna().sum()))
        limit = limits.limit(organ)
        summary[f"{organ}_fraction_of_limit"] = (
            summary[f"{organ}_dose_gy"] / limit if limit else np.nan
        )
        summary[f"{organ}_status"] = [
            _status(total, missing, limit, limits.near_fraction)
            for total, missing in zip(
                summary[f"{organ}_dose_gy"], summary[f"{organ}_doses_missing"], strict=True
            )
        ]
    frame = with_groups(summary.reset_index(), treated(dataset))
    return frame[["trial_id", "arm", "treatment_arm", *summary.columns]]


def _status(total_gy: float, missing: int, limit_gy: float | None, near_fraction: float) -> str:
    if limit_gy is None:
        return "no limit"
    if total_gy > limit_gy:
        return "over"
    if missing:
        return "unknown"
    return "at" if total_gy >= near_fraction * limit_gy else "below"


def dose_distribution(
    per_patient: pd.DataFrame, limits: DoseLimits, protocol: Protocol
) -> pd.DataFrame:
    """Cumulative dose per group and organ over the patients with every cycle's dose known:
    group, organ, limit_gy, the `describe` statistics (Gy), n_incomplete, at_limit, over_limit
    (these two over every patient)."""
    rows: list[dict[str, Any]] = []
    for group, members in grouped(per_patient, protocol):
        for organ in ORGANS:
            complete = members[members[f"{organ}_doses_missing"] == 0]
            status = members[f"{organ}_status"]
            rows.append(
                {"group": group, "organ": organ, "limit_gy": limits.limit(organ)}
                | describe(complete[f"{organ}_dose_gy"])
                | {
                    "n_incomplete": len(members) - len(complete),
                    "at_limit": int((status == "at").sum()),
                    "over_limit": int((status == "over").sum()),
                }
            )
    return pd.DataFrame(rows)


def patients_at_limit(per_patient: pd.DataFrame) -> pd.DataFrame:
    """The patients at or over a limit (kidney or marrow), for a listing."""
    flagged = per_patient["kidney_status"].isin(("at", "over")) | per_patient["marrow_status"].isin(
        ("at", "over")
    )
    return per_patient[flagged].reset_index(drop=True)
