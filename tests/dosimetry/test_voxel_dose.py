"""Voxel dose: local deposition, FFT kernel convolution (vs direct convolution and by hand),
resampling to the kernel's voxel, VOI statistics (least-squares mean, DVH)."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from scipy import ndimage

from startrt.dosimetry.voxel_dose import (
    kernel_dose_gy,
    local_deposition_dose_gy,
    voi_dose_statistics,
)
from startrt.imaging.volume import Grid, Volume
from startrt.physics.voxel_kernels import VoxelKernel, load_kernel
from startrt.validation import InvalidInputError

# 147.9 keV * 1.602176634e-16 J/keV = 2.369619e-14 J/decay; * 3.6e9 decays per MBq*h / 1e-3 kg/g
LOCAL_GY_G_PER_MBQ_H = 0.0853062927
# sum of the 4.8 mm soft-tissue table, mirrored (octant rows weighted 1 or 2 per axis)
KERNEL_4_8_SUM = 0.19805198
ROTATED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def kernel_table(name: str) -> list[str]:
    folder = resources.files("startrt.physics.data").joinpath("voxel-s-values")
    return folder.joinpath(name).read_text("utf-8").splitlines()


def cube(n: int, spacing_mm: float | tuple[float, float, float], value: float = 1.0) -> Volume:
    spacing = spacing_mm if isinstance(spacing_mm, tuple) else (spacing_mm,) * 3
    grid = Grid((n, n, n), spacing, (0.0, 0.0, 0.0))
    return Volume(grid, np.full(grid.shape, value))


# --- local deposition -----------------------------------------------------------------------


def test_local_deposition_by_hand() -> None:
    # 10 MBq*h in a 4.8 mm voxel of 1.05 g/mL: m = 1.05 * 0.110592 = 0.1161216 g
    # D = 10 * 0.0853063 / 0.1161216 = 7.34629 Gy
    dose = local_deposition_dose_gy(cube(3, 4.8, 10.0), 1.05)
    assert np.allclose(dose.array, 7.34629, rtol=1e-6)


def test_local_deposition_density_map() -> None:
    tia = cube(2, 4.0, 1.0)
    density = np.full(tia.grid.shape, 1.04)
    density[0, 0, 0] = 2.08
    dose = local_deposition_dose_gy(tia, density)
    # 1 MBq*h in 0.064 mL * 1.04 g/mL = 0.06656 g -> 1.281645 Gy; twice the density, half
    assert dose.array[1, 1, 1] == pytest.approx(LOCAL_GY_G_PER_MBQ_H / 0.06656)
    assert dose.array[0, 0, 0] == pytest.approx(LOCAL_GY_G_PER_MBQ_H / 0.06656 / 2)


@pytest.mark.parametrize(
    ("tia_value", "density", "field"),
    [
        (-1.0, 1.04, "tia_map"),
        (np.nan, 1.04, "tia_map"),
        (1.0, 0.0012, "density_g_ml"),
        (1.0, np.ones((2, 2, 3)), "density_g_ml"),
    ],
)
def test_local_deposition_refuses_bad_input(tia_value: float, density: object, field: str) -> None:
    tia = cube(2, 4.0, 1.0)
    tia.array[0, 0, 0] = tia_value
    with pytest.raises(InvalidInputError) as error:
        local_deposition_dose_gy(tia, density)  # type: ignore[arg-type]
    assert error.value.field == field


# --- kernel convolution ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(9, 12, 17), (3, 4, 5), (1, 1, 1), (20, 7, 8)])
def test_fft_equals_direct_convolution(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    # an asymmetric kernel checks orientation (convolution, not correlation)
    kernel = VoxelKernel(4.8, "soft", rng.random((7, 7, 7)))
    grid = Grid((shape[2], shape[1], shape[0]), (4.8, 4.8, 4.8), (0.0, 0.0, 0.0))
    tia = Volume(grid, rng.random(shape))
    result = kernel_dose_gy(tia, kernel)
    direct = ndimage.convolve(tia.array * 3.6, kernel.s_mgy_per_mbq_s, mode="constant", cval=0.0)
    assert np.allclose(result.dose.array, direct, rtol=1e-10, atol=0.0)
    assert result.resampled is False
    assert result.normalization_factor == 1.0


def test_point_source_gives_the_kernel() -> None:
    kernel = load_kernel(4.8)
    tia = cube(21, 4.8, 0.0)
    tia.array[10, 10, 10] = 1.0
    dose = kernel_dose_gy(tia, kernel).dose.array
    # 1 MBq*h = 3600 MBq*s; mGy -> Gy: D = S * 3.6
    assert np.allclose(dose[5:16, 5:16, 5:16], kernel.s_mgy_per_mbq_s * 3.6, rtol=1e-9)
    dose[5:16, 5:16, 5:16] = 0.0
    assert np.abs(dose).max() < 1e-15


def test_uniform_cube_interior_is_tia_times_kernel_sum() -> None:
    # 2 MBq*h per voxel: interior dose = 2 * 0.19805198 * 3600 / 1000 = 1.42597 Gy
    result = kernel_dose_gy(cube(25, 4.8, 2.0), load_kernel(4.8))
    assert np.allclose(result.dose.array[5:20, 5:20, 5:20], 1.425974, rtol=1e-6)
    # a corner voxel receives one octant of the kernel: 2 * 3.6 * (sum of the table's 216 rows)
    octant_sum = np.loadtxt(kernel_table("177Lu4.8mmsoft.txt"), skiprows=2)[:, 3].sum()
    assert result.dose.array[0, 0, 0] == pytest.approx(2.0 * 3.6 * octant_sum, rel=1e-9)
    assert result.kernel_voxel_mm == 4.8


def test_normalized_kernel_matches_local_deposition() -> None:
    # factor = 0.206026 / 0.198052 = 1.04026; interior = local deposition:
    # 2 * 0.0853063 / (1.04 * 0.110592 g) = 1.48339 Gy
    result = kernel_dose_gy(cube(25, 4.8, 2.0), load_kernel(4.8), normalize_to_electron_energy=True)
    assert result.normalization_factor == pytest.approx(1.040261, rel=1e-6)
    assert np.allclose(result.dose.array[5:20, 5:20, 5:20], 1.483385, rtol=1e-6)


def test_spacing_within_one_percent_uses_kernel_as_is() -> None:
    # 4.84 mm is 0.83 % from 4.8 mm: no resampling, same arrays as on a 4.8 mm grid
    near = kernel_dose_gy(cube(12, 4.84, 1.0), load_kernel(4.8))
    exact = kernel_dose_gy(cube(12, 4.8, 1.0), load_kernel(4.8))
    assert near.resampled is False
    assert np.array_equal(near.dose.array, exact.dose.array)
    assert kernel_dose_gy(cube(12, 4.86, 1.0), load_kernel(4.8)).resampled is True


def test_resampled_uniform_interior_by_hand() -> None:
    # 1 MBq*h per 4.0 mm voxel = 15.625 MBq*h/mL; per 4.8 mm voxel (0.110592 mL): 1.728 MBq*h;
    # interior dose = 1.728 * 0.19805198 * 3.6 = 1.232042 Gy
    result = kernel_dose_gy(cube(30, 4.0, 1.0), load_kernel(4.8))
    assert result.resampled is True
    assert result.kernel_voxel_mm == 4.8
    assert result.normalization_factor == 1.0
    assert result.dose.grid == cube(30, 4.0).grid
    assert np.allclose(result.dose.array[8:22, 8:22, 8:22], 1.232042, rtol=1e-6)


def gaussian_blob(grid: Grid, centre_mm: tuple[float, float, float], sigma_mm: float) -> Volume:
    z, y, x = np.indices(grid.shape)
    points = grid.index_to_physical(np.stack([x, y, z], axis=-1))
    squared = ((points - np.asarray(centre_mm)) ** 2).sum(axis=-1)
    return Volume(grid, np.exp(-squared / (2 * sigma_mm**2)))


@pytest.mark.parametrize("direction", [None, ROTATED])
def test_resampling_conserves_energy_and_position(
    direction: tuple[float, ...] | None,
) -> None:
    grid = Grid((40, 40, 40), (4.0, 4.0, 4.0), (-10.0, 5.0, 3.0))
    if direction is not None:
        grid = Grid(grid.size, grid.spacing_mm, grid.origin_mm, direction)
    centre_index = np.array([19.3, 20.4, 18.7])
    tia = gaussian_blob(grid, tuple(grid.index_to_physical(centre_index)), 12.0)
    dose = kernel_dose_gy(tia, load_kernel(4.8)).dose.array
    # energy: sum(D * V) on the SPECT grid = sum(TIA) * 3.6 * kernel sum * V_kernel voxel
    expected = tia.array.sum() * 3.6 * KERNEL_4_8_SUM * 0.110592
    assert (dose * 0.064).sum() == pytest.approx(expected, rel=2e-3)
    # position: dose centroid (in voxel indices x, y, z) on the activity's centre
    z, y, x = np.indices(grid.shape)
    centroid = [(dose * axis).sum() / dose.sum() for axis in (x, y, z)]
    assert np.allclose(centroid, centre_index, atol=0.02)


def test_anisotropic_voxels_are_resampled() -> None:
    tia = cube(20, (4.8, 4.8, 4.0), 1.0)
    result = kernel_dose_gy(tia, load_kernel(4.8))
    assert result.resampled is True
    # 1 MBq*h per 0.09216 mL voxel -> 1.2 MBq*h per 4.8 mm voxel; * 0.19805198 * 3.6
    assert np.allclose(result.dose.array[8:12, 8:12, 8:12], 0.855585, rtol=1e-5)


def test_kernel_dose_refuses_negative_tia() -> None:
    tia = cube(5, 4.8, 1.0)
    tia.array[2, 2, 2] = -0.1
    with pytest.raises(InvalidInputError) as error:
        kernel_dose_gy(tia, load_kernel(4.8))
    assert error.value.field == "tia_map"


# --- VOI statistics -------------------------------------------------------------------------


def ellipsoid_fractions(
    grid: Grid, centre_mm: tuple[float, float, float], semi_axes_mm: tuple[float, float, float]
) -> np.ndarray:
    """Fraction of each voxel inside the ellipsoid, by 8^3 sub-points per voxel."""
    k = 8
    offsets = (np.arange(k) + 0.5) / k - 0.5
    z, y, x = np.indices(grid.shape)
    inside = np.zeros(grid.shape)
    for dz in offsets:
        for dy in offsets:
            for dx in offsets:
                points = grid.index_to_physical(np.stack([x + dx, y + dy, z + dz], axis=-1))
                scaled = (points - np.asarray(centre_mm)) / np.asarray(semi_axes_mm)
                inside += (scaled**2).sum(axis=-1) <= 1.0
    return inside / k**3


def test_least_squares_mean_is_exact_for_uniform_ellipsoid() -> None:
    grid = Grid((16, 14, 12), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    fraction = ellipsoid_fractions(grid, (31.3, 27.9, 22.6), (20.0, 14.0, 10.0))
    assert ((fraction > 0) & (fraction < 1)).sum() > 100  # many partial voxels
    # 50 MBq*h/mL in the organ, none outside; each voxel holds its inside part of it
    tia = Volume(grid, fraction * 50.0 * grid.voxel_volume_ml)
    dose = local_deposition_dose_gy(tia, 1.05)
    # organ dose = 50 * 0.0853063 / 1.05 = 4.062204 Gy
    statistics = voi_dose_statistics(dose, fraction)
    assert statistics.mean_gy == pytest.approx(4.062204, rel=1e-6)
    plain_mean = (dose.array * fraction).sum() / fraction.sum()
    assert plain_mean < 0.9 * 4.062204  # partial voxels pull the weighted mean down
    assert statistics.fraction_weighted_mean_gy == pytest.approx(plain_mean, rel=1e-12)
    assert statistics.max_gy == pytest.approx(4.062204, rel=1e-6)


def test_dvh_of_uniform_dose_is_a_step() -> None:
    grid = Grid((6, 5, 4), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    fraction = np.random.default_rng(3).random(grid.shape)
    statistics = voi_dose_statistics(Volume(grid, np.full(grid.shape, 3.0)), fraction, n_bins=30)
    levels, volume = statistics.dvh
    assert levels[0] == 0.0
    assert len(levels) == 32
    assert np.array_equal(volume, np.where(levels <= 3.0, 1.0, 0.0))
    assert levels[-2] == 3.0
    assert volume[-2] == 1.0
    assert volume[-1] == 0.0
    for value in (statistics.fraction_weighted_mean_gy, statistics.min_gy, statistics.max_gy):
        assert value == pytest.approx(3.0)
    assert statistics.d2_gy == statistics.d50_gy == statistics.d98_gy == 3.0


def test_percentiles_weighted_by_fraction() -> None:
    # voxel A: f 0.25 at 5 Gy; voxel B: f 1 at 1 Gy; C outside (f 0) at 100 Gy.
    # V(>= 5 Gy) = 0.25 / 1.25 = 20 %: D2 = 5, D50 = D98 = 1;
    # mean = (0.25*5 + 1*1) / (0.0625 + 1) = 2.25 / 1.0625 = 2.117647
    grid = Grid((3, 1, 1), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    dose = Volume(grid, np.array([[[5.0, 1.0, 100.0]]]))
    statistics = voi_dose_statistics(dose, np.array([[[0.25, 1.0, 0.0]]]), n_bins=5)
    assert (statistics.d2_gy, statistics.d50_gy, statistics.d98_gy) == (5.0, 1.0, 1.0)
    assert statistics.mean_gy == pytest.approx(2.117647, rel=1e-6)
    assert statistics.fraction_weighted_mean_gy == pytest.approx(2.25 / 1.25)
    assert (statistics.min_gy, statistics.max_gy) == (1.0, 5.0)
    # levels 0, 1, 2, 3, 4, 5, 6 Gy -> 100 %, 100 %, 20 %, 20 %, 20 %, 20 %, 0 %
    assert np.allclose(statistics.dvh.dose_gy, [0, 1, 2, 3, 4, 5, 6])
    assert np.allclose(statistics.dvh.volume_fraction, [1, 1, 0.2, 0.2, 0.2, 0.2, 0])


@pytest.mark.parametrize(
    "fraction",
    [np.full((2, 2, 2), 1.5), np.full((2, 2, 2), -0.1), np.zeros((2, 2, 2)), np.ones((2, 2))],
)
def test_statistics_refuse_bad_fractions(fraction: np.ndarray) -> None:
    dose = cube(2, 4.0, 1.0)
    with pytest.raises(InvalidInputError) as error:
        voi_dose_statistics(dose, fraction)
    assert error.value.field == "fraction"
