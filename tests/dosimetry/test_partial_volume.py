"""Partial-volume correction with the PSF: GTM and RBV on analytic images, the body outline, and
the issue's accuracy targets on blurred, noisy phantoms (truth computed analytically)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage, special
from typer.testing import CliRunner

from startrt.cli import app
from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.partial_volume import (
    BODY,
    OUTSIDE_BODY,
    PsfCorrection,
    PsfRegions,
    body_fraction,
    psf_sigma_voxels,
    study_psf_correction,
)
from startrt.dosimetry.study import load_study
from startrt.dosimetry.voi_activity import REMAINDER, Regions
from startrt.imaging.phantom_study import make_phantom_study
from startrt.imaging.recovery import RecoveryCurve
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

SPACING_MM = (2.0, 2.0, 3.0)  # anisotropic voxels (x, y, z)
SHAPE = (40, 56, 56)  # [z, y, x]: 120 x 112 x 112 mm
FWHM_MM = 12.0


def ellipsoid_fraction(
    centre_mm: tuple[float, float, float],
    semi_mm: tuple[float, float, float],
    spacing_mm: tuple[float, float, float] = SPACING_MM,
    shape: tuple[int, int, int] = SHAPE,
    k: int = 4,
) -> np.ndarray:
    """Fraction of each voxel inside an ellipsoid (k^3 sub-points), voxel (0,0,0) centred at 0."""
    axes = []
    for axis in range(3):  # x, y, z
        n = shape[2 - axis]
        sub = (np.arange(n * k) + 0.5) / k - 0.5
        axes.append(((sub * spacing_mm[axis]) - centre_mm[axis]) / semi_mm[axis])
    x, y, z = axes
    inside = z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2 <= 1.0
    return inside.reshape(shape[0], k, shape[1], k, shape[2], k).mean(axis=(1, 3, 5))


def gaussian_blur(image: np.ndarray, fwhm_mm: float) -> np.ndarray:
    """The forward model, written out here: sigma per axis [z, y, x] in voxels, 4 sigma."""
    sigma_mm = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    sigma = [sigma_mm / SPACING_MM[2], sigma_mm / SPACING_MM[1], sigma_mm / SPACING_MM[0]]
    return ndimage.gaussian_filter(image, sigma, mode="constant", truncate=4.0)


# a kidney-like ellipsoid and a 20 mm "tumour" in a body ellipsoid surrounded by air
KIDNEY = ellipsoid_fraction((40.0, 50.0, 60.0), (14.0, 11.0, 25.0))
TUMOUR = ellipsoid_fraction((75.0, 65.0, 55.0), (10.0, 10.0, 10.0))
BODY_OUTLINE = ellipsoid_fraction((56.0, 56.0, 60.0), (45.0, 40.0, 80.0))
TRUE_VALUES = {"kidney": 8.0, "tumour": 20.0, BODY: 1.0}
TRUE_IMAGE = 8.0 * KIDNEY + 20.0 * TUMOUR + 1.0 * (BODY_OUTLINE - KIDNEY - TUMOUR)
MASKS = {"kidney": KIDNEY, "tumour": TUMOUR}


def test_the_psf_has_the_fwhm_in_mm_on_each_axis_of_anisotropic_voxels() -> None:
    # sigma = FWHM / (2 sqrt(2 ln 2)) = 12 / 2.354820 = 5.095931 mm; / 3 mm (z), / 2 mm (y, x)
    assert psf_sigma_voxels(12.0, (2.0, 2.0, 3.0)) == pytest.approx((1.698644, 2.547965, 2.547965))


def test_spread_function_of_a_ball_at_its_centre_is_the_chi_distribution() -> None:
    # analytic: a uniform ball of radius R blurred by an isotropic 3-D Gaussian (sigma) has at
    # its centre P(|X| <= R), X ~ N(0, sigma^2 I3): erf(u / sqrt 2) - sqrt(2 / pi) u e^(-u^2/2),
    # u = R / sigma. Fine voxels (1 x 1 x 1.5 mm) so the sampled Gaussian is close to the truth.
    spacing, shape, radius = (1.0, 1.0, 1.5), (33, 61, 61), 12.0
    ball = ellipsoid_fraction((30.0, 30.0, 24.0), (radius,) * 3, spacing, shape)
    regions = PsfRegions.of({"ball": ball}, spacing, FWHM_MM)
    sigma_mm = FWHM_MM / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    u = radius / sigma_mm
    expected = special.erf(u / math.sqrt(2.0)) - math.sqrt(2.0 / math.pi) * u * math.exp(-u * u / 2)
    spread = regions.spreads[0]
    centre = tuple(c - s.start for c, s in zip((16, 30, 30), spread.box, strict=True))
    assert spread.values[centre] == pytest.approx(expected, rel=0.01)
    assert expected == pytest.approx(0.86404, abs=1e-5)  # u = 2.3548 (by hand)


def test_gtm_recovers_uniform_regions_blurred_by_the_psf() -> None:
    observed = gaussian_blur(TRUE_IMAGE, FWHM_MM)
    regions = PsfRegions.of(MASKS, SPACING_MM, FWHM_MM, body=BODY_OUTLINE)
    values = regions.unmix(observed)
    for name, true_value in TRUE_VALUES.items():
        assert values[name] == pytest.approx(true_value, rel=1e-9), name
    assert values[OUTSIDE_BODY] == pytest.approx(0.0, abs=1e-9)
    totals = regions.totals(observed)
    assert totals["kidney"] == pytest.approx(8.0 * KIDNEY.sum(), rel=1e-9)
    assert totals[REMAINDER] == pytest.approx((BODY_OUTLINE - KIDNEY - TUMOUR).sum(), rel=1e-9)
    # without the correction the blurred 20 mm tumour keeps well under its activity
    plain = Regions.of(MASKS).totals(observed)
    assert plain["tumour"] < 0.8 * totals["tumour"]


def test_one_remainder_for_body_and_air_biases_the_blurred_vois() -> None:
    # the reason for the body outline: air and tissue as one uniform region mis-model the spill
    observed = gaussian_blur(TRUE_IMAGE, FWHM_MM)
    values = PsfRegions.of(MASKS, SPACING_MM, FWHM_MM).unmix(observed)
    assert abs(values["kidney"] / 8.0 - 1.0) > 0.03  # +5.3 % here


def test_with_fwhm_0_the_gtm_is_the_unblurred_one_of_voi_activity() -> None:
    rng = np.random.default_rng(4)
    values = TRUE_IMAGE + rng.normal(0.0, 0.5, SHAPE)
    blur_free = PsfRegions.of(MASKS, SPACING_MM, 0.0)
    assert blur_free.names == ("kidney", "tumour", REMAINDER)
    unmixed, expected = blur_free.unmix(values), Regions.of(MASKS).unmix(values)
    assert list(unmixed.values()) == pytest.approx(list(expected.values()), rel=1e-10)
    assert blur_free.totals(values) == pytest.approx(Regions.of(MASKS).totals(values), rel=1e-10)


def test_with_fwhm_0_and_a_body_it_is_the_least_squares_fit_of_the_four_regions() -> None:
    # second method: numpy lstsq on the dense design matrix (kidney, tumour, body, air)
    rng = np.random.default_rng(5)
    values = TRUE_IMAGE + rng.normal(0.0, 0.5, SHAPE)
    body = BODY_OUTLINE - KIDNEY - TUMOUR
    air = 1.0 - BODY_OUTLINE
    design = np.stack([m.ravel() for m in (KIDNEY, TUMOUR, body, air)], axis=1)
    expected, *_ = np.linalg.lstsq(design, values.ravel(), rcond=None)
    unmixed = PsfRegions.of(MASKS, SPACING_MM, 0.0, body=BODY_OUTLINE).unmix(values)
    assert list(unmixed) == ["kidney", "tumour", BODY, OUTSIDE_BODY]
    assert list(unmixed.values()) == pytest.approx(list(expected), rel=1e-9)


def test_rbv_gives_back_the_piecewise_uniform_image() -> None:
    observed = gaussian_blur(TRUE_IMAGE, FWHM_MM)
    corrected = PsfRegions.of(MASKS, SPACING_MM, FWHM_MM, body=BODY_OUTLINE).corrected(observed)
    assert np.allclose(corrected, TRUE_IMAGE, rtol=1e-6, atol=1e-9)
    assert not np.allclose(observed, TRUE_IMAGE, rtol=0.05)  # the blur it undid


def test_uncertainty_is_half_the_change_for_a_10_percent_fwhm_error() -> None:
    observed = gaussian_blur(TRUE_IMAGE, FWHM_MM)
    correction = PsfCorrection.of(PsfRegions.of(MASKS, SPACING_MM, FWHM_MM, body=BODY_OUTLINE))
    totals, uncertainty = correction.totals(observed)
    low = PsfRegions.of(MASKS, SPACING_MM, 10.8, body=BODY_OUTLINE).totals(observed)
    high = PsfRegions.of(MASKS, SPACING_MM, 13.2, body=BODY_OUTLINE).totals(observed)
    for name in MASKS:
        expected = 50.0 * abs(high[name] - low[name]) / totals[name]
        assert uncertainty[name] == pytest.approx(expected, rel=1e-9)
    # the smaller the region, the more its value depends on the PSF
    assert uncertainty["tumour"] > uncertainty["kidney"] > 0.5


def test_body_outline_fills_the_lungs_and_leaves_the_couch_out() -> None:
    grid = Grid((20, 20, 4), (5.0, 5.0, 5.0), (0.0, 0.0, 0.0))
    hu = np.full(grid.shape, -1000.0)
    hu[:, 3:15, 3:17] = 40.0  # body
    hu[:, 6:10, 6:10] = -800.0  # lung: a hole in each slice
    hu[:, 17:19, :] = 0.0  # couch, apart from the body
    fraction = body_fraction(Volume(grid, hu), grid)
    expected = np.zeros(grid.shape)
    expected[:, 3:15, 3:17] = 1.0
    assert np.array_equal(fraction, expected)


def test_body_outline_is_a_fraction_on_a_coarser_grid() -> None:
    ct_grid = Grid((8, 8, 2), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    hu = np.full(ct_grid.shape, -1000.0)
    hu[:, :, :3] = 40.0  # x < 3 CT voxels: 6 mm of tissue
    spect_grid = Grid((2, 2, 1), (8.0, 8.0, 4.0), (3.0, 3.0, 1.0))
    fraction = body_fraction(Volume(ct_grid, hu), spect_grid)
    assert fraction[0, :, 0] == pytest.approx([0.5, 0.5])  # 2 sample points of 4 inside
    assert fraction[0, :, 1] == pytest.approx([0.0, 0.0])


def test_empty_voi_and_negative_fwhm_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="tumour"):
        PsfRegions.of({"tumour": np.zeros(SHAPE)}, SPACING_MM, FWHM_MM)
    with pytest.raises(InvalidInputError, match="psf_fwhm_mm"):
        PsfRegions.of(MASKS, SPACING_MM, -1.0)


# --- the accuracy targets on blurred, noisy phantoms -----------------------------------

TARGET_ORGANS = ("left_kidney", "right_kidney", "liver", "spleen")
ORGAN_TOLERANCE = 0.05
TUMOUR_TOLERANCE = 0.10  # tumours of at least 10 mL
Blurred = tuple[Path, dict[str, Any]]


def _blurred_phantom(folder: Path, seed: int) -> Blurred:
    study = make_phantom_study(
        folder, seed=seed, grid_size=64, ct_subdivision=2, blur_fwhm_mm=FWHM_MM, noise=True
    )
    return folder, json.loads(study.truth_file.read_text(encoding="utf-8"))


def _assert_within_targets(vois: dict[str, dict[str, Any]], truth: dict[str, Any]) -> None:
    for name, expected in truth["vois"].items():
        if name in TARGET_ORGANS:
            tolerance = ORGAN_TOLERANCE
        elif expected["volume_ml"] >= 10.0:
            tolerance = TUMOUR_TOLERANCE
        else:
            continue
        for quantity in ("tia_mbq_h", "dose_gy"):
            error = vois[name][quantity] / expected[quantity] - 1.0
            assert abs(error) < tolerance, (name, quantity, f"{100 * error:+.2f} %")
        assert vois[name]["pvc_uncertainty_percent"] > 0.0, name


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_blurred_noisy_phantom_within_the_targets(tmp_path: Path, seed: int) -> None:
    folder, truth = _blurred_phantom(tmp_path / "study", seed)
    study = load_study(folder, declared_aligned=True)
    result = compute_dosimetry(study, method="voxel", psf_fwhm_mm=FWHM_MM)
    _assert_within_targets(result.to_json()["vois"], truth)
    # without the correction the kidneys are far off (the issue's -15 %): the test can fail
    plain = compute_dosimetry(study, method="voxel")
    kidney = plain.vois["left_kidney"].tia_mbq_h / truth["vois"]["left_kidney"]["tia_mbq_h"]
    assert kidney < 1.0 - ORGAN_TOLERANCE


@pytest.mark.slow
def test_blurred_noisy_phantom_through_the_cli_with_a_site_calibration(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "study"
    phantom = ["phantom", "make", str(folder), "--seed", "3", "--grid-size", "64"]
    made = runner.invoke(app, [*phantom, "--blur-fwhm-mm", "12", "--noise", "--json"])
    assert made.exit_code == 0, made.output
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    calibration = tmp_path / "site.toml"
    calibration.write_text(
        'camera = "test camera"\ncalibration_cps_per_mbq = 10.0\npsf_fwhm_mm = 12.0\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    command = ["dosimetry", "run", str(folder), "--out", str(out), "--method", "voxel", "--json"]
    ran = runner.invoke(app, [*command, "--aligned", "--calibration", str(calibration)])
    assert ran.exit_code == 0, ran.output
    data = json.loads(ran.stdout)
    _assert_within_targets(data["vois"], truth)
    assert data["partial_volume_correction"]["psf_fwhm_mm"] == 12.0
    assert data["site_calibration"]["camera"] == "test camera"
    html = (out / "summary.html").read_text(encoding="utf-8")
    assert "partial-volume correction" in html
    assert "PVC uncertainty (%)" in html
    csv_header = (out / "vois.csv").read_text(encoding="utf-8").splitlines()[0]
    assert csv_header.endswith("pvc_uncertainty_percent")
    # the command line overrides the file: a 10 mm PSF corrects less than the file's 12 mm
    narrower = runner.invoke(
        app, [*command, "--aligned", "--calibration", str(calibration), "--psf-fwhm-mm", "10"]
    )
    assert json.loads(narrower.stdout)["partial_volume_correction"]["psf_fwhm_mm"] == 10.0


def test_psf_and_recovery_curve_together_are_refused(phantom_64: Blurred) -> None:
    study = load_study(phantom_64[0], declared_aligned=True)
    curve = RecoveryCurve((0.5, 5.0, 50.0), (0.5, 0.8, 0.95))
    with pytest.raises(InvalidInputError, match="not both"):
        compute_dosimetry(study, psf_fwhm_mm=12.0, recovery_curve=curve)


def test_the_outline_comes_from_the_ct_and_without_one_the_remainder_stays_whole(
    phantom_64: Blurred,
) -> None:
    study = load_study(phantom_64[0], declared_aligned=True)
    with_ct = study_psf_correction(study, FWHM_MM)
    assert with_ct.time_points[0].nominal.names[-2:] == (BODY, OUTSIDE_BODY)
    assert len({id(c) for c in with_ct.time_points}) == 1  # aligned: one GTM for all of them
    without = [dataclasses.replace(tp, ct=None) for tp in study.time_points]
    no_ct = study_psf_correction(dataclasses.replace(study, time_points=tuple(without)), FWHM_MM)
    assert no_ct.time_points[0].nominal.names[-1] == REMAINDER
    assert "none (no CT)" in no_ct.note()
    stp = compute_dosimetry(study, method="stp", psf_fwhm_mm=FWHM_MM)
    assert any(note.startswith("partial-volume correction: GTM") for note in stp.notes)
    assert stp.vois["left_kidney"].pvc_uncertainty_percent is not None
