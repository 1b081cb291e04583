"""Replicate trials for operating characteristics, vectorised: many trials at once through
`TabulatedDecisions` (the protocol engine's decisions remembered per distinct case).

Replicate r draws only from its own streams (`simulation.streams`), so its row is the same
whichever chunk computes it and whatever the scheduler: replicate 0 is the trial of
`simulate_trial` with the same seed. A row holds the PFS log-rank test and Cox hazard ratio
(personalized vs standard, `analysis.survival`) and per-group means (`<metric>_<group>`).
`operating_characteristics` summarises the rows: power of the log-rank test (share of
replicates rejecting at alpha, with its Monte Carlo standard error), the distribution of the
hazard ratio, and the mean and 95 % range across replicates of every per-group metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from startrt.protocol.definition import Protocol, default_protocol
from startrt.simulation.cohort import recruit, screen
from startrt.simulation.course import run_course
from startrt.simulation.endpoints import endpoints, groups, statistics_rows
from startrt.simulation.parameters import Parameters
from startrt.simulation.streams import check_seed
from startrt.simulation.tabulated import TabulatedDecisions
from startrt.validation import InvalidInputError

Progress = Callable[[int], None]
DEFAULT_CHUNK = 50
MAX_REPLICATES = 1_000_000
_DECISIONS: dict[tuple[str, str], TabulatedDecisions] = {}


def decisions_for(protocol: Protocol, parameters: Parameters) -> TabulatedDecisions:
    """This process's tabulated decisions for a protocol (built once, reused by every chunk)."""
    key = (protocol.model_dump_json(), parameters.trial.start_date.isoformat())
    if key not in _DECISIONS:
        _DECISIONS[key] = TabulatedDecisions(protocol, parameters.trial.start_date)
    return _DECISIONS[key]


def run_chunk(
    parameters: Parameters, protocol: Protocol, seed: int, replicates: Sequence[int]
) -> list[dict[str, Any]]:
    """The rows of `replicates`, simulated together."""
    decisions = decisions_for(protocol, parameters)
    screenings = screen(parameters, protocol, decisions, seed, replicates)
    cohort = recruit(parameters, protocol, decisions, seed, replicates, screenings)
    course = run_course(cohort, parameters, protocol, decisions, seed)
    ends = endpoints(cohort, course, parameters, protocol, decisions)
    return statistics_rows(cohort, course, ends, parameters, protocol)


def chunks(replicates: int, size: int) -> Iterator[list[int]]:
    """Replicates 0..replicates-1 in consecutive chunks of `size`."""
    for start in range(0, replicates, size):
        yield list(range(start, min(start + size, replicates)))


def check_run(replicates: object, chunk_size: object) -> tuple[int, int]:
    for name, value, high in (
        ("replicates", replicates, MAX_REPLICATES),
        ("chunk_size", chunk_size, 10_000),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise InvalidInputError(name, value, f"must be an integer in [1, {high}]")
    return int(str(replicates)), int(str(chunk_size))


def run_replicates(
    parameters: Parameters,
    seed: int,
    replicates: int,
    protocol: Protocol | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Rows of replicates 0..replicates-1 computed in this process, one chunk at a time."""
    seed = check_seed(seed)
    replicates, chunk_size = check_run(replicates, chunk_size)
    protocol = protocol or default_protocol()
    rows: list[dict[str, Any]] = []
    for chunk in chunks(replicates, chunk_size):
        rows.extend(run_chunk(parameters, protocol, seed, chunk))
        if progress is not None:
            progress(len(chunk))
    return replicate_table(rows)


def replicate_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a table sorted by replicate."""
    return pd.DataFrame(rows).sort_values("replicate").reset_index(drop=True)


def _spread(values: pd.Series) -> dict[str, float | None]:
    finite = values.dropna().astype(float)
    if finite.empty:
        return {"mean": None, "q025": None, "q975": None}
    return {
        "mean": float(finite.mean()),
        "q025": float(finite.quantile(0.025)),
        "q975": float(finite.quantile(0.975)),
    }


def operating_characteristics(
    table: pd.DataFrame, parameters: Parameters, protocol: Protocol, seed: int
) -> dict[str, Any]:
    """Summary of the replicate rows (see the module docstring)."""
    n = len(table)
    power = float(table["reject"].mean())
    log_hr = table["log_hazard_ratio"].dropna().astype(float)
    hazard_ratio: dict[str, float | None] = {
        "median": float(np.exp(log_hr.median())) if len(log_hr) else None,
        "geometric_mean": float(np.exp(log_hr.mean())) if len(log_hr) else None,
        "q025": float(np.exp(log_hr.quantile(0.025))) if len(log_hr) else None,
        "q975": float(np.exp(log_hr.quantile(0.975))) if len(log_hr) else None,
        "sd_log": float(log_hr.std()) if len(log_hr) > 1 else None,
    }
    summary: dict[str, Any] = {
        "replicates": n,
        "seed": seed,
        "patients_per_trial": parameters.trial.patients,
        "protocol": protocol.label,
        "test": "log-rank of PFS, personalized vs standard"
        + (", stratified by FDG-PET" if parameters.analysis.logrank_strata == "fdg" else ""),
        "alpha": parameters.analysis.alpha,
        "power": power,
        "power_mc_se": math.sqrt(power * (1.0 - power) / n),
        "hazard_ratio": hazard_ratio,
        "pfs_events": _spread(table["pfs_events"]),
        "not_analysable": int(table["logrank_p"].isna().sum()),
        "groups": {},
    }
    for group in groups(protocol):
        suffix = f"_{group}"
        columns = [c for c in table.columns if c.endswith(suffix)]
        summary["groups"][group] = {c[: -len(suffix)]: _spread(table[c]) for c in columns}
    return summary
