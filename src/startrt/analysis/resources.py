"""Resource demands per randomized patient and per group: cycles, GBq administered, infusions,
SPECT/CT dosimetry sessions, visits, in-patient days, capecitabine tablets and mg dispensed;
and, from a unit-cost file, the cost per patient and per group.

Every randomized patient counts (intention to treat), with zeros for what they did not use.
An infusion is a cycle with activity administered (> 0 GBq).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from startrt.analysis.dataset import TrialDataset
from startrt.analysis.groups import dataset_protocol, describe, grouped, randomized
from startrt.protocol.definition import Protocol

if TYPE_CHECKING:
    from startrt.analysis.costs import UnitCosts

TABLET_MG = {"tablets_500": 500, "tablets_150": 150}
MEASURES = (
    "cycles",
    "activity_gbq",
    "infusions",
    "dosimetry_sessions",
    "visits",
    "inpatient_days",
    "tablets_500",
    "tablets_150",
    "capecitabine_mg",
)
"""The resource columns, each a count or amount per patient; unit-cost files name these."""


def resources_per_patient(dataset: TrialDataset) -> pd.DataFrame:
    """One row per randomized patient: trial_id, arm, treatment_arm and each of MEASURES."""
    cycles = dataset.cycles.assign(infusions=(dataset.cycles["activity_gbq"] > 0).astype(int))
    used = cycles.groupby("trial_id").agg(
        cycles=("cycle", "size"),
        activity_gbq=("activity_gbq", "sum"),
        infusions=("infusions", "sum"),
        dosimetry_sessions=("dosimetry_sessions", "sum"),
        inpatient_days=("inpatient_days", "sum"),
    )
    tablets = dataset.capecitabine.groupby("trial_id")[list(TABLET_MG)].sum()
    visits = dataset.visits.groupby("trial_id").size().rename("visits")
    frame = randomized(dataset)[["trial_id", "arm", "treatment_arm"]].set_index("trial_id")
    frame = frame.join(used).join(visits).join(tablets)
    frame[list(MEASURES[:-1])] = frame[list(MEASURES[:-1])].fillna(0)
    frame["capecitabine_mg"] = sum(frame[column] * mg for column, mg in TABLET_MG.items())
    for column in ("activity_gbq", "inpatient_days"):
        frame[column] = frame[column].astype(float)
    counts = [measure for measure in MEASURES if measure not in ("activity_gbq", "inpatient_days")]
    frame[counts] = frame[counts].astype(int)
    return frame.reset_index()


def resources_per_group(per_patient: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Per group and measure: total and the `describe` statistics per patient."""
    rows: list[dict[str, Any]] = []
    for group, members in grouped(per_patient, protocol):
        for measure in MEASURES:
            values = members[measure]
            rows.append(
                {"group": group, "measure": measure, "total": float(values.sum())}
                | describe(values)
            )
    return pd.DataFrame(rows)


def visits_by_kind(dataset: TrialDataset) -> pd.DataFrame:
    """Visits of randomized patients per group and kind: group, kind, visits, patients."""
    visits = dataset.visits.merge(
        randomized(dataset)[["trial_id", "arm", "treatment_arm"]], on="trial_id"
    )
    rows = [
        {
            "group": group,
            "kind": kind,
            "visits": len(of_kind),
            "patients": of_kind["trial_id"].nunique(),
        }
        for group, members in grouped(visits, dataset_protocol(dataset))
        for kind, of_kind in sorted(members.groupby("kind"), key=lambda item: str(item[0]))
    ]
    return pd.DataFrame(rows, columns=["group", "kind", "visits", "patients"])


def costs_per_patient(per_patient: pd.DataFrame, costs: UnitCosts) -> pd.DataFrame:
    """Each patient's cost per costed measure (`cost_<measure>`) and in total (`cost`), in
    the file's currency."""
    frame = per_patient[["trial_id", "arm", "treatment_arm"]].copy()
    for measure, unit_cost in costs.cost_per_unit.items():
        frame[f"cost_{measure}"] = per_patient[measure] * unit_cost
    cost_columns = [f"cost_{measure}" for measure in costs.cost_per_unit]
    frame["cost"] = frame[cost_columns].sum(axis=1)
    frame["currency"] = costs.currency
    return frame


def costs_per_group(per_patient_costs: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Per group: total cost and the `describe` statistics of the cost per patient."""
    currency = per_patient_costs["currency"].iloc[0] if len(per_patient_costs) else None
    rows = [
        {"group": group, "currency": currency, "total": float(members["cost"].sum())}
        | describe(members["cost"])
        for group, members in grouped(per_patient_costs, protocol)
    ]
    return pd.DataFrame(rows)
