"""Rigid registration recovers a known shift; activity resampling by hand."""

from __future__ import annotations

import numpy as np
import pytest

from startrt.imaging.registration import (
    DECLARED_ALIGNED,
    RigidAlignment,
    register_rigid,
    resample_activity,
)
from startrt.imaging.volume import Grid, Volume

GRID = Grid((64, 64, 64), (4.8, 4.8, 4.8), (-150.0, -150.0, -150.0))


def ct_like(shift_mm: tuple[float, float, float]) -> Volume:
    """A body with two kidneys and a spine, moved by `shift_mm` (x, y, z)."""
    z, y, x = (np.indices(GRID.shape) * 4.8 - 150.0).astype(float)
    x, y, z = x - shift_mm[0], y - shift_mm[1], z - shift_mm[2]
    hu = np.where((x / 120) ** 2 + (y / 80) ** 2 + (z / 140) ** 2 < 1, 40.0, -1000.0)
    hu[((x - 40) / 25) ** 2 + ((y - 10) / 20) ** 2 + ((z - 5) / 40) ** 2 < 1] = 200.0
    hu[((x + 40) / 25) ** 2 + ((y - 10) / 20) ** 2 + ((z + 15) / 40) ** 2 < 1] = 150.0
    hu[(x / 15) ** 2 + ((y + 50) / 15) ** 2 < 1] = 700.0
    return Volume(GRID, hu)


@pytest.mark.slow
def test_registration_recovers_a_known_shift() -> None:
    alignment = register_rigid(ct_like((0.0, 0.0, 0.0)), ct_like((7.0, -4.0, 3.0)))
    # the transform maps fixed points to moving points: translation = the shift
    assert np.allclose(alignment.translation_mm, (7.0, -4.0, 3.0), atol=1.0)
    assert np.allclose(alignment.rotation_rad, 0.0, atol=0.015)
    assert alignment.method == "registered"


def test_resampling_by_a_whole_voxel_moves_the_activity() -> None:
    activity = np.zeros(GRID.shape)
    activity[30:34, 20:25, 10:16] = 2.0  # MBq per voxel
    # moving = fixed shifted by +1 voxel in x: the reference sees the block one voxel earlier
    shift = RigidAlignment("registered", (0.0, 0.0, 0.0), (4.8, 0.0, 0.0), (0.0, 0.0, 0.0), None)
    moved = resample_activity(Volume(GRID, activity), GRID, shift)
    expected = np.zeros(GRID.shape)
    expected[30:34, 20:25, 9:15] = 2.0
    assert np.allclose(moved.array, expected)
    assert moved.array.sum() == pytest.approx(activity.sum())


def test_declared_alignment_is_the_identity() -> None:
    activity = np.random.default_rng(1).random(GRID.shape)
    same = resample_activity(Volume(GRID, activity), GRID, DECLARED_ALIGNED)
    assert np.allclose(same.array, activity)
