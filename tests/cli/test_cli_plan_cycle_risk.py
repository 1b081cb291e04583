"""The `plan-cycle` contract of issue 13: cycles may carry standard uncertainties; the output
states the probabilities and the 90 % interval; the decision names the model and its inputs;
without uncertainties it says the model's default measurement error applies; a protocol file
with `max_probability_over_limit` is planned by it."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from startrt.cli import app

runner = CliRunner()
DEMO = resources.files("startrt.protocol.files").joinpath("demo", "START-01_v1.0-risk5.toml")


def plan(tmp_path: Path, request: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    result = runner.invoke(app, ["plan-cycle", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_plan_cycle_states_the_risk_figures(tmp_path: Path) -> None:
    cycles = [{"activity_gbq": 7.5, "kidney_dose_gy": d} for d in (5.0, 5.4, 5.6, 6.0)]
    data = plan(tmp_path, {"arm": "dTOC", "cycles": cycles})
    assert (data["action"], data["activity_gbq"]) == ("full", 7.5)  # v1.0 unchanged
    assert 0.1 < data["probability_over_limit"] < 0.3
    assert 0 <= data["probability_measured_over_limit"] < data["probability_over_limit"]
    low, high = data["predicted_cumulative_kidney_gy_interval"]
    assert low < data["predicted_cumulative_kidney_gy"] < high
    assert data["remaining_kidney_budget_gy"] == 8.0
    assert "default measurement error (CV 7%" in data["kidney_dose_uncertainty"]
    model = data["inputs"]["kidney_dose_model"]
    assert model["model"] == "lognormal kidney Gy/GBq prior v1"
    assert model["default_measurement_cv"] == 0.07


def test_plan_cycle_reads_uncertainties_and_a_risk_protocol(tmp_path: Path) -> None:
    cycles = [
        {
            "activity_gbq": 7.5,
            "left_kidney_dose_gy": d - 0.3,
            "right_kidney_dose_gy": d + 0.3,
            "left_kidney_dose_sd_gy": 0.1 * d,
            "right_kidney_dose_sd_gy": 0.1 * d,
            "kidney_dose_sd_systematic_share": 0.6,
        }
        for d in (5.0, 5.4, 5.6, 6.0)
    ]
    data = plan(tmp_path, {"arm": "dTOC", "cycles": cycles, "protocol": str(DEMO)})
    assert data["protocol"] == "START-01 v1.0-risk5"
    assert data["action"] == "reduced"
    assert data["activity_gbq"] < 7.5
    assert data["probability_over_limit"] <= 0.05
    assert data["kidney_dose_uncertainty"] == "each dose's own standard uncertainty"
    assert data["inputs"]["cycles"][0]["left_kidney_dose_sd_gy"] == 0.5


def test_plan_cycle_refuses_an_impossible_uncertainty(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    cycle = {"activity_gbq": 7.5, "kidney_dose_gy": 5.0, "kidney_dose_sd_gy": -0.5}
    path.write_text(json.dumps({"arm": "dTOC", "cycles": [cycle]}), encoding="utf-8")
    result = runner.invoke(app, ["plan-cycle", str(path)])
    assert result.exit_code == 2
    assert "cycles.0.kidney_dose_sd_gy" in result.output
    assert "standard uncertainty of the mean kidney dose" in result.output
