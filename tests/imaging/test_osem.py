"""Projector and OSEM: exact adjoint, count level, collimator FWHM by depth, recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest

from startrt.imaging.camera import Acquisition
from startrt.imaging.osem import Orbit, OsemReconstruction, Projector
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def centred_grid(size: int, voxel_mm: float) -> Grid:
    origin = -(size - 1) / 2.0 * voxel_mm
    return Grid((size,) * 3, (voxel_mm,) * 3, (origin,) * 3)


def ball(grid: Grid, radius_mm: float, mbq_per_voxel: float) -> Volume:
    axis = np.asarray(grid.origin_mm[0]) + np.arange(grid.size[0]) * grid.spacing_mm[0]
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    inside = x**2 + y**2 + z**2 <= radius_mm**2
    return Volume(grid, np.where(inside, mbq_per_voxel, 0.0))


def test_back_projection_is_the_exact_transpose() -> None:
    projector = Projector(centred_grid(16, 8.0), Orbit(radius_mm=100.0, views=12))
    rng = np.random.default_rng(0)
    volume = rng.random((16, 16, 16))
    projections = rng.random((5, 16, 16))
    views = [0, 3, 4, 7, 11]
    forward = projector.forward(volume, views)
    back = projector.back(projections, views)
    assert float(np.sum(forward * projections)) == pytest.approx(float(np.sum(volume * back)))


def test_projections_count_the_activity_at_the_clinical_level() -> None:
    # a 60 mm ball well inside the field: each view sees all of it (rotation conserves it)
    grid = centred_grid(32, 6.0)
    activity = ball(grid, 60.0, 0.05)
    total_mbq = float(activity.array.sum())
    reconstruction = OsemReconstruction(Orbit(radius_mm=150.0, views=24), subsets=4)
    projector = Projector(grid, reconstruction.orbit)
    expected = reconstruction.projections(projector, activity, Acquisition(), seed=None)
    per_view = expected.sum(axis=(1, 2)) / (10.0 * 1800.0 / 24)
    assert np.allclose(per_view, total_mbq, rtol=0.005)
    # noisy: all views together hold MBq x 10 cps/MBq x 1800 s counts, Poisson
    counts = reconstruction.projections(projector, activity, Acquisition(), seed=4)
    assert np.array_equal(counts, np.round(counts))
    detected = total_mbq * 18000.0
    assert float(counts.sum()) == pytest.approx(detected, abs=4.0 * math.sqrt(detected))


def test_a_point_source_projects_with_the_collimator_fwhm_of_its_depth() -> None:
    # view 0 (no turn): the detector faces +y at R = 200 mm; points at y = +80 and -80 mm, i.e.
    # 120 and 280 mm from the face, at z = -60 and +60 mm (separate in the projection)
    grid = centred_grid(61, 4.0)  # axis -120 .. 120 mm
    array = np.zeros(grid.shape)
    array[15, 50, 30] = 1.0  # z = -60, y = +80, x = 0
    array[45, 10, 30] = 1.0  # z = +60, y = -80, x = 0
    projector = Projector(grid, Orbit(radius_mm=200.0, views=8))
    projection = projector.forward(array, [0])[0]  # (x, z)
    assert float(projection.sum()) == pytest.approx(2.0, rel=1e-9)
    offsets_mm = np.arange(-12, 13) * 4.0
    for z_index, distance_mm in ((15, 120.0), (45, 280.0)):
        # Ri 3.8 mm, hole 2.94 mm, effective length 38.87 mm: FWHM = sqrt(Ri^2 + (D(L+d)/L)^2)
        fwhm = math.sqrt(3.8**2 + (2.94 * (38.87 + distance_mm) / 38.87) ** 2)
        window = projection[30 - 12 : 30 + 13, z_index - 12 : z_index + 13]
        for profile in (window.sum(axis=1), window.sum(axis=0)):  # along x, along z
            variance = float(np.sum(profile * offsets_mm**2) / profile.sum())
            assert math.sqrt(variance) * FWHM_PER_SIGMA == pytest.approx(fwhm, rel=0.01)


def test_osem_recovers_a_uniform_ball() -> None:
    grid = centred_grid(32, 6.0)
    activity = ball(grid, 60.0, 0.05)
    reconstruction = OsemReconstruction(Orbit(radius_mm=150.0, views=32), iterations=8, subsets=4)
    image = reconstruction.image(activity, Acquisition(), seed=None)
    # EM keeps the projections' total: the image total is the activity within 1 %
    assert float(image.array.sum()) == pytest.approx(float(activity.array.sum()), rel=0.01)
    core = ball(grid, 30.0, 1.0).array > 0  # 30 mm inside the edge: > 2 FWHM (~14 mm)
    assert float(image.array[core].mean()) == pytest.approx(0.05, rel=0.05)


def test_bad_reconstruction_settings_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="views"):
        Orbit(views=2)
    with pytest.raises(InvalidInputError, match="subsets"):
        OsemReconstruction(Orbit(views=12), subsets=13)
    with pytest.raises(InvalidInputError, match="iterations"):
        OsemReconstruction(iterations=0)
    with pytest.raises(InvalidInputError, match="grid"):
        Projector(Grid((8, 8, 8), (4.0, 5.0, 4.0), (0.0, 0.0, 0.0)), Orbit())
