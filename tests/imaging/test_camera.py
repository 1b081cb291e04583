"""Clinical SPECT camera model: count level, unbiased correlated noise, depth-dependent FWHM.

Expected values are computed here independently of `imaging/camera.py`: the discrete Gaussian
kernel written out by hand, the collimator FWHM averaged over the orbit numerically."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from startrt.imaging.camera import (
    MEDIUM_ENERGY,
    Acquisition,
    DepthDependentResolution,
    GaussianResolution,
    Resolution,
    camera_image,
)
from startrt.imaging.phantom import default_phantom, organ_activity_mbq
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def kernel_1d(sigma_voxels: float) -> npt.NDArray[np.float64]:
    """SciPy's discrete Gaussian (truncated at 4 sigma, normalised), written out by hand."""
    radius = int(4.0 * sigma_voxels + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel: npt.NDArray[np.float64] = np.exp(-0.5 * (x / sigma_voxels) ** 2)
    return kernel / float(kernel.sum())


def sum_of_squares_3d(fwhm_mm: float, voxel_mm: float) -> float:
    """sum(k^2) of the separable 3-D kernel = (sum of the 1-D kernel's squares)^3."""
    one = kernel_1d(fwhm_mm / FWHM_PER_SIGMA / voxel_mm)
    return float(np.sum(one**2)) ** 3


def uniform(size: int, voxel_mm: float, mbq_per_voxel: float) -> Volume:
    origin = -(size - 1) / 2.0 * voxel_mm
    grid = Grid((size,) * 3, (voxel_mm,) * 3, (origin,) * 3)
    return Volume(grid, np.full(grid.shape, mbq_per_voxel))


def test_counts_are_activity_times_sensitivity_times_time() -> None:
    # gain 1: the image holds the detected counts themselves: 8000 voxels x 0.0625 MBq = 500 MBq
    # x 10 cps/MBq x 1800 s = 9e6 counts, Poisson SD 3000 (0.033 %)
    volume = uniform(20, 4.8, 0.0625)
    acquisition = Acquisition(sensitivity_cps_per_mbq=10.0, duration_s=1800.0, noise_gain=1.0)
    image = camera_image(volume, GaussianResolution(0.0), acquisition, seed=3)
    counts = image.array * 18000.0
    assert np.allclose(counts, np.round(counts))
    assert float(counts.sum()) == pytest.approx(9.0e6, abs=4 * 3000.0)
    # the default gain 160: noise-equivalent counts 9e6 / 160 = 56250, SD 237 (0.42 %)
    noisy = camera_image(volume, GaussianResolution(0.0), Acquisition(), seed=3)
    nec = noisy.array * 18000.0 / 160.0
    assert np.allclose(nec, np.round(nec))
    assert float(nec.sum()) == pytest.approx(56250.0, abs=4 * 237.0)


@pytest.mark.parametrize(
    "resolution", [GaussianResolution(12.0), DepthDependentResolution(120.0)], ids=str
)
def test_noise_is_unbiased_with_the_modelled_variance(resolution: Resolution) -> None:
    """Mean of 1500 realisations = the noiseless blurred image within Monte-Carlo error."""
    grid = Grid((10, 10, 10), (4.8, 4.8, 4.8), (-21.6, -21.6, -21.6))
    activity = np.full(grid.shape, 0.002)
    activity[3:7, 2:6, 4:8] = 0.02  # a hot block in a warm background
    volume = Volume(grid, activity)
    acquisition = Acquisition(noise_gain=160.0)  # 112.5 noise-equivalent counts per MBq
    expected = resolution.blur(volume).array
    images = np.stack(
        [camera_image(volume, resolution, acquisition, seed=(7, i)).array for i in range(1500)]
    )
    mean = images.mean(axis=0)
    standard_error = images.std(axis=0, ddof=1) / math.sqrt(len(images))
    z = (mean - expected) / standard_error
    assert float(np.max(np.abs(z))) < 5.0  # per voxel (1000 correlated z-scores)
    everything = (slice(None), slice(None), slice(None))
    hot_block = (slice(3, 7), slice(2, 6), slice(4, 8))
    for region in (everything, hot_block):
        totals = images[(slice(None), *region)].sum(axis=(1, 2, 3))
        error = totals.std(ddof=1) / math.sqrt(len(totals))
        assert abs(totals.mean() - expected[region].sum()) < 4.0 * error
    if isinstance(resolution, GaussianResolution):
        # Var(y_j) = sum_i k(j - i)^2 a_i / NEC: the activity filtered by the squared kernel
        one = kernel_1d(12.0 / FWHM_PER_SIGMA / 4.8)
        squared = np.einsum("i,j,k->ijk", one, one, one) ** 2
        variance = ndimage.convolve(activity, squared, mode="constant") / 112.5
        ratio = images.var(axis=0, ddof=1) / variance
        assert float(np.mean(ratio)) == pytest.approx(1.0, abs=0.02)


def test_voxel_cv_in_a_uniform_region_follows_the_model() -> None:
    # liver-like: 0.0169 MBq per 4.8 mm voxel, 12 mm FWHM, 10 cps/MBq x 1800 s, gain 160:
    # CV = sqrt(160 x sum(k^2) / (0.0169 x 18000)); interior voxels (> 4 sigma from the edges)
    volume = uniform(40, 4.8, 0.0169)
    image = camera_image(volume, GaussianResolution(12.0), Acquisition(), seed=11)
    interior = image.array[8:-8, 8:-8, 8:-8]
    predicted = math.sqrt(160.0 * sum_of_squares_3d(12.0, 4.8) / (0.0169 * 18000.0))
    assert predicted == pytest.approx(0.0994, abs=0.001)
    # 13824 correlated voxels (~ 1 / sum(k^2) = 53 per independent cell): the SD of the
    # measured CV is ~ CV / sqrt(2 x 260) ~ 4.4 %
    assert float(interior.std() / interior.mean()) == pytest.approx(predicted, rel=0.15)
    assert float(interior.mean()) == pytest.approx(0.0169, rel=0.02)


def test_default_gain_gives_a_ten_percent_liver_cv_at_24_h() -> None:
    """The documented anchor: liver of the default phantom at 24 h, 4.8 mm voxels, 12 mm FWHM."""
    spec = default_phantom(0)
    liver = spec.organ("liver")
    mbq_per_voxel = organ_activity_mbq(spec, "liver", 24.0) / liver.shape.volume_ml * 0.110592
    counts = mbq_per_voxel * 10.0 * 1800.0  # ~304
    cv = math.sqrt(Acquisition().noise_gain * sum_of_squares_3d(12.0, 4.8) / counts)
    assert 0.09 < cv < 0.11


def collimator_fwhm_mm(distance_mm: np.ndarray) -> np.ndarray:
    """FWHM(d) = sqrt(Ri^2 + (D (L + d) / L)^2): Ri 3.8, D 2.94, L 38.87 mm (written out)."""
    return np.sqrt(3.8**2 + (2.94 * (38.87 + distance_mm) / 38.87) ** 2)


def orbit_averaged_fwhm_mm(radius_mm: float, orbit_mm: float) -> float:
    """Root-mean-square FWHM over 3600 views of a circular orbit (numerical average)."""
    theta = np.linspace(0.0, 2.0 * math.pi, 3600, endpoint=False)
    distance = orbit_mm - radius_mm * np.cos(theta)
    return float(np.sqrt(np.mean(collimator_fwhm_mm(distance) ** 2)))


def test_depth_dependent_fwhm_of_point_sources_matches_the_collimator_model() -> None:
    # three points on the x axis at r = 0, 90 and 180 mm, 4 mm voxels; orbit radius 250 mm
    grid = Grid((71, 31, 31), (4.0, 4.0, 4.0), (-40.0, -60.0, -60.0))
    array = np.zeros(grid.shape)
    points_x = {0.0: 10, 90.0: 32, 180.0: 55}  # x index = (x + 40) / 4 (rounded to a voxel)
    for index in points_x.values():
        array[15, 15, index] = 1.0
    resolution = DepthDependentResolution(250.0)
    image = resolution.blur(Volume(grid, array)).array
    assert float(image.sum()) == pytest.approx(3.0, rel=1e-6)  # activity conserved
    offsets_mm = np.arange(-9, 10) * 4.0  # +-36 mm windows (points 88-92 mm apart)
    for index in points_x.values():
        radius_mm = -40.0 + 4.0 * index
        window = image[15 - 9 : 15 + 10, 15 - 9 : 15 + 10, index - 9 : index + 10]
        expected = orbit_averaged_fwhm_mm(radius_mm, 250.0)
        for axis in range(3):
            profile = window.sum(axis=tuple(a for a in range(3) if a != axis))
            variance = float(np.sum(profile * offsets_mm**2) / np.sum(profile))
            assert math.sqrt(variance) * FWHM_PER_SIGMA == pytest.approx(expected, rel=0.02)
    # the model's closed form agrees with the numerical average (and grows off the axis)
    closed = resolution.fwhm_mm(np.array([0.0, 180.0]))
    assert closed[0] == pytest.approx(orbit_averaged_fwhm_mm(0.0, 250.0), rel=1e-9)
    assert closed[1] == pytest.approx(orbit_averaged_fwhm_mm(180.0, 250.0), rel=1e-6)
    assert closed[0] == pytest.approx(22.18, abs=0.01)  # sqrt(3.8^2 + (2.94 + 18.909)^2)
    assert MEDIUM_ENERGY.slope == pytest.approx(2.94 / 38.87)


def test_bad_camera_settings_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="noise_gain"):
        Acquisition(noise_gain=0.5)
    with pytest.raises(InvalidInputError, match="sensitivity_cps_per_mbq"):
        Acquisition(sensitivity_cps_per_mbq=0.0)
    with pytest.raises(InvalidInputError, match="orbit_radius_mm"):
        DepthDependentResolution(-1.0)
