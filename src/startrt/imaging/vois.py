"""Volumes of interest (VOIs) as fractional masks on the SPECT grid.

A VOI mask (binary or fractional, values in [0, 1]) drawn on any grid, typically the CT's, is put
on the target (SPECT) grid as the fraction of each target voxel inside it: every target voxel is
sampled at k^3 points and each point looks up the source mask at its nearest voxel in patient
space. VOI names are snake_case ("Left Kidney" -> "left_kidney"). RTSTRUCT and SEG files are read
and written by `startrt.imaging.rtstruct` and `startrt.imaging.seg`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
from pydicom import Dataset

from startrt.imaging.volume import FloatArray, Grid, Volume
from startrt.validation import InvalidInputError

MAX_SUPERSAMPLING = 16
_POINTS_PER_CHUNK = 2_000_000  # sample points looked up at once (bounds memory to ~100 MB)
_BROADCAST = ((1, 1, -1), (1, -1, 1), (-1, 1, 1))  # x, y, z sample coordinates -> [z, y, x]


def voi_name(label: str) -> str:
    """The snake_case VOI name of an ROI or segment label: "Left Kidney" -> "left_kidney"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", label.strip())
    name = re.sub(r"[^0-9a-zA-Z]+", "_", words).strip("_").lower()
    if not name:
        raise InvalidInputError("label", label, "must contain a letter or digit to name a VOI")
    return name


@dataclass(frozen=True, eq=False)  # equality of arrays is not a bool: compare by identity
class VoiSet:
    """Fractional masks (float32, values in [0, 1], read-only) of named VOIs on one grid."""

    masks: Mapping[str, FloatArray]
    grid: Grid

    def __post_init__(self) -> None:
        if not self.masks:
            raise InvalidInputError("masks", {}, "must hold at least one VOI")
        checked = {}
        for name, mask in self.masks.items():
            if voi_name(name) != name:
                raise InvalidInputError(name, name, "VOI names must be snake_case")
            if mask.shape != self.grid.shape:
                raise InvalidInputError(
                    name, mask.shape, f"must have the grid's shape {self.grid.shape}"
                )
            fractions = np.array(mask, dtype=np.float32)
            _require_fractions(name, fractions)
            fractions.flags.writeable = False
            checked[name] = fractions
        object.__setattr__(self, "masks", MappingProxyType(checked))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.masks)

    def volume_ml(self, name: str) -> float:
        """Volume of a VOI in mL: sum of its fractions x voxel volume."""
        return float(np.sum(self._mask(name), dtype=np.float64)) * self.grid.voxel_volume_ml

    def overlap_ml(self, first: str, second: str) -> float:
        """Volume (mL) certainly shared by two VOIs: sum of max(0, f1 + f2 - 1) x voxel volume."""
        excess = self._mask(first).astype(np.float64) + self._mask(second) - 1.0
        return float(np.sum(np.clip(excess, 0.0, None))) * self.grid.voxel_volume_ml

    def overlaps_ml(self) -> dict[tuple[str, str], float]:
        """Every pair of VOIs that certainly share volume, with that volume in mL."""
        shared = {pair: self.overlap_ml(*pair) for pair in itertools.combinations(self.names, 2)}
        return {pair: volume for pair, volume in shared.items() if volume > 0.0}

    def _mask(self, name: str) -> FloatArray:
        if name not in self.masks:
            raise InvalidInputError("name", name, f"unknown VOI; known: {', '.join(self.names)}")
        return self.masks[name]


def fractional_mask(binary: Volume, target: Grid, *, supersampling: int = 4) -> FloatArray:
    """Fraction (float32, [0, 1]) of each `target` voxel inside a mask on another grid.

    Each target voxel is sampled at supersampling^3 points, each point takes the value of the
    nearest source voxel (0 outside the source grid); work is restricted to the mask's bounding
    box. Error of the total volume: O(surface x spacing / supersampling).
    """
    require_supersampling(supersampling)
    _require_fractions("binary", binary.array)
    return _fractions(binary, _nonzero_box(binary.array), target, supersampling)


def vois_on_grid(masks: Mapping[str, Volume], target: Grid, *, supersampling: int = 4) -> VoiSet:
    """Masks (keyed by VOI name) as fractional masks on `target` (see `fractional_mask`);
    refuses, naming the VOI, empty masks and masks not wholly inside the target grid."""
    require_supersampling(supersampling)
    fractions = {}
    for name, mask in masks.items():
        _require_fractions(name, mask.array)
        box = _nonzero_box(mask.array)
        if box is None:
            raise InvalidInputError(name, "empty mask", "a VOI needs at least one voxel")
        outside_percent = _percent_outside(mask, box, target)
        if outside_percent > 0.0:
            raise InvalidInputError(
                name, f"{outside_percent:.3g} % of the mask", "the VOI lies outside the target grid"
            )
        fractions[name] = _fractions(mask, box, target, supersampling)
        if not np.any(fractions[name]):
            raise InvalidInputError(name, "no sample inside", "the VOI is too small to sample")
    return VoiSet(fractions, target)


def read_label_image(path: Path, labels: Mapping[int, str]) -> dict[str, Volume]:
    """Binary masks named by `labels` (label value -> name, snake_cased) from a label image
    (NIfTI .nii / .nii.gz, MHD / MHA, NRRD via SimpleITK); every label must occur in the image."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InvalidInputError(str(path), type(error).__name__, "not a readable image") from error
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidInputError(str(path), image.GetDimension(), "must be a 3-D scalar label image")
    volume = Volume.from_sitk(image)
    if not np.array_equal(volume.array, np.round(volume.array)):
        raise InvalidInputError(str(path), "non-integer values", "a label image holds integers")
    masks: dict[str, Volume] = {}
    for label, label_name in labels.items():
        name = voi_name(label_name)
        mask = (volume.array == label).astype(np.float32)
        if label == 0 or not mask.any():
            raise InvalidInputError(str(path), label, f"label of {name} not found in the image")
        if name in masks:
            raise InvalidInputError(str(path), name, "two labels have the same VOI name")
        masks[name] = volume.with_array(mask)
    return masks


def reference_ct_grid(reference_ct: Sequence[Dataset]) -> tuple[Grid, tuple[Dataset, ...]]:
    """The grid of a CT series (single-frame datasets, any order) and its slices sorted along
    the grid's z axis (slice normal = row cosine x column cosine)."""
    if not reference_ct:
        raise InvalidInputError("reference_ct", 0, "needs at least one CT slice")
    required = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows")
    for dataset in reference_ct:
        missing = [keyword for keyword in required if keyword not in dataset]
        if missing:
            raise InvalidInputError(
                "reference_ct", dataset.get("SOPInstanceUID"), f"lacks {missing}"
            )
    first = reference_ct[0]
    for keyword in ("SeriesInstanceUID", "FrameOfReferenceUID", "Rows", "Columns"):
        if len({str(dataset.get(keyword)) for dataset in reference_ct}) > 1:
            raise InvalidInputError("reference_ct", keyword, "must be the same in all slices")
    for keyword in ("ImageOrientationPatient", "PixelSpacing"):
        values = np.array([[float(v) for v in dataset[keyword].value] for dataset in reference_ct])
        if not np.allclose(values, values[0], atol=1e-4):
            raise InvalidInputError("reference_ct", keyword, "must be the same in all slices")
    orientation = np.array([float(v) for v in first.ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([[float(v) for v in d.ImagePositionPatient] for d in reference_ct])
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    heights = positions @ normal
    spacing_z = _slice_spacing_mm(first, np.diff(heights))
    in_plane = positions - positions[0] - np.outer(heights - heights[0], normal)
    if np.abs(in_plane).max() > 0.01 * spacing_z:
        raise InvalidInputError("reference_ct", "ImagePositionPatient", "slices are not stacked")
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    grid = Grid(
        size=(int(first.Columns), int(first.Rows), len(reference_ct)),
        spacing_mm=(column_spacing, row_spacing, spacing_z),
        origin_mm=(float(positions[0, 0]), float(positions[0, 1]), float(positions[0, 2])),
        direction=tuple(
            float(v) for v in np.column_stack([orientation[:3], orientation[3:], normal]).ravel()
        ),
    )
    return grid, tuple(reference_ct[int(i)] for i in order)


def masks_on_reference(masks: Mapping[str, Volume], grid: Grid) -> dict[str, FloatArray]:
    """The arrays of non-empty masks with snake_case names drawn on the reference `grid`."""
    if not masks:
        raise InvalidInputError("masks", {}, "must hold at least one VOI")
    arrays = {}
    for name, mask in masks.items():
        if voi_name(name) != name:
            raise InvalidInputError(name, name, "VOI names must be snake_case")
        if not mask.grid.matches(grid, tolerance_mm=0.01):
            raise InvalidInputError(name, mask.grid, f"the mask must be on the CT grid {grid}")
        _require_fractions(name, mask.array)
        if not np.any(mask.array):
            raise InvalidInputError(name, "empty mask", "a VOI needs at least one voxel")
        arrays[name] = mask.array
    return arrays


def _slice_spacing_mm(first: Dataset, steps: npt.NDArray[np.float64]) -> float:
    """Distance between slices: the (even) step of the positions, or the slice thickness."""
    if steps.size == 0:
        thickness = first.get("SpacingBetweenSlices", first.get("SliceThickness"))
        if thickness is None or not float(thickness) > 0:
            raise InvalidInputError("reference_ct", thickness, "one slice needs a SliceThickness")
        return float(thickness)
    spacing = float(steps.mean())
    if not spacing > 0 or np.abs(steps - spacing).max() > 0.01 * spacing:
        raise InvalidInputError("reference_ct", "ImagePositionPatient", "slices unevenly spaced")
    return spacing


def require_supersampling(supersampling: int) -> None:
    """Refuse a supersampling factor (points per voxel edge) outside 1..MAX_SUPERSAMPLING."""
    if isinstance(supersampling, bool) or not 1 <= supersampling <= MAX_SUPERSAMPLING:
        raise InvalidInputError("supersampling", supersampling, f"must be 1..{MAX_SUPERSAMPLING}")


def _require_fractions(field_name: str, values: npt.NDArray[np.floating]) -> None:
    if not np.all((values >= 0) & (values <= 1)):  # NaN fails both comparisons
        raise InvalidInputError(field_name, "mask values", "must be finite fractions in [0, 1]")


Box = tuple[tuple[int, int], ...]  # index ranges (z, y, x)


def _nonzero_box(array: FloatArray) -> Box | None:
    """Inclusive index ranges (z, y, x) of the nonzero voxels, None if there are none."""
    occupied_yx = np.any(array, axis=0)
    axes = (np.any(array, axis=(1, 2)), np.any(occupied_yx, axis=1), np.any(occupied_yx, axis=0))
    if not axes[0].any():
        return None
    return tuple((int(np.argmax(a)), int(a.size - 1 - np.argmax(a[::-1]))) for a in axes)


def _box_corners_in(
    mask: Volume, box: Box, target: Grid, margin_voxels: float
) -> npt.NDArray[np.float64]:
    """Continuous target indices (8, 3) of the corners of the box of nonzero voxel centres,
    widened by `margin_voxels` source voxels."""
    (z0, z1), (y0, y1), (x0, x1) = box
    m = margin_voxels
    corners = list(itertools.product((x0 - m, x1 + m), (y0 - m, y1 + m), (z0 - m, z1 + m)))
    return target.physical_to_index(mask.grid.index_to_physical(np.array(corners)))


def _fractions(source: Volume, box: Box | None, target: Grid, supersampling: int) -> FloatArray:
    """`fractional_mask` for a checked mask whose nonzero voxels lie in `box`."""
    fractions = np.zeros(target.shape, dtype=np.float32)
    if box is None:
        return fractions
    corners = _box_corners_in(source, box, target, margin_voxels=0.5)
    low = np.maximum(np.ceil(corners.min(axis=0) - 0.5), 0).astype(int)
    high = np.minimum(np.floor(corners.max(axis=0) + 0.5), np.asarray(target.size) - 1)
    if np.any(low > high):
        return fractions
    (x0, y0, z0), (x1, y1, z1) = low, high.astype(int) + 1
    offsets = (np.arange(supersampling) + 0.5) / supersampling - 0.5
    xs = (np.arange(x0, x1)[:, None] + offsets).ravel()
    ys = (np.arange(y0, y1)[:, None] + offsets).ravel()
    planes_per_chunk = max(1, _POINTS_PER_CHUNK // (xs.size * ys.size * supersampling))
    for start in range(z0, z1, planes_per_chunk):
        stop = min(start + planes_per_chunk, z1)
        zs = (np.arange(start, stop)[:, None] + offsets).ravel()
        values = _nearest_values(source, target, (xs, ys, zs))
        shape = (stop - start, supersampling, y1 - y0, supersampling, x1 - x0, supersampling)
        fractions[start:stop, y0:y1, x0:x1] = values.reshape(shape).mean(axis=(1, 3, 5))
    return fractions


def _percent_outside(mask: Volume, box: Box, target: Grid) -> float:
    """Percentage of the mask (by sum of values) in voxels whose centres lie outside `target`."""
    corners = _box_corners_in(mask, box, target, margin_voxels=0.0)
    upper = np.asarray(target.size) - 0.5
    if np.all(corners >= -0.5) and np.all(corners <= upper):
        return 0.0
    z, y, x = np.nonzero(mask.array)
    values = mask.array[z, y, x].astype(np.float64)
    centres = target.physical_to_index(mask.grid.index_to_physical(np.column_stack([x, y, z])))
    outside = np.any((centres < -0.5) | (centres > upper), axis=1)
    return 100.0 * float(values[outside].sum() / values.sum())


def _nearest_values(
    source: Volume, target: Grid, target_xyz: tuple[npt.NDArray[np.float64], ...]
) -> FloatArray:
    """Source values (0 outside its grid) nearest to the target points on the lattice spanned
    by continuous target indices x, y, z (1-D each); result indexed [z, y, x]."""
    origin = source.grid.physical_to_index(target.index_to_physical(np.zeros(3)))
    steps = source.grid.physical_to_index(target.index_to_physical(np.eye(3))) - origin
    lattice = [axis.reshape(shape) for axis, shape in zip(target_xyz, _BROADCAST, strict=True)]
    nearest, inside = [], np.ones((1, 1, 1), dtype=bool)
    for source_axis, size in enumerate(source.grid.size):
        # grids with parallel axes: each source index depends on one target index (cheap)
        position = origin[source_axis] + sum(
            (
                term * steps[target_axis, source_axis]
                for target_axis, term in enumerate(lattice)
                if abs(steps[target_axis, source_axis]) > 1e-9
            ),
            start=np.zeros((1, 1, 1)),
        )
        index = np.floor(position + 0.5).astype(np.intp)
        inside = inside & (index >= 0) & (index < size)
        nearest.append(np.clip(index, 0, size - 1))
    values = source.array[nearest[2], nearest[1], nearest[0]]
    return np.where(inside, values, 0.0).astype(np.float32)
