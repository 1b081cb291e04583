"""Rigid registration recovers a known shift; activity resampling by hand."""

from __future__ import annotations

import numpy as np
import pytest

from startrt.imaging.registration import (
    DECLARED_ALIGNED,
    RigidAlignment,
    moved_grid,
    register_rigid,
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


def test_a_translation_moves_the_grid_origin() -> None:
    shift = RigidAlignment("registered", (0.0, 0.0, 0.0), (4.8, -2.0, 1.0), (0.0, 0.0, 0.0), None)
    moved = moved_grid(GRID, shift)
    # origin (-150, -150, -150) + (4.8, -2, 1); same axes
    assert moved.origin_mm == pytest.approx((-145.2, -152.0, -149.0))
    assert moved.direction == pytest.approx(GRID.direction)


def test_a_rotation_moves_every_voxel_like_the_transform() -> None:
    # 90 degrees about z around c = (10, 0, 0): (x, y, z) -> (10 - y, x - 10, z), then + t
    turn = RigidAlignment(
        "registered", (0.0, 0.0, np.pi / 2), (1.0, 2.0, 3.0), (10.0, 0.0, 0.0), None
    )
    moved = moved_grid(GRID, turn)
    # reference voxel (0, 0, 0) at (-150, -150, -150) -> (10 + 150, -150 - 10, -150) + t
    assert moved.index_to_physical([0, 0, 0]) == pytest.approx([161.0, -158.0, -147.0])
    index = [5, 7, 9]
    point = GRID.index_to_physical(index)
    expected = turn.transform().TransformPoint(tuple(float(v) for v in point))
    assert moved.index_to_physical(index) == pytest.approx(expected)


def test_declared_alignment_leaves_the_grid() -> None:
    assert moved_grid(GRID, DECLARED_ALIGNED) == GRID
