"""`make demo`: the whole system end to end on embedded SQLite.

1. Creates the trial database (SQLite in `./var`, or `$STARTRT_DATA_DIR`), the protocol's four
   sites and a team per site (nurse, investigator, physicist, pharmacist), a monitor, a
   statistician and an administrator.
2. Simulates a START-01 trial of virtual patients (`simulation.simulate_trial`) and enters it
   through the web layer's services at the trial's own dates (`demo.virtual_trial`): screening and
   eligibility, randomization from the concealed list, cycles planned by the planner, signed
   releases, administrations, dosimetry (computed from generated phantom SPECT/CT studies for the
   first patients), capecitabine, labs, adverse events, RECIST assessments, follow-up.
3. Reads the database back as an analysis dataset and writes the trial report.

Every entry is stamped with its date in the simulated trial: the demo moves the clock the
services read (time-machine), so the audit trail shows those dates. The database is the demo's
own: a `var/` holding another trial is refused, never overwritten.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import time_machine
from rich.console import Console

from startrt.analysis.dataset import TrialDataset
from startrt.output import key_value_table, rows_table
from startrt.protocol.definition import default_protocol
from startrt.simulation.parameters import Parameters, load_parameters
from startrt.simulation.trial import simulate_trial
from startrt.validation import InvalidInputError

DEMO_SEED = 20221101
DEMO_PATIENTS = 40
ACCRUAL_MONTHS = 24.0
FOLLOW_UP_MONTHS = 9.0
PHANTOM_STUDIES = 2
PASSWORD = "startrt-demo"  # every demo account's; for a local demonstration only
MARKER = "DEMO"  # in the data folder: the database there is the demo's
OUT = Path("demo-out")


def demo_parameters() -> Parameters:
    """The shipped parameters with a cohort small enough to enter in a few minutes, accrued
    from the trial's start (2022-11-01) over 24 months and cut 9 months later (2025-08)."""
    parameters = load_parameters()
    trial = parameters.trial.model_copy(
        update={
            "patients": DEMO_PATIENTS,
            "accrual_months": ACCRUAL_MONTHS,
            "minimum_follow_up_months": FOLLOW_UP_MONTHS,
        }
    )
    return parameters.model_copy(update={"trial": trial})


def data_folder() -> Path:
    """The data folder, emptied if it holds the demo's database or an empty one (the settings
    create the file before the first connection; `make test` leaves one), refused if another."""
    folder = Path(os.environ.get("STARTRT_DATA_DIR", "var")).resolve()
    database = folder / "startrt.sqlite3"
    holds_a_trial = database.exists() and database.stat().st_size > 0
    if holds_a_trial and not (folder / MARKER).exists():
        raise InvalidInputError(
            "STARTRT_DATA_DIR",
            str(folder),
            "holds a trial database the demo did not make; set STARTRT_DATA_DIR to another folder",
        )
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by `make demo`; the next demo run replaces it\n")
    os.environ["STARTRT_DATA_DIR"] = str(folder)
    return folder


@contextmanager
def at(moment: datetime) -> Iterator[None]:
    """The services see `moment` as now."""
    with time_machine.travel(moment, tick=False):
        yield


def main() -> None:
    console = Console()
    folder = data_folder()
    from startrt.cli_web import ensure_sites, setup_django

    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    ensure_sites()
    from startrt.demo.team import make_team
    from startrt.demo.virtual_trial import enter_simulated_trial
    from startrt.web.exports.analysis_dataset import trial_dataset

    protocol = default_protocol()
    team = make_team(protocol, PASSWORD)
    parameters = demo_parameters()
    console.print(f"[bold]Simulating[/bold] {DEMO_PATIENTS} virtual START-01 patients ...")
    run = simulate_trial(parameters, DEMO_SEED, protocol)
    console.print("[bold]Entering[/bold] them through the services at their trial dates ...")
    with console.status("screening, randomizing and treating (a few minutes)"):
        enrolment = enter_simulated_trial(
            run,
            parameters,
            protocol,
            team.sites,
            team.statistician,
            PASSWORD,
            at,
            phantom_studies=PHANTOM_STUDIES,
        )
    from django.contrib.auth.models import User

    from startrt.demo.monitoring import monitoring_visit

    nurses = {name: site.nurse for name, site in team.sites.items()}
    visit = monitoring_visit(User.objects.get(username="monitor"), nurses)
    from startrt.demo.safety import report_saes

    saes = report_saes(team.sites, at)
    cut_off = run.dataset.cut_off
    dataset = trial_dataset(cut_off, protocol)
    console.print("[bold]Writing[/bold] the trial report ...")
    from startrt.analysis.report import ReportKind, build_report
    from startrt.analysis.report_files import write_report

    shutil.rmtree(OUT, ignore_errors=True)
    for kind in ReportKind:  # the closed report by arm, the open one with the arms pooled
        write_report(build_report(dataset, kind=kind), OUT / "report" / kind)
    console.print(
        key_value_table(
            "START-01 demo trial",
            {
                "database": str(folder / "startrt.sqlite3"),
                "cut-off": cut_off.isoformat(),
                "screened": enrolment.screened,
                "randomized": enrolment.randomized,
                "cycles given": enrolment.cycles,
                "doses computed from phantom SPECT/CT": enrolment.computed_studies,
                "records verified by the monitor (SDV)": visit.records_verified,
                "data queries open / answered / closed": (
                    f"{visit.queries_open} / {visit.queries_answered} / {visit.queries_closed}"
                ),
                "SAE reports on time / late (follow-ups)": (
                    f"{saes.on_time} / {saes.late} ({saes.follow_ups}), mail in {folder / 'mail'}"
                ),
                "report, closed (by arm)": str((OUT / "report" / "closed").resolve()),
                "report, open (arms pooled)": str((OUT / "report" / "open").resolve()),
            },
        )
    )
    rows = _arm_rows(dataset)
    console.print(rows_table("Per treatment arm, from the database", rows, list(rows[0])))
    console.print(
        "Browse it: [bold].venv/bin/startrt serve[/bold] then http://127.0.0.1:8000/ as "
        f"investigator.lund (or nurse.lund, physicist.lund, monitor, statistician), password "
        f"{PASSWORD}; investigator.lund signs in with a code too: add the TOTP key "
        f"{team.otp_keys['investigator.lund']} to an authenticator app"
    )


def _arm_rows(dataset: TrialDataset) -> list[dict[str, object]]:
    cycles = dataset.cycles.merge(dataset.patients[["trial_id", "treatment_arm"]], on="trial_id")
    rows = []
    for arm, group in dataset.patients.groupby("treatment_arm"):
        given = cycles[cycles["treatment_arm"] == arm]
        rows.append(
            {
                "arm": arm,
                "patients": len(group),
                "cycles": len(given),
                "GBq": round(float(given["activity_gbq"].sum()), 1),
                "max cumulative kidney Gy": round(
                    float(given.groupby("trial_id")["kidney_dose_gy"].sum().max()), 1
                ),
            }
        )
    return rows
