"""Aligning the time points of a study: rigid registration with SimpleITK, or declared aligned.

Each later time point's CT (or SPECT, without CT) is registered rigidly (Euler 3-D: rotation and
translation) to the first time point's by maximising Mattes mutual information (Mattes et al.,
IEEE TMI 2003;22:120) with a regular-step gradient descent in the SimpleITK registration
framework (Lowekamp et al., Front Neuroinform 2013;7:45), coarse to fine (Thevenaz et al., IEEE
TIP 1998;7:27): the foreground centroids give the starting translation (the moments
initialisation), a level of about 16 mm voxels (block averages) brings it within a voxel, and the
image's own voxels refine it, each level on a bounded number of voxels so the cost does not grow
with the image. The reference is prepared once (`RigidRegistration`) for all the later time
points. The VOIs drawn on the reference then follow the patient into each time point
(`moved_grid`): the images themselves are never resampled, so no interpolation blurs the
activity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from startrt.imaging.volume import Grid, Volume

SAMPLING_SEED = 20221101  # fixed: registration is reproducible run to run
HISTOGRAM_BINS = 32
FOREGROUND_FRACTION = 0.1  # of the range above the minimum: the body on CT, uptake on SPECT
COARSE_SPACING_MM = 16.0  # the coarse level's voxels, nearest whole blocks (3 x 4.8 = 14.4 mm)
COARSE_MIN_VOXELS = 8  # per axis, or the coarse level is skipped
LEVEL_SAMPLES = 30_000  # metric samples per level at most (a regular grid)
MAX_ITERATIONS = 100  # per level
FIRST_STEP_VOXELS = 0.25  # the first level's first step, in its voxels
FINE_FIRST_STEP_VOXELS = 0.1  # after a coarse level: polish, do not wander off
LAST_STEP_VOXELS = 0.005  # each level stops when its steps are this small
RELAXATION = 0.7  # the step shrinks by this when the gradient turns back (0.5 stops too early)


@dataclass(frozen=True)
class RigidAlignment:
    """How a time point was aligned: the rigid transform (fixed -> moving points) or none."""

    method: Literal["registered", "declared aligned"]
    rotation_rad: tuple[float, float, float]
    translation_mm: tuple[float, float, float]
    center_mm: tuple[float, float, float]
    metric: float | None

    def transform(self) -> sitk.Euler3DTransform:
        """The SimpleITK transform mapping reference (fixed) points to moving points."""
        transform = sitk.Euler3DTransform()
        transform.SetCenter(self.center_mm)
        transform.SetRotation(*self.rotation_rad)
        transform.SetTranslation(self.translation_mm)
        return transform


ORIGIN = (0.0, 0.0, 0.0)
DECLARED_ALIGNED = RigidAlignment("declared aligned", ORIGIN, ORIGIN, ORIGIN, None)


@dataclass(frozen=True)
class _Level:
    """One pyramid level of the reference: its image, block size and metric sampling."""

    fixed: sitk.Image
    shrink: int
    sampling_fraction: float


class RigidRegistration:
    """A reference image prepared once (cropped to its foreground, its pyramid built) and
    registered to any number of moving images (same modality or not; mutual information)."""

    def __init__(self, reference: Volume) -> None:
        image = _float32(reference)
        shrink = max(1, round(COARSE_SPACING_MM / max(image.GetSpacing())))
        fixed = _foreground_crop(image, shrink)
        points_mm = _foreground_points_mm(fixed)
        self._centroid_mm = _triple(tuple(points_mm.mean(axis=0)))
        # optimiser scales from physical shifts, as ITK's physical-shift scales estimator but
        # averaged over the foreground: a radian about axis k moves the foreground by its RMS
        # distance from that axis, a translation of 1 mm by 1 mm (scale = squared shift)
        squared_mm2 = np.mean((points_mm - points_mm.mean(axis=0)) ** 2, axis=0)
        self._scales = [float(squared_mm2.sum() - squared_mm2[k]) for k in range(3)] + [1.0] * 3
        self._levels = _pyramid(fixed, shrink)

    def align(self, moving: Volume) -> RigidAlignment:
        """The rigid transform mapping reference points to the same anatomy in `moving`."""
        image = _float32(moving)
        transform = sitk.Euler3DTransform()
        transform.SetCenter(self._centroid_mm)
        start = _foreground_points_mm(image).mean(axis=0) - np.asarray(self._centroid_mm)
        transform.SetTranslation(tuple(float(t) for t in start))
        metric = math.nan
        for number, level in enumerate(self._levels):
            shrunk = sitk.BinShrink(image, [level.shrink] * 3) if level.shrink > 1 else image
            first_step = FINE_FIRST_STEP_VOXELS if number else FIRST_STEP_VOXELS
            transform, metric = self._refine(level, shrunk, transform, first_step)
        return RigidAlignment(
            method="registered",
            rotation_rad=(transform.GetAngleX(), transform.GetAngleY(), transform.GetAngleZ()),
            translation_mm=_triple(transform.GetTranslation()),
            center_mm=_triple(transform.GetCenter()),
            metric=metric,
        )

    def _refine(
        self, level: _Level, moving: sitk.Image, start: sitk.Euler3DTransform, first_step: float
    ) -> tuple[sitk.Euler3DTransform, float]:
        """One level, from a step of `first_step` voxels down to LAST_STEP_VOXELS."""
        spacing_mm = min(level.fixed.GetSpacing())
        method = sitk.ImageRegistrationMethod()
        method.SetNumberOfThreads(1)  # two threads are slower on these small images
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=HISTOGRAM_BINS)
        if level.sampling_fraction < 1.0:
            method.SetMetricSamplingStrategy(method.REGULAR)  # stratified, jittered by ITK
            method.SetMetricSamplingPercentage(level.sampling_fraction, SAMPLING_SEED)
        # gradients by central differences at the samples, not filtered images of the whole
        method.SetMetricUseFixedImageGradientFilter(False)
        method.SetMetricUseMovingImageGradientFilter(False)
        method.SetInterpolator(sitk.sitkLinear)
        method.SetOptimizerAsRegularStepGradientDescent(
            learningRate=first_step * spacing_mm,
            minStep=LAST_STEP_VOXELS * spacing_mm,
            numberOfIterations=MAX_ITERATIONS,
            relaxationFactor=RELAXATION,
        )
        method.SetOptimizerScales(self._scales)
        method.SetInitialTransform(start, inPlace=False)
        result = method.Execute(level.fixed, moving)
        return _as_euler(result), float(method.GetMetricValue())


def _float32(volume: Volume) -> sitk.Image:
    return sitk.Cast(volume.to_sitk(), sitk.sitkFloat32)


def _foreground_mask(array: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    low, high = float(array.min()), float(array.max())
    return array > low + FOREGROUND_FRACTION * (high - low)


def _foreground_crop(image: sitk.Image, block: int, margin_voxels: int = 3) -> sitk.Image:
    """The image cropped to its foreground, so metric samples fall on structure, not air; the
    crop starts on a block boundary, so the blocks averaged for the coarse level are those of
    a moving image on the same grid (an unmoved patient is then the same image there too)."""
    inside = np.argwhere(_foreground_mask(sitk.GetArrayViewFromImage(image)))
    if inside.size == 0:
        return image
    shape = np.asarray(image.GetSize()[::-1])
    first = np.maximum(inside.min(axis=0) - margin_voxels, 0) // block * block
    last = np.minimum(inside.max(axis=0) + margin_voxels, shape - 1)
    return sitk.RegionOfInterest(image, (last - first + 1)[::-1].tolist(), first[::-1].tolist())


def _foreground_points_mm(image: sitk.Image) -> npt.NDArray[np.float64]:
    """The physical points (n x 3, mm) of the foreground voxels (all voxels if none)."""
    mask = _foreground_mask(sitk.GetArrayViewFromImage(image))
    index_zyx = np.argwhere(mask if mask.any() else np.ones_like(mask))
    origin = np.asarray(image.GetOrigin(), dtype=float)
    axes = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3) * image.GetSpacing()
    points: npt.NDArray[np.float64] = origin + index_zyx[:, ::-1] @ axes.T
    return points


def _pyramid(fixed: sitk.Image, shrink: int) -> tuple[_Level, ...]:
    """A coarse level of `shrink`^3 block averages (if at least COARSE_MIN_VOXELS remain per
    axis), then the image itself, each sampled on at most LEVEL_SAMPLES voxels."""
    levels = [(fixed, 1)]
    if shrink > 1 and min(fixed.GetSize()) // shrink >= COARSE_MIN_VOXELS:
        levels.insert(0, (sitk.BinShrink(fixed, [shrink] * 3), shrink))
    return tuple(_Level(image, factor, _sampling_fraction(image)) for image, factor in levels)


def _sampling_fraction(image: sitk.Image) -> float:
    """1, or 1/k for ITK's regular sampling: every k-th voxel in memory order (then jittered),
    with k co-prime to the row length so the samples do not line up on a few columns."""
    voxels, row = int(math.prod(image.GetSize())), int(image.GetSize()[0])
    if voxels <= LEVEL_SAMPLES:
        return 1.0
    stride = math.ceil(voxels / LEVEL_SAMPLES)
    while math.gcd(stride, row) != 1:
        stride += 1
    return 1.0 / (stride - 0.5)  # ITK takes every ceil(1 / fraction)-th voxel


def _triple(values: tuple[float, ...]) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


def _as_euler(transform: sitk.Transform) -> sitk.Euler3DTransform:
    """The Euler transform inside the registration result (a composite of one transform)."""
    composite = sitk.CompositeTransform(transform)
    return sitk.Euler3DTransform(composite.GetNthTransform(composite.GetNumberOfTransforms() - 1))


def moved_grid(grid: Grid, alignment: RigidAlignment) -> Grid:
    """Where `grid` (on the reference) lies in the moved time point: a rigid transform
    p -> R (p - c) + c + t moves a grid exactly, origin to R (origin - c) + c + t and direction
    to R D, so masks drawn on the reference follow the patient without any resampling."""
    rotation = np.asarray(alignment.transform().GetMatrix(), dtype=float).reshape(3, 3)
    center = np.asarray(alignment.center_mm)
    origin = rotation @ (np.asarray(grid.origin_mm) - center) + center
    origin = origin + np.asarray(alignment.translation_mm)
    direction = rotation @ grid.direction_matrix()
    return Grid(
        size=grid.size,
        spacing_mm=grid.spacing_mm,
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=tuple(float(d) for d in direction.ravel()),
    )
