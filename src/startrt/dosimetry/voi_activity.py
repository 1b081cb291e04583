"""Region values from voxels shared by regions, and the voxel TIA map.

Each region (VOI, and the remainder outside every VOI) is a fractional mask f_r (the part of each
voxel inside it). A voxel on an organ's edge holds organ and neighbouring tissue, so its value
mixes the regions': v_voxel = sum_r c_r f_r,voxel. The regions' own per-voxel values c_r are the
least-squares solution of that linear model over all voxels -- the geometric-transfer-matrix
method without blur (Rousset et al., J Nucl Med 1998;39:904) -- exact for piecewise-uniform
regions, and an organ's total is c_r * sum(f_r). Used for activity, TIA and absorbed dose.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from startrt.imaging.volume import FloatArray, Volume
from startrt.validation import InvalidInputError

REMAINDER = "remainder"


def remainder_fraction(fractions: Mapping[str, FloatArray], shape: tuple[int, ...]) -> FloatArray:
    """The part of each voxel in no VOI (1 - sum of the VOI fractions, clipped at 0)."""
    covered = np.zeros(shape, dtype=np.float64)
    for fraction in fractions.values():
        covered += fraction
    return np.clip(1.0 - covered, 0.0, 1.0)


def with_remainder(
    fractions: Mapping[str, FloatArray], shape: tuple[int, ...]
) -> dict[str, FloatArray]:
    """The VOI fractions plus the remainder region (everything in no VOI)."""
    return {**fractions, REMAINDER: remainder_fraction(fractions, shape)}


def unmix(values: FloatArray, fractions: Mapping[str, FloatArray]) -> dict[str, float]:
    """Each region's own per-voxel value: least squares of values = sum_r c_r f_r."""
    names = list(fractions)
    for name in names:
        if not np.any(fractions[name] > 0):
            raise InvalidInputError(name, 0.0, "the VOI has no voxel inside the image")
    flat = [np.ravel(fractions[name]) for name in names]
    gram = np.array([[float(a @ b) for b in flat] for a in flat])
    projections = np.array([float(f @ np.ravel(values)) for f in flat])
    solution, *_ = np.linalg.lstsq(gram, projections, rcond=None)
    return {name: float(value) for name, value in zip(names, solution, strict=True)}


def region_totals(values: FloatArray, fractions: Mapping[str, FloatArray]) -> dict[str, float]:
    """Each region's total of an extensive quantity (activity, TIA): c_r * sum(f_r)."""
    per_voxel = unmix(values, fractions)
    return {name: per_voxel[name] * float(np.sum(fractions[name])) for name in fractions}


def tia_map_mbq_h(
    reference_activity: Volume,
    fractions: Mapping[str, FloatArray],
    tia_per_activity_h: Mapping[str, float],
) -> Volume:
    """Voxel TIA map from the reference time point's activity map and each region's
    TIA / A(t_ref) ratio in hours (`fractions` and ratios include the remainder).

    In a shared voxel the ratio is the mean of the regions' ratios weighted by their activity
    in it (fraction x the region's unmixed activity per voxel): a voxel on a kidney's edge follows
    the kidney's kinetics in proportion to the kidney activity it holds. The reference image
    carries the spatial distribution, the regions' fitted curves the time course."""
    per_voxel = unmix(reference_activity.array, fractions)
    weighted_ratio = np.zeros(reference_activity.grid.shape, dtype=np.float64)
    weight_sum = np.zeros_like(weighted_ratio)
    for name, fraction in fractions.items():
        weight = fraction * max(per_voxel[name], 0.0)
        weighted_ratio += weight * tia_per_activity_h[name]
        weight_sum += weight
    ratio = np.divide(
        weighted_ratio, weight_sum, out=np.zeros_like(weighted_ratio), where=weight_sum > 0
    )
    return reference_activity.with_array(reference_activity.array * ratio)
