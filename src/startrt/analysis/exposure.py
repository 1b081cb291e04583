"""Treatment exposure per group (the randomized arms and the split treatment arms): cycles and
administered activity per treated patient, cumulative kidney and marrow absorbed dose, the
capecitabine relative dose intensity, and the cycles given below the full PRRT activity or at a
reduced capecitabine dose level, the cycle delays and the protocol deviations.

Rules: per-patient statistics are over the treated patients (`groups.treated`); a cumulative
dose only over the patients with every cycle's dose known (`safety.dose_per_patient`), the others
counted apart. The relative dose intensity of a patient is the capecitabine dispensed over
the cycles whose full dose is known (500 mg x tablets_500 + 150 mg x tablets_150) over the
sum of those cycles' full doses at the 100 % level for their BSA and renal function (Hryniuk &
Goodyear, J Clin Oncol 1990;8:1935-1937, for dose intensity); it is shown for the groups whose
arm gives capecitabine and for any group with a patient dispensed it. A cycle is delayed when
it follows the previous one by more than the protocol's cycle interval plus its window
(`schedule.interval_weeks`, `schedule.window_weeks`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

import pandas as pd

from startrt.analysis import report as trial_report
from startrt.analysis.dataset import LIMITING, TrialDataset
from startrt.analysis.groups import (
    by_group,
    describe,
    grouped,
    randomized,
    treated,
    with_groups,
)
from startrt.analysis.resources import TABLET_MG
from startrt.analysis.safety import ORGANS, DoseLimits, dose_limits, dose_per_patient
from startrt.protocol.definition import Protocol
from startrt.protocol.overrides import DeviationKind

PATIENTS_TREATED = "Patients treated"
RELATIVE_DOSE_INTENSITY = "capecitabine_relative_dose_intensity"
CUMULATIVE_DOSES = tuple(f"cumulative_{organ}_dose_gy" for organ in ORGANS)
STATISTICS = ("median", "q1", "q3", "min", "max")
LIMITING_LABELS = {
    "kidney": "the kidney dose limit",
    "marrow": "the marrow dose limit",
    "cycles": "the arm's number of cycles",
    "dosimetry": "dosimetry missing",
}
"""What held a cycle below the full activity (`cycle_planning.Limiting`), for people."""
DEVIATION_LABELS = {
    DeviationKind.WINDOW: "cycle date outside its window",
    DeviationKind.ACTIVITY: "planner override (planned activity)",
}
DAYS_PER_WEEK = 7


def exposure_per_patient(dataset: TrialDataset, limits: DoseLimits) -> pd.DataFrame:
    """One row per treated patient: trial_id, arm, treatment_arm, cycles, activity_gbq,
    cumulative_kidney_dose_gy and cumulative_marrow_dose_gy (NaN when a cycle's dose is
    missing) and the capecitabine relative dose intensity (NaN when never dispensed or no
    cycle's full dose is known)."""
    doses = dose_per_patient(dataset, limits).set_index("trial_id")
    for organ in ORGANS:
        known = doses[f"{organ}_doses_missing"] == 0
        doses[f"cumulative_{organ}_dose_gy"] = doses[f"{organ}_dose_gy"].where(known)
    activity = dataset.cycles.groupby("trial_id")["activity_gbq"].sum()
    frame = doses[["arm", "treatment_arm", "cycles", *CUMULATIVE_DOSES]]
    frame = frame.join(activity).join(relative_dose_intensity(dataset))
    return frame.reset_index()


def relative_dose_intensity(dataset: TrialDataset) -> pd.Series:
    """Per patient dispensed capecitabine: dispensed mg over full-dose mg, over the cycles
    whose full dose is known (a cycle without it would count its tablets against nothing)."""
    known = dataset.capecitabine[dataset.capecitabine["full_dose_mg"].notna()]
    dispensed = known.assign(dispensed_mg=sum(known[c] * mg for c, mg in TABLET_MG.items()))
    totals = dispensed.groupby("trial_id")[["dispensed_mg", "full_dose_mg"]].sum()
    intensity = totals["dispensed_mg"].astype(float) / totals["full_dose_mg"]
    return intensity.rename(RELATIVE_DOSE_INTENSITY)


def _gives_capecitabine(protocol: Protocol, group: str) -> bool:
    return any(arm.capecitabine and group in (arm.id, arm.randomized_arm) for arm in protocol.arms)


def exposure_summary(per_patient: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Per group and measure of `exposure_per_patient`: patients (with a value), n_incomplete
    (treated patients left out for a missing dose), total (cycles and GBq) and the median,
    quartiles and range per patient."""
    rows: list[dict[str, Any]] = []
    measures = ("cycles", "activity_gbq", *CUMULATIVE_DOSES)
    for group, members in grouped(per_patient, protocol):
        for measure in (*measures, RELATIVE_DOSE_INTENSITY):
            values = members[measure].dropna()
            if measure == RELATIVE_DOSE_INTENSITY and not (
                len(values) or _gives_capecitabine(protocol, group)
            ):
                continue
            stats = describe(values)
            rows.append(
                {"group": group, "measure": measure, "patients": len(values)}
                | {"n_incomplete": len(members) - len(values) if measure in CUMULATIVE_DOSES else 0}
                | {"total": float(values.sum()) if measure in measures[:2] else None}
                | {key: stats[key] for key in STATISTICS}
            )
    return pd.DataFrame(rows)


def delayed_cycles(dataset: TrialDataset, protocol: Protocol) -> pd.DataFrame:
    """The cycles given more than interval + window after the patient's previous cycle:
    trial_id, cycle, days (since the previous cycle)."""
    schedule = protocol.schedule
    longest_days = DAYS_PER_WEEK * (schedule.interval_weeks + schedule.window_weeks)
    cycles = dataset.cycles.sort_values(["trial_id", "cycle"])
    days = cycles.groupby("trial_id")["administered_on"].diff().dt.days
    late = cycles.assign(days=days)[days > longest_days]
    return pd.DataFrame(late[["trial_id", "cycle", "days"]]).reset_index(drop=True)


def exposure_counts(dataset: TrialDataset, protocol: Protocol) -> pd.DataFrame:
    """Per group: n_patients (randomized), then per item the number counted (exposure_count:
    patients, cycles or deviations) and the patients concerned: patients treated, cycles
    below the full PRRT activity by what held them, cycles at a reduced capecitabine dose
    level, delayed cycles, protocol deviations by kind (planner overrides named as such)."""
    cycles = dataset.cycles
    items: list[tuple[str, pd.DataFrame]] = [
        (PATIENTS_TREATED, treated(dataset)[["trial_id"]]),
    ]
    for limit in LIMITING:
        below = cycles[cycles["activity_limited_by"] == limit]
        items.append((f"PRRT cycles below the full activity: {LIMITING_LABELS[limit]}", below))
    reduced = dataset.capecitabine[dataset.capecitabine["dose_level_percent"] < 100]
    items.append(("Capecitabine cycles at a reduced dose level", reduced))
    items.append(("Cycles delayed beyond interval and window", delayed_cycles(dataset, protocol)))
    for kind, words in DEVIATION_LABELS.items():
        deviations = dataset.deviations[dataset.deviations["kind"] == kind]
        items.append((f"Protocol deviations: {words}", deviations))
    population = randomized(dataset)
    rows = []
    for group, members in grouped(population, protocol):
        for item, counted in items:
            mine = with_groups(counted, members)
            rows.append(
                {"group": group, "n_patients": len(members), "exposure_item": item}
                | {"exposure_count": len(mine), "patients": mine["trial_id"].nunique()}
            )
    return pd.DataFrame(rows)


def exposure_counts_table(counts: pd.DataFrame) -> pd.DataFrame:
    """`exposure_counts` as the report shows it: a row per item, a column per group; the
    patients treated as a number, any other item as its count (patients concerned)."""

    def cell(row: dict[Hashable, Any]) -> str:
        count, patients = int(row["exposure_count"]), int(row["patients"])
        return str(count) if row["exposure_item"] == PATIENTS_TREATED else f"{count} ({patients})"

    return by_group(counts, ("exposure_item",), cell)


def report_part(
    view: trial_report.ReportView,
) -> Iterator[trial_report.ReportTable | trial_report.ReportFigure]:
    """The exposure tables (the open report: all arms pooled)."""
    section, dataset, protocol = trial_report.Section.EXPOSURE, view.dataset, view.protocol
    schedule, limits = protocol.schedule, dose_limits(protocol)
    yield trial_report.ReportTable(
        "exposure_per_patient",
        section,
        "Exposure per treated patient: cycles, activity, cumulative absorbed doses and "
        "capecitabine relative dose intensity",
        view.table(exposure_summary(exposure_per_patient(dataset, limits), protocol)),
        "Median, quartiles and range per treated patient; a cumulative dose over the patients "
        "with every cycle's dose known (the others counted apart); relative dose intensity: "
        "capecitabine mg dispensed over the full-dose mg, over all cycles.",
    )
    yield trial_report.ReportTable(
        "exposure_counts",
        section,
        "Cycles below the full activity, reduced capecitabine, delays and deviations",
        exposure_counts_table(view.table(exposure_counts(dataset, protocol))),
        f"A cycle is delayed when given more than {schedule.interval_weeks} + "
        f"{schedule.window_weeks} weeks after the previous one. A planner override is a "
        "planned activity above the planner's proposal, past a dose limit or unchecked for "
        "want of dosimetry, signed by the investigator. A cell: the cycles or deviations "
        "counted, with the patients concerned in brackets.",
        keys=1,
    )
