"""The analysis dataset: what every analysis reads, whoever produced it (the trial database
through `web`, or an in-silico trial through `simulation`).

A dataset is a folder of CSV files, one per table, plus `trial.json` with the data cut-off date,
the protocol version and the source. Dates are ISO 8601 (`2024-03-01`); an empty cell is a
missing value. Columns (every table but `patients` starts with `trial_id`):

- patients: trial_id, site, screened_on, eligible (true/false/empty = undecided),
  randomized_on, arm (standard | personalized), treatment_arm (standard | dTOC | CAP-dTOC),
  stratum (the randomization stratum, as stored with the allocation)
- cycles: cycle (1, 2, ...), administered_on, activity_gbq (administered), kidney_dose_gy
  (absorbed dose of the cycle to the limiting kidney), marrow_dose_gy, dosimetry_sessions
  (SPECT/CT sessions of the cycle), inpatient_days
- capecitabine: cycle, dispensed_on, tablets_500, tablets_150
- labs: drawn_on, term (the CTCAE term or `egfr`), value, unit, grade (CTCAE v5.0; empty
  when the term is not graded)
- adverse_events: term, grade (1-5), serious (true/false), onset_on
- assessments: assessed_on, response (RECIST 1.1 overall response: CR, PR, SD, PD, NE)
- follow_up: contact_on, status (alive | dead), progression_on (clinical or radiological
  progression found at follow-up)
- deaths: died_on, cause
- end_of_treatment: ended_on, reason
- visits: visit_on, kind (screening, cycle, labs, assessment, follow_up, ...)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from startrt.validation import InvalidInputError

ARMS = frozenset({"standard", "personalized"})
TREATMENT_ARMS = frozenset({"standard", "dTOC", "CAP-dTOC"})
RESPONSES = frozenset({"CR", "PR", "SD", "PD", "NE"})
VITAL_STATUSES = frozenset({"alive", "dead"})
METADATA_FILE = "trial.json"


@dataclass(frozen=True)
class Column:
    """A column of a dataset table: its kind (text, date, bool, int, float), whether it may be
    empty, and the plausible range of a number."""

    name: str
    kind: str
    required: bool = True
    low: float | None = None
    high: float | None = None
    allowed: frozenset[str] | None = None


def _id() -> Column:
    return Column("trial_id", "text")


SCHEMA: dict[str, tuple[Column, ...]] = {
    "patients": (
        _id(),
        Column("site", "text"),
        Column("screened_on", "date"),
        Column("eligible", "bool", required=False),
        Column("randomized_on", "date", required=False),
        Column("arm", "text", required=False, allowed=ARMS),
        Column("treatment_arm", "text", required=False, allowed=TREATMENT_ARMS),
        Column("stratum", "text", required=False),
    ),
    "cycles": (
        _id(),
        Column("cycle", "int", low=1, high=30),
        Column("administered_on", "date"),
        Column("activity_gbq", "float", low=0.0, high=15.0),
        Column("kidney_dose_gy", "float", required=False, low=0.0, high=100.0),
        Column("marrow_dose_gy", "float", required=False, low=0.0, high=20.0),
        Column("dosimetry_sessions", "int", low=0, high=10),
        Column("inpatient_days", "float", low=0.0, high=60.0),
    ),
    "capecitabine": (
        _id(),
        Column("cycle", "int", low=1, high=30),
        Column("dispensed_on", "date"),
        Column("tablets_500", "int", low=0, high=500),
        Column("tablets_150", "int", low=0, high=500),
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
    ),
    "assessments": (
        _id(),
        Column("assessed_on", "date"),
        Column("response", "text", allowed=RESPONSES),
    ),
    "follow_up": (
        _id(),
        Column("contact_on", "date"),
        Column("status", "text", allowed=VITAL_STATUSES),
        Column("progression_on", "date", required=False),
    ),
    "deaths": (_id(), Column("died_on", "date"), Column("cause", "text", required=False)),
    "end_of_treatment": (
        _id(),
        Column("ended_on", "date"),
        Column("reason", "text"),
    ),
    "visits": (_id(), Column("visit_on", "date"), Column("kind", "text")),
}


@dataclass(frozen=True)
class TrialDataset:
    """One trial's data at a cut-off date, as tables with the columns of SCHEMA."""

    cut_off: date
    protocol: str
    source: str
    patients: pd.DataFrame
    cycles: pd.DataFrame
    capecitabine: pd.DataFrame
    labs: pd.DataFrame
    adverse_events: pd.DataFrame
    assessments: pd.DataFrame
    follow_up: pd.DataFrame
    deaths: pd.DataFrame
    end_of_treatment: pd.DataFrame
    visits: pd.DataFrame

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
    frames = {name: _frame(name, tables.get(name, [])) for name in TABLES}
    dataset = TrialDataset(cut_off, protocol, source, **frames)
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
            if column.name not in row:
                raise InvalidInputError(where, None, "column is missing")
            parsed[column.name].append(_value(where, column, row[column.name]))
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
        return pd.Timestamp(value).date()
    try:
        parsed = _PARSERS[column.kind](str(value).strip())
    except (ValueError, OverflowError) as error:
        raise InvalidInputError(where, value, f"must be a {column.kind}") from error
    if column.allowed is not None and parsed not in column.allowed:
        raise InvalidInputError(where, value, f"must be one of {sorted(column.allowed)}")
    low, high = column.low, column.high
    if low is not None and high is not None and not low <= parsed <= high:
        raise InvalidInputError(where, value, f"must lie in [{column.low}, {column.high}]")
    return parsed


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


def _check_links(dataset: TrialDataset) -> None:
    """Every row belongs to a known patient; nothing is dated after the cut-off."""
    known = set(dataset.patients["trial_id"])
    if len(known) != len(dataset.patients):
        raise InvalidInputError("patients.trial_id", "duplicate", "must be unique")
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
