"""One in-silico START-01 trial, patient by patient through the protocol engine.

`simulate_trial(parameters, seed)` screens virtual candidates until the trial's size is
eligible (`assess_eligibility`), randomizes them by the protocol's method, assigns dTOC /
CAP-dTOC from the FDG-PET result (`assign_treatment_arm`), and treats each through the cycle
planner (fed by the dose ledger of simulated kidney doses), the pre-cycle lab check,
capecitabine dosing and the schedule: every decision by `EngineDecisions`. It returns the
analysis dataset (dates from the parameter file's start date, cut at the data cut-off), one
row per randomized patient, per-arm summaries and the trial's PFS statistics. The trial is
replicate 0 of the run with the same seed: `simulation.replicates` reproduces its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from startrt.analysis.dataset import TrialDataset
from startrt.protocol.definition import Protocol, default_protocol
from startrt.protocol.randomization import RandomizationList
from startrt.simulation.cohort import (
    Cohort,
    Screening,
    block_list,
    patient_strata,
    recruit,
    screen,
)
from startrt.simulation.course import END_REASONS, TERMS, Course, run_course
from startrt.simulation.endpoints import (
    RESPONSES,
    Endpoints,
    endpoints,
    groups,
    statistics_rows,
)
from startrt.simulation.engine import Decisions, EngineDecisions
from startrt.simulation.parameters import Parameters
from startrt.simulation.streams import check_seed, randomization_seed
from startrt.simulation.trial_dataset import trial_dataset, trial_id

TRIAL_REPLICATE = 0


@dataclass(frozen=True)
class TrialRun:
    """One simulated trial: the candidates it screened, the list it randomized from, its
    dataset, per-patient and per-cycle records (with what the dataset does not hold: true doses,
    capecitabine dose level), per-arm summaries and PFS statistics (log-rank, hazard ratio)."""

    seed: int
    screening: Screening
    randomization_list: RandomizationList | None  # None when the protocol minimizes
    dataset: TrialDataset
    patients: pd.DataFrame
    cycles: pd.DataFrame
    arms: pd.DataFrame
    statistics: dict[str, Any]


def simulate_trial(
    parameters: Parameters,
    seed: int,
    protocol: Protocol | None = None,
    decisions: Decisions | None = None,
) -> TrialRun:
    """Simulate one trial (see the module docstring); the same seed gives the same trial."""
    seed = check_seed(seed)
    protocol = protocol or default_protocol()
    decisions = decisions or EngineDecisions(protocol, parameters.trial.start_date)
    replicates = [TRIAL_REPLICATE]
    screening = screen(parameters, protocol, decisions, seed, replicates)[0]
    cohort = recruit(parameters, protocol, decisions, seed, replicates, [screening])
    course = run_course(cohort, parameters, protocol, decisions, seed, record_labs=True)
    ends = endpoints(cohort, course, parameters, protocol, decisions)
    statistics = statistics_rows(cohort, course, ends, parameters, protocol)[0]
    return TrialRun(
        seed=seed,
        screening=screening,
        randomization_list=_randomization_list(protocol, cohort, seed),
        dataset=trial_dataset(parameters, protocol, decisions, screening, cohort, course, ends),
        patients=patient_records(protocol, screening.randomized, cohort, course, ends),
        cycles=cycle_records(screening.randomized, course),
        arms=arm_table(statistics, protocol),
        statistics=statistics,
    )


def _randomization_list(protocol: Protocol, cohort: Cohort, seed: int) -> RandomizationList | None:
    """The block list the trial's patients were randomized from (cohort.allocate)."""
    if protocol.randomization.method == "minimization":
        return None
    strata = patient_strata(protocol, cohort.patients)
    return block_list(protocol, strata, randomization_seed(seed, TRIAL_REPLICATE))


def patient_records(
    protocol: Protocol,
    candidates: np.ndarray[Any, Any],
    cohort: Cohort,
    course: Course,
    ends: Endpoints,
) -> pd.DataFrame:
    """One row per randomized patient: arm, baseline, course and endpoints."""
    p = cohort.patients
    return pd.DataFrame(
        {
            "trial_id": [trial_id(int(c)) for c in candidates],
            "arm": cohort.randomized_arm,
            "treatment_arm": [protocol.arms[int(a)].id for a in cohort.arm],
            "stratum": cohort.stratum,
            "fdg_positive": p.fdg_positive,
            "grade": [f"G{g}" for g in p.grade],
            "height_cm": p.height_cm,
            "weight_kg": p.weight_kg,
            "crcl_ml_min": p.crcl_ml_min,
            "kidney_gy_per_gbq_cycle_1": p.kidney_gy_per_gbq,
            "tumour_gy_per_gbq_cycle_1": p.tumour_gy_per_gbq,
            "cycles": course.cycles,
            "activity_gbq": course.activity_gbq.sum(axis=1),
            "kidney_gy_measured": course.kidney_measured_gy.sum(axis=1),
            "kidney_gy_true": course.kidney_true_gy.sum(axis=1),
            "kidney_bed_gy": course.kidney_bed_gy.sum(axis=1),
            "tumour_gy": course.cumulative_tumour_gy,
            "marrow_gy": course.marrow_gy.sum(axis=1),
            "renal_limit_reached": course.renal_limit_reached,
            "end_reason": [END_REASONS[r] for r in course.end_reason],
            "capecitabine_tablets": (course.tablets_500 + course.tablets_150).sum(axis=1),
            "visits": course.visits,
            "spect_sessions": course.spect_sessions,
            "inpatient_days": course.inpatient_days,
            **{f"worst_{t.value}_grade": course.worst_grade[:, i] for i, t in enumerate(TERMS)},
            "kidney_grade": ends.kidney_grade,
            "best_response": [RESPONSES[r] for r in ends.response],
            "pfs_days": ends.pfs_days,
            "pfs_event": ends.pfs_event,
        }
    )


def cycle_records(candidates: np.ndarray[Any, Any], course: Course) -> pd.DataFrame:
    """One row per administered cycle; days from randomization."""
    patient, cycle = np.nonzero(np.arange(course.day.shape[1]) < course.cycles[:, None])
    return pd.DataFrame(
        {
            "trial_id": [trial_id(int(candidates[j])) for j in patient],
            "cycle": cycle + 1,
            "day": course.day[patient, cycle],
            "activity_gbq": course.activity_gbq[patient, cycle],
            "kidney_gy_measured": course.kidney_measured_gy[patient, cycle],
            "kidney_gy_true": course.kidney_true_gy[patient, cycle],
            "kidney_bed_gy": course.kidney_bed_gy[patient, cycle],
            "tumour_gy": course.tumour_gy[patient, cycle],
            "marrow_gy": course.marrow_gy[patient, cycle],
            "lab_draws": course.lab_draws[patient, cycle],
            "capecitabine_level_percent": course.capecitabine_levels[patient, cycle],
            "tablets_500": course.tablets_500[patient, cycle],
            "tablets_150": course.tablets_150[patient, cycle],
        }
    )


def arm_table(statistics: dict[str, Any], protocol: Protocol) -> pd.DataFrame:
    """The per-group summaries of a statistics row as a table (one row per group)."""
    rows = []
    for group in groups(protocol):
        suffix = f"_{group}"
        metrics = {k[: -len(suffix)]: v for k, v in statistics.items() if k.endswith(suffix)}
        rows.append({"group": group, **metrics})
    return pd.DataFrame(rows)
