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
The assessment interval is the protocol's (`[assessments] interval_weeks` of the version the
dataset names, `analysis.trial_protocol`). A progression found after missed assessments is
counted at the date found (the EMA primary analysis; FDA lists censoring as a sensitivity
analysis). New anticancer therapy is not in the dataset and does not censor.

The rules are applied once, by `progression_free_survival`, to flat arrays of the records
(`TumourRecords`): `survival_endpoints` builds them from a dataset, the in-silico trial from
its simulated patients (`simulation.endpoints`), so both derive the same PFS.

OS: death from any cause is an event; a living patient is censored at the last date known
alive, the latest date of any record of the patient (capped at the cut-off).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from startrt.analysis.dataset import SCHEMA, TABLES, TrialDataset
from startrt.analysis.trial_protocol import protocol_of
from startrt.clinical.recist import Response
from startrt.protocol.definition import Protocol
from startrt.protocol.vocabulary import VitalStatus
from startrt.validation import InvalidInputError

Days = NDArray[np.float64]
Indices = NDArray[np.int64]

MISSED_ASSESSMENTS: Final = 2

PROGRESSION_BY_RECIST: Final = "event: progression (RECIST 1.1 PD)"
PROGRESSION_AT_FOLLOW_UP: Final = "event: progression recorded at follow-up"
DEATH: Final = "event: death without progression"
DEATH_AFTER_MISSED: Final = (
    "censored at the last adequate assessment: death after two or more missed assessments"
)
NO_ADEQUATE_ASSESSMENT: Final = "censored at randomization: no adequate assessment"
LAST_ADEQUATE_ASSESSMENT: Final = "censored at the last adequate assessment"
PFS_RULES: Final = (
    PROGRESSION_BY_RECIST,
    PROGRESSION_AT_FOLLOW_UP,
    DEATH,
    DEATH_AFTER_MISSED,
    LAST_ADEQUATE_ASSESSMENT,
    NO_ADEQUATE_ASSESSMENT,
)

PFS_EVENTS: Final = (PROGRESSION_BY_RECIST, PROGRESSION_AT_FOLLOW_UP, DEATH)

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


def endpoint_rules(protocol: Protocol) -> list[str]:
    """The PFS and OS rules as sentences for the report, with `protocol`'s assessment
    interval."""
    interval = _interval(protocol.assessments.interval_days)
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
        f"The assessment interval is {interval} days ({protocol.label}: tumour assessments "
        f"every {protocol.assessments.interval_weeks} weeks from randomization).",
        "Progression found after missed assessments counts at the date found (EMA primary "
        "analysis). New anticancer therapy is not recorded and does not censor.",
        "OS event: death from any cause; living patients are censored at the last date known "
        "alive (the latest date of any record of the patient, at most the cut-off).",
    ]


@dataclass(frozen=True)
class TumourRecords:
    """What PFS is derived from, in days from randomization, as flat arrays: per patient the
    day of death (inf: none recorded); per tumour assessment its patient (an index into the
    patients), day and RECIST 1.1 overall response (CR, PR, SD, PD, NE); per progression
    recorded at follow-up its patient and day."""

    death_days: Days
    assessment_patients: Indices
    assessment_days: Days
    assessment_responses: NDArray[np.str_]
    follow_up_patients: Indices
    follow_up_progression_days: Days


@dataclass(frozen=True)
class Pfs:
    """PFS of each patient: days from randomization, event flag and the rule applied (an index
    into PFS_RULES)."""

    days: Days
    event: NDArray[np.bool_]
    rule: Indices


def progression_free_survival(records: TumourRecords, assessment_interval_days: int) -> Pfs:
    """PFS of every patient of `records` by the rules of the module docstring, with
    assessments every `assessment_interval_days` (14-365 whole days)."""
    interval = _interval(assessment_interval_days)
    death = records.death_days
    count = death.size
    patients, days = records.assessment_patients, records.assessment_days
    responses = records.assessment_responses
    after = days > 0
    recist = _earliest(count, patients, days, after & (responses == Response.PD))
    found = records.follow_up_progression_days
    at_follow_up = _earliest(count, records.follow_up_patients, found, found > 0)
    progression = np.minimum(recist, at_follow_up)
    progressed = np.isfinite(progression) & (progression <= death)
    adequate = after & (responses != Response.NE)
    last = _latest(count, patients, days, adequate)  # 0: none
    before_death = _latest(count, patients, days, adequate & (days <= death[patients]))
    died = np.isfinite(death)
    counted_death = died & (death - before_death <= MISSED_ASSESSMENTS * interval)
    choices = [
        (PROGRESSION_BY_RECIST, progressed & (recist <= at_follow_up), recist),
        (PROGRESSION_AT_FOLLOW_UP, progressed, at_follow_up),
        (DEATH, counted_death, death),
        (DEATH_AFTER_MISSED, died, before_death),
        (LAST_ADEQUATE_ASSESSMENT, last > 0, last),
    ]
    conditions = [condition for _, condition, _ in choices]
    rule = np.select(
        conditions,
        [PFS_RULES.index(name) for name, _, _ in choices],
        PFS_RULES.index(NO_ADEQUATE_ASSESSMENT),
    ).astype(np.int64)
    return Pfs(
        days=np.select(conditions, [on for _, _, on in choices], 0.0),
        event=np.isin(rule, [PFS_RULES.index(name) for name in PFS_EVENTS]),
        rule=rule,
    )


def _earliest(count: int, patients: Indices, days: Days, chosen: NDArray[np.bool_]) -> Days:
    """Per patient the earliest of the chosen days (inf: none)."""
    earliest = np.full(count, np.inf)
    np.minimum.at(earliest, patients[chosen], days[chosen])
    return earliest


def _latest(count: int, patients: Indices, days: Days, chosen: NDArray[np.bool_]) -> Days:
    """Per patient the latest of the chosen (positive) days (0: none)."""
    latest = np.zeros(count)
    np.maximum.at(latest, patients[chosen], days[chosen])
    return latest


def survival_endpoints(dataset: TrialDataset, protocol: Protocol | None = None) -> pd.DataFrame:
    """One row per randomized patient (`randomized_patients`) with the columns
    COLUMNS: PFS and OS in days from randomization, event flags (bool) and the PFS rule
    applied. The assessment interval is `protocol`'s, by default that of the version the
    dataset names (`trial_protocol.protocol_of`). Raises InvalidInputError on inconsistent
    records (death before randomization, two deaths, a follow-up status "dead" without a
    death record)."""
    protocol = protocol or protocol_of(dataset.protocol).protocol
    randomized = randomized_patients(dataset)
    ids = [str(trial_id) for trial_id in randomized["trial_id"]]
    randomized_on = [_day(on) for on in randomized["randomized_on"]]
    deaths = _death_dates(dataset)
    for trial_id, on in zip(ids, randomized_on, strict=True):
        death = deaths.get(trial_id)
        if death is not None and death < on:
            raise InvalidInputError(
                "deaths.died_on", death.isoformat(), f"{trial_id}: before randomization"
            )
    last_alive = _last_known_alive(dataset)
    position = {trial_id: index for index, trial_id in enumerate(ids)}
    day_zero = pd.to_datetime(pd.Series(randomized_on)).to_numpy()
    assessment_patients, assessment_days, assessed = _dated(
        dataset.assessments, "assessed_on", position, day_zero
    )
    follow_up_patients, follow_up_days, _ = _dated(
        dataset.follow_up, "progression_on", position, day_zero
    )
    records = TumourRecords(
        death_days=np.array(
            [
                (deaths[trial_id] - on).days if trial_id in deaths else np.inf
                for trial_id, on in zip(ids, randomized_on, strict=True)
            ],
            dtype=np.float64,
        ),
        assessment_patients=assessment_patients,
        assessment_days=assessment_days,
        assessment_responses=assessed["response"].astype(str).to_numpy(dtype=np.str_),
        follow_up_patients=follow_up_patients,
        follow_up_progression_days=follow_up_days,
    )
    pfs = progression_free_survival(records, protocol.assessments.interval_days)
    os_end = [
        deaths.get(trial_id) or max(last_alive.get(trial_id, on), on)
        for trial_id, on in zip(ids, randomized_on, strict=True)
    ]
    frame = pd.DataFrame(
        {
            "trial_id": ids,
            "arm": randomized["arm"].to_numpy(),
            "treatment_arm": randomized["treatment_arm"].to_numpy(),
            "stratum": randomized["stratum"].to_numpy(),
            "randomized_on": randomized_on,
            "pfs_days": pfs.days.astype(np.int64),
            "pfs_event": pfs.event,
            "pfs_censoring": [PFS_RULES[rule] for rule in pfs.rule],
            "os_days": [(end - on).days for end, on in zip(os_end, randomized_on, strict=True)],
            "os_event": [trial_id in deaths for trial_id in ids],
        },
        columns=list(COLUMNS),
    )
    frame["randomized_on"] = pd.to_datetime(frame["randomized_on"])
    frame[["pfs_days", "os_days"]] = frame[["pfs_days", "os_days"]].astype("int64")
    frame[["pfs_event", "os_event"]] = frame[["pfs_event", "os_event"]].astype(bool)
    return frame


def _dated(
    frame: pd.DataFrame, column: str, position: dict[str, int], day_zero: NDArray[Any]
) -> tuple[Indices, Days, pd.DataFrame]:
    """The rows of `frame` of randomized patients with a `column` date: their patient
    positions, the date in days from each patient's randomization, and the rows."""
    patients = frame["trial_id"].astype(str).map(position)
    rows = frame[patients.notna().to_numpy() & frame[column].notna().to_numpy()]
    which: Indices = np.asarray(patients[rows.index], dtype=np.int64)
    dates = pd.to_datetime(rows[column]).to_numpy()
    days = (dates - day_zero[which]) / np.timedelta64(1, "D")
    return which, np.asarray(days, dtype=np.float64), rows


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


def _death_dates(dataset: TrialDataset) -> dict[str, date]:
    deaths = dataset.deaths
    repeated = deaths["trial_id"][deaths["trial_id"].duplicated()]
    if len(repeated):
        raise InvalidInputError("deaths.trial_id", repeated.iloc[0], "one death per patient")
    dates = {str(row.trial_id): _day(row.died_on) for row in deaths.itertuples(index=False)}
    dead = dataset.follow_up[dataset.follow_up["status"] == VitalStatus.DEAD]
    unrecorded = sorted(set(dead["trial_id"]) - set(dates))
    if unrecorded:
        raise InvalidInputError(
            "follow_up.status", "dead", f"{unrecorded[0]}: no row in deaths (date of death)"
        )
    return dates


def _last_known_alive(dataset: TrialDataset) -> dict[str, date]:
    """Latest date of any record of each patient, except the death record, follow-up
    contacts reporting death and protocol deviations (recorded and signed by staff, not
    contacts with the patient; the dataset already refuses dates after the cut-off)."""
    latest: dict[str, date] = {}
    for name in TABLES:
        if name in ("deaths", "deviations"):
            continue
        frame = dataset.table(name)
        if name == "follow_up":
            frame = frame[frame["status"] == VitalStatus.ALIVE]
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
