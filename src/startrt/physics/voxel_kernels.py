"""Voxel S values (dose voxel kernels) of 177Lu in soft tissue and compact bone.

Source: Lanconelli N, Pacilio M, Lo Meo S, et al., "A free database of radionuclide voxel S values
for the dosimetry of nonuniform activity distributions", Phys Med Biol 2012;57:517-533 (Monte
Carlo). Shipped tables (startrt/physics/data/voxel-s-values): one octant, offsets i, j, k = 0..5,
S in mGy/(MBq*s) for cubic voxels of 2.21 to 9.28 mm; the full 11x11x11 kernel is the octant
mirrored in the three axes (the tables are symmetric under any permutation of i, j, k).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal, get_args

import numpy as np

from startrt.imaging.volume import FloatArray
from startrt.physics.tissue import TISSUE_DENSITY_G_ML
from startrt.validation import InvalidInputError, PlausibleRange

KernelMedium = Literal["soft", "bone"]

# Media of the tables: "Soft tissue" (1.04 g/mL) and "Bone compact" (ICRU compact bone, 1.85 g/mL,
# ICRU Report 37 (1984) / NIST ESTAR). The paper's exact densities are not restated in the
# tables; these are the values used to compare kernel sums with local deposition.
MEDIUM_DENSITY_G_ML: Mapping[str, float] = MappingProxyType(
    {"soft": TISSUE_DENSITY_G_ML["soft_tissue"], "bone": 1.85}
)
# A voxel within this fraction of the kernel's voxel size is used with the kernel as it is.
SAME_SIZE_RELATIVE_TOLERANCE = 0.01
KERNEL_VOXEL_MM = PlausibleRange(0.5, 20.0, "mm")

_DATA_PACKAGE = "startrt.physics.data"
_TABLE_FOLDER = "voxel-s-values"
_TABLE_NAME = re.compile(r"177Lu(?P<size>\d+(?:\.\d+)?)mm(?P<medium>soft|bone)\.txt")
_OCTANT_WIDTH = 6


@dataclass(frozen=True)
class VoxelKernel:
    """A dose voxel kernel: S (mGy per MBq*s) from the centre voxel to each neighbour, indexed
    [z, y, x] with the source voxel at the centre; `requested_voxel_mm` is the size asked of
    `load_kernel` (None when built directly)."""

    voxel_mm: float
    medium: KernelMedium
    s_mgy_per_mbq_s: FloatArray
    requested_voxel_mm: float | None = None

    def __post_init__(self) -> None:
        KERNEL_VOXEL_MM.check("voxel_mm", self.voxel_mm)
        if self.medium not in get_args(KernelMedium):
            raise InvalidInputError("medium", self.medium, "must be 'soft' or 'bone'")
        values = np.array(self.s_mgy_per_mbq_s, dtype=np.float64)
        if values.ndim != 3 or len(set(values.shape)) != 1 or values.shape[0] % 2 == 0:
            raise InvalidInputError(
                "s_mgy_per_mbq_s", values.shape, "must be a cube with an odd number of voxels"
            )
        if not (np.isfinite(values).all() and (values >= 0).all()):
            raise InvalidInputError("s_mgy_per_mbq_s", "array", "must be finite and >= 0")
        values.setflags(write=False)
        object.__setattr__(self, "s_mgy_per_mbq_s", values)

    @property
    def half_width(self) -> int:
        """Voxels from the centre to the kernel's edge (5 for an 11^3 kernel)."""
        return int(self.s_mgy_per_mbq_s.shape[0] // 2)

    @property
    def sum_mgy_per_mbq_s(self) -> float:
        """Sum over the kernel: dose per MBq*s in each voxel of a uniform infinite source."""
        return float(self.s_mgy_per_mbq_s.sum())

    @property
    def is_same_size(self) -> bool:
        """True if the requested size is within 1 % of the kernel's voxel (or none was asked)."""
        if self.requested_voxel_mm is None:
            return True
        difference_mm = abs(self.requested_voxel_mm - self.voxel_mm)
        return difference_mm <= SAME_SIZE_RELATIVE_TOLERANCE * self.voxel_mm

    def scaled(self, factor: float) -> VoxelKernel:
        """The same kernel with every S value multiplied by `factor` (> 0)."""
        if not (math.isfinite(factor) and factor > 0):
            raise InvalidInputError("factor", factor, "must be a finite number > 0")
        return VoxelKernel(
            self.voxel_mm, self.medium, self.s_mgy_per_mbq_s * factor, self.requested_voxel_mm
        )


def mass_scaled_kernel(kernel: VoxelKernel, voxel_mm: float) -> VoxelKernel:
    """The kernel moved to a nearby voxel size by mass scaling: each S value times
    (l_kernel / l)^3 at the same voxel offsets, so the energy deposited per decay is kept while
    the voxel mass changes (S values of neighbouring sizes at equal normalised distance scale
    with voxel volume; Fernandez et al., Med Phys 2013;40:082502). Suited to sizes within a few
    % of the kernel's; its use is reported with the dose."""
    size = KERNEL_VOXEL_MM.check("voxel_mm", voxel_mm)
    values = kernel.s_mgy_per_mbq_s * (kernel.voxel_mm / size) ** 3
    return VoxelKernel(size, kernel.medium, values, kernel.requested_voxel_mm)


def available_kernel_sizes_mm(medium: KernelMedium = "soft") -> tuple[float, ...]:
    """Voxel sizes (mm, ascending) of the shipped Lanconelli 2012 tables for `medium`."""
    return tuple(sorted(_table_files(_checked_medium(medium))))


def load_kernel(voxel_mm: float, medium: KernelMedium = "soft") -> VoxelKernel:
    """The 11^3 kernel for `voxel_mm`, or the nearest available size (see `is_same_size`)."""
    requested = KERNEL_VOXEL_MM.check("voxel_mm", voxel_mm)
    files = _table_files(_checked_medium(medium))
    size = min(files, key=lambda candidate: abs(candidate - requested))
    octant = _read_octant(files[size])
    mirror = np.abs(np.arange(-_OCTANT_WIDTH + 1, _OCTANT_WIDTH))
    # octant[i, j, k] with i along x, j along y, k along z -> kernel[z, y, x]
    full = octant.transpose(2, 1, 0)[np.ix_(mirror, mirror, mirror)]
    return VoxelKernel(size, medium, full, requested)


def _checked_medium(medium: str) -> str:
    if medium not in get_args(KernelMedium):
        raise InvalidInputError("medium", medium, "must be 'soft' or 'bone'")
    return medium


def _table_files(medium: str) -> dict[float, str]:
    folder = resources.files(_DATA_PACKAGE).joinpath(_TABLE_FOLDER)
    files: dict[float, str] = {}
    for entry in folder.iterdir():
        match = _TABLE_NAME.fullmatch(entry.name)
        if match and match["medium"] == medium:
            files[float(match["size"])] = entry.name
    return files


def _read_octant(name: str) -> FloatArray:
    """Octant S[i, j, k] from a table: two header lines, then `i j k S` rows (tab-separated)."""
    text = resources.files(_DATA_PACKAGE).joinpath(_TABLE_FOLDER, name).read_text("utf-8")
    rows = [line.split() for line in text.splitlines()[2:] if line.strip()]
    octant = np.full((_OCTANT_WIDTH,) * 3, np.nan)
    for row in rows:
        i, j, k = (int(value) for value in row[:3])
        if not np.isnan(octant[i, j, k]):
            raise InvalidInputError(name, (i, j, k), "voxel offset listed twice")
        octant[i, j, k] = float(row[3])
    if len(rows) != _OCTANT_WIDTH**3 or np.isnan(octant).any():
        raise InvalidInputError(name, len(rows), f"must list all {_OCTANT_WIDTH**3} offsets once")
    return octant
