"""`startrt report`: from a dataset folder, a simulation's folder or the trial database; JSON
summary; exit status 2 naming the field on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from startrt.analysis.dataset import write_dataset
from startrt.cli import app
from support.datasets import report_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trial") / "dataset"
    write_dataset(report_dataset(), folder)
    return folder


def run(*args: str) -> Any:
    result = runner.invoke(app, ["report", *args])
    return result


def test_report_from_a_dataset_folder(dataset_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("--dataset", str(dataset_folder), "--out", str(out), "--no-pdf", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["protocol"], data["cut_off"]) == ("START-01 v1.0", "2025-12-31")
    assert (data["screened"], data["randomized"]) == (10, 7)
    assert "km_pfs_arm" in data["figures"]
    assert data["reports"] == {"open": str(out / "open"), "closed": str(out / "closed")}
    for kind in ("open", "closed"):
        assert (out / kind / "report.html").stat().st_size > 10_000
        assert not (out / kind / "report.pdf").exists()
        assert str(out / kind / "tables" / "safety_grade_3_4.csv") in data["files"]


def test_report_from_a_simulation_folder_with_costs(dataset_folder: Path, tmp_path: Path) -> None:
    costs = tmp_path / "costs.csv"
    costs.write_text("measure,cost_per_unit,currency\nvisits,1000,EUR\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["--simulation", str(dataset_folder.parent), "--out", str(out), "--no-pdf"]
    result = run(*args, "--unit-costs", str(costs), "--json")
    assert result.exit_code == 0, result.output
    per_group = (out / "closed" / "tables" / "costs_per_group.csv").read_text(encoding="utf-8")
    # standard visits 9 + 5 + 2 = 16 at 1000 EUR
    assert '"standard","EUR",16000.0' in per_group  # text quoted for spreadsheets


def test_table_output_without_json(dataset_folder: Path, tmp_path: Path) -> None:
    result = run("--dataset", str(dataset_folder), "--out", str(tmp_path), "--no-pdf")
    assert result.exit_code == 0, result.output
    assert "Trial report" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give one of --dataset, --simulation, --database"),
        (["--simulation", "x"], "give one of"),
        (["--cut-off", "2025-01-01"], "applies to --database only"),
        (["--unit-costs", "nowhere.toml"], "cannot be read"),
        (["--report", "secret"], "must be one of open, closed, both"),
    ],
)
def test_bad_arguments(
    dataset_folder: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    source = [] if extra == [] else ["--dataset", str(dataset_folder)]
    result = run(*source, *extra, "--out", str(tmp_path / "out"), "--no-pdf")
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_bad_dataset_folder(tmp_path: Path) -> None:
    result = run("--dataset", str(tmp_path), "--out", str(tmp_path / "out"), "--no-pdf")
    assert result.exit_code == 2
    assert "must contain trial.json" in result.output


def test_bad_unit_costs(dataset_folder: Path, tmp_path: Path) -> None:
    costs = tmp_path / "costs.toml"
    costs.write_text('currency = "SEK"\n[cost_per_unit]\nvisits = -5\n', encoding="utf-8")
    out = tmp_path / "out"
    result = run("--dataset", str(dataset_folder), "--unit-costs", str(costs), "--out", str(out))
    assert result.exit_code == 2
    assert "cost_per_unit.visits=-5" in result.output
    assert not out.exists()


def _startrt(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "startrt.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_report_from_the_database(tmp_path: Path) -> None:
    """A fresh process on a new SQLite database: refused before migration, then an (empty)
    trial's report. The database's content is tested with the lead's trial_dataset."""
    url = f"sqlite:///{tmp_path / 'trial.sqlite3'}"
    environment = {**os.environ, "STARTRT_DATA_DIR": str(tmp_path)}
    environment.pop("STARTRT_DATABASE_URL", None)
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    report = ["report", "--database", url, "--cut-off", "2026-01-01", "--no-pdf", "--json"]
    refused = _startrt(*report, "--out", str(tmp_path / "refused"), environment=environment)
    assert refused.returncode == 2, refused.stderr
    assert "is it a migrated startrt database?" in refused.stderr
    migrated = _startrt(
        "manage", "migrate", "-v", "0", environment={**environment, "STARTRT_DATABASE_URL": url}
    )
    assert migrated.returncode == 0, migrated.stderr
    done = _startrt(*report, "--out", str(tmp_path / "out"), environment=environment)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["source"], data["cut_off"], data["screened"]) == (
        "trial database. Database not locked: the data may still change.",
        "2026-01-01",
        0,
    )
    assert (tmp_path / "out" / "closed" / "report.html").exists()


def test_open_report_only(dataset_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "--dataset", str(dataset_folder), "--out", str(out), "--no-pdf", "--report", "open"
    )
    assert result.exit_code == 0, result.output
    assert (out / "open" / "report.html").is_file()
    assert not (out / "closed").exists()
    assert "OPEN REPORT" in (out / "open" / "report.html").read_text(encoding="utf-8")
