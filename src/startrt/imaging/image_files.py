"""Research image files: NIfTI (.nii, .nii.gz) and MetaImage (.mhd, .mha) through SimpleITK,
which converts NIfTI's RAS world coordinates to the DICOM LPS patient coordinates of `Volume`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from startrt.imaging.volume import Volume
from startrt.validation import InvalidInputError

SUFFIXES = (".nii", ".nii.gz", ".mhd", ".mha")


def read_image(path: Path) -> Volume:
    """A 3-D image file as a float64 Volume; errors name the file."""
    _require_supported(path)
    if not path.is_file():
        raise InvalidInputError(str(path), "file", "does not exist")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InvalidInputError(str(path), "file", f"unreadable image ({error})") from error
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidInputError(
            str(path), image.GetDimension(), "must be a 3-D image with one value per voxel"
        )
    return Volume.from_sitk(image, np.float64)


def write_image(volume: Volume, path: Path) -> Path:
    """Write `volume` (its array's float type) to a NIfTI or MetaImage file; returns `path`."""
    _require_supported(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        sitk.WriteImage(volume.to_sitk(), str(path))
    except RuntimeError as error:
        raise InvalidInputError(str(path), "file", f"cannot be written ({error})") from error
    return path


def _require_supported(path: Path) -> None:
    if not path.name.lower().endswith(SUFFIXES):
        raise InvalidInputError(str(path), path.suffix, f"file type must be one of {SUFFIXES}")
