"""3-D images on regular grids, in patient coordinates (DICOM LPS, mm).

Conventions (those of SimpleITK and ITK): `Grid.size`, `spacing_mm` and `origin_mm` are in
(x, y, z) order; `direction` is the 3x3 direction-cosine matrix, row-major, whose columns are the
patient-space directions of the x, y and z index axes; the NumPy array of a `Volume` is indexed
[z, y, x], as `SimpleITK.GetArrayFromImage` returns it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from startrt.validation import InvalidInputError

Vector3 = tuple[float, float, float]
IDENTITY_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
FloatArray = npt.NDArray[np.floating]


@dataclass(frozen=True)
class Grid:
    """Geometry of a regular voxel grid."""

    size: tuple[int, int, int]
    spacing_mm: Vector3
    origin_mm: Vector3
    direction: tuple[float, ...] = IDENTITY_DIRECTION

    def __post_init__(self) -> None:
        if len(self.size) != 3 or any(n < 1 for n in self.size):
            raise InvalidInputError("size", self.size, "must be three positive voxel counts")
        if len(self.spacing_mm) != 3 or any(not s > 0 for s in self.spacing_mm):
            raise InvalidInputError("spacing_mm", self.spacing_mm, "must be three sizes > 0 mm")
        if len(self.direction) != 9:
            raise InvalidInputError("direction", self.direction, "must be a 3x3 matrix, row-major")
        matrix = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-4):
            raise InvalidInputError("direction", self.direction, "must be orthonormal")

    @property
    def shape(self) -> tuple[int, int, int]:
        """NumPy shape of arrays on this grid: (nz, ny, nx)."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (cm3)."""
        sx, sy, sz = self.spacing_mm
        return sx * sy * sz / 1000.0

    def direction_matrix(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def index_to_physical(self, index_xyz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Patient coordinates (mm) of continuous voxel indices (..., 3) in (x, y, z) order."""
        index = np.asarray(index_xyz, dtype=float)
        scaled = index * np.asarray(self.spacing_mm)
        physical: npt.NDArray[np.float64] = (
            np.asarray(self.origin_mm) + scaled @ self.direction_matrix().T
        )
        return physical

    def physical_to_index(self, point_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Continuous voxel indices (x, y, z) of patient points (..., 3) in mm."""
        offset = np.asarray(point_mm, dtype=float) - np.asarray(self.origin_mm)
        index: npt.NDArray[np.float64] = (offset @ self.direction_matrix()) / np.asarray(
            self.spacing_mm
        )
        return index

    def matches(self, other: Grid, tolerance_mm: float = 1e-3) -> bool:
        """Same size and, within `tolerance_mm`, the same spacing, origin and direction."""
        return (
            self.size == other.size
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=tolerance_mm)
            and np.allclose(self.origin_mm, other.origin_mm, atol=tolerance_mm)
            and np.allclose(self.direction, other.direction, atol=1e-6)
        )

    def empty_image(self, pixel_type: int = sitk.sitkFloat32) -> sitk.Image:
        """A zero SimpleITK image with this geometry."""
        image = sitk.Image(list(self.size), pixel_type)
        self.apply_to(image)
        return image

    def apply_to(self, image: sitk.Image) -> None:
        image.SetSpacing(self.spacing_mm)
        image.SetOrigin(self.origin_mm)
        image.SetDirection(self.direction)

    @classmethod
    def of(cls, image: sitk.Image) -> Grid:
        """The grid of a SimpleITK image."""
        size = image.GetSize()
        spacing = image.GetSpacing()
        origin = image.GetOrigin()
        return cls(
            size=(int(size[0]), int(size[1]), int(size[2])),
            spacing_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
            origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
            direction=tuple(float(d) for d in image.GetDirection()),
        )


@dataclass(frozen=True)
class Volume:
    """An image: values on a grid; `array` is indexed [z, y, x] (see module docstring)."""

    grid: Grid
    array: FloatArray

    def __post_init__(self) -> None:
        if self.array.shape != self.grid.shape:
            raise InvalidInputError(
                "array", self.array.shape, f"must have the grid's shape (z, y, x) {self.grid.shape}"
            )

    def to_sitk(self) -> sitk.Image:
        """A SimpleITK image (float32 or float64 as the array) with this geometry."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        self.grid.apply_to(image)
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image, dtype: npt.DTypeLike = np.float64) -> Volume:
        """A volume from a SimpleITK image (values converted to `dtype`)."""
        if image.GetDimension() != 3:
            raise InvalidInputError("image", image.GetDimension(), "must be a 3-D image")
        return cls(Grid.of(image), sitk.GetArrayFromImage(image).astype(dtype, copy=False))

    def with_array(self, array: FloatArray) -> Volume:
        """The same grid with other values."""
        return Volume(self.grid, array)


def resample_linear(
    volume: Volume, target: Grid, transform: sitk.Transform | None = None, outside: float = 0.0
) -> Volume:
    """`volume` on `target` by linear interpolation (float64); `transform` maps target points
    to `volume` points (identity if None); points outside `volume` take `outside`."""
    resampled = sitk.Resample(
        volume.to_sitk(),
        target.empty_image(sitk.sitkFloat64),
        sitk.Transform() if transform is None else transform,
        sitk.sitkLinear,
        outside,
        sitk.sitkFloat64,
    )
    return Volume.from_sitk(resampled, np.float64)
