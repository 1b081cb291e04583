"""`startrt simulate`: the in-silico START-01 trial and its operating characteristics.

Writes into OUT: `dataset/` (the first trial's analysis dataset, read by `startrt report
--simulation OUT`), `trial_patients.csv`, `trial_cycles.csv` and `trial_arms.csv` (its
per-patient and per-cycle records and per-arm summaries), `replicates.csv` (one row per
replicate trial), `operating_characteristics.json` and `parameters.toml` (the parameters
used); with `--policies`, `policies.csv` and `policies.svg`: the planning policies of
`simulation.policies` run on the same virtual patients (same seed and replicates). Everything
is computed before anything is written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from startrt.cli_support import JsonFlag, ProtocolPath, emit, protocol_from, refuses_bad_input
from startrt.output import plain, print_tables, rows_table
from startrt.validation import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from startrt.protocol.definition import Protocol

SUMMARY_METRICS = (
    "patients",
    "cycles",
    "activity_gbq",
    "kidney_gy",
    "renal_limit_share",
    "true_kidney_over_limit_share",
    "measured_kidney_over_limit_share",
    "median_pfs_months",
    "objective_response_share",
    "haematological_g34_share",
    "kidney_g34_share",
    "visits",
    "spect_sessions",
    "capecitabine_tablets",
)


@contextmanager
def _progress(replicates: int) -> Iterator[tuple[Any, Any]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        trial = progress.add_task("trial 1 through the protocol engine", total=1)
        runs = progress.add_task("replicate trials", total=replicates)
        yield (
            lambda: progress.update(trial, advance=1),
            lambda done: progress.update(runs, advance=done),
        )


def _write(out: Path, files: dict[str, Any]) -> None:
    """Write everything to a scratch folder beside OUT, then move it into OUT."""
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".simulate-", dir=out))
    try:
        for name, write in files.items():
            write(scratch / name)
        for item in scratch.iterdir():
            target = out / item.name
            if target.is_dir():
                shutil.rmtree(target)
            item.replace(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@refuses_bad_input
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder for the results.")],
    replicates: Annotated[
        int, typer.Option(help="Replicate trials (operating characteristics).")
    ] = 1000,
    seed: Annotated[
        int, typer.Option(help="Seed: the same seed gives the same numbers.")
    ] = 20221101,
    parameters: Annotated[
        Path | None,
        typer.Option("--parameters", help="Parameter TOML (default: the shipped file)."),
    ] = None,
    protocol_path: ProtocolPath = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="dask.distributed scheduler address (default: a local cluster)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Workers of the local cluster.")] = 2,
    serial: Annotated[
        bool, typer.Option("--serial", help="Run the replicates in this process (no Dask).")
    ] = False,
    chunk_size: Annotated[int, typer.Option(help="Replicates per task.")] = 50,
    compare: Annotated[
        bool,
        typer.Option(
            "--policies",
            help="Also run the planning policies (the protocol, its predicted rise, probability "
            "limits 5/10/20 %) on the same virtual patients: policies.csv and policies.svg.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Simulate START-01: one trial through the protocol engine (its dataset for `startrt
    report --simulation OUT`) and replicate trials for power, hazard ratios, cycles, GBq,
    renal-limit share, toxicity and resources."""
    from startrt.analysis.dataset import write_dataset
    from startrt.analysis.policies import policies_figure
    from startrt.simulation.distributed import run_distributed
    from startrt.simulation.parameters import default_parameters_text, load_parameters
    from startrt.simulation.policies import compare_policies, policies
    from startrt.simulation.replicates import (
        check_run,
        operating_characteristics,
        run_replicates,
    )
    from startrt.simulation.trial import simulate_trial

    check_run(replicates, chunk_size)
    if workers < 1:
        raise InvalidInputError("--workers", workers, "must be >= 1")
    settings = load_parameters(parameters)
    text = default_parameters_text() if parameters is None else parameters.read_text("utf-8")
    protocol = protocol_from(protocol_path)
    runs = replicates * (len(policies(protocol)) if compare else 1)
    with _progress(runs) as (trial_done, replicates_done):
        run = simulate_trial(settings, seed, protocol)
        trial_done()

        def replicate_rows(policy: Protocol) -> pd.DataFrame:
            if serial:
                return run_replicates(
                    settings,
                    seed,
                    replicates,
                    policy,
                    chunk_size=chunk_size,
                    progress=replicates_done,
                )
            return run_distributed(
                settings,
                seed,
                replicates,
                policy,
                scheduler=scheduler,
                workers=workers,
                chunk_size=chunk_size,
                progress=replicates_done,
            )

        table = replicate_rows(protocol)
        compared = (
            compare_policies(protocol, lambda p: table if p is protocol else replicate_rows(p))
            if compare
            else None
        )
    summary = operating_characteristics(table, settings, protocol, seed)
    summary["first_trial"] = {
        key: run.statistics[key]
        for key in ("patients", "pfs_events", "logrank_p", "hazard_ratio", "reject")
    }
    _write(
        out,
        {
            "dataset": lambda path: write_dataset(run.dataset, path),
            "trial_patients.csv": lambda path: run.patients.to_csv(path, index=False),
            "trial_cycles.csv": lambda path: run.cycles.to_csv(path, index=False),
            "trial_arms.csv": lambda path: run.arms.to_csv(path, index=False),
            "replicates.csv": lambda path: table.to_csv(path, index=False),
            "operating_characteristics.json": lambda path: path.write_text(
                json.dumps(plain(summary), indent=2, allow_nan=False) + "\n"
            ),
            "parameters.toml": lambda path: path.write_text(text, encoding="utf-8"),
            **(
                {}
                if compared is None
                else {
                    "policies.csv": lambda path: compared.to_csv(path, index=False),
                    "policies.svg": lambda path: path.write_text(
                        policies_figure(compared), encoding="utf-8"
                    ),
                }
            ),
        },
    )
    if compared is not None:
        summary["policies"] = compared.to_dict(orient="records")
    if as_json:
        emit(True, summary, "")
        return
    headline = {
        key: summary[key]
        for key in ("replicates", "seed", "protocol", "test", "alpha", "power", "power_mc_se")
    }
    headline["hazard_ratio_median"] = summary["hazard_ratio"]["median"]
    headline["hazard_ratio_95_range"] = [
        summary["hazard_ratio"]["q025"],
        summary["hazard_ratio"]["q975"],
    ]
    headline["pfs_events_mean"] = summary["pfs_events"]["mean"]
    headline["out"] = str(out)
    emit(False, headline, "Operating characteristics")
    groups = summary["groups"]
    rows: list[Mapping[str, Any]] = [
        {"metric": metric, **{group: groups[group][metric]["mean"] for group in groups}}
        for metric in SUMMARY_METRICS
    ]
    print_tables(rows_table("Means over replicate trials", rows, ["metric", *groups]))
    if compared is not None:
        columns = [str(column) for column in compared.columns]
        records = [dict(zip(columns, row, strict=True)) for row in compared.itertuples(index=False)]
        print_tables(rows_table("Planning policies (personalized arm)", records, columns))
