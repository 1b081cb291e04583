"""NIfTI and MetaImage files: round trips, RAS -> LPS, refused files."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from startrt.imaging.image_files import read_image, write_image
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

ANGLE = 0.3
COS, SIN = math.cos(ANGLE), math.sin(ANGLE)
ROTATED = (COS, -SIN, 0.0, SIN, COS, 0.0, 0.0, 0.0, 1.0)
GRID = Grid((7, 6, 5), (4.8, 4.6, 4.4), (-123.456, 20.5, -300.25), ROTATED)


@pytest.mark.parametrize("name", ["a.nii", "a.nii.gz", "a.mhd", "a.mha"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    volume = Volume(GRID, np.random.default_rng(1).random(GRID.shape))
    back = read_image(write_image(volume, tmp_path / name))
    assert back.grid.matches(GRID, tolerance_mm=1e-3)
    assert np.array_equal(back.array, volume.array)


def test_nifti_ras_is_read_as_lps(tmp_path: Path) -> None:
    """A NIfTI written by nibabel (RAS): x increasing to the patient's right, y anterior."""
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)  # nibabel order (i, j, k)
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = [10.0, 20.0, 30.0]
    path = tmp_path / "ras.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    volume = read_image(path)
    # RAS (10, 20, 30) is LPS (-10, -20, 30); i runs to -x (right), j to -y (anterior)
    assert volume.grid.origin_mm == pytest.approx((-10.0, -20.0, 30.0))
    assert volume.grid.direction == pytest.approx((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    assert volume.grid.size == (2, 3, 4)
    # Volume arrays are [z, y, x] = nibabel's [k, j, i]
    assert volume.array[3, 2, 1] == data[1, 2, 3]


def test_unsupported_file_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="file type") as error:
        read_image(tmp_path / "image.png")
    assert error.value.field == str(tmp_path / "image.png")


def test_missing_and_corrupt_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist") as error:
        read_image(tmp_path / "absent.nii")
    assert error.value.field == str(tmp_path / "absent.nii")
    corrupt = tmp_path / "corrupt.nii"
    corrupt.write_text("not an image")
    with pytest.raises(InvalidInputError, match="unreadable") as error:
        read_image(corrupt)
    assert error.value.field == str(corrupt)


def test_two_dimensional_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plane.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 5), dtype=np.float32), np.eye(4)), path)
    with pytest.raises(InvalidInputError, match="3-D") as error:
        read_image(path)
    assert error.value.field == str(path)
