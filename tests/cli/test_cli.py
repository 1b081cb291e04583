"""The CLI contract: JSON keys per command, tables without --json, exit status 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from startrt.cli import app

runner = CliRunner()


def run_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_egfr_keys_and_nulls() -> None:
    data = run_json("egfr", "--sex", "female", "--age", "60", "--creatinine-umol-l", "100")
    assert set(data) >= {"lmr", "capa", "combined", "ckd_epi_2021", "cockcroft_gault"}
    # LMR female 60 y, 100 umol/L: exp(2.50 + 0.0121*50 - 0.0158*60 + 0.438*ln 60) = 51.95
    assert data["lmr"] == pytest.approx(51.95, abs=0.01)
    assert data["capa"] is None
    assert data["combined"] is None
    assert data["cockcroft_gault"] is None


def test_bsa() -> None:
    data = run_json("bsa", "--height-cm", "180", "--weight-kg", "80")
    # Mosteller sqrt(180 * 80 / 3600) = sqrt(4) = 2.0
    assert data["mosteller"] == pytest.approx(2.0)
    assert data["dubois"] == pytest.approx(1.9964, abs=1e-4)


def test_capecitabine_tablets_add_up() -> None:
    data = run_json("capecitabine", "--height-cm", "180", "--weight-kg", "80")
    assert (data["kind"], data["protocol"], data["cycle_number"]) == (
        "capecitabine",
        "START-01 v1.0",
        1,
    )
    dose = data["dose"]
    # DuBois 1.9964 m2 x 825 mg/m2 = 1647 mg per administration
    assert dose["target_mg"] == pytest.approx(1647.0, abs=0.1)
    tablets = dose["tablets_morning"]
    assert 500 * tablets["500"] + 150 * tablets["150"] == dose["morning_mg"]
    assert abs(dose["morning_mg"] + dose["evening_mg"] - 2 * dose["target_mg"]) <= 150


def test_capecitabine_contraindicated_below_crcl_30() -> None:
    data = run_json(
        "capecitabine", "--height-cm", "170", "--weight-kg", "70", "--crcl-ml-min", "29"
    )
    assert (data["prescribable"], data["dose"]) == (False, None)
    assert [item["field"] for item in data["contraindications"]] == ["crcl_ml_min"]
    assert "CrCl" in data["reason"]


def test_ctcae() -> None:
    data = run_json("ctcae", "anemia", "79", "--lln", "117", "--uln", "153")
    assert (data["term"], data["grade"]) == ("anemia", 3)


def test_ctcae_increase_term_with_a_reference_range_from_zero() -> None:
    # ALT reference range "0-35 U/L": 35 < 100 <= 3 x 35 = 105 -> grade 1 (CTCAE v5.0).
    data = run_json("ctcae", "alt", "100", "--lln", "0", "--uln", "35")
    assert (data["grade"], data["lln"], data["uln"]) == (1, 0.0, 35.0)
    # A decrease term grades against LLN, which must be > 0.
    result = runner.invoke(app, ["ctcae", "platelets", "60", "--lln", "0"])
    assert result.exit_code == 2
    assert "lln=0.0: must lie in [50, 600] 10^9/L" in result.output


def test_egfr_with_height_gives_absolute_gfr() -> None:
    data = run_json(
        "egfr", "--sex", "male", "--age", "60", "--creatinine-umol-l", "100",
        "--weight-kg", "80", "--height-cm", "180",
    )  # fmt: skip
    # DuBois 0.007184 * 80^0.425 * 180^0.725 = 0.007184 * 6.43892 * 43.1591 = 1.996421 m2.
    # CKD-EPI 2021 (tests/clinical/test_egfr.py) 74.312457 ml/min/1.73 m2 -> 74.312457 *
    # 1.996421 / 1.73 = 85.7566 ml/min; LMR 65.347744 -> 75.4113 ml/min. No cystatin C: no
    # CAPA, no mean.
    assert data["bsa_m2"] == pytest.approx(1.996421, abs=1e-6)
    assert data["ckd_epi_2021_ml_min"] == pytest.approx(85.7566, abs=1e-4)
    assert data["lmr_ml_min"] == pytest.approx(75.4113, abs=1e-4)
    assert (data["capa_ml_min"], data["combined_ml_min"]) == (None, None)
    assert data["ckd_epi_2021"] == pytest.approx(74.312457, rel=1e-6)  # relative unchanged


def test_egfr_height_without_weight_is_refused() -> None:
    result = runner.invoke(app, ["egfr", "--sex", "male", "--age", "60", "--height-cm", "180"])
    assert result.exit_code == 2
    assert "--weight-kg=None: required with --height-cm" in result.output


def test_recist(tmp_path: Path) -> None:
    series = {
        "baseline": {
            "date": "2024-01-10",
            "lesions": [
                {
                    "id": "L1",
                    "organ": "liver",
                    "lymph_node": False,
                    "diameter_mm": 20,
                    "target": True,
                }
            ],
        },
        "follow_up": [
            {"date": "2024-04-10", "target_mm": {"L1": 24}, "non_target": {}, "new_lesions": False},
            {"date": "2024-07-10", "target_mm": {"L1": 25}, "non_target": {}, "new_lesions": False},
        ],
    }
    data = run_json("recist", write(tmp_path, "series.json", series))
    # 20 -> 24 mm: +20 % but only +4 mm: SD; 20 -> 25: +25 % and +5 mm: PD
    assert [a["overall"] for a in data["assessments"]] == ["SD", "PD"]
    assert all(
        {"target", "non_target", "new_lesions", "overall"} <= set(a) for a in data["assessments"]
    )
    assert data["best_overall"] == "SD"


def test_eligibility_missing_data_gives_null(tmp_path: Path) -> None:
    data = run_json("eligibility", write(tmp_path, "s.json", {"screening_date": "2025-01-10"}))
    assert data["eligible"] is None
    assert {"id", "text", "status", "value", "threshold"} <= set(data["criteria"][0])
    assert {c["status"] for c in data["criteria"]} == {"missing"}


def test_plan_cycle(tmp_path: Path) -> None:
    cycles = [{"activity_gbq": 7.5, "kidney_dose_gy": 7.5, "marrow_dose_gy": None}] * 3
    data = run_json("plan-cycle", write(tmp_path, "p.json", {"arm": "dTOC", "cycles": cycles}))
    assert (data["action"], data["activity_gbq"]) == ("full", 7.5)
    assert data["predicted_cumulative_kidney_gy"] == 30.0
    assert data["reason"]


def test_plan_cycle_with_an_amended_protocol(tmp_path: Path) -> None:
    shipped = Path(__file__).parents[2] / "src/startrt/protocol/files/START-01_v1.0.toml"
    (tmp_path / "v2.toml").write_text(
        shipped.read_text().replace("limit_gy = 30.0", "limit_gy = 23.0"), encoding="utf-8"
    )
    cycles = [{"activity_gbq": 7.5, "kidney_dose_gy": 7.5}] * 3
    request = {"arm": "dTOC", "cycles": cycles, "protocol": "v2.toml"}
    data = run_json("plan-cycle", write(tmp_path, "p.json", request))
    # 22.5 Gy given, 0.5 Gy room at 1 Gy/GBq -> 0.5 GBq < 1 GBq minimum: stop
    assert data["action"] == "stop"


def test_randomization_list_is_reproducible(tmp_path: Path) -> None:
    first = run_json(
        "randomization-list", "--seed", "7", "--n", "12", "--out", str(tmp_path / "a.csv")
    )
    again = run_json(
        "randomization-list", "--seed", "7", "--n", "12", "--out", str(tmp_path / "b.csv")
    )
    other = run_json(
        "randomization-list", "--seed", "8", "--n", "12", "--out", str(tmp_path / "c.csv")
    )
    assert first["sha256"] == again["sha256"] != other["sha256"]
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert first["strata"] == 8


def test_randomization_list_custom_strata(tmp_path: Path) -> None:
    data = run_json(
        "randomization-list",
        "--seed",
        "1",
        "--n",
        "4",
        "--strata",
        "site=A,B,C",
        "--out",
        str(tmp_path / "l.csv"),
    )
    assert data["strata"] == 3
    assert data["all_blocks_balanced"] is True


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["bsa", "--height-cm", "180", "--weight-kg", "-80"], "weight_kg"),
        (
            ["egfr", "--sex", "female", "--age", "60", "--creatinine-umol-l", "1.1"],
            "creatinine_umol_l",
        ),
        (["ctcae", "anemia", "900", "--lln", "117"], "value"),
        (["bsa", "--height-cm", "tall", "--weight-kg", "80"], "--height-cm"),
        (["egfr", "--sex", "other", "--age", "60"], "--sex"),
        (["randomization-list", "--seed", "1", "--n", "0"], "n_per_stratum"),
        (["randomization-list", "--seed", "1", "--n", "4", "--strata", "site"], "--strata"),
        (["eligibility", "/nonexistent.json"], "FILE"),
    ],
)
def test_bad_arguments_exit_2_naming_them(args: list[str], named: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert named in result.output


def test_bad_input_file_fields_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "s.json", {"screening_date": "2025-01-10", "hemoglobin_g_l": 900})
    result = runner.invoke(app, ["eligibility", path])
    assert result.exit_code == 2
    assert "hemoglobin_g_l" in result.output
    plan = write(tmp_path, "p.json", {"arm": "dTOC", "cycles": [{"activity_gbq": -7.5}]})
    result = runner.invoke(app, ["plan-cycle", plan])
    assert result.exit_code == 2
    assert "cycles.0.activity_gbq" in result.output


def test_tables_without_json() -> None:
    result = runner.invoke(app, ["bsa", "--height-cm", "180", "--weight-kg", "80"])
    assert result.exit_code == 0
    assert "mosteller" in result.output
    assert not result.output.lstrip().startswith("{")


def test_schedule_and_protocol_commands() -> None:
    data = run_json(
        "schedule", "--arm", "dTOC", "--first-cycle-date", "2025-01-06", "--cycles", "2"
    )
    cycles = [v for v in data["visits"] if v["kind"] == "cycle"]
    # 2025-01-06 + 10 weeks = 2025-03-17
    assert [v["target_date"] for v in cycles] == ["2025-01-06", "2025-03-17"]
    assert run_json("protocol")["protocol"] == "START-01 v1.0"


def test_schedule_with_an_unknown_arm_exits_2_naming_it() -> None:
    # Arm ids are the protocol's and case-sensitive: "dtoc" is not "dTOC".
    result = runner.invoke(app, ["schedule", "--arm", "dtoc", "--first-cycle-date", "2025-01-06"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: arm='dtoc': not an arm of START-01 v1.0; known: standard, dTOC, CAP-dTOC"
    )
