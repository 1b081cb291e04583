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
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from startrt.imaging.volume import FloatArray, Volume
from startrt.validation import InvalidInputError

REMAINDER = "remainder"


@dataclass(frozen=True)
class Regions:
    """The VOIs of a grid plus the remainder (1 - sum of the VOI fractions, clipped at 0).

    Only voxels touched by a VOI (the support) are stored per region; outside it every voxel is
    wholly remainder, which enters the least-squares sums in closed form."""

    names: tuple[str, ...]
    shape: tuple[int, ...]
    support: npt.NDArray[np.bool_]
    fractions_in_support: npt.NDArray[np.float64]  # (regions, support voxels)
    voxels_outside_support: int

    @classmethod
    def of(cls, fractions: Mapping[str, FloatArray]) -> Regions:
        """Regions of the VOI `fractions` (arrays of one shape) and their remainder."""
        names = tuple(fractions)
        for name in names:
            if not np.any(fractions[name] > 0):
                raise InvalidInputError(name, 0.0, "the VOI has no voxel inside the image")
        shape = next(iter(fractions.values())).shape
        support = np.zeros(shape, dtype=bool)
        for fraction in fractions.values():
            support |= fraction > 0
        rows = np.stack([np.asarray(fractions[name], dtype=np.float64)[support] for name in names])
        remainder = np.clip(1.0 - rows.sum(axis=0), 0.0, 1.0)
        return cls(
            names=(*names, REMAINDER),
            shape=shape,
            support=support,
            fractions_in_support=np.vstack([rows, remainder]),
            voxels_outside_support=int(support.size - np.count_nonzero(support)),
        )

    def fraction(self, name: str) -> FloatArray:
        """The full fractional mask of one region."""
        row = self.fractions_in_support[self.names.index(name)]
        full = np.full(self.shape, 1.0 if name == REMAINDER else 0.0)
        full[self.support] = row
        return full

    def voxel_sums(self) -> dict[str, float]:
        """sum(f_r) per region: its volume in voxels."""
        sums = self.fractions_in_support.sum(axis=1)
        sums[-1] += self.voxels_outside_support
        return dict(zip(self.names, (float(s) for s in sums), strict=True))

    def unmix(self, values: FloatArray) -> dict[str, float]:
        """Each region's own per-voxel value: least squares of values = sum_r c_r f_r."""
        inside = np.asarray(values, dtype=np.float64)[self.support]
        gram = self.fractions_in_support @ self.fractions_in_support.T
        projections = self.fractions_in_support @ inside
        gram[-1, -1] += self.voxels_outside_support
        projections[-1] += float(np.sum(values, dtype=np.float64)) - float(inside.sum())
        solution, *_ = np.linalg.lstsq(gram, projections, rcond=None)
        return dict(zip(self.names, (float(c) for c in solution), strict=True))

    def totals(self, values: FloatArray) -> dict[str, float]:
        """Each region's total of an extensive quantity (activity, TIA): c_r * sum(f_r)."""
        per_voxel, sums = self.unmix(values), self.voxel_sums()
        return {name: per_voxel[name] * sums[name] for name in self.names}


def tia_map_mbq_h(
    reference_activity: Volume, regions: Regions, tia_per_activity_h: Mapping[str, float]
) -> Volume:
    """Voxel TIA map from the reference time point's activity map and each region's
    TIA / A(t_ref) ratio in hours (the remainder included).

    In a shared voxel the ratio is the mean of the regions' ratios weighted by their activity
    in it (fraction x the region's unmixed activity per voxel): a voxel on a kidney's edge follows
    the kidney's kinetics in proportion to the kidney activity it holds. The reference image
    carries the spatial distribution, the regions' fitted curves the time course."""
    per_voxel = regions.unmix(reference_activity.array)
    weights = (
        regions.fractions_in_support
        * np.array([max(per_voxel[name], 0.0) for name in regions.names])[:, np.newaxis]
    )
    ratios = np.array([tia_per_activity_h[name] for name in regions.names])
    weight_sum = weights.sum(axis=0)
    mixed = np.divide(
        ratios @ weights, weight_sum, out=np.zeros_like(weight_sum), where=weight_sum > 0
    )
    ratio_map = np.full(regions.shape, tia_per_activity_h[REMAINDER])
    ratio_map[regions.support] = mixed
    return reference_activity.with_array(reference_activity.array * ratio_map)
