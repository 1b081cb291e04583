"""The analysis dataset: what every analysis reads, whoever produced it (the trial database
through `web`, or an in-silico trial through `simulation`).

A dataset is a folder of CSV files, one per table, plus `trial.json` with the data cut-off date,
the protocol version and the source. Dates are ISO 8601 (`2024-03-01`); an empty cell is a
missing value. A value outside its column's vocabulary (or an arm the dataset's protocol does
not have) is refused, naming the table, row, column, value and the allowed values; so is a date
(or cut-off) outside the dates an analysis can hold, 1677-09-22 to 2262-04-11 (pandas'
nanosecond timestamps; the web's date windows lie well inside). Columns
(every table but `patients` starts with `trial_id`):

- patients: trial_id, site, screened_on, eligible (true/false/empty = undecided),
  randomized_on, arm (one of the protocol's `randomization.arms`; START-01: standard |
  personalized), treatment_arm (an arm id of the protocol belonging to `arm`; START-01:
  standard | dTOC | CAP-dTOC), stratum (the randomization stratum, as stored with the
  allocation)
- baseline: one row per screened patient with a screening record, as recorded at screening:
  age_years, sex (`clinical.sex.Sex`), ecog, primary_site (`vocabulary.PrimarySite`),
  ki67_percent, who_grade (`clinical.net_grade.NetGrade`; the trial database derives it from
  Ki-67 by `grade_from_ki67`, the simulation draws it), krenning_score, fdg_pet_positive,
  gfr_ml_min_173 (the GFR the eligibility
  criteria read: measured, else the mean of LMR and CAPA), weight_kg, height_cm,
  prior_non_ssa_therapy, prior_prrt (true/false/empty = not recorded)
- screen_failures: one row per eligibility criterion a patient failed at screening: criterion
  (its id in the protocol file), reason (the criterion as people read it,
  `protocol.enrolment.failure_reason`)
- cycles: cycle (1, 2, ...), administered_on, activity_gbq (administered), kidney_dose_gy
  (absorbed dose of the cycle to the limiting kidney), marrow_dose_gy, dosimetry_sessions
  (SPECT/CT sessions of the cycle), inpatient_days, activity_limited_by (what held the planned
  activity below the arm's full activity, the planner's `cycle_planning.Limiting`: kidney,
  marrow, cycles, dosimetry; empty when full)
- capecitabine: cycle, dispensed_on, tablets_500, tablets_150, dose_level_percent (the SmPC
  toxicity dose level the dispensing was made at: 100, 75, 50), full_dose_mg (the cycle's
  capecitabine in mg at the 100 % level for the patient's BSA and renal function: what dose
  intensity compares the dispensed mg with)
- labs: drawn_on, term (the CTCAE term or `egfr`), value, unit, grade (CTCAE v5.0; empty
  when the term is not graded)
- adverse_events: term (a CTCAE v5.0 term where coded, `clinical.ctcae_terms`), grade (1-5),
  serious (true/false), onset_on, attribution_prrt and attribution_capecitabine
  (`vocabulary.Attribution`), outcome (`vocabulary.AdverseEventOutcome`)
- assessments: assessed_on, response (RECIST 1.1 overall response, `recist.Response`)
- follow_up: contact_on, status (`vocabulary.VitalStatus`: alive | dead | lost),
  progression_on (clinical or radiological progression found at follow-up)
- deaths: died_on, cause, related_to_treatment (true/false/empty = not assessed)
- end_of_treatment: ended_on, reason (`vocabulary.EndOfTreatmentReason`)
- visits: visit_on, kind (`protocol.schedule.VisitKind`: screening, randomization, cycle,
  pre_cycle_lab, lab_check, assessment, follow_up, ...)
- deviations: the protocol deviations standing at the cut-off: cycle, kind
  (`overrides.DeviationKind`: window | activity), recorded_on, description (what departs
  from the protocol), reason, recorded_by, signed_by and signed_on (the investigator's
  signature of a planned activity; empty when not signed by the cut-off),
  planned_activity_gbq, predicted_cumulative_kidney_gy (the plan's prediction after it)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args

import pandas as pd

from startrt.analysis.trial_protocol import protocol_of
from startrt.clinical.net_grade import NetGrade
from startrt.clinical.recist import Response
from startrt.clinical.sex import Sex
from startrt.protocol.cycle_planning import Limiting
from startrt.protocol.overrides import DeviationKind
from startrt.protocol.schedule import VisitKind
from startrt.protocol.vocabulary import (
    AdverseEventOutcome,
    Attribution,
    EndOfTreatmentReason,
    PrimarySite,
    VitalStatus,
)
from startrt.validation import InvalidInputError

METADATA_FILE = "trial.json"
# The dates a table can hold (pandas' nanosecond Timestamp, whole days inside it).
EARLIEST_DATE = pd.Timestamp.min.date() + timedelta(days=1)
LATEST_DATE = pd.Timestamp.max.date()


@dataclass(frozen=True)
class Column:
    """A column of a dataset table: its kind (text, date, bool, int, float), whether it may be
    empty, the plausible range of a number and the vocabulary of a text."""

    name: str
    kind: str
    required: bool = True
    low: float | None = None
    high: float | None = None
    vocabulary: type[StrEnum] | tuple[str, ...] | None = None


LIMITING: tuple[str, ...] = get_args(Limiting)


def _id() -> Column:
    return Column("trial_id", "text")


SCHEMA: dict[str, tuple[Column, ...]] = {
    "patients": (
        _id(),
        Column("site", "text"),
        Column("screened_on", "date"),
        Column("eligible", "bool", required=False),
        Column("randomized_on", "date", required=False),
        Column("arm", "text", required=False),
        Column("treatment_arm", "text", required=False),
        Column("stratum", "text", required=False),
    ),
    "baseline": (
        _id(),
        Column("age_years", "float", required=False, low=0.0, high=120.0),
        Column("sex", "text", required=False, vocabulary=Sex),
        Column("ecog", "int", required=False, low=0, high=5),
        Column("primary_site", "text", required=False, vocabulary=PrimarySite),
        Column("ki67_percent", "float", required=False, low=0.0, high=100.0),
        Column("who_grade", "text", required=False, vocabulary=NetGrade),
        Column("krenning_score", "int", required=False, low=0, high=4),
        Column("fdg_pet_positive", "bool", required=False),
        Column("gfr_ml_min_173", "float", required=False, low=0.0, high=250.0),
        Column("weight_kg", "float", required=False, low=20.0, high=350.0),
        Column("height_cm", "float", required=False, low=100.0, high=250.0),
        Column("prior_non_ssa_therapy", "bool", required=False),
        Column("prior_prrt", "bool", required=False),
    ),
    "screen_failures": (_id(), Column("criterion", "text"), Column("reason", "text")),
    "cycles": (
        _id(),
        Column("cycle", "int", low=1, high=30),
        Column("administered_on", "date"),
        Column("activity_gbq", "float", low=0.0, high=15.0),
        Column("kidney_dose_gy", "float", required=False, low=0.0, high=100.0),
        Column("marrow_dose_gy", "float", required=False, low=0.0, high=20.0),
        Column("dosimetry_sessions", "int", low=0, high=10),
        Column("inpatient_days", "float", low=0.0, high=60.0),
        Column("activity_limited_by", "text", required=False, vocabulary=LIMITING),
    ),
    "capecitabine": (
        _id(),
        Column("cycle", "int", low=1, high=30),
        Column("dispensed_on", "date"),
        Column("tablets_500", "int", low=0, high=500),
        Column("tablets_150", "int", low=0, high=500),
        Column("dose_level_percent", "int", required=False, low=25, high=100),
        Column("full_dose_mg", "float", required=False, low=0.0, high=200000.0),
    ),
    "labs": (
        _id(),
        Column("drawn_on", "date"),
        Column("term", "text"),
        Column("value", "float"),
        Column("unit", "text"),
        Column("grade", "int", required=False, low=0, high=5),
    ),
    "adverse_events": (
        _id(),
        Column("term", "text"),
        Column("grade", "int", low=1, high=5),
        Column("serious", "bool"),
        Column("onset_on", "date"),
        Column("attribution_prrt", "text", required=False, vocabulary=Attribution),
        Column("attribution_capecitabine", "text", required=False, vocabulary=Attribution),
        Column("outcome", "text", required=False, vocabulary=AdverseEventOutcome),
    ),
    "assessments": (
        _id(),
        Column("assessed_on", "date"),
        Column("response", "text", vocabulary=Response),
    ),
    "follow_up": (
        _id(),
        Column("contact_on", "date"),
        Column("status", "text", vocabulary=VitalStatus),
        Column("progression_on", "date", required=False),
    ),
    "deaths": (
        _id(),
        Column("died_on", "date"),
        Column("cause", "text", required=False),
        Column("related_to_treatment", "bool", required=False),
    ),
    "end_of_treatment": (
        _id(),
        Column("ended_on", "date"),
        Column("reason", "text", vocabulary=EndOfTreatmentReason),
    ),
    "visits": (
        _id(),
        Column("visit_on", "date"),
        Column("kind", "text", vocabulary=VisitKind),
    ),
    "deviations": (
        _id(),
        Column("cycle", "int", low=1, high=30),
        Column("kind", "text", vocabulary=DeviationKind),
        Column("recorded_on", "date"),
        Column("description", "text"),
        Column("reason", "text"),
        Column("recorded_by", "text", required=False),
        Column("signed_by", "text", required=False),
        Column("signed_on", "date", required=False),
        Column("planned_activity_gbq", "float", required=False, low=0.0, high=15.0),
        Column("predicted_cumulative_kidney_gy", "float", required=False),
    ),
}


@dataclass(frozen=True)
class TrialDataset:
    """One trial's data at a cut-off date, as tables with the columns of SCHEMA."""

    cut_off: date
    protocol: str
    source: str
    patients: pd.DataFrame
    baseline: pd.DataFrame
    screen_failures: pd.DataFrame
    cycles: pd.DataFrame
    capecitabine: pd.DataFrame
    labs: pd.DataFrame
    adverse_events: pd.DataFrame
    assessments: pd.DataFrame
    follow_up: pd.DataFrame
    deaths: pd.DataFrame
    end_of_treatment: pd.DataFrame
    visits: pd.DataFrame
    deviations: pd.DataFrame

    def table(self, name: str) -> pd.DataFrame:
        frame = getattr(self, name)
        assert isinstance(frame, pd.DataFrame)
        return frame


TABLES = tuple(f.name for f in fields(TrialDataset) if f.name in SCHEMA)


def make_dataset(
    cut_off: date, protocol: str, source: str, tables: dict[str, list[dict[str, Any]]]
) -> TrialDataset:
    """A validated dataset from rows ({column: value}) per table; a missing table is empty.
    Raises InvalidInputError naming the table, row, column, value and rule."""
    unknown = set(tables) - set(SCHEMA)
    if unknown:
        raise InvalidInputError("tables", sorted(unknown), f"must be among {sorted(SCHEMA)}")
    _in_date_range("cut_off", cut_off)
    frames = {name: _frame(name, tables.get(name, [])) for name in TABLES}
    dataset = TrialDataset(cut_off, protocol, source, **frames)
    _check_arms(dataset)
    _check_links(dataset)
    return dataset


def write_dataset(dataset: TrialDataset, folder: Path) -> None:
    """Write the dataset as CSV files and trial.json into `folder` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        frame = dataset.table(name).copy()
        for column in SCHEMA[name]:
            if column.kind == "date":
                frame[column.name] = frame[column.name].map(_iso_or_empty)
            elif column.kind == "bool":
                frame[column.name] = frame[column.name].map(_bool_text)
        frame.to_csv(folder / f"{name}.csv", index=False)
    metadata = {
        "cut_off": dataset.cut_off.isoformat(),
        "protocol": dataset.protocol,
        "source": dataset.source,
    }
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")


def read_dataset(folder: Path) -> TrialDataset:
    """Read and validate a dataset folder written by `write_dataset` (or by hand)."""
    metadata_path = folder / METADATA_FILE
    if not metadata_path.is_file():
        raise InvalidInputError("dataset", str(folder), f"must contain {METADATA_FILE}")
    metadata = json.loads(metadata_path.read_text())
    try:
        cut_off = date.fromisoformat(metadata["cut_off"])
        protocol, source = str(metadata["protocol"]), str(metadata["source"])
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInputError(
            str(metadata_path), metadata, "needs cut_off (ISO date), protocol and source"
        ) from error
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise InvalidInputError("dataset", str(folder), f"must contain {name}.csv")
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        tables[name] = [{str(k): v for k, v in row.items()} for row in raw.to_dict("records")]
    return make_dataset(cut_off, protocol, source, tables)


def _frame(name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = SCHEMA[name]
    parsed: dict[str, list[Any]] = {column.name: [] for column in columns}
    for index, row in enumerate(rows, start=1):
        for column in columns:
            where = f"{name}[{index}].{column.name}"
            if column.name not in row and column.required:
                raise InvalidInputError(where, None, "column is missing")
            parsed[column.name].append(_value(where, column, row.get(column.name)))
    frame = pd.DataFrame(parsed, columns=[column.name for column in columns])
    for column in columns:
        if column.kind == "date":
            frame[column.name] = pd.to_datetime(frame[column.name])
        else:
            frame[column.name] = frame[column.name].astype(_DTYPES[column.kind])
    return frame


_DTYPES: dict[str, Any] = {"text": "object", "int": "Int64", "float": "float64", "bool": "boolean"}
_PARSERS: dict[str, Callable[[str], Any]] = {
    "text": str,
    "date": date.fromisoformat,
    "int": int,
    "float": float,
}


def _value(where: str, column: Column, value: Any) -> Any:
    if _is_empty(value):
        if column.required:
            raise InvalidInputError(where, value, "is required")
        return None
    if column.kind == "bool":
        return _bool(where, value)
    if column.kind == "date" and isinstance(value, date):
        return _in_date_range(where, value)
    try:
        parsed = _PARSERS[column.kind](str(value).strip())
    except (ValueError, OverflowError) as error:
        raise InvalidInputError(where, value, f"must be a {column.kind}") from error
    if column.kind == "date":
        return _in_date_range(where, parsed)
    if column.vocabulary is not None and parsed not in set(column.vocabulary):
        allowed = [str(member) for member in column.vocabulary]
        raise InvalidInputError(where, value, f"must be one of {allowed}")
    low, high = column.low, column.high
    if low is not None and high is not None and not low <= parsed <= high:
        raise InvalidInputError(where, value, f"must lie in [{column.low}, {column.high}]")
    return parsed


def _in_date_range(where: str, value: date) -> date:
    """The calendar day of `value` (a date-time counts by its date) if an analysis can hold it."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        rule = f"must lie between {EARLIEST_DATE} and {LATEST_DATE} (the dates an analysis holds)"
        raise InvalidInputError(where, day.isoformat(), rule)
    return day


def _is_empty(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or bool(pd.isna(value))


def _bool(where: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise InvalidInputError(where, value, "must be true or false")


def _bool_text(value: Any) -> str:
    return "" if _is_empty(value) else str(bool(value)).lower()


def _iso_or_empty(value: Any) -> str:
    return "" if pd.isna(value) else pd.Timestamp(value).date().isoformat()


def _check_arms(dataset: TrialDataset) -> None:
    """Each randomized arm is one of the protocol's, each treatment arm an arm of the
    protocol belonging to the patient's randomized arm."""
    protocol = protocol_of(dataset.protocol).protocol
    belongs = {arm.id: arm.randomized_arm for arm in protocol.arms}
    patients = dataset.patients
    for index, (arm, treatment_arm) in enumerate(
        zip(patients["arm"], patients["treatment_arm"], strict=True), start=1
    ):
        if not _is_empty(arm) and arm not in protocol.randomization.arms:
            allowed = list(protocol.randomization.arms)
            rule = f"must be one of {allowed} (the randomized arms of {protocol.label})"
            raise InvalidInputError(f"patients[{index}].arm", arm, rule)
        if not _is_empty(treatment_arm) and belongs.get(treatment_arm) != arm:
            allowed = [name for name, parent in belongs.items() if parent == arm]
            rule = f"must be one of {allowed} (the arms of {protocol.label} in arm {arm!r})"
            raise InvalidInputError(f"patients[{index}].treatment_arm", treatment_arm, rule)


def _check_links(dataset: TrialDataset) -> None:
    """Every row belongs to a known patient; nothing is dated after the cut-off."""
    known = set(dataset.patients["trial_id"])
    for name in ("patients", "baseline"):
        ids = dataset.table(name)["trial_id"]
        if ids.duplicated().any():
            duplicate = ids[ids.duplicated()].iloc[0]
            raise InvalidInputError(f"{name}.trial_id", duplicate, "must be unique (one row each)")
    cut_off = pd.Timestamp(dataset.cut_off)
    for name in TABLES:
        frame = dataset.table(name)
        strangers = sorted(set(frame["trial_id"]) - known)
        if strangers:
            raise InvalidInputError(f"{name}.trial_id", strangers[0], "must name a patient")
        for column in SCHEMA[name]:
            if column.kind != "date":
                continue
            late = frame[frame[column.name] > cut_off]
            if len(late):
                raise InvalidInputError(
                    f"{name}.{column.name}",
                    late[column.name].iloc[0].date().isoformat(),
                    f"must not be after the cut-off {dataset.cut_off.isoformat()}",
                )
