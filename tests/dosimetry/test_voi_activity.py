"""Region values with shared voxels and the voxel TIA map, on hand-built piecewise-uniform maps."""

from __future__ import annotations

import numpy as np
import pytest

from startrt.dosimetry.voi_activity import REMAINDER, Regions, tia_map_mbq_h
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

GRID = Grid((5, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))


def row(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(GRID.shape)


# a kidney with 4 MBq per full voxel beside tissue with 1 MBq per full voxel; voxels 2 and 3 shared
KIDNEY = row(1.0, 0.5, 0.25, 0.0, 0.0)
REGIONS = Regions.of({"kidney": KIDNEY})
ACTIVITY = 4.0 * KIDNEY + 1.0 * (1.0 - KIDNEY)


def test_remainder_is_what_no_voi_holds() -> None:
    regions = Regions.of({"a": row(1.0, 0.5, 0.0, 0.0, 0.0), "b": row(0.0, 0.25, 0.5, 0.0, 0.0)})
    assert np.allclose(regions.fraction(REMAINDER), row(0.0, 0.25, 0.5, 1, 1))
    assert np.allclose(regions.fraction("b"), row(0.0, 0.25, 0.5, 0.0, 0.0))
    assert regions.voxel_sums() == pytest.approx({"a": 1.5, "b": 0.75, REMAINDER: 2.75})


def test_unmixing_recovers_each_regions_own_value() -> None:
    # activities: 4, 2 + 0.5, 1 + 0.75, 1, 1 -> unmixed 4 (kidney) and 1 (remainder)
    assert np.allclose(ACTIVITY, row(4.0, 2.5, 1.75, 1.0, 1.0))
    assert REGIONS.unmix(ACTIVITY) == pytest.approx({"kidney": 4.0, REMAINDER: 1.0})
    # kidney total = 4 * (1 + 0.5 + 0.25) = 7 MBq, whereas sum(a f) = 4 + 1.25 + 0.4375
    totals = REGIONS.totals(ACTIVITY)
    assert totals["kidney"] == pytest.approx(7.0)
    assert totals[REMAINDER] == pytest.approx(1.0 * (0.5 + 0.75 + 1 + 1))


def test_unmixing_agrees_with_a_dense_least_squares_solution() -> None:
    # second method: numpy lstsq on the full design matrix of a random 3-region layout
    rng = np.random.default_rng(3)
    shape = (6, 7, 8)
    a = np.where(rng.random(shape) < 0.3, rng.random(shape) * 0.6, 0.0)
    b = np.where(a == 0, rng.random(shape) * 0.4, 0.0)
    regions = Regions.of({"a": a, "b": b})
    values = rng.random(shape) * 10
    design = np.stack([a.ravel(), b.ravel(), (1 - a - b).ravel()], axis=1)
    expected, *_ = np.linalg.lstsq(design, values.ravel(), rcond=None)
    assert list(regions.unmix(values).values()) == pytest.approx(list(expected))


def test_empty_voi_is_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match="tumour_1"):
        Regions.of({"tumour_1": row(0, 0, 0, 0, 0)})


def test_tia_map_follows_each_regions_kinetics_in_shared_voxels() -> None:
    # kidney TIA/A = 70 h, remainder 20 h. Voxel 2 holds 2.0 MBq kidney + 0.5 remainder:
    # ratio (2.0*70 + 0.5*20) / 2.5 = 60 h -> 150 MBq h; voxel 3: (1.0*70 + 0.75*20)/1.75
    # = 48.5714 h -> 85 MBq h
    tia = tia_map_mbq_h(Volume(GRID, ACTIVITY), REGIONS, {"kidney": 70.0, REMAINDER: 20.0})
    assert np.allclose(tia.array, row(280.0, 150.0, 85.0, 20.0, 20.0))
    # and the kidney's TIA from the map is its fitted TIA: 70 h x 7 MBq = 490 MBq h
    assert REGIONS.totals(tia.array)["kidney"] == pytest.approx(490.0)
