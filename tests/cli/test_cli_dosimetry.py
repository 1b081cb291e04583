"""`startrt phantom make` and `startrt dosimetry run`: the JSON shape, the files, the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from startrt.cli import app
from startrt.imaging.image_files import read_image
from startrt.imaging.rtdose import read_rtdose

runner = CliRunner()
PER_VOI = {"tia_mbq_h", "dose_gy", "dose_gy_per_gbq", "fit_model", "effective_half_life_h"}


def invoke_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("cli") / "study"
    truth = invoke_json("phantom", "make", str(folder), "--seed", "7", "--grid-size", "64")
    return folder, truth


def test_phantom_make_writes_dicom_and_truth(study: tuple[Path, dict[str, Any]]) -> None:
    folder, truth = study
    assert (folder / "rtstruct.dcm").exists()
    assert (folder / "seg.dcm").exists()
    assert json.loads((folder / "truth.json").read_text()) == truth
    assert {"tia_mbq_h", "dose_gy"} <= set(truth["vois"]["left_kidney"])
    assert truth["time_points_h"] == [4.0, 24.0, 96.0, 168.0]


def test_dosimetry_run_json_and_files(study: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, truth = study
    out = tmp_path / "out"
    data = invoke_json("dosimetry", "run", str(folder), "--out", str(out), "--aligned")
    assert set(data["vois"]) == set(truth["vois"])  # the same VOI names as the truth
    for name, values in data["vois"].items():
        assert set(values) >= PER_VOI, name
    kidney = data["vois"]["left_kidney"]
    assert kidney["tia_mbq_h"] == pytest.approx(truth["vois"]["left_kidney"]["tia_mbq_h"], rel=0.03)
    for name in (
        "dose_rtdose.dcm",
        "dose_gy.nii.gz",
        "tia_mbq_h.nii.gz",
        "vois.csv",
        "summary.html",
    ):
        assert (out / name).stat().st_size > 0, name
    rtdose, nifti = read_rtdose(out / "dose_rtdose.dcm"), read_image(out / "dose_gy.nii.gz")
    assert rtdose.grid.matches(nifti.grid)
    assert np.allclose(rtdose.array, nifti.array, rtol=1e-4, atol=1e-6 * nifti.array.max())
    html = (out / "summary.html").read_text()
    assert html.count("data:image/png;base64") == 2  # the fits and the DVH
    assert (out / "vois.csv").read_text().splitlines()[0].startswith("voi,volume_ml")


def test_dosimetry_run_feeds_the_ledger_and_plans(
    study: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, _ = study
    ledger = tmp_path / "ledger.json"
    args = [
        "dosimetry",
        "run",
        str(folder),
        "--aligned",
        "--method",
        "organ",
        "--ledger",
        str(ledger),
    ]
    first = invoke_json(*args, "--out", str(tmp_path / "c1"))
    second = invoke_json(*args, "--out", str(tmp_path / "c2"))
    stored = json.loads(ledger.read_text())
    assert len(stored["cycles"]) == 2  # in order: cycle 1, cycle 2, in the course model's names
    assert stored["cycles"][0]["left_kidney_dose_gy"] == first["vois"]["left_kidney"]["dose_gy"]
    assert [row["cycle"] for row in second["ledger"]["cycles"]] == [1, 2]
    mean = (first["vois"]["left_kidney"]["dose_gy"] + first["vois"]["right_kidney"]["dose_gy"]) / 2
    plan = second["ledger"]["plan"]
    assert plan["cumulative_kidney_gy"] == pytest.approx(2 * mean, rel=1e-3)
    assert plan["action"] == "full"
    assert plan["next_cycle"] == 3


def test_a_missing_study_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = runner.invoke(app, ["dosimetry", "run", str(missing), "--out", str(tmp_path)])
    assert result.exit_code == 2
    # field=value: rule, in that order (the field is not the path).
    assert f"error: folder={str(missing)!r}: is not an existing folder" in result.output
    bad = runner.invoke(
        app, ["dosimetry", "run", str(tmp_path), "--out", str(tmp_path), "--method", "mc"]
    )
    assert bad.exit_code == 2
    assert "--method" in bad.output


@pytest.mark.parametrize(
    ("option", "content", "rule"),
    [
        ("--blood-samples", "time,mbq\n1,2\n", "needs the columns time_h and mbq_per_ml"),
        ("--recovery-curve", '{"volumes_ml": [1]}', "needs volumes_ml and coefficients lists"),
    ],
)
def test_a_bad_side_file_is_named_by_its_option_then_its_path(
    tmp_path: Path, option: str, content: str, rule: str
) -> None:
    side_file = tmp_path / "side"
    side_file.write_text(content, encoding="utf-8")
    command = ["dosimetry", "run", str(tmp_path), "--out", str(tmp_path), option, str(side_file)]
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert f"error: {option}={str(side_file)!r}: {rule}" in result.output


def test_dose_uncertainties_from_the_site_file_reach_results_ledger_and_plan(
    study: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Calibration 4 %, S values 5 %, organ method, no PVC: each kidney's dose SD is
    sqrt(0.04^2 + fit^2 + 0.05^2) x dose (the fit's part from its own TIA SD), and the ledger's
    course record carries it with its systematic share (calibration and S value of the total)."""
    folder, _ = study
    site = tmp_path / "site.toml"
    site.write_text(
        'camera = "test camera"\ncalibration_cps_per_mbq = 10.0\npsf_fwhm_mm = 12.0\n'
        "calibration_uncertainty_percent = 4.0\ndose_factor_uncertainty_percent = 5.0\n",
        encoding="utf-8",
    )
    ledger = tmp_path / "ledger.json"
    data = invoke_json(
        "dosimetry", "run", str(folder), "--aligned", "--method", "organ", "--out",
        str(tmp_path / "out"), "--calibration", str(site), "--psf-fwhm-mm", "1",
        "--ledger", str(ledger),
    )  # fmt: skip
    kidney = data["vois"]["left_kidney"]
    fit = kidney["tia_sd_mbq_h"] / kidney["tia_mbq_h"]
    pvc = kidney["relative_percent"]["partial_volume"] / 100
    expected = kidney["dose_gy"] * (0.04**2 + 0.05**2 + fit**2 + pvc**2) ** 0.5
    assert kidney["dose_sd_gy"] == pytest.approx(expected, rel=1e-9)
    assert kidney["relative_percent"]["calibration"] == pytest.approx(4.0)
    record = json.loads(ledger.read_text())["cycles"][0]
    assert record["left_kidney_dose_sd_gy"] == pytest.approx(kidney["dose_sd_gy"])
    shared = (0.04**2 + 0.05**2 + pvc**2) / (0.04**2 + 0.05**2 + fit**2 + pvc**2)
    right = data["vois"]["right_kidney"]
    right_fit = right["tia_sd_mbq_h"] / right["tia_mbq_h"]
    right_pvc = right["relative_percent"]["partial_volume"] / 100
    right_shared = (0.04**2 + 0.05**2 + right_pvc**2) / (
        0.04**2 + 0.05**2 + right_fit**2 + right_pvc**2
    )
    assert record["kidney_dose_sd_systematic_share"] == pytest.approx((shared + right_shared) / 2)
    assert (
        data["ledger"]["plan"]["kidney_dose_uncertainty"] == "each dose's own standard uncertainty"
    )
    html = (tmp_path / "out" / "summary.html").read_text(encoding="utf-8")
    assert "dose SD (Gy)" in html
