"""`startrt simulate`: the files, the JSON, reproducibility and refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from startrt.analysis.dataset import read_dataset
from startrt.cli import app
from startrt.simulation.parameters import default_parameters_text

runner = CliRunner()


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parameters") / "small.toml"
    path.write_text(default_parameters_text().replace("patients = 300", "patients = 40"))
    return path


def simulate(out: Path, parameters: Path, *extra: str) -> dict[str, Any]:
    args = ["simulate", "--replicates", "3", "--seed", "2", "--out", str(out)]
    result = runner.invoke(app, [*args, "--parameters", str(parameters), *extra, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_simulate_writes_every_output(tmp_path: Path, small_file: Path) -> None:
    out = tmp_path / "run"
    summary = simulate(out, small_file, "--serial")
    assert summary["replicates"] == 3
    assert 0.0 <= summary["power"] <= 1.0
    assert set(summary["groups"]) == {"standard", "personalized", "dTOC", "CAP-dTOC"}
    assert summary["first_trial"]["patients"] == 40
    dataset = read_dataset(out / "dataset")
    assert dataset.source == "simulation"
    assert dataset.patients["randomized_on"].notna().sum() == 40
    assert len(pd.read_csv(out / "replicates.csv")) == 3
    assert len(pd.read_csv(out / "trial_patients.csv")) == 40
    # every cycle; the dataset holds those given by the data cut-off
    assert len(pd.read_csv(out / "trial_cycles.csv")) >= len(dataset.cycles) > 0
    assert (out / "parameters.toml").read_text() == small_file.read_text()
    stored = json.loads((out / "operating_characteristics.json").read_text())
    assert stored == summary
    assert not [p for p in out.iterdir() if p.name.startswith(".simulate-")]


def test_same_seed_same_numbers(tmp_path: Path, small_file: Path) -> None:
    first = simulate(tmp_path / "a", small_file, "--serial", "--chunk-size", "1")
    again = simulate(tmp_path / "b", small_file, "--serial")
    assert first == again
    a, b = (pd.read_csv(tmp_path / name / "replicates.csv") for name in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_local_dask_cluster_by_default(tmp_path: Path, small_file: Path) -> None:
    serial = simulate(tmp_path / "serial", small_file, "--serial")
    dask = simulate(tmp_path / "dask", small_file, "--workers", "2", "--chunk-size", "1")
    assert dask == serial


def test_bad_parameter_file_names_the_field(tmp_path: Path, small_file: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        small_file.read_text().replace("median = 0.067\ncv = 0.30", "median = 0.067\ncv = -1")
    )
    out = tmp_path / "never"
    result = runner.invoke(
        app, ["simulate", "--replicates", "2", "--out", str(out), "--parameters", str(bad)]
    )
    assert result.exit_code == 2
    assert "dosimetry.marrow_gy_per_gbq.cv" in result.output
    assert not out.exists()


def test_bad_replicates_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--replicates", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "replicates" in result.output


@pytest.mark.slow
def test_policies_into_the_report(tmp_path: Path, small_file: Path) -> None:
    """`--policies` runs every policy on the same virtual patients; `report --simulation`
    shows their table and trade-off figure."""
    data = simulate(tmp_path / "sim", small_file, "--serial", "--policies")
    rows = data["policies"]
    assert rows[0]["policy"] == "START-01 v1.0"
    assert {row["replicates"] for row in rows} == {3}
    assert rows[2]["true_over_limit_share"] <= rows[0]["true_over_limit_share"]
    assert (tmp_path / "sim" / "policies.svg").read_text().startswith("<?xml")
    sim, out = str(tmp_path / "sim"), str(tmp_path / "r")
    result = runner.invoke(app, ["report", "--simulation", sim, "--out", out, "--no-pdf", "--json"])
    assert result.exit_code == 0, result.output
    assert "planning_policies" in json.loads(result.stdout)["figures"]
    assert (tmp_path / "r" / "closed" / "tables" / "planning_policies.csv").is_file()


def test_any_protocol_file(tmp_path: Path, small_file: Path) -> None:
    """`--protocol FILE` runs that protocol: the demonstration file with a 5 % limit."""
    demo = Path(__file__).parents[2] / "src/startrt/protocol/files/demo/START-01_v1.0-risk5.toml"
    data = simulate(tmp_path / "risk", small_file, "--serial", "--protocol", str(demo))
    assert data["protocol"] == "START-01 v1.0-risk5"
    personalized = data["groups"]["personalized"]
    assert personalized["true_kidney_over_limit_share"]["mean"] <= 0.1
