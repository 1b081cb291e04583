"""Progression-free and overall survival of each randomized patient, from a trial dataset.

Time is counted in days from randomization (day 0); only events after the randomization day
count. Rules, as `endpoint_rules()` states them for the report:

PFS (progression or death, whichever first; FDA guidance Clinical Trial Endpoints for the
Approval of Cancer Drugs and Biologics, 2018, appendix on PFS censoring; EMA appendix 1 to the
guideline on anticancer medicinal products, on PFS, EMA/CHMP/27994/2008/Rev.1):
1. Progression is the first RECIST 1.1 overall response PD (assessments) or the first
   progression date recorded at follow-up, whichever is earlier; it is an event at that date.
2. Death without earlier progression is an event at the date of death, unless it follows two or
   more missed assessments, i.e. more than 2 assessment intervals after the last adequate
   assessment (randomization if none): then PFS is censored at the last adequate assessment.
3. Otherwise PFS is censored at the last adequate assessment (overall response other than NE)
   on or before the cut-off, or at day 0 without an adequate post-randomization assessment.
The assessment interval is 12 weeks (84 days): the protocol file (START-01 v1.0) states no
tumour-assessment interval, so the usual NET imaging interval is assumed (NETTER-1 imaged
every 12 weeks); pass `assessment_interval_days` to change it. A progression found after
missed assessments is counted at the date found (the EMA primary analysis; FDA lists censoring
as a sensitivity analysis). New anticancer therapy is not in the dataset and does not censor.

OS: death from any cause is an event; a living patient is censored at the last date known
alive, the latest date of any record of the patient (capped at the cut-off).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import pandas as pd

from startrt.analysis.dataset import SCHEMA, TABLES, TrialDataset
from startrt.validation import InvalidInputError

ASSESSMENT_INTERVAL_DAYS: Final = 84
MISSED_ASSESSMENTS: Final = 2

PROGRESSION_BY_RECIST: Final = "event: progression (RECIST 1.1 PD)"
PROGRESSION_AT_FOLLOW_UP: Final = "event: progression recorded at follow-up"
DEATH: Final = "event: death without progression"
DEATH_AFTER_MISSED: Final = (
    "censored at the last adequate assessment: death after two or more missed assessments"
)
NO_ADEQUATE_ASSESSMENT: Final = "censored at randomization: no adequate assessment"
LAST_ADEQUATE_ASSESSMENT: Final = "censored at the last adequate assessment"

COLUMNS: Final = (
    "trial_id",
    "arm",
    "treatment_arm",
    "stratum",
    "randomized_on",
    "pfs_days",
    "pfs_event",
    "pfs_censoring",
    "os_days",
    "os_event",
)


def endpoint_rules(assessment_interval_days: int = ASSESSMENT_INTERVAL_DAYS) -> list[str]:
    """The PFS and OS rules as sentences for the report."""
    interval = _interval(assessment_interval_days)
    limit = MISSED_ASSESSMENTS * interval
    return [
        "Times are days from randomization (day 0).",
        "PFS event: RECIST 1.1 progression (overall response PD) or progression recorded at "
        "follow-up, whichever is first, or death from any cause without earlier progression.",
        f"Death more than {limit} days ({MISSED_ASSESSMENTS} assessment intervals of "
        f"{interval} days) after the last adequate assessment (or randomization) follows two or "
        "more missed assessments: PFS is censored at the last adequate assessment "
        "(FDA 2018 guidance on cancer trial endpoints; EMA anticancer guideline, appendix 1).",
        "Without progression or death, PFS is censored at the last adequate tumour assessment "
        "(overall response other than NE) on or before the data cut-off.",
        "Without an adequate post-randomization assessment, PFS is censored at randomization "
        f"(day 0), unless the patient died within {limit} days.",
        f"The assessment interval is {interval} days: the protocol file states none, "
        "12 weeks is assumed.",
        "Progression found after missed assessments counts at the date found (EMA primary "
        "analysis). New anticancer therapy is not recorded and does not censor.",
        "OS event: death from any cause; living patients are censored at the last date known "
        "alive (the latest date of any record of the patient, at most the cut-off).",
    ]


def survival_endpoints(
    dataset: TrialDataset, *, assessment_interval_days: int = ASSESSMENT_INTERVAL_DAYS
) -> pd.DataFrame:
    """One row per randomized patient (`randomized_patients`) with the columns
    COLUMNS: PFS and OS in days from randomization, event flags (bool) and the PFS rule
    applied. Raises InvalidInputError on inconsistent records (death before randomization,
    two deaths, a follow-up status "dead" without a death record)."""
    interval = _interval(assessment_interval_days)
    randomized = randomized_patients(dataset)
    deaths = _death_dates(dataset)
    last_alive = _last_known_alive(dataset)
    assessments = _by_patient(dataset.assessments)
    follow_up = _by_patient(dataset.follow_up)
    rows = []
    for patient in randomized.itertuples(index=False):
        trial_id = str(patient.trial_id)
        randomized_on = _day(patient.randomized_on)
        death = deaths.get(trial_id)
        if death is not None and death < randomized_on:
            raise InvalidInputError(
                "deaths.died_on", death.isoformat(), f"{trial_id}: before randomization"
            )
        pfs = _pfs(
            assessments.get(trial_id), follow_up.get(trial_id), randomized_on, death, interval
        )
        os_end = death or max(last_alive.get(trial_id, randomized_on), randomized_on)
        rows.append(
            {
                "trial_id": trial_id,
                "arm": patient.arm,
                "treatment_arm": patient.treatment_arm,
                "stratum": patient.stratum,
                "randomized_on": randomized_on,
                "pfs_days": (pfs.on - randomized_on).days,
                "pfs_event": pfs.event,
                "pfs_censoring": pfs.rule,
                "os_days": (os_end - randomized_on).days,
                "os_event": death is not None,
            }
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["randomized_on"] = pd.to_datetime(frame["randomized_on"])
    frame[["pfs_days", "os_days"]] = frame[["pfs_days", "os_days"]].astype("int64")
    frame[["pfs_event", "os_event"]] = frame[["pfs_event", "os_event"]].astype(bool)
    return frame


def randomized_patients(dataset: TrialDataset) -> pd.DataFrame:
    """Patients rows with a randomization date; one without an arm is refused."""
    patients = dataset.patients
    randomized = patients[patients["randomized_on"].notna()]
    missing_arm = randomized[randomized["arm"].isna()]
    if len(missing_arm):
        raise InvalidInputError(
            "patients.arm", None, f"{missing_arm['trial_id'].iloc[0]}: randomized without arm"
        )
    return randomized


@dataclass(frozen=True)
class _Outcome:
    on: date
    event: bool
    rule: str


def _pfs(
    assessments: pd.DataFrame | None,
    follow_up: pd.DataFrame | None,
    randomized_on: date,
    death: date | None,
    interval: int,
) -> _Outcome:
    assessed = []
    if assessments is not None:
        for on, response in zip(assessments["assessed_on"], assessments["response"], strict=True):
            if _day(on) > randomized_on:
                assessed.append((_day(on), str(response)))
    candidates = [(on, PROGRESSION_BY_RECIST) for on, response in assessed if response == "PD"]
    if follow_up is not None:
        candidates += [
            (_day(on), PROGRESSION_AT_FOLLOW_UP)
            for on in follow_up["progression_on"].dropna()
            if _day(on) > randomized_on
        ]
    progression = min(candidates, default=None)
    if progression is not None and (death is None or progression[0] <= death):
        return _Outcome(progression[0], True, progression[1])
    adequate = sorted(on for on, response in assessed if response != "NE")
    if death is not None:
        before = [on for on in adequate if on <= death]
        last = before[-1] if before else randomized_on
        if (death - last).days <= MISSED_ASSESSMENTS * interval:
            return _Outcome(death, True, DEATH)
        return _Outcome(last, False, DEATH_AFTER_MISSED)
    if adequate:
        return _Outcome(adequate[-1], False, LAST_ADEQUATE_ASSESSMENT)
    return _Outcome(randomized_on, False, NO_ADEQUATE_ASSESSMENT)


def _death_dates(dataset: TrialDataset) -> dict[str, date]:
    deaths = dataset.deaths
    repeated = deaths["trial_id"][deaths["trial_id"].duplicated()]
    if len(repeated):
        raise InvalidInputError("deaths.trial_id", repeated.iloc[0], "one death per patient")
    dates = {str(row.trial_id): _day(row.died_on) for row in deaths.itertuples(index=False)}
    dead = dataset.follow_up[dataset.follow_up["status"] == "dead"]
    unrecorded = sorted(set(dead["trial_id"]) - set(dates))
    if unrecorded:
        raise InvalidInputError(
            "follow_up.status", "dead", f"{unrecorded[0]}: no row in deaths (date of death)"
        )
    return dates


def _by_patient(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(trial_id): rows for trial_id, rows in frame.groupby("trial_id")}


def _last_known_alive(dataset: TrialDataset) -> dict[str, date]:
    """Latest date of any record of each patient, except the death record and follow-up
    contacts reporting death (the dataset already refuses dates after the cut-off)."""
    latest: dict[str, date] = {}
    for name in TABLES:
        if name == "deaths":
            continue
        frame = dataset.table(name)
        if name == "follow_up":
            frame = frame[frame["status"] == "alive"]
        for column in SCHEMA[name]:
            if column.kind != "date" or frame.empty:
                continue
            per_patient = frame.groupby("trial_id")[column.name].max().dropna()
            for trial_id, on in per_patient.items():
                day = min(_day(on), dataset.cut_off)
                if day > latest.get(str(trial_id), date.min):
                    latest[str(trial_id)] = day
    return latest


def _day(value: Any) -> date:
    return pd.Timestamp(value).date()


def _interval(assessment_interval_days: int) -> int:
    days = assessment_interval_days
    if isinstance(days, bool) or not isinstance(days, int) or not 14 <= days <= 365:
        raise InvalidInputError("assessment_interval_days", days, "must be 14-365 whole days")
    return days
