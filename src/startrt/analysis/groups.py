"""The populations and groups every report table uses, and one way to describe numbers.

Populations: randomized (intention to treat: every patient with an allocation) and treated
(the safety population: randomized and given at least one cycle). Groups, from the protocol the
dataset names: the randomized arms and, inside a randomized arm split in several, its treatment
arms (START-01: standard, personalized, then dTOC and CAP-dTOC); a patient not yet assigned a
treatment arm counts in their randomized arm only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from startrt.analysis.dataset import TrialDataset
from startrt.analysis.trial_protocol import protocol_of
from startrt.protocol.definition import Protocol

PATIENT_COLUMNS = ["trial_id", "arm", "treatment_arm", "stratum"]


def randomized(dataset: TrialDataset) -> pd.DataFrame:
    """Randomized patients (trial_id, arm, treatment_arm, stratum, randomized_on)."""
    patients = dataset.patients
    chosen = patients["randomized_on"].notna() & patients["arm"].notna()
    return patients.loc[chosen, [*PATIENT_COLUMNS, "randomized_on"]].reset_index(drop=True)


def treated(dataset: TrialDataset) -> pd.DataFrame:
    """The safety population: randomized patients given at least one cycle, with the date of
    their first administration (`first_cycle_on`)."""
    first = dataset.cycles.groupby("trial_id")["administered_on"].min().rename("first_cycle_on")
    return randomized(dataset).merge(first.reset_index(), on="trial_id", how="inner")


def dataset_protocol(dataset: TrialDataset) -> Protocol:
    """The protocol the dataset names (the default version when it is not shipped)."""
    return protocol_of(dataset.protocol).protocol


def arm_ids(protocol: Protocol, column: str) -> tuple[str, ...]:
    """Every value of a patients column, in the protocol's order: the randomized arms for
    `arm`, every arm id for `treatment_arm`."""
    if column == "arm":
        return protocol.randomization.arms
    return tuple(arm.id for arm in protocol.arms)


def groups(protocol: Protocol) -> tuple[tuple[str, str], ...]:
    """(group name, patients column): the report's groups in display order (module docstring);
    a group's name is the arm's id."""
    split = [
        arm.id
        for arm in protocol.arms
        if sum(other.randomized_arm == arm.randomized_arm for other in protocol.arms) > 1
    ]
    return (
        *((arm, "arm") for arm in protocol.randomization.arms),
        *((arm, "treatment_arm") for arm in split),
    )


def grouped(frame: pd.DataFrame, protocol: Protocol) -> Iterator[tuple[str, pd.DataFrame]]:
    """(group name, its rows) for each group, from a frame with `arm` and `treatment_arm`."""
    for name, column in groups(protocol):
        yield name, frame[frame[column] == name]


def with_groups(frame: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """`frame` (keyed by trial_id) restricted to `population`, with arm and treatment_arm."""
    return frame.merge(population[["trial_id", "arm", "treatment_arm"]], on="trial_id")


def describe(values: Sequence[float] | pd.Series) -> dict[str, float | int | None]:
    """n, mean, SD (n - 1), median, quartiles (linear interpolation, Hyndman-Fan type 7),
    minimum and maximum of the non-missing values; statistics are None when undefined."""
    numbers = np.asarray(pd.Series(values, dtype="float64").dropna(), dtype=float)
    n = len(numbers)
    if n == 0:
        return {"n": 0} | dict.fromkeys(("mean", "sd", "median", "q1", "q3", "min", "max"))
    q1, median, q3 = np.quantile(numbers, [0.25, 0.5, 0.75])
    return {
        "n": n,
        "mean": float(numbers.mean()),
        "sd": float(numbers.std(ddof=1)) if n > 1 else None,
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(numbers.min()),
        "max": float(numbers.max()),
    }


def by_group(
    summary: pd.DataFrame,
    keys: Sequence[str],
    cell: Callable[[dict[Hashable, Any]], str],
    patients: str = "n_patients",
) -> pd.DataFrame:
    """A long summary (a row per key and `group`) as a table for people: a row per key, a
    column per group (in order of appearance) headed with its patients, "standard (n=149)",
    and `cell(row)` in it."""
    headers: dict[str, str] = {}
    lines: dict[tuple[Any, ...], dict[str, str]] = {}
    for row in summary.to_dict("records"):
        header = headers.setdefault(row["group"], f"{row['group']} (n={int(row[patients])})")
        lines.setdefault(tuple(row[key] for key in keys), {})[header] = cell(row)
    rows = [dict(zip(keys, key, strict=True)) | cells for key, cells in lines.items()]
    return pd.DataFrame(rows).reindex(columns=[*keys, *headers.values()])
