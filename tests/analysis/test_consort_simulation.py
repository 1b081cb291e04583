"""The CONSORT flow of `startrt report --simulation` against the simulated trial's own
per-patient table (`trial_patients.csv`), counted here by hand: a simulated course ending at
the renal limit is the planned end of personalized PRRT, a standard course ends as planned
after its cycles ("completed"). The follow-up is long enough for every course to end before
the data cut-off, so the two must agree exactly."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from startrt.cli import app
from startrt.simulation.parameters import default_parameters_text

runner = CliRunner()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trial_patients.csv, the report's consort.csv) of a 60-patient simulation."""
    folder = tmp_path_factory.mktemp("simulation")
    parameters = folder / "parameters.toml"
    text = default_parameters_text()
    for old, new in (
        ("patients = 300", "patients = 60"),
        ("minimum_follow_up_months = 24", "minimum_follow_up_months = 120"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    parameters.write_text(text, encoding="utf-8")
    simulation, report = folder / "sim", folder / "report"
    simulate = ["simulate", "--replicates", "2", "--seed", "1", "--out", str(simulation)]
    result = runner.invoke(app, [*simulate, "--serial", "--parameters", str(parameters)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["report", "--simulation", str(simulation), "--out", str(report), "--no-pdf"]
    )
    assert result.exit_code == 0, result.output
    patients = pd.read_csv(simulation / "trial_patients.csv")
    return patients, pd.read_csv(report / "closed" / "tables" / "consort.csv")


def test_completers_and_discontinuations_match_the_simulated_patients(
    simulated: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    patients, consort = simulated
    counts = {(row.arm, row.stage): row.patients for row in consort.itertuples(index=False)}
    planned_end = {
        "standard": {"completed"},
        "personalized": {"completed", "renal_limit", "marrow_limit"},
    }
    for arm, ends in planned_end.items():
        treated = patients[(patients["arm"] == arm) & (patients["cycles"] > 0)]
        reasons = treated["end_reason"]
        completed = reasons.isin(ends)
        ongoing = reasons == "on_treatment"
        stopped = reasons[~completed & ~ongoing].value_counts().to_dict()
        assert counts[(arm, "treated")] == len(treated)
        assert counts[(arm, "completed")] == completed.sum() > 0
        assert counts[(arm, "discontinued")] == sum(stopped.values())
        assert counts[(arm, "ongoing")] == ongoing.sum()
        for reason, n in stopped.items():
            assert counts[(arm, f"discontinued: {reason}")] == n
    # the personalized completers are the courses stopped by the renal limit
    personalized = patients[patients["arm"] == "personalized"]
    assert (personalized["end_reason"] == "renal_limit").sum() > 0
