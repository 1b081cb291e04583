"""The site calibration file: read, validated field by field, and used by `dosimetry run`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from startrt.cli import app
from startrt.imaging.calibration import SiteCalibration, read_site_calibration
from startrt.validation import InvalidInputError

GOOD = """
camera = "Symbia Intevo, MELP"
calibration_cps_per_mbq = 9.6
psf_fwhm_mm = 11.5
measured = 2025-01-14
"""


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_fields_are_read_with_their_types(tmp_path: Path) -> None:
    assert read_site_calibration(written(tmp_path, GOOD)) == SiteCalibration(
        "Symbia Intevo, MELP", 9.6, 11.5, date(2025, 1, 14)
    )
    undated = GOOD.replace("measured = 2025-01-14\n", "")
    assert read_site_calibration(written(tmp_path, undated)).measured is None


@pytest.mark.parametrize(
    ("old", "new", "field", "rule"),
    [
        ("psf_fwhm_mm = 11.5", "psf_fwhm_mm = -3", "psf_fwhm_mm", "must lie in [1, 50] mm"),
        ("psf_fwhm_mm = 11.5", 'psf_fwhm_mm = "12"', "psf_fwhm_mm", "must be a number in mm"),
        ("calibration_cps_per_mbq = 9.6", "", "calibration_cps_per_mbq", "is required"),
        (
            "calibration_cps_per_mbq = 9.6",
            "calibration_cps_per_mbq = 0",
            "calibration_cps_per_mbq",
            "must be > 0 cps/MBq",
        ),
        ("psf_fwhm_mm", "psf_fwhm", "psf_fwhm", "unknown key"),
        ('camera = "Symbia Intevo, MELP"', 'camera = ""', "camera", "must be the camera's name"),
        ("measured = 2025-01-14", "measured = 2025-01-14T10:00:00", "measured", "must be a date"),
    ],
)
def test_a_bad_field_is_refused_naming_it_its_value_and_the_file(
    tmp_path: Path, old: str, new: str, field: str, rule: str
) -> None:
    path = written(tmp_path, GOOD.replace(old, new))
    with pytest.raises(InvalidInputError) as refused:
        read_site_calibration(path)
    assert refused.value.field == field
    assert refused.value.rule.startswith(rule)
    assert str(path) in refused.value.rule


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a readable TOML file"):
        read_site_calibration(written(tmp_path, "camera = [unclosed"))


def test_dosimetry_run_names_a_bad_calibration_before_reading_the_study(tmp_path: Path) -> None:
    runner = CliRunner()
    path = written(tmp_path, GOOD.replace("psf_fwhm_mm = 11.5", "psf_fwhm_mm = 0.1"))
    command = ["dosimetry", "run", str(tmp_path), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*command, "--calibration", str(path)])
    assert result.exit_code == 2
    assert "psf_fwhm_mm=0.1: must lie in [1, 50] mm" in result.output
    missing = runner.invoke(app, [*command, "--calibration", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2
    assert "--calibration" in missing.output
    curve = tmp_path / "curve.json"
    curve.write_text('{"volumes_ml": [1, 10], "coefficients": [0.5, 0.9]}', encoding="utf-8")
    both = runner.invoke(app, [*command, "--psf-fwhm-mm", "12", "--recovery-curve", str(curve)])
    assert both.exit_code == 2
    assert "--psf-fwhm-mm=12.0: give the PSF or --recovery-curve, not both" in both.output


def test_stated_uncertainties_are_read_and_checked(tmp_path: Path) -> None:
    stated = GOOD + "calibration_uncertainty_percent = 4.5\nvoi_boundary_mm = 1.5\n"
    site = read_site_calibration(written(tmp_path, stated))
    assert site.uncertainties == {"calibration_uncertainty_percent": 4.5, "voi_boundary_mm": 1.5}
    assert site.to_json()["calibration_uncertainty_percent"] == 4.5
    with pytest.raises(InvalidInputError, match="dose_factor_uncertainty_percent"):
        read_site_calibration(written(tmp_path, GOOD + "dose_factor_uncertainty_percent = 80\n"))
