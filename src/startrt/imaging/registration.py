"""Aligning the time points of a study: rigid registration with SimpleITK, or declared aligned.

Each later time point's CT (or SPECT, without CT) is registered rigidly (Euler 3-D: rotation and
translation) to the first time point's, maximising Mattes mutual information with a multi-
resolution regular-step gradient descent (Mattes et al., IEEE TMI 2003;22:120; the SimpleITK
registration framework, Lowekamp et al., Front Neuroinform 2013;7:45). The VOIs drawn on the
reference then follow the patient into each time point (`moved_grid`): the images themselves
are never resampled, so no interpolation blurs the activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk

from startrt.imaging.volume import Grid, Volume

SAMPLING_SEED = 20221101  # fixed: registration is reproducible run to run


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


def register_rigid(fixed: Volume, moving: Volume) -> RigidAlignment:
    """Rigidly register `moving` to `fixed` (same modality or not; mutual information)."""
    fixed_image = _foreground(sitk.Cast(fixed.to_sitk(), sitk.sitkFloat32))
    moving_image = sitk.Cast(moving.to_sitk(), sitk.sitkFloat32)
    initial = sitk.CenteredTransformInitializer(
        fixed_image,
        moving_image,
        sitk.Euler3DTransform(),
        sitk.CenteredTransformInitializerFilter.GEOMETRY,
    )
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.05, SAMPLING_SEED)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-4, numberOfIterations=300, relaxationFactor=0.5
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(initial, inPlace=False)
    result = method.Execute(fixed_image, moving_image)
    euler = _as_euler(result)
    return RigidAlignment(
        method="registered",
        rotation_rad=(euler.GetAngleX(), euler.GetAngleY(), euler.GetAngleZ()),
        translation_mm=tuple(float(t) for t in euler.GetTranslation()),  # type: ignore[arg-type]
        center_mm=tuple(float(c) for c in euler.GetCenter()),  # type: ignore[arg-type]
        metric=float(method.GetMetricValue()),
    )


def _foreground(image: sitk.Image, margin_voxels: int = 3) -> sitk.Image:
    """The image cropped to its foreground (values above 10 % of the range from the minimum:
    the body on CT, uptake on SPECT), so metric samples fall on structure, not air."""
    array = sitk.GetArrayViewFromImage(image)
    low, high = float(array.min()), float(array.max())
    inside = np.argwhere(array > low + 0.1 * (high - low))
    if inside.size == 0:
        return image
    first = np.maximum(inside.min(axis=0) - margin_voxels, 0)[::-1]  # (x, y, z)
    last = np.minimum(inside.max(axis=0) + margin_voxels, np.asarray(array.shape) - 1)[::-1]
    size = (last - first + 1).tolist()
    return sitk.RegionOfInterest(image, size, first.tolist())


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
