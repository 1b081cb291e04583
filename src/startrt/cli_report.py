"""`startrt report`: the trial report (HTML with embedded figures, PDF, CSV per table, JSON)
from an analysis dataset folder, an in-silico trial's folder, or the trial database: the
closed report by arm (`closed/`) and the open report with the arms pooled (`open/`)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit, urlunsplit

import typer

from startrt.cli_support import JsonFlag, emit, refuses_bad_input
from startrt.validation import InvalidInputError

if TYPE_CHECKING:  # pandas and matplotlib load only when a report is made
    from startrt.analysis.dataset import TrialDataset

SIMULATION_DATASET = "dataset"
"""The folder inside a simulation's output that holds its analysis dataset."""
BOTH = "both"
KINDS = ("open", "closed")
"""The values of `startrt.analysis.report.ReportKind`, here so that `--help` loads no pandas."""


def _kinds(choice: str) -> tuple[str, ...]:
    if choice == BOTH:
        return KINDS
    if choice not in KINDS:
        raise InvalidInputError("--report", choice, f"must be one of {', '.join((*KINDS, BOTH))}")
    return (choice,)


def _from_database(url: str, cut_off: date) -> TrialDataset:
    """The database's dataset at `cut_off` (Django set up on `url`; the URL's password is
    never shown in messages)."""
    os.environ["STARTRT_DATABASE_URL"] = url
    from startrt.cli_web import setup_django

    setup_django()
    from django.db import DatabaseError

    from startrt.web.exports.analysis_dataset import trial_dataset
    from startrt.web.monitoring.data_lock import report_statement

    try:  # the source names the database lock and whether its snapshot is unchanged
        dataset = trial_dataset(cut_off)
        return replace(dataset, source=f"{dataset.source}. {report_statement()}")
    except DatabaseError as error:
        rule = f"cannot be read (is it a migrated startrt database?): {error}"
        raise InvalidInputError("--database", _without_password(url), rule) from None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def _dataset(
    dataset: Path | None, simulation: Path | None, database: str | None, cut_off: str | None
) -> TrialDataset:
    """The dataset from exactly one of the three sources."""
    given = [
        name
        for name, value in (
            ("--dataset", dataset),
            ("--simulation", simulation),
            ("--database", database),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise InvalidInputError("source", given, "give one of --dataset, --simulation, --database")
    if cut_off is not None and database is None:
        raise InvalidInputError(
            "--cut-off",
            cut_off,
            "applies to --database only: a dataset folder carries its own cut-off",
        )
    if database is not None:
        return _from_database(database, _date("--cut-off", cut_off))
    from startrt.analysis.dataset import read_dataset

    folder = dataset if dataset is not None else Path(str(simulation)) / SIMULATION_DATASET
    return read_dataset(folder)


def _date(field: str, text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(field, text, "must be a date YYYY-MM-DD") from None


@refuses_bad_input
def report(
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for open/ and closed/, each with report.html, report.pdf, report.json "
            "and tables/*.csv."
        ),
    ],
    dataset: Annotated[
        Path | None, typer.Option(help="An analysis dataset folder (CSV files + trial.json).")
    ] = None,
    simulation: Annotated[
        Path | None,
        typer.Option(help=f"An in-silico trial's folder (reads its {SIMULATION_DATASET}/)."),
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="The trial database URL (postgresql://... or sqlite:///...).")
    ] = None,
    cut_off: Annotated[
        str | None, typer.Option(help="Data cut-off YYYY-MM-DD for --database (default: today).")
    ] = None,
    unit_costs: Annotated[
        Path | None, typer.Option(help="Unit costs (.toml or .csv) for the cost per patient.")
    ] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print the PDF.")] = True,
    kind: Annotated[
        str,
        typer.Option(
            "--report",
            help="open (arms pooled), closed (by arm, for the DMC only) or both.",
        ),
    ] = BOTH,
    as_json: JsonFlag = False,
) -> None:
    """The trial report: CONSORT flow, efficacy, safety, resource demands, sample size; open
    (arms pooled) and closed (by arm)."""
    kinds = _kinds(kind)
    import pandas as pd

    from startrt.analysis.costs import read_unit_costs
    from startrt.analysis.report import ReportKind, build_report
    from startrt.analysis.report_files import write_report

    costs = None if unit_costs is None else read_unit_costs(unit_costs)
    trial = _dataset(dataset, simulation, database, cut_off)
    compared = None if simulation is None else simulation / "policies.csv"
    policies = pd.read_csv(compared) if compared is not None and compared.is_file() else None
    built = {
        name: build_report(trial, unit_costs=costs, policies=policies, kind=ReportKind(name))
        for name in kinds
    }
    files = [file for name in kinds for file in write_report(built[name], out / name, pdf=pdf)]
    first = built[kinds[0]]
    summary = {
        "protocol": first.protocol,
        "cut_off": first.cut_off,
        "source": first.source,
        "screened": first.consort.screened,
        "randomized": first.consort.randomized,
        "reports": {name: str(out / name) for name in kinds},
        "figures": list(dict.fromkeys(f.name for name in kinds for f in built[name].figures)),
        "files": [str(file) for file in files],
        "notes": list(first.notes),
    }
    emit(as_json, summary, "Trial report")
