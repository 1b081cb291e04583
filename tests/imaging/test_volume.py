"""Grid geometry: index <-> patient coordinates, SimpleITK round trips."""

from __future__ import annotations

import numpy as np
import pytest

from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

# rotated 90 degrees about z: index x runs along patient +y, index y along patient -x
ROTATED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def test_index_to_physical_by_hand() -> None:
    grid = Grid((4, 5, 6), (2.0, 3.0, 4.0), (10.0, 20.0, 30.0), ROTATED)
    # index (1, 2, 3) -> scaled (2, 6, 12); direction columns: x -> (0, 1, 0), y -> (-1, 0, 0)
    # offset = 2*(0,1,0) + 6*(-1,0,0) + 12*(0,0,1) = (-6, 2, 12) -> (4, 22, 42)
    assert np.allclose(grid.index_to_physical([1, 2, 3]), [4.0, 22.0, 42.0])
    assert np.allclose(grid.physical_to_index([4.0, 22.0, 42.0]), [1, 2, 3])


def test_agrees_with_simpleitk() -> None:
    grid = Grid((4, 5, 6), (2.0, 3.0, 4.0), (10.0, 20.0, 30.0), ROTATED)
    image = grid.empty_image()
    assert np.allclose(
        grid.index_to_physical([1, 2, 3]), image.TransformContinuousIndexToPhysicalPoint((1, 2, 3))
    )
    assert Grid.of(image) == grid
    assert grid.shape == (6, 5, 4)
    assert grid.voxel_volume_ml == pytest.approx(0.024)


def test_volume_round_trip_through_simpleitk() -> None:
    grid = Grid((3, 4, 5), (4.8, 4.8, 4.8), (0.0, 0.0, 0.0))
    array = np.arange(60, dtype=np.float32).reshape(grid.shape)
    back = Volume.from_sitk(Volume(grid, array).to_sitk(), np.float32)
    assert back.grid == grid
    # SimpleITK's pixel (x=2, y=1, z=3) is array[3, 1, 2]
    assert Volume(grid, array).to_sitk().GetPixel(2, 1, 3) == array[3, 1, 2]
    assert np.array_equal(back.array, array)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": (0, 4, 4)}, "size"),
        ({"spacing_mm": (4.8, -4.8, 4.8)}, "spacing_mm"),
        ({"direction": (2.0, 0, 0, 0, 1, 0, 0, 0, 1)}, "direction"),
    ],
)
def test_bad_grids_are_refused(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {
        "size": (4, 4, 4),
        "spacing_mm": (1.0, 1.0, 1.0),
        "origin_mm": (0, 0, 0),
    }
    with pytest.raises(InvalidInputError, match=field):
        Grid(**{**base, **kwargs})  # type: ignore[arg-type]


def test_array_must_fit_the_grid() -> None:
    with pytest.raises(InvalidInputError, match="array"):
        Volume(Grid((3, 4, 5), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), np.zeros((3, 4, 5)))
