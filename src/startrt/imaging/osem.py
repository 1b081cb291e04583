"""SPECT projections and their OSEM reconstruction, for phantoms (optional, NumPy/SciPy).

Why not a library: see `imaging/camera.py`. The camera: parallel-hole collimator on a circular
orbit about the body (z) axis, attenuation- and scatter-free, with the collimator's
distance-dependent resolution (`camera.Collimator`).

Projector. For a view at angle theta the volume is turned by theta in the transaxial plane
(bilinear interpolation, a sparse matrix per view), each plane at depth d from the detector face
(d = R - y in the turned frame) is blurred by the collimator's Gaussian of FWHM(d), and the planes
are summed along y. The depth blur uses a ladder of Gaussian widths: each plane is split between
the two nearest rungs with weights linear in sigma^2 (its variance exact). The back-projector is
the exact transpose (the sparse matrices transposed, the symmetric Gaussian filters reapplied).

Counts. A view holds activity x sensitivity x duration / views counts per MBq (the acquisition's
counts shared by the views), Poisson distributed when noisy.

Reconstruction: OSEM (Hudson & Larkin, IEEE Trans Med Imaging 1994;13:601), views split into
interleaved subsets, x <- x / (A_s^T 1) x A_s^T (y_s / A_s x), from a uniform image inside the
orbit, with the same system model as the projections (the "inverse crime": no model mismatch, so
the bias left is that of stopping early, as in the clinic). 64^3 with 120 views, 4 iterations
of 10 subsets takes about 12 s on a 2-core machine. Without attenuation and scatter the counts
are those of an ideal camera: its image is less noisy than a clinical one (liver voxel CV 2.6 %
at 24 h on 9.6 mm voxels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, sparse

from startrt.imaging.camera import (
    MEDIUM_ENERGY,
    Acquisition,
    Collimator,
    ladder_weights,
    sigma_ladder,
)
from startrt.imaging.volume import IDENTITY_DIRECTION, FloatArray, Grid, Volume
from startrt.validation import InvalidInputError, require_positive

Seed = int | Sequence[int] | None

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class Orbit:
    """A circular step-and-shoot orbit: `views` angles over 360 degrees at `radius_mm`."""

    radius_mm: float = 250.0
    views: int = 120  # two detectors x 60 views (MRTDosimetry protocol, Tran-Gia 2021)
    collimator: Collimator = MEDIUM_ENERGY

    def __post_init__(self) -> None:
        require_positive("radius_mm", self.radius_mm, "mm")
        if isinstance(self.views, bool) or not 4 <= self.views <= 360:
            raise InvalidInputError("views", self.views, "must be an integer in [4, 360]")

    @property
    def angles_rad(self) -> FloatArray:
        angles: FloatArray = np.arange(self.views) * (2.0 * math.pi / self.views)
        return angles


@dataclass(frozen=True)
class Projector:
    """Forward and back projection on one grid (axial, square transaxial voxels)."""

    grid: Grid
    orbit: Orbit
    _rotations: tuple[sparse.csr_matrix, ...] = field(init=False, repr=False)
    _sigmas_voxels: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        spacing = self.grid.spacing_mm
        if self.grid.direction != IDENTITY_DIRECTION or spacing[0] != spacing[1]:
            raise InvalidInputError("grid", self.grid, "must be axial with square x-y voxels")
        y_mm = self.axis_mm(1)
        distance_mm = np.clip(self.orbit.radius_mm - y_mm, 0.0, None)  # to the detector face
        sigma_mm = self.orbit.collimator.fwhm_mm(distance_mm) / _FWHM_PER_SIGMA
        ladder = sigma_ladder(float(sigma_mm.min()), float(sigma_mm.max()))
        weights = ladder_weights(ladder, sigma_mm)  # (rungs, ny)
        x_mm = self.axis_mm(0)
        turns = [_turn_matrix(self.grid, x_mm, y_mm, a) for a in self.orbit.angles_rad]
        nx = self.grid.size[0]
        # per view: (levels x nx) rows = depth-weighted sums along y of the turned planes
        collapse = sparse.kron(sparse.csr_matrix(weights), sparse.identity(nx), format="csr")
        object.__setattr__(self, "_rotations", tuple((collapse @ t).tocsr() for t in turns))
        sigmas = np.stack([ladder / spacing[0], ladder / spacing[2]], axis=1)  # (x, z) voxels
        object.__setattr__(self, "_sigmas_voxels", sigmas)

    def axis_mm(self, axis: int) -> FloatArray:
        """Voxel-centre coordinates (mm) along grid axis 0 (x), 1 (y) or 2 (z)."""
        g = self.grid
        coordinates: FloatArray = g.origin_mm[axis] + np.arange(g.size[axis]) * g.spacing_mm[axis]
        return coordinates

    @property
    def projection_shape(self) -> tuple[int, int, int]:
        """(views, nx, nz): one detector row per z, one bin per x."""
        return (self.orbit.views, self.grid.size[0], self.grid.size[2])

    def forward(self, array: FloatArray, views: Sequence[int]) -> FloatArray:
        """Projections (len(views), nx, nz) of an [z, y, x] array (sums, in its units)."""
        columns = _columns(array)
        levels = len(self._sigmas_voxels)
        nx, nz = self.grid.size[0], self.grid.size[2]
        result = np.empty((len(views), nx, nz))
        for row, view in enumerate(views):
            stacked = (self._rotations[view] @ columns).reshape(levels, nx, nz)
            result[row] = sum(
                (
                    ndimage.gaussian_filter(stacked[k], self._sigmas_voxels[k], mode="constant")
                    for k in range(levels)
                ),
                start=np.zeros((nx, nz)),
            )
        return result

    def back(self, projections: FloatArray, views: Sequence[int]) -> FloatArray:
        """The transpose of `forward`: an [z, y, x] array from (len(views), nx, nz)."""
        nx, ny, nz = self.grid.size
        columns = np.zeros((nx * ny, nz))
        for row, view in enumerate(views):
            blurred = np.concatenate(
                [
                    ndimage.gaussian_filter(projections[row], sigma, mode="constant")
                    for sigma in self._sigmas_voxels
                ]
            )
            columns += self._rotations[view].T @ blurred
        back: FloatArray = np.ascontiguousarray(columns.T.reshape(nz, ny, nx))
        return back


def _columns(array: FloatArray) -> FloatArray:
    """[z, y, x] -> (y x, z): one column of the transaxial plane per slice."""
    nz, ny, nx = array.shape
    columns: FloatArray = np.asarray(array, dtype=np.float64).reshape(nz, ny * nx).T
    return columns


def _turn_matrix(grid: Grid, x_mm: FloatArray, y_mm: FloatArray, angle: float) -> sparse.csr_matrix:
    """(ny nx) x (ny nx) bilinear resampling of a transaxial plane turned by `angle`: the turned
    plane at (x', y') reads the plane at (x' cos - y' sin, x' sin + y' cos)."""
    nx, ny = grid.size[0], grid.size[1]
    spacing = grid.spacing_mm[0]
    yy, xx = np.meshgrid(y_mm, x_mm, indexing="ij")
    source_x = xx * math.cos(angle) - yy * math.sin(angle)
    source_y = xx * math.sin(angle) + yy * math.cos(angle)
    fx = ((source_x - grid.origin_mm[0]) / spacing).ravel()
    fy = ((source_y - grid.origin_mm[1]) / spacing).ravel()
    x0, y0 = np.floor(fx).astype(int), np.floor(fy).astype(int)
    tx, ty = fx - x0, fy - y0
    rows, columns, values = [], [], []
    out = np.arange(nx * ny)
    for dx, dy, weight in (
        (0, 0, (1 - tx) * (1 - ty)),
        (1, 0, tx * (1 - ty)),
        (0, 1, (1 - tx) * ty),
        (1, 1, tx * ty),
    ):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < nx) & (yi >= 0) & (yi < ny) & (weight > 0)
        rows.append(out[inside])
        columns.append(yi[inside] * nx + xi[inside])
        values.append(weight[inside])
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
        shape=(nx * ny, nx * ny),
    )


@dataclass(frozen=True)
class OsemReconstruction:
    """Simulated acquisition on `orbit` and its OSEM reconstruction (`iterations` x `subsets`)."""

    orbit: Orbit = Orbit()
    iterations: int = 4
    subsets: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.iterations, bool) or not 1 <= self.iterations <= 50:
            raise InvalidInputError("iterations", self.iterations, "must be in [1, 50]")
        if isinstance(self.subsets, bool) or not 1 <= self.subsets <= self.orbit.views:
            raise InvalidInputError("subsets", self.subsets, "must be in [1, views]")

    def counts_per_mbq_per_view(self, acquisition: Acquisition) -> float:
        return acquisition.counts_per_mbq / self.orbit.views

    def projections(
        self,
        projector: Projector,
        activity: Volume,
        acquisition: Acquisition,
        seed: Seed,
    ) -> FloatArray:
        """Expected counts per view and bin, or Poisson counts when `seed` is not None."""
        scale = self.counts_per_mbq_per_view(acquisition)
        expected = scale * projector.forward(np.asarray(activity.array), range(self.orbit.views))
        if seed is None:
            return expected
        counts: FloatArray = np.random.default_rng(seed).poisson(expected).astype(np.float64)
        return counts

    def reconstruct(
        self, projector: Projector, projections: FloatArray, acquisition: Acquisition
    ) -> Volume:
        """OSEM estimate of the activity (MBq per voxel) from counts (views, nx, nz)."""
        scale = self.counts_per_mbq_per_view(acquisition)
        grid = projector.grid
        x_mm, y_mm = projector.axis_mm(0), projector.axis_mm(1)
        inside = np.hypot(y_mm[:, None], x_mm[None, :]) < self.orbit.radius_mm
        total_mbq = float(projections.sum()) / scale / self.orbit.views
        start = np.broadcast_to(inside, grid.shape).astype(np.float64)
        estimate = start * total_mbq / float(start.sum())
        subsets = [list(range(s, self.orbit.views, self.subsets)) for s in range(self.subsets)]
        ones = np.ones(projector.projection_shape[1:])
        sensitivities = [
            scale * projector.back(np.broadcast_to(ones, (len(v), *ones.shape)), v) for v in subsets
        ]
        for _ in range(self.iterations):
            for views, sensitivity in zip(subsets, sensitivities, strict=True):
                modelled = scale * projector.forward(estimate, views)
                ratio = np.divide(
                    projections[views], modelled, out=np.zeros_like(modelled), where=modelled > 0
                )
                update = scale * projector.back(ratio, views)
                estimate = np.divide(
                    estimate * update,
                    sensitivity,
                    out=np.zeros_like(estimate),
                    where=sensitivity > 0,
                )
        return Volume(grid, estimate)

    def image(self, activity: Volume, acquisition: Acquisition, seed: Seed) -> Volume:
        """Project `activity` (noisy unless `seed` is None) and reconstruct it."""
        projector = Projector(activity.grid, self.orbit)
        return self.reconstruct(
            projector, self.projections(projector, activity, acquisition, seed), acquisition
        )
