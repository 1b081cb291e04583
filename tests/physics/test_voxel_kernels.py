"""Lanconelli 2012 voxel S values: loading, mirroring, nearest size, sums vs local deposition."""

from __future__ import annotations

import numpy as np
import pytest

from startrt.physics.voxel_kernels import (
    VoxelKernel,
    available_kernel_sizes_mm,
    load_kernel,
    mass_scaled_kernel,
)
from startrt.validation import InvalidInputError

SIZES_MM = (2.21, 2.33, 2.4, 3.0, 3.59, 3.9, 4.0, 4.42, 4.8, 5.0, 6.0, 6.8, 9.28)


def local_deposition_s_mgy_per_mbq_s(voxel_mm: float, density_g_ml: float) -> float:
    """By hand: 147.9 keV * 1.602e-16 J/keV per decay, 1e6 decays/s per MBq, into one voxel."""
    watt_per_mbq = 147.9 * 1.602176634e-16 * 1.0e6
    mass_kg = density_g_ml * voxel_mm**3 * 1.0e-3 * 1.0e-3
    return watt_per_mbq / mass_kg * 1.0e3


def test_available_sizes() -> None:
    assert available_kernel_sizes_mm() == SIZES_MM
    assert available_kernel_sizes_mm("bone") == SIZES_MM


def test_table_values_and_mirroring_4_8_mm() -> None:
    kernel = load_kernel(4.8)
    s = kernel.s_mgy_per_mbq_s
    assert s.shape == (11, 11, 11)
    assert kernel.voxel_mm == 4.8
    assert kernel.medium == "soft"
    assert kernel.is_same_size
    # table rows: (0,0,0) 1.78E-01; (0,0,1) 2.46E-03; (0,1,1) 8.65E-05; (5,5,5) 9.50E-07
    assert s[5, 5, 5] == pytest.approx(0.178)
    for neighbour in [(4, 5, 5), (6, 5, 5), (5, 4, 5), (5, 6, 5), (5, 5, 4), (5, 5, 6)]:
        assert s[neighbour] == pytest.approx(2.46e-3)
    assert s[5, 4, 6] == pytest.approx(8.65e-5)
    assert s[4, 6, 5] == pytest.approx(8.65e-5)
    for corner in [(0, 0, 0), (10, 10, 10), (0, 10, 0), (10, 0, 10)]:
        assert s[corner] == pytest.approx(9.50e-7)
    # full sum, computed separately from the octant file with multiplicities 1 (offset 0) or 2
    assert kernel.sum_mgy_per_mbq_s == pytest.approx(0.19805198, rel=1e-7)


def test_kernel_is_read_only() -> None:
    kernel = load_kernel(4.8)
    with pytest.raises(ValueError, match="read-only"):
        kernel.s_mgy_per_mbq_s[5, 5, 5] = 1.0


@pytest.mark.parametrize("voxel_mm", SIZES_MM)
def test_soft_tissue_kernel_sum_below_but_close_to_local_deposition(voxel_mm: float) -> None:
    # e.g. 4.8 mm: 2.3696e-8 W / (1.04 * 0.110592 g = 1.15016e-4 kg) = 0.206026 mGy/(MBq*s);
    # kernel sum 0.198052 -> ratio 0.9613. The tables hold 94.6 % (2.4 mm) to 98.7 % (9.28 mm):
    # within 5 % from 3.59 mm up; 5.0 % below at 3 mm, 5.2-5.4 % below for 2.21-2.4 mm.
    ratio = load_kernel(voxel_mm).sum_mgy_per_mbq_s / local_deposition_s_mgy_per_mbq_s(
        voxel_mm, 1.04
    )
    assert 0.94 < ratio < 1.0
    if voxel_mm >= 3.5:
        assert ratio > 0.95


def test_local_deposition_by_hand_4_8_mm() -> None:
    assert local_deposition_s_mgy_per_mbq_s(4.8, 1.04) == pytest.approx(0.206026, rel=1e-5)


def test_bone_kernel_is_lower_than_soft_tissue() -> None:
    # same energy into a denser medium: about 1.04/1.85 of the soft-tissue dose (4.8 mm: 0.58)
    ratio = load_kernel(4.8, "bone").sum_mgy_per_mbq_s / load_kernel(4.8).sum_mgy_per_mbq_s
    assert ratio == pytest.approx(1.04 / 1.85, rel=0.05)


@pytest.mark.parametrize(
    ("requested", "chosen", "same"),
    [
        (4.8, 4.8, True),
        (4.84, 4.8, True),  # 0.04 mm = 0.83 % of 4.8
        (4.76, 4.8, True),
        (4.86, 4.8, False),  # 0.06 mm = 1.25 %
        (4.2, 4.0, False),  # |4.2-4.0| = 0.20 < |4.42-4.2| = 0.22
        (4.3, 4.42, False),
        (12.0, 9.28, False),
        (1.0, 2.21, False),
    ],
)
def test_nearest_size_and_flag(requested: float, chosen: float, same: bool) -> None:
    kernel = load_kernel(requested)
    assert kernel.voxel_mm == chosen
    assert kernel.requested_voxel_mm == requested
    assert kernel.is_same_size is same


def test_scaled() -> None:
    kernel = load_kernel(4.8).scaled(2.0)
    assert kernel.s_mgy_per_mbq_s[5, 5, 5] == pytest.approx(0.356)
    with pytest.raises(InvalidInputError, match="factor"):
        kernel.scaled(0.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"voxel_mm": 0.0}, "voxel_mm"),
        ({"voxel_mm": float("nan")}, "voxel_mm"),
        ({"voxel_mm": 4.8, "medium": "lung"}, "medium"),
    ],
)
def test_load_refuses_bad_input(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        load_kernel(**kwargs)  # type: ignore[arg-type]
    assert error.value.field == field


@pytest.mark.parametrize(
    "array", [np.ones((10, 10, 10)), np.ones((3, 3, 5)), -np.ones((3, 3, 3)), np.ones((3, 3))]
)
def test_kernel_refuses_bad_arrays(array: np.ndarray) -> None:
    with pytest.raises(InvalidInputError) as error:
        VoxelKernel(4.8, "soft", array)
    assert error.value.field == "s_mgy_per_mbq_s"


def test_mass_scaling_keeps_the_energy_per_decay() -> None:
    kernel = load_kernel(9.28)
    moved = mass_scaled_kernel(kernel, 9.6)
    # energy per decay = sum(S) x voxel mass: 9.28^3 * sum = 9.6^3 * sum' -> sum' = sum * 0.903...
    assert moved.voxel_mm == 9.6
    assert moved.sum_mgy_per_mbq_s == pytest.approx(kernel.sum_mgy_per_mbq_s * (9.28 / 9.6) ** 3)
    assert moved.sum_mgy_per_mbq_s * 9.6**3 == pytest.approx(kernel.sum_mgy_per_mbq_s * 9.28**3)
