"""In-silico trial speed: patients per second of replicate trials, against the same trials
patient by patient through the protocol engine (the baseline, measured in the same run).

Three figures: (1) the engine path (`EngineDecisions`: every decision a call of the clinic's
code) on a few replicates; (2) the tabulated path in one process; (3) the tabulated path on a
local Dask cluster of two worker processes, and the time it projects for 10,000 replicates
of 300 patients. Tables and caches are warmed before timing (1) and (2).
"""

from __future__ import annotations

import time

from startrt.protocol.definition import default_protocol
from startrt.simulation.cohort import recruit, screen
from startrt.simulation.course import run_course
from startrt.simulation.distributed import run_distributed
from startrt.simulation.endpoints import endpoints, statistics_rows
from startrt.simulation.engine import EngineDecisions
from startrt.simulation.parameters import load_parameters
from startrt.simulation.replicates import run_chunk

SEED = 20221101
TARGET_REPLICATES = 10_000


def _engine_seconds(replicates: list[int]) -> float:
    parameters, protocol = load_parameters(), default_protocol()
    decisions = EngineDecisions(protocol, parameters.trial.start_date)
    start = time.perf_counter()
    screenings = screen(parameters, protocol, decisions, SEED, replicates)
    cohort = recruit(parameters, protocol, decisions, SEED, replicates, screenings)
    course = run_course(cohort, parameters, protocol, decisions, SEED)
    ends = endpoints(cohort, course, parameters, protocol, decisions)
    statistics_rows(cohort, course, ends, parameters, protocol)
    return time.perf_counter() - start


def main(
    engine_replicates: int = 2, serial_replicates: int = 200, dask_replicates: int = 1000
) -> None:
    parameters, protocol = load_parameters(), default_protocol()
    patients = parameters.trial.patients
    run_chunk(parameters, protocol, SEED, list(range(100_000, 100_050)))  # warm the tables
    engine_s = _engine_seconds(list(range(engine_replicates)))
    start = time.perf_counter()
    for first in range(0, serial_replicates, 50):
        run_chunk(parameters, protocol, SEED, list(range(first, first + 50)))
    serial_s = time.perf_counter() - start
    start = time.perf_counter()
    run_distributed(parameters, SEED, dask_replicates, protocol, workers=2, chunk_size=50)
    dask_s = time.perf_counter() - start
    rows = (
        (f"engine, patient by patient ({engine_replicates} trials)", engine_replicates, engine_s),
        (f"tabulated, one process ({serial_replicates} trials)", serial_replicates, serial_s),
        (
            f"tabulated, Dask 2 workers ({dask_replicates} trials, start-up incl.)",
            dask_replicates,
            dask_s,
        ),
    )
    engine_rate = engine_replicates * patients / engine_s
    title = f"in-silico trials of {patients} patients"
    print(f"{title:<60} {'patients/s':>11} {'ratio':>7}")
    for name, trials, seconds in rows:
        rate = trials * patients / seconds
        print(f"{name:<60} {rate:11.0f} {rate / engine_rate:7.1f}")
    minutes = TARGET_REPLICATES * dask_s / dask_replicates / 60
    hours = TARGET_REPLICATES * patients / engine_rate / 3600
    print(
        f"-> {TARGET_REPLICATES:,} trials on 2 workers: about {minutes:.1f} min "
        f"(patient by patient through the engine: {hours:.1f} h on one core)"
    )


if __name__ == "__main__":
    main()
