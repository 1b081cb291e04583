"""Rigid registration recovers known motions of analytic images; grids move by hand."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
import SimpleITK as sitk

from startrt.imaging.registration import (
    DECLARED_ALIGNED,
    RigidAlignment,
    RigidRegistration,
    _sampling_fraction,
    moved_grid,
)
from startrt.imaging.volume import Grid, Volume

GRID = Grid((64, 64, 64), (4.8, 4.8, 4.8), (-150.0, -150.0, -150.0))
# points inside the body (kidneys, spine, far corners of the body) where motions are compared
BODY_POINTS_MM = np.array(
    [[40.0, 10.0, 5.0], [-40.0, 10.0, -15.0], [0.0, -50.0, 0.0], [90.0, 0.0, 90.0], [-90, 30, -100]]
)


def rotation(x_deg: float = 0.0, z_deg: float = 0.0) -> npt.NDArray[np.float64]:
    """Rotation about x, then about z (right-handed, degrees)."""
    ax, az = np.radians(x_deg), np.radians(z_deg)
    about_x = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    about_z = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    turn: npt.NDArray[np.float64] = about_z @ about_x
    return turn


EDGE_MM = 2.0  # smooth organ edges, like a CT resampled to the SPECT grid


def inside(r: npt.NDArray[np.float64], radius_mm: float, edge_mm: float) -> npt.NDArray[np.float64]:
    """1 inside, 0 outside a shape whose normalised radius is `r` (a step if `edge_mm` is 0)."""
    if edge_mm == 0.0:
        return (r < 1).astype(float)
    fraction: npt.NDArray[np.float64] = 0.5 * (1.0 + np.tanh((1.0 - r) * radius_mm / edge_mm))
    return fraction


def anatomy(
    shift_mm: tuple[float, float, float],
    turn: npt.NDArray[np.float64],
    values: tuple[float, float, float, float, float],
    edge_mm: float,
) -> Volume:
    """A body with two kidneys and a spine (`values`: air, body, left and right kidney, spine),
    moved by p -> turn p + shift_mm: the moved image is the same function of the moved
    coordinates, exactly (sampled at voxel centres: smooth edges move sub-voxel, steps not)."""
    air, body, left, right, spine = values
    z, y, x = np.indices(GRID.shape) * 4.8 - 150.0
    moved = np.stack([x, y, z]) - np.reshape(shift_mm, (3, 1, 1, 1))
    x, y, z = np.einsum("ji,j...->i...", turn, moved)  # turn^T (p - shift)
    image = np.full(GRID.shape, air)
    for value, r, radius_mm in (
        (body, np.sqrt((x / 120) ** 2 + (y / 80) ** 2 + (z / 140) ** 2), 80),
        (left, np.sqrt(((x - 40) / 25) ** 2 + ((y - 10) / 20) ** 2 + ((z - 5) / 40) ** 2), 20),
        (right, np.sqrt(((x + 40) / 25) ** 2 + ((y - 10) / 20) ** 2 + ((z + 15) / 40) ** 2), 20),
        (spine, np.sqrt((x / 15) ** 2 + ((y + 50) / 15) ** 2), 15),
    ):
        image += (value - image) * inside(r, radius_mm, edge_mm)  # drawn over what is there
    return Volume(GRID, image)


CT_HU = (-1000.0, 40.0, 200.0, 150.0, 700.0)


def ct_like(
    shift_mm: tuple[float, float, float],
    turn: npt.NDArray[np.float64] | None = None,
    edge_mm: float = 0.0,
) -> Volume:
    """The body as a CT (HU), moved by `shift_mm` (x, y, z) after turning by `turn`."""
    return anatomy(shift_mm, np.eye(3) if turn is None else turn, CT_HU, edge_mm)


def largest_miss_mm(
    alignment: RigidAlignment, turn: npt.NDArray[np.float64], shift_mm: tuple[float, float, float]
) -> float:
    """The largest distance at the body points between the registration's transform and the
    applied motion p -> turn p + shift (the transform maps fixed to moving points)."""
    transform = alignment.transform()
    found = np.array([transform.TransformPoint(tuple(p)) for p in BODY_POINTS_MM])
    applied = BODY_POINTS_MM @ turn.T + np.asarray(shift_mm)
    return float(np.linalg.norm(found - applied, axis=1).max())


@pytest.mark.slow
def test_registration_recovers_a_known_shift() -> None:
    alignment = RigidRegistration(ct_like((0.0, 0.0, 0.0))).align(ct_like((7.0, -4.0, 3.0)))
    # the transform maps fixed points to moving points: translation = the shift
    assert np.allclose(alignment.translation_mm, (7.0, -4.0, 3.0), atol=1.0)
    assert np.allclose(alignment.rotation_rad, 0.0, atol=0.015)
    assert alignment.method == "registered"


def test_an_unmoved_patient_registers_to_the_identity() -> None:
    image = ct_like((0.0, 0.0, 0.0), edge_mm=EDGE_MM)
    alignment = RigidRegistration(image).align(image)
    assert largest_miss_mm(alignment, np.eye(3), (0.0, 0.0, 0.0)) < 0.25  # 0.16 measured


@pytest.mark.parametrize(
    ("x_deg", "z_deg", "shift_mm"),
    [
        (0.0, 0.0, (7.0, -4.0, 3.0)),
        (0.0, 3.0, (-12.0, 9.0, 6.0)),
        (2.0, -4.0, (20.0, -15.0, 10.0)),
        (-3.0, 5.0, (4.0, 2.0, -9.0)),
    ],
)
def test_registration_is_sub_voxel_for_shifts_and_small_rotations(
    x_deg: float, z_deg: float, shift_mm: tuple[float, float, float]
) -> None:
    turn = rotation(x_deg, z_deg)
    fixed = ct_like((0.0, 0.0, 0.0), edge_mm=EDGE_MM)
    alignment = RigidRegistration(fixed).align(ct_like(shift_mm, turn, EDGE_MM))
    # 0.5 mm: about a tenth of the 4.8 mm voxel
    assert largest_miss_mm(alignment, turn, shift_mm) < 0.5


def test_spect_time_points_register_though_their_contrast_changes() -> None:
    """Mutual information, not intensity: the kidneys wash out, the spine (a tumour) stays."""
    turn, shift = rotation(0.0, 2.0), (6.0, 5.0, -8.0)
    early = anatomy((0.0, 0.0, 0.0), np.eye(3), (0.0, 0.2, 3.0, 2.5, 1.0), EDGE_MM)
    late = anatomy(shift, turn, (0.0, 0.05, 0.6, 0.4, 0.9), EDGE_MM)
    assert largest_miss_mm(RigidRegistration(early).align(late), turn, shift) < 0.5


def test_a_prepared_reference_registers_each_time_point_alike() -> None:
    reference = ct_like((0.0, 0.0, 0.0), edge_mm=EDGE_MM)
    first = ct_like((5.0, 0.0, -3.0), edge_mm=EDGE_MM)
    second = ct_like((-4.0, 6.0, 2.0), edge_mm=EDGE_MM)
    prepared = RigidRegistration(reference)
    found = [prepared.align(image) for image in (first, second, first)]
    # as each pair on its own, and the same again after another: no state carried over
    for again, alone in (
        (found[2], found[0]),
        (found[1], RigidRegistration(reference).align(second)),
    ):
        assert again.translation_mm == pytest.approx(alone.translation_mm, abs=1e-9)
        assert again.rotation_rad == pytest.approx(alone.rotation_rad, abs=1e-12)
        assert again.center_mm == alone.center_mm


def test_regular_samples_do_not_line_up_on_a_few_columns() -> None:
    # 84 x 58 x 128 = 623,616 voxels: every 21st (30,000 samples) would hit 4 columns of 84
    image = sitk.Image([84, 58, 128], sitk.sitkFloat32)
    stride = math.ceil(1 / _sampling_fraction(image))  # as ITK's regular sampling
    assert stride == 23  # 22 shares 2 with 84, 23 none
    assert _sampling_fraction(sitk.Image([20, 20, 20], sitk.sitkFloat32)) == 1.0  # all 8,000


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
