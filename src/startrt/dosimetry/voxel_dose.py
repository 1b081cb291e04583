"""Voxel-level absorbed dose from a time-integrated activity (TIA) map, and dose statistics per VOI.

Two methods (MIRD Pamphlet No. 17, Bolch et al., J Nucl Med 1999;40:11S-36S): local deposition
(all electron energy absorbed in the emitting voxel) and convolution of the TIA map with a dose
voxel kernel (voxel S values, Lanconelli et al., Phys Med Biol 2012;57:517). TIA maps are in MBq*h
per voxel, doses in Gy, both on `startrt.imaging.volume` grids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import fft

from startrt.imaging.volume import FloatArray, Grid, Volume
from startrt.physics.nuclides import LU177, SECONDS_PER_HOUR
from startrt.physics.tissue import TISSUE_DENSITY_G_ML, checked_density_g_ml
from startrt.physics.voxel_kernels import (
    MEDIUM_DENSITY_G_ML,
    SAME_SIZE_RELATIVE_TOLERANCE,
    VoxelKernel,
)
from startrt.validation import InvalidInputError

Float64Array = npt.NDArray[np.float64]
MGY_PER_GY = 1000.0
ML_PER_MM3 = 1.0e-3


@dataclass(frozen=True)
class KernelDoseResult:
    """Kernel dose on the TIA map's grid, with how it was computed: the kernel's voxel size, whether
    the map was resampled to it, and the factor applied to the kernel's S values (1 if none)."""

    dose: Volume
    kernel_voxel_mm: float
    resampled: bool
    normalization_factor: float


class Dvh(NamedTuple):
    """Cumulative dose-volume histogram: fraction of the VOI receiving at least each dose."""

    dose_gy: Float64Array
    volume_fraction: Float64Array


@dataclass(frozen=True)
class VoiDose:
    """Absorbed-dose statistics of one VOI (Gy); D_x = least dose to the hottest x % of it;
    `mean_gy` is the least-squares VOI mean, `fraction_weighted_mean_gy` sum(f D) / sum(f)."""

    mean_gy: float
    fraction_weighted_mean_gy: float
    min_gy: float
    max_gy: float
    d50_gy: float
    d2_gy: float
    d98_gy: float
    dvh: Dvh


def local_deposition_dose_gy(
    tia_map: Volume, density_g_ml: float | FloatArray = TISSUE_DENSITY_G_ML["soft_tissue"]
) -> Volume:
    """Dose (Gy) with every electron's energy absorbed in its voxel: D = TIA * 0.08531 / m[g],
    m = density * voxel volume (MIRD Pamphlet No. 17, Bolch et al. 1999; 177Lu: ICRP 107)."""
    tia = _checked_tia(tia_map)
    density = checked_density_g_ml(density_g_ml)
    if np.ndim(density) != 0 and np.shape(density) != tia_map.grid.shape:
        raise InvalidInputError(
            "density_g_ml", np.shape(density), f"must be a number or an array {tia_map.grid.shape}"
        )
    mass_g = np.multiply(density, tia_map.grid.voxel_volume_ml)
    return tia_map.with_array(tia * (LU177.local_deposition_gy_g_per_mbq_h / mass_g))


def electron_energy_normalization(kernel: VoxelKernel) -> float:
    """Factor making the kernel's sum equal the local-deposition S value of 177Lu's electrons
    (147.9 keV per decay, ICRP 107) in one voxel of the kernel's medium."""
    mass_g = MEDIUM_DENSITY_G_ML[kernel.medium] * kernel.voxel_mm**3 * ML_PER_MM3
    local_s_mgy_per_mbq_s = (
        LU177.local_deposition_gy_g_per_mbq_h / SECONDS_PER_HOUR * MGY_PER_GY / mass_g
    )
    return local_s_mgy_per_mbq_s / kernel.sum_mgy_per_mbq_s


def kernel_dose_gy(
    tia_map: Volume, kernel: VoxelKernel, *, normalize_to_electron_energy: bool = False
) -> KernelDoseResult:
    """Dose (Gy) = TIA [MBq*h] * 3600 s/h convolved with S [mGy/(MBq*s)] / 1000 (MIRD Pamphlet
    No. 17, Bolch et al. 1999), by FFT. If a spacing differs from the kernel's voxel by > 1 %, the
    TIA is rebinned to the kernel's isotropic voxel by overlap volume (total activity conserved
    exactly), convolved, and each image voxel's dose is the volume average of the kernel-grid
    doses it overlaps (the mean absorbed dose in the voxel: the adjoint of the rebinning, which
    keeps a small hot region's peak where an interpolation would smooth it);
    `normalize_to_electron_energy` scales the kernel so its sum equals local deposition
    (`electron_energy_normalization`)."""
    tia = _checked_tia(tia_map)
    factor = electron_energy_normalization(kernel) if normalize_to_electron_energy else 1.0
    s_gy_per_mbq_h = kernel.s_mgy_per_mbq_s * (factor * SECONDS_PER_HOUR / MGY_PER_GY)
    spacing = np.asarray(tia_map.grid.spacing_mm)
    if np.all(np.abs(spacing - kernel.voxel_mm) <= SAME_SIZE_RELATIVE_TOLERANCE * kernel.voxel_mm):
        dose = tia_map.with_array(_non_negative(_convolve_linear(tia, s_gy_per_mbq_h)))
        return KernelDoseResult(dose, kernel.voxel_mm, resampled=False, normalization_factor=factor)
    kernel_grid = _isotropic_grid(tia_map.grid, kernel.voxel_mm)
    weights = _overlap_weights(tia_map.grid, kernel_grid)
    tia_on_kernel_grid = _along_axes(tia, weights)
    dose_on_kernel_grid = _non_negative(_convolve_linear(tia_on_kernel_grid, s_gy_per_mbq_h))
    dose = tia_map.with_array(_along_axes(dose_on_kernel_grid, [w.T for w in weights]))
    return KernelDoseResult(dose, kernel.voxel_mm, resampled=True, normalization_factor=factor)


def _non_negative(dose: Float64Array) -> Float64Array:
    """Dose with the FFT's round-off below zero (order 1e-15 of the maximum) set to zero: a
    convolution of non-negative TIA with a non-negative kernel cannot be negative."""
    return np.maximum(dose, 0.0, out=dose)


def _convolve_linear(values: FloatArray, kernel: FloatArray) -> Float64Array:
    """Linear (zero-padded) 3-D convolution of `values` with an odd cube `kernel`, centred, same
    shape as `values`, float64; equals scipy.ndimage.convolve(mode="constant"). FFT sizes: the
    next fast length >= n + half-width (wrap-around stays out of the output) and >= the kernel;
    transforms pruned axis by axis, kernel transformed once, one worker."""
    half = kernel.shape[0] // 2
    shape = values.shape
    lengths = (
        fft.next_fast_len(max(shape[0] + half, kernel.shape[0])),
        fft.next_fast_len(max(shape[1] + half, kernel.shape[1])),
        fft.next_fast_len(max(shape[2] + half, kernel.shape[2]), real=True),
    )
    spectrum = _forward(np.asarray(values, dtype=np.float64), lengths)
    spectrum *= _forward(np.asarray(kernel, dtype=np.float64), lengths)
    # inverse axis by axis, cropping each axis to the output rows before the next transform
    spectrum = fft.ifft(spectrum, axis=0, workers=1, overwrite_x=True)[half : half + shape[0]]
    spectrum = fft.ifft(spectrum, axis=1, workers=1, overwrite_x=True)[:, half : half + shape[1]]
    result: Float64Array = fft.irfft(spectrum, n=lengths[2], axis=2, workers=1)
    return np.ascontiguousarray(result[:, :, half : half + shape[2]])


def voi_dose_statistics(dose: Volume, fraction: FloatArray, *, n_bins: int = 200) -> VoiDose:
    """Mean, min, max, D50, D2, D98 and cumulative DVH of a VOI given as voxel fractions f.

    Mean = sum(f D) / sum(f^2): the least-squares fit of D_voxel = f * D_voi, i.e. a voxel partly
    inside the VOI holds that part of the VOI's activity and so that part of its dose. Exact for a
    uniform VOI with nothing around it, where the weighted mean sum(f D)/sum(f) (also returned) is
    biased low; if the dose does not fall off at the VOI's edge (hot surroundings) the
    least-squares mean overestimates and the weighted mean is the right one. Percentiles and DVH
    weight voxels by f; min and max are over voxels with f > 0.
    """
    weights = _checked_fraction(fraction, dose.grid)
    if not isinstance(n_bins, int) or n_bins < 1:
        raise InvalidInputError("n_bins", n_bins, "must be an integer >= 1")
    inside = weights > 0
    doses = np.asarray(dose.array, dtype=np.float64)[inside]
    weights = weights[inside]
    if not np.isfinite(doses).all():
        raise InvalidInputError("dose", "array", "must be finite inside the VOI")
    order = np.argsort(doses)
    doses, weights = doses[order], weights[order]
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    total = cumulative[-1]

    def fraction_at_least(levels_gy: Float64Array) -> Float64Array:
        below = cumulative[np.searchsorted(doses, levels_gy, side="left")]
        volume: Float64Array = (total - below) / total
        return volume

    def least_dose_to_hottest(percent: float) -> float:
        # the highest dose level still covering `percent` % of the VOI (ascending doses)
        covered = fraction_at_least(doses) >= percent / 100.0 - 1e-12
        return float(doses[np.flatnonzero(covered)[-1]])

    max_gy = float(doses[-1])
    upper = max_gy if max_gy > 0 else 1.0
    levels = np.append(np.linspace(0.0, upper, n_bins + 1), upper * (1.0 + 1.0 / n_bins))
    return VoiDose(
        mean_gy=float(np.dot(doses, weights) / np.dot(weights, weights)),
        fraction_weighted_mean_gy=float(np.dot(doses, weights) / total),
        min_gy=float(doses[0]),
        max_gy=max_gy,
        d50_gy=least_dose_to_hottest(50.0),
        d2_gy=least_dose_to_hottest(2.0),
        d98_gy=least_dose_to_hottest(98.0),
        dvh=Dvh(levels, fraction_at_least(levels)),
    )


def _forward(values: Float64Array, lengths: tuple[int, int, int]) -> npt.NDArray[np.complex128]:
    """Zero-padded 3-D real FFT, axis by axis so the padding is never transformed needlessly."""
    spectrum = fft.rfft(values, n=lengths[2], axis=2, workers=1)
    spectrum = fft.fft(spectrum, n=lengths[1], axis=1, workers=1, overwrite_x=True)
    result: npt.NDArray[np.complex128] = fft.fft(
        spectrum, n=lengths[0], axis=0, workers=1, overwrite_x=True
    )
    return result


def _checked_tia(tia_map: Volume) -> Float64Array:
    tia = np.asarray(tia_map.array, dtype=np.float64)
    if not np.isfinite(tia).all():
        raise InvalidInputError("tia_map", "array", "must be finite (MBq*h per voxel)")
    if tia.size and tia.min() < 0:
        raise InvalidInputError("tia_map", float(tia.min()), "must be >= 0 MBq*h in every voxel")
    return tia


def _checked_fraction(fraction: FloatArray, grid: Grid) -> Float64Array:
    weights = np.asarray(fraction, dtype=np.float64)
    if weights.shape != grid.shape:
        raise InvalidInputError(
            "fraction", weights.shape, f"must have the dose grid's {grid.shape}"
        )
    if not (np.isfinite(weights).all() and weights.min() >= 0 and weights.max() <= 1):
        raise InvalidInputError("fraction", "array", "must hold fractions in [0, 1]")
    if not weights.any():
        raise InvalidInputError("fraction", 0.0, "the VOI has no voxel on the dose grid")
    return weights


def _isotropic_grid(grid: Grid, spacing_mm: float) -> Grid:
    """A grid of `spacing_mm` cubes covering `grid`'s extent, from the same outer corner."""
    extent_mm = np.asarray(grid.size) * np.asarray(grid.spacing_mm)
    size = tuple(math.ceil(e / spacing_mm - 1e-9) for e in extent_mm)
    shift_index_mm = (spacing_mm - np.asarray(grid.spacing_mm)) / 2.0
    origin = np.asarray(grid.origin_mm) + grid.direction_matrix() @ shift_index_mm
    return Grid(
        size=(size[0], size[1], size[2]),
        spacing_mm=(spacing_mm, spacing_mm, spacing_mm),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=grid.direction,
    )


def _overlap_weights(source: Grid, target: Grid) -> list[Float64Array]:
    """Per axis (x, y, z), [target, source]: the fraction of each source voxel inside each
    target voxel (same corner and axes, see `_isotropic_grid`). Applied to activity it shares
    each source voxel's activity, taken as uniform within it, by overlap volume (the total is
    conserved exactly: the target covers the source's extent); transposed, applied to dose, it
    gives each source voxel the volume average of the target doses over it."""
    return [
        _overlap_fractions(n_old, s_old, n_new, s_new)
        for n_old, s_old, n_new, s_new in zip(
            source.size, source.spacing_mm, target.size, target.spacing_mm, strict=True
        )
    ]


def _along_axes(values: FloatArray, weights: list[Float64Array]) -> Float64Array:
    """`values` ([z, y, x]) mapped by one matrix per axis (x, y, z): out = W_z W_y W_x values."""
    along_x = np.asarray(values, dtype=np.float64) @ weights[0].T
    along_y = np.matmul(weights[1], along_x)
    result: Float64Array = np.tensordot(weights[2], along_y, axes=(1, 0))
    return result


def _overlap_fractions(n_old: int, old_mm: float, n_new: int, new_mm: float) -> Float64Array:
    """[new, old]: fraction of each old voxel in each new one, along one axis from a common edge."""
    old_edges = np.arange(n_old + 1) * old_mm
    new_edges = np.arange(n_new + 1) * new_mm
    low = np.maximum(new_edges[:-1, None], old_edges[None, :-1])
    high = np.minimum(new_edges[1:, None], old_edges[None, 1:])
    fractions: Float64Array = np.clip(high - low, 0.0, None) / old_mm
    return fractions
