"""Endpoints of simulated patients (PFS, survival, best response, kidney and blood toxicity)
and the statistics of one trial: the log-rank test and Cox hazard ratio of PFS, personalized vs
standard (`startrt.analysis.survival`), and per-arm summaries of cycles, activity, doses,
toxicity and resources.

PFS is the endpoint the trial analyses, not the true progression time: tumours are assessed on
the protocol's schedule (`[assessments] interval_weeks`, every interval from randomization)
until progression is found, death, loss to follow-up or the data cut-off; a progression is
found at the first assessment on or after it. `tumour_records` lists those assessments and the
recorded deaths as the trial's dataset holds them (`simulation.trial_dataset` writes them), and
PFS is derived from them by `analysis.endpoints.progression_free_survival`, the rules the
report applies to the dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from startrt.analysis.endpoints import TumourRecords, progression_free_survival
from startrt.analysis.survival import cox_log_hazard_ratio, kaplan_meier, logrank_test
from startrt.clinical.ctcae import LabTerm
from startrt.clinical.recist import Response
from startrt.protocol.definition import Protocol
from startrt.simulation.arrays import Bools, Floats, Ints
from startrt.simulation.cohort import Cohort
from startrt.simulation.course import END_REASONS, TERMS, Course
from startrt.simulation.engine import Decisions
from startrt.simulation.outcomes import (
    assessment_finding,
    gfr_at,
    response_probability,
    survival_after_progression_days,
)
from startrt.simulation.parameters import DAYS_PER_MONTH, Parameters
from startrt.validation import InvalidInputError

RESPONSES = (Response.CR, Response.PR, Response.SD, Response.PD)


def cut_off_day(parameters: Parameters) -> float:
    """Data cut-off, days from the trial start: accrual plus the minimum follow-up."""
    trial = parameters.trial
    return math.floor((trial.accrual_months + trial.minimum_follow_up_months) * DAYS_PER_MONTH)


@dataclass(frozen=True)
class Endpoints:
    """Per randomized patient; days from randomization."""

    follow_up_days: Floats  # to the data cut-off or loss to follow-up
    assessments: Ints  # tumour assessments done, on days 1..n x the protocol's interval
    progression_found: Bools  # the last assessment found progression (PD)
    pfs_days: Floats  # derived from the assessments and deaths (event or censoring)
    pfs_event: Bools
    death_day: Floats  # true (may lie beyond follow-up)
    response: Ints  # index into RESPONSES (best overall response, full follow-up)
    kidney_grade: Ints  # CTCAE chronic kidney disease grade at the end of follow-up
    gfr_end: Floats  # reported GFR at the end of follow-up

    def take(self, index: NDArray[np.intp]) -> Endpoints:
        return Endpoints(**{name: value[index] for name, value in vars(self).items()})


def assessments_done(
    progression_day: Floats, death_day: Floats, follow_up_days: Floats, interval_days: int
) -> tuple[Ints, Bools]:
    """How many tumour assessments each patient has, on days k x `interval_days` up to death
    or the end of follow-up, the last one the first on or after the (true) progression; and
    whether that last one found the progression."""
    possible = np.floor(np.minimum(follow_up_days, death_day) / interval_days)
    to_find = assessment_finding(progression_day, interval_days)
    found = to_find <= possible
    return np.where(found, to_find, possible).astype(np.int64), found


def tumour_records(
    *,
    assessments: Ints,
    progression_found: Bools,
    response: Ints,
    death_day: Floats,
    follow_up_days: Floats,
    interval_days: int,
) -> TumourRecords:
    """The tumour assessments, follow-up progressions and deaths of simulated patients as the
    trial's dataset records them, in whole days from randomization: assessment k on day k x
    `interval_days` shows the best response if CR or PR, else SD, and PD when it found the
    progression (which follow-up then records on that day); a death (`death_day`, true) is
    recorded on its day when it comes within follow-up."""
    patients = np.repeat(np.arange(assessments.size), assessments)
    number = np.arange(patients.size) - np.repeat(np.cumsum(assessments) - assessments, assessments)
    found = progression_found[patients] & (number == assessments[patients] - 1)
    objective = np.isin(response, [RESPONSES.index(Response.CR), RESPONSES.index(Response.PR)])
    before = np.where(objective, response, RESPONSES.index(Response.SD))
    shown = np.where(found, RESPONSES.index(Response.PD), before[patients])
    progressed = np.flatnonzero(progression_found)
    return TumourRecords(
        death_days=np.where(death_day <= follow_up_days, np.floor(death_day), np.inf),
        assessment_patients=patients,
        assessment_days=((number + 1) * interval_days).astype(np.float64),
        assessment_responses=np.array(RESPONSES)[shown],
        follow_up_patients=progressed,
        follow_up_progression_days=(assessments[progressed] * interval_days).astype(np.float64),
    )


def endpoints(
    cohort: Cohort,
    course: Course,
    parameters: Parameters,
    protocol: Protocol,
    decisions: Decisions,
) -> Endpoints:
    """The endpoints of every patient of `cohort` after `course`."""
    patients = cohort.patients
    until_cut_off = cut_off_day(parameters) - cohort.randomized_day
    follow_up = np.minimum(until_cut_off, course.dropout_day)
    progression = course.progression_day
    pfs_true = np.minimum(progression, course.death_before_progression_day)
    death = np.where(
        progression < course.death_before_progression_day,
        progression + survival_after_progression_days(parameters, patients.survival_draw),
        course.death_before_progression_day,
    )
    dose = course.cumulative_tumour_gy
    responder = patients.response_draw < response_probability(
        parameters, dose, patients.fdg_positive
    )
    complete = patients.complete_response_draw < parameters.efficacy.complete_response_share.value
    interval = protocol.assessments.interval_days
    response = np.select(
        [pfs_true < interval, responder & complete, responder],
        [RESPONSES.index(Response.PD), RESPONSES.index(Response.CR), RESPONSES.index(Response.PR)],
        RESPONSES.index(Response.SD),
    )
    end = np.maximum(np.minimum(follow_up, death), 0.0)
    gfr = np.clip(
        np.rint(
            gfr_at(
                parameters, patients.gfr_true, end, course.bed_sum_gy, course.bed_time_sum_gy_days
            )
        ),
        0,
        250,
    )
    grade = decisions.grades(LabTerm.EGFR, gfr, parameters.kidney.egfr_lln.value)
    assessments, found = assessments_done(progression, death, follow_up, interval)
    response = response.astype(np.int64)
    records = tumour_records(
        assessments=assessments,
        progression_found=found,
        response=response,
        death_day=death,
        follow_up_days=follow_up,
        interval_days=interval,
    )
    pfs = progression_free_survival(records, interval)
    return Endpoints(
        follow_up_days=follow_up,
        assessments=assessments,
        progression_found=found,
        pfs_days=pfs.days,
        pfs_event=pfs.event,
        death_day=death,
        response=response,
        kidney_grade=grade,
        gfr_end=gfr,
    )


def groups(protocol: Protocol) -> tuple[str, ...]:
    """Summary groups: the randomized arms, then treatment arms that are not one of them."""
    randomized = protocol.randomization.arms
    return (*randomized, *(arm.id for arm in protocol.arms if arm.id not in randomized))


def memberships(cohort: Cohort, protocol: Protocol) -> dict[str, Bools]:
    """Which patients belong to each summary group."""
    arm_ids = [arm.id for arm in protocol.arms]
    randomized = np.array(cohort.randomized_arm, dtype=object)
    return {
        group: (randomized == group)
        if group in protocol.randomization.arms
        else (cohort.arm == arm_ids.index(group))
        for group in groups(protocol)
    }


def patient_metrics(course: Course, ends: Endpoints, limit_gy: float) -> dict[str, Floats]:
    """Per-patient values whose group means make the summaries; `limit_gy` is the renal
    limit the true cumulative kidney dose is compared with."""
    true_kidney: Floats = course.kidney_true_gy.sum(axis=1)
    measured_kidney: Floats = course.kidney_measured_gy.sum(axis=1)
    metrics: dict[str, NDArray[Any]] = {
        "cycles": course.cycles,
        "activity_gbq": course.activity_gbq.sum(axis=1),
        "kidney_gy": measured_kidney,
        "kidney_true_gy": true_kidney,
        "kidney_bed_gy": course.kidney_bed_gy.sum(axis=1),
        "tumour_gy": course.cumulative_tumour_gy,
        "marrow_gy": course.marrow_gy.sum(axis=1),
        "renal_limit_share": course.renal_limit_reached,
        "true_kidney_over_limit_share": true_kidney > limit_gy,
        "measured_kidney_over_limit_share": measured_kidney > limit_gy,
        "haematological_g34_share": np.asarray((course.worst_grade >= 3).any(axis=1)),
        "kidney_g34_share": ends.kidney_grade >= 3,
        "objective_response_share": np.isin(
            ends.response, [RESPONSES.index(Response.CR), RESPONSES.index(Response.PR)]
        ),
        "infusions": course.cycles,
        "inpatient_days": course.inpatient_days,
        "spect_sessions": course.spect_sessions,
        "visits": course.visits,
        "capecitabine_tablets": (course.tablets_500 + course.tablets_150).sum(axis=1),
    }
    for column, term in enumerate(TERMS):
        metrics[f"{term.value}_g34_share"] = course.worst_grade[:, column] >= 3
    for reason_index, reason in enumerate(END_REASONS[1:], start=1):
        key = "ended_" + reason.replace(" ", "_").replace("-", "_")
        metrics[key] = course.end_reason == reason_index
    return {name: np.asarray(values, dtype=np.float64) for name, values in metrics.items()}


def _median_months(ends: Endpoints, mask: Bools) -> float:
    """Kaplan-Meier median PFS in months (NaN when not reached or no patients)."""
    if not mask.any():
        return math.nan
    median = kaplan_meier(ends.pfs_days[mask], ends.pfs_event[mask]).median_days
    return math.nan if median is None else median / DAYS_PER_MONTH


def _pfs_test(
    ends: Endpoints, experimental: Bools, fdg: Bools, parameters: Parameters
) -> dict[str, Any]:
    """Log-rank test and Cox log hazard ratio of PFS, experimental (1) vs control (0)."""
    strata = fdg.astype(np.int64) if parameters.analysis.logrank_strata == "fdg" else None
    group = experimental.astype(np.int64)
    try:
        test = logrank_test(ends.pfs_days, ends.pfs_event, group, strata)
        fit = cox_log_hazard_ratio(ends.pfs_days, ends.pfs_event, group, strata)
    except InvalidInputError:
        return {
            "logrank_chi2": math.nan,
            "logrank_p": math.nan,
            "reject": False,
            "log_hazard_ratio": math.nan,
            "hazard_ratio": math.nan,
            "log_hazard_ratio_se": math.nan,
        }
    return {
        "logrank_chi2": test.chi2,
        "logrank_p": test.p_value,
        "reject": test.p_value < parameters.analysis.alpha,
        "log_hazard_ratio": fit.estimate,
        "hazard_ratio": math.exp(fit.estimate),
        "log_hazard_ratio_se": fit.standard_error,
    }


def statistics_rows(
    cohort: Cohort,
    course: Course,
    ends: Endpoints,
    parameters: Parameters,
    protocol: Protocol,
) -> list[dict[str, Any]]:
    """One row per replicate of `cohort` (in order of first appearance): the PFS log-rank
    test and Cox hazard ratio, personalized vs standard, and per-group summaries named
    `<metric>_<group>` (means over the group's patients; NaN for an empty group)."""
    replicates, first, which = np.unique(cohort.replicate, return_index=True, return_inverse=True)
    order = np.argsort(first)
    which = which.reshape(-1)
    members = memberships(cohort, protocol)
    metrics = patient_metrics(course, ends, protocol.renal_limit.limit_gy)
    experimental = members[protocol.arm_assignment.personalized_arm]
    means: dict[str, Floats] = {}
    count = len(replicates)
    for group, mask in members.items():
        patients = np.bincount(which[mask], minlength=count).astype(np.float64)
        means[f"patients_{group}"] = patients
        events = ends.pfs_event[mask].astype(np.float64)
        means[f"pfs_events_{group}"] = np.bincount(
            which[mask], weights=events, minlength=count
        ).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, values in metrics.items():
                sums = np.bincount(which[mask], weights=values[mask], minlength=count)
                means[f"{name}_{group}"] = np.where(patients > 0, sums / patients, math.nan)
    rows = []
    for r in order:
        mine = which == r
        part = ends.take(np.flatnonzero(mine))
        row: dict[str, Any] = {
            "replicate": int(replicates[r]),
            "patients": int(mine.sum()),
            "pfs_events": int(part.pfs_event.sum()),
            **_pfs_test(part, experimental[mine], cohort.patients.fdg_positive[mine], parameters),
        }
        for group, mask in members.items():
            row[f"median_pfs_months_{group}"] = _median_months(part, mask[mine])
        row.update({name: float(values[r]) for name, values in means.items()})
        rows.append(row)
    return rows
