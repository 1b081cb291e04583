"""Analytic 177Lu-DOTATOC phantom: ellipsoidal organs and spherical tumours in a body ellipsoid.

The truth is analytic, independent of any voxel: activity A(t) of each organ from its kinetics,
time-integrated activity (TIA) by the closed-form integral, mass = 4/3 pi a b c x density, and the
absorbed dose by local deposition of 177Lu's electrons (MIRD Pamphlet No. 21, Bolch et al.,
J Nucl Med 2009;50:477). Voxel maps spread each organ's activity over the fraction of each voxel
inside it (k^3 sub-voxel points) and renormalise, so the map's organ totals equal A(t) exactly.
The rest of the body ellipsoid holds a low background. Geometry: a cubic grid centred on the
patient origin, identity direction, LPS mm (+x patient left, +y posterior, +z head).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import ndimage, optimize

from startrt.imaging.volume import FloatArray, Grid, Vector3, Volume
from startrt.physics.nuclides import LU177
from startrt.physics.tissue import tissue_density_g_ml
from startrt.validation import InvalidInputError, finite_number, require_positive

Float64Array = npt.NDArray[np.float64]

AIR_HU = -1000.0
FOV_MM = 614.4  # 128 voxels of 4.8 mm
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_RESERVED_NAMES = frozenset({"body", "background"})
_CHUNK_VOXELS = 32768  # boundary voxels supersampled per batch (memory ~ chunk * k^3 * 8 B)
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _vector3(field: str, value: Sequence[float], unit: str) -> Float64Array:
    if len(value) != 3:
        raise InvalidInputError(field, value, f"must be three numbers in {unit}")
    return np.array([finite_number(field, v, unit) for v in value], dtype=np.float64)


def _extreme_quadratic(scale: Float64Array, offset: Float64Array, *, largest: bool) -> float:
    """Minimum (or maximum) of sum((s_i u_i + v_i)^2) over the unit ball |u| <= 1, s_i > 0.

    A point of ellipsoid E1 is c1 + a1 u; its value in the quadratic form of E2 is this sum with
    s = a1/a2 and v = (c1 - c2)/a2. Lagrange conditions give u_i = -+ s_i v_i / (s_i^2 +- mu);
    mu solves |u| = 1 (a trust-region subproblem: More & Sorensen, SIAM J Sci Stat Comput
    1983;4:553), found by Brent's method on the monotone secular function.
    """
    s2 = scale * scale
    weighted = scale * offset
    if not largest:
        if float(np.sum((offset / scale) ** 2)) <= 1.0:
            return 0.0  # E2's centre lies inside E1

        def excess_min(mu: float) -> float:
            return float(np.sum((weighted / (s2 + mu)) ** 2)) - 1.0

        mu = optimize.brentq(excess_min, 0.0, 2.0 * float(np.linalg.norm(weighted)) + 1e-12)
        return float(np.sum((offset * mu / (s2 + mu)) ** 2))
    top_s2 = float(np.max(s2))
    top = s2 >= top_s2 * (1.0 - 1e-12)
    rest = ~top

    def excess_max(mu: float) -> float:
        return float(np.sum((weighted / (mu - s2)) ** 2)) - 1.0

    low = top_s2 * (1.0 + 1e-9) + 1e-300
    if excess_max(low) <= 0.0:  # (near) hard case: the offset has no part along the top axis
        u_rest = weighted[rest] / (top_s2 - s2[rest])
        remaining = math.sqrt(max(0.0, 1.0 - float(np.sum(u_rest**2))))
        value_rest = float(np.sum((scale[rest] * u_rest + offset[rest]) ** 2))
        top_offset = float(np.linalg.norm(offset[top]))
        return value_rest + (math.sqrt(top_s2) * remaining + top_offset) ** 2
    high = top_s2 + 2.0 * float(np.linalg.norm(weighted)) + 1e-12
    mu = optimize.brentq(excess_max, low, high)
    return float(np.sum((offset * mu / (mu - s2)) ** 2))


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid: centre (x, y, z) and semi-axes (a, b, c) in mm, LPS."""

    centre_mm: Vector3
    semi_axes_mm: Vector3

    def __post_init__(self) -> None:
        _vector3("centre_mm", self.centre_mm, "mm")
        semi = _vector3("semi_axes_mm", self.semi_axes_mm, "mm")
        if np.any(semi <= 0):
            raise InvalidInputError("semi_axes_mm", self.semi_axes_mm, "must be three sizes > 0 mm")

    @property
    def volume_ml(self) -> float:
        """4/3 pi a b c, in mL (cm3)."""
        a, b, c = self.semi_axes_mm
        return 4.0 / 3.0 * math.pi * a * b * c / 1000.0

    def _relative_to(self, other: Ellipsoid) -> tuple[Float64Array, Float64Array]:
        other_semi = np.asarray(other.semi_axes_mm, dtype=np.float64)
        scale = np.asarray(self.semi_axes_mm, dtype=np.float64) / other_semi
        offset = (np.asarray(self.centre_mm) - np.asarray(other.centre_mm)) / other_semi
        return scale, offset

    def overlaps(self, other: Ellipsoid) -> bool:
        """True if the interiors intersect (touching surfaces do not count)."""
        return _extreme_quadratic(*self._relative_to(other), largest=False) < 1.0

    def lies_inside(self, other: Ellipsoid) -> bool:
        """True if this ellipsoid lies strictly inside `other` (no common surface point)."""
        return _extreme_quadratic(*self._relative_to(other), largest=True) < 1.0

    def translated(self, shift_mm: Vector3) -> Ellipsoid:
        centre = np.asarray(self.centre_mm) + _vector3("shift_mm", shift_mm, "mm")
        return replace(self, centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])))


def sphere(centre_mm: Vector3, diameter_mm: float) -> Ellipsoid:
    """A sphere as an ellipsoid with three equal semi-axes."""
    radius = require_positive("diameter_mm", diameter_mm, "mm") / 2.0
    return Ellipsoid(centre_mm, (radius, radius, radius))


@dataclass(frozen=True)
class MonoExponential:
    """A(t) = f IA exp(-l t), l = ln 2 / T_eff: instant uptake, mono-exponential clearance."""

    initial_fraction: float  # f: fraction of the injected activity at t = 0
    effective_half_life_h: float

    def __post_init__(self) -> None:
        _check_fraction("initial_fraction", self.initial_fraction)
        _check_clearance_half_life(self.effective_half_life_h)

    def fraction_at(self, time_h: float) -> float:
        """Fraction of the injected activity present at `time_h` hours after injection."""
        rate = math.log(2.0) / self.effective_half_life_h
        return self.initial_fraction * math.exp(-rate * _check_time(time_h))

    @property
    def integral_h(self) -> float:
        """Integral of the fraction from 0 to infinity, in h: f / l."""
        return self.initial_fraction * self.effective_half_life_h / math.log(2.0)

    @property
    def peak_fraction(self) -> float:
        return self.initial_fraction


@dataclass(frozen=True)
class UptakeClearance:
    """A(t) = f IA (exp(-l1 t) - exp(-l2 t)), l1 = ln2/T_clearance < l2 = ln2/T_uptake."""

    amplitude_fraction: float  # f: amplitude as a fraction of the injected activity
    clearance_half_life_h: float
    uptake_half_life_h: float

    def __post_init__(self) -> None:
        _check_fraction("amplitude_fraction", self.amplitude_fraction)
        _check_clearance_half_life(self.clearance_half_life_h)
        uptake = require_positive("uptake_half_life_h", self.uptake_half_life_h, "h")
        if uptake >= self.clearance_half_life_h:
            raise InvalidInputError(
                "uptake_half_life_h", uptake, "must be shorter than the clearance half-life"
            )

    def _rates_per_h(self) -> tuple[float, float]:
        return (
            math.log(2.0) / self.clearance_half_life_h,
            math.log(2.0) / self.uptake_half_life_h,
        )

    def fraction_at(self, time_h: float) -> float:
        """Fraction of the injected activity present at `time_h` hours after injection."""
        clearance, uptake = self._rates_per_h()
        hours = _check_time(time_h)
        return self.amplitude_fraction * (math.exp(-clearance * hours) - math.exp(-uptake * hours))

    @property
    def integral_h(self) -> float:
        """Integral of the fraction from 0 to infinity, in h: f (1/l1 - 1/l2)."""
        clearance, uptake = self._rates_per_h()
        return self.amplitude_fraction * (1.0 / clearance - 1.0 / uptake)

    @property
    def peak_fraction(self) -> float:
        """Maximum, at t* = ln(l2/l1) / (l2 - l1) (zero of the derivative)."""
        clearance, uptake = self._rates_per_h()
        return self.fraction_at(math.log(uptake / clearance) / (uptake - clearance))


Kinetics = MonoExponential | UptakeClearance


def _check_fraction(field: str, value: float) -> None:
    number = finite_number(field, value, "fraction of the injected activity")
    if not 0.0 < number <= 1.0:
        raise InvalidInputError(field, value, "must lie in (0, 1] of the injected activity")


def _check_clearance_half_life(half_life_h: float) -> None:
    """An effective half-life cannot exceed the physical one (biological clearance >= 0)."""
    hours = require_positive("effective_half_life_h", half_life_h, "h")
    if hours > LU177.half_life_h:
        raise InvalidInputError(
            "effective_half_life_h", half_life_h, f"must be <= {LU177.half_life_h:g} h (physical)"
        )


def _check_time(time_h: float) -> float:
    hours = finite_number("time_h", time_h, "h")
    if hours < 0:
        raise InvalidInputError("time_h", time_h, "must be >= 0 h after the injection")
    return hours


@dataclass(frozen=True)
class Organ:
    """A source organ or tumour: shape, density (g/mL), CT number (HU) and kinetics."""

    name: str
    shape: Ellipsoid
    density_g_ml: float
    hu: float
    kinetics: Kinetics

    def __post_init__(self) -> None:
        _check_name(self.name)
        density = require_positive("density_g_ml", self.density_g_ml, "g/mL")
        if density > 3.0:
            raise InvalidInputError("density_g_ml", density, "must be <= 3 g/mL")
        finite_number("hu", self.hu, "HU")

    @property
    def mass_g(self) -> float:
        return self.shape.volume_ml * self.density_g_ml


@dataclass(frozen=True)
class CtStructure:
    """An inactive structure seen only on CT (e.g. the spine): shape and CT number (HU)."""

    name: str
    shape: Ellipsoid
    hu: float

    def __post_init__(self) -> None:
        _check_name(self.name)
        finite_number("hu", self.hu, "HU")


def _check_name(name: str) -> None:
    if not _NAME.match(name) or name in _RESERVED_NAMES:
        raise InvalidInputError("name", name, "must be snake_case and not 'body' or 'background'")


@dataclass(frozen=True)
class PhantomSpec:
    """The whole phantom: cubic grid centred on the origin, body, organs, kinetics.

    Background activity fills the body outside the organs; CT structures only change CT numbers.
    Refused: organs or CT structures that overlap each other or are not strictly inside the body,
    a body not inside the field of view, summed peak activity above the injected activity.
    """

    grid_size: int
    voxel_mm: float
    body: Ellipsoid
    body_hu: float
    background: Kinetics
    organs: tuple[Organ, ...]
    ct_structures: tuple[CtStructure, ...] = ()
    injected_activity_mbq: float = 7400.0
    supersampling: int = 5  # k: k^3 points per voxel for the fraction inside a shape

    def __post_init__(self) -> None:
        if isinstance(self.grid_size, bool) or not 4 <= self.grid_size <= 1024:
            raise InvalidInputError("grid_size", self.grid_size, "must be an integer in [4, 1024]")
        require_positive("voxel_mm", self.voxel_mm, "mm")
        if isinstance(self.supersampling, bool) or not 1 <= self.supersampling <= 16:
            raise InvalidInputError("supersampling", self.supersampling, "must be in [1, 16]")
        activity = require_positive("injected_activity_mbq", self.injected_activity_mbq, "MBq")
        if activity > 100_000.0:
            raise InvalidInputError("injected_activity_mbq", activity, "must be <= 100000 MBq")
        finite_number("body_hu", self.body_hu, "HU")
        self._check_geometry()
        peak = self.background.peak_fraction + sum(o.kinetics.peak_fraction for o in self.organs)
        if peak > 1.0:
            raise InvalidInputError(
                "organs", round(peak, 6), "summed peak fractions must be <= 1 (injected activity)"
            )

    def _check_geometry(self) -> None:
        half_fov = self.grid_size * self.voxel_mm / 2.0
        centre = np.asarray(self.body.centre_mm)
        semi = np.asarray(self.body.semi_axes_mm)
        if np.any(np.abs(centre) + semi >= half_fov):
            raise InvalidInputError(
                "body", self.body, f"must lie inside the field of view (+-{half_fov:g} mm)"
            )
        shapes = [(o.name, o.shape) for o in self.organs]
        shapes += [(s.name, s.shape) for s in self.ct_structures]
        names = [name for name, _ in shapes]
        if len(set(names)) != len(names):
            raise InvalidInputError("organs", names, "names must be unique")
        for index, (name, shape) in enumerate(shapes):
            if not shape.lies_inside(self.body):
                raise InvalidInputError(name, shape, "must lie strictly inside the body")
            for other_name, other in shapes[index + 1 :]:
                if shape.overlaps(other):
                    raise InvalidInputError(name, shape, f"overlaps {other_name}")

    @property
    def grid(self) -> Grid:
        """The SPECT grid: grid_size^3 voxels of voxel_mm, centred on the origin."""
        return centred_grid(self.grid_size, self.voxel_mm)

    def organ(self, name: str) -> Organ:
        for organ in self.organs:
            if organ.name == name:
                return organ
        raise InvalidInputError("name", name, f"no such organ; known: {self.organ_names}")

    @property
    def organ_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.organs)


def centred_grid(size: int, voxel_mm: float) -> Grid:
    """A cubic grid of `size`^3 voxels of `voxel_mm` whose centre is the origin."""
    origin = -(size - 1) / 2.0 * voxel_mm
    return Grid((size, size, size), (voxel_mm, voxel_mm, voxel_mm), (origin, origin, origin))


def organ_activity_mbq(spec: PhantomSpec, name: str, time_h: float) -> float:
    """Analytic activity (MBq) of one organ at `time_h` hours after the injection."""
    return spec.injected_activity_mbq * spec.organ(name).kinetics.fraction_at(time_h)


def background_activity_mbq(spec: PhantomSpec, time_h: float) -> float:
    """Analytic activity (MBq) of the body background at `time_h` hours after the injection."""
    return spec.injected_activity_mbq * spec.background.fraction_at(time_h)


@dataclass(frozen=True)
class VoiTruth:
    """Analytic truth of one organ: TIA (MBq h), mass (g), volume (mL), dose (Gy)."""

    tia_mbq_h: float
    mass_g: float
    volume_ml: float
    dose_gy: float


def truth(spec: PhantomSpec) -> dict[str, VoiTruth]:
    """Per organ: TIA = IA x integral of the kinetics; dose = TIA x 0.0853 / mass (local
    deposition of 177Lu's electrons, MIRD Pamphlet No. 21, Bolch et al., J Nucl Med 2009)."""
    result: dict[str, VoiTruth] = {}
    for organ in spec.organs:
        tia = spec.injected_activity_mbq * organ.kinetics.integral_h
        dose = tia * LU177.local_deposition_gy_g_per_mbq_h / organ.mass_g
        result[organ.name] = VoiTruth(tia, organ.mass_g, organ.shape.volume_ml, dose)
    return result


def translated(spec: PhantomSpec, shift_mm: Vector3) -> PhantomSpec:
    """The same patient moved by `shift_mm` on the same grid (for registration tests)."""
    return replace(
        spec,
        body=spec.body.translated(shift_mm),
        organs=tuple(replace(o, shape=o.shape.translated(shift_mm)) for o in spec.organs),
        ct_structures=tuple(
            replace(s, shape=s.shape.translated(shift_mm)) for s in spec.ct_structures
        ),
    )


# --- voxelisation -------------------------------------------------------------------------------


_Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class _Occupancy:
    """Sub-voxel points inside a shape per voxel (of k^3), on the shape's bounding box of voxels.

    Counts are whole numbers, so differences (body minus organs) are exact in floating point."""

    box: _Box  # [z, y, x]
    points_inside: Float64Array
    points_per_voxel: int

    @property
    def fraction(self) -> Float64Array:
        fraction: Float64Array = self.points_inside / self.points_per_voxel
        return fraction

    def dense(self, shape: tuple[int, int, int]) -> Float64Array:
        full = np.zeros(shape, dtype=np.float64)
        full[self.box] = self.points_inside
        return full


def _occupancy(ellipsoid: Ellipsoid, grid: Grid, k: int) -> _Occupancy:
    """Fraction of each voxel inside `ellipsoid`: share of k^3 regular sub-voxel points inside.

    In coordinates scaled by the semi-axes the ellipsoid is the unit ball and a voxel lies within
    `radius` (its scaled half-diagonal) of its centre: voxels with |centre| + radius <= 1 are
    wholly inside, |centre| - radius >= 1 wholly outside; only the others are supersampled.
    """
    spacing = np.asarray(grid.spacing_mm)
    origin = np.asarray(grid.origin_mm)
    centre = np.asarray(ellipsoid.centre_mm)
    semi = np.asarray(ellipsoid.semi_axes_mm)
    first = np.floor((centre - semi - origin) / spacing + 0.5).astype(int)
    last = np.floor((centre + semi - origin) / spacing + 0.5).astype(int)
    first = np.clip(first, 0, np.asarray(grid.size) - 1)
    last = np.clip(last, 0, np.asarray(grid.size) - 1)
    # scaled voxel-centre coordinates per axis (x, y, z) and sub-voxel offsets
    axes = [
        (origin[i] + np.arange(first[i], last[i] + 1) * spacing[i] - centre[i]) / semi[i]
        for i in range(3)
    ]
    sub = ((np.arange(k) + 0.5) / k - 0.5)[None, :]
    offsets = [sub * spacing[i] / semi[i] for i in range(3)]
    radius = float(np.linalg.norm(spacing / 2.0 / semi))
    distance = np.sqrt(axes[2][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[0] ** 2)
    inside = np.where(distance + radius <= 1.0, float(k**3), 0.0)
    boundary = np.nonzero((distance + radius > 1.0) & (distance - radius < 1.0))
    for chunk in _chunks(len(boundary[0])):
        iz, iy, ix = (b[chunk] for b in boundary)
        qz = (axes[2][iz, None] + offsets[2]) ** 2
        qy = (axes[1][iy, None] + offsets[1]) ** 2
        qx = (axes[0][ix, None] + offsets[0]) ** 2
        quadratic = qz[:, :, None, None] + qy[:, None, :, None] + qx[:, None, None, :]
        inside[iz, iy, ix] = np.count_nonzero(quadratic <= 1.0, axis=(1, 2, 3))
    box = tuple(slice(int(first[i]), int(last[i]) + 1) for i in (2, 1, 0))
    return _Occupancy((box[0], box[1], box[2]), inside, k**3)


def _chunks(count: int) -> Iterator[slice]:
    for start in range(0, count, _CHUNK_VOXELS):
        yield slice(start, min(start + _CHUNK_VOXELS, count))


def _source_shares(spec: PhantomSpec) -> dict[str, tuple[_Box, Float64Array]]:
    """Per organ and for the background: the share of the source in each voxel of its box
    (the voxel's sub-points inside / all the source's sub-points; sums to 1)."""
    grid = spec.grid
    occupancies = {o.name: _occupancy(o.shape, grid, spec.supersampling) for o in spec.organs}
    body = _occupancy(spec.body, grid, spec.supersampling)
    background = body.dense(grid.shape)
    for occupancy in occupancies.values():
        background[occupancy.box] -= occupancy.points_inside
    full_box = (slice(None), slice(None), slice(None))
    occupancies["background"] = _Occupancy(full_box, background, body.points_per_voxel)
    shares = {}
    for name, occupancy in occupancies.items():
        total = float(np.sum(occupancy.points_inside))
        if total <= 0.0:
            raise InvalidInputError(
                name, total, "covers no sub-voxel point: too small for the grid"
            )
        shares[name] = (occupancy.box, occupancy.points_inside / total)
    return shares


def _source_activity_mbq(spec: PhantomSpec, name: str, time_h: float) -> float:
    if name == "background":
        return background_activity_mbq(spec, time_h)
    return organ_activity_mbq(spec, name, time_h)


def activity_maps_mbq(spec: PhantomSpec, times_h: Sequence[float]) -> tuple[Volume, ...]:
    """Activity (MBq per voxel, float64) at each time: organ totals exactly the analytic A(t)."""
    shares = _source_shares(spec)
    grid = spec.grid
    maps = []
    for time_h in times_h:
        array = np.zeros(grid.shape, dtype=np.float64)
        for name, (box, share) in shares.items():
            array[box] += _source_activity_mbq(spec, name, time_h) * share
        maps.append(Volume(grid, array))
    return tuple(maps)


def activity_map_mbq(spec: PhantomSpec, time_h: float) -> Volume:
    """Activity (MBq per voxel) at `time_h` hours after the injection."""
    return activity_maps_mbq(spec, [time_h])[0]


def source_activity_maps_mbq(spec: PhantomSpec, time_h: float) -> dict[str, Volume]:
    """Activity (MBq per voxel) of each organ and of "background" alone; they sum to the map."""
    maps = {}
    for name, (box, share) in _source_shares(spec).items():
        array = np.zeros(spec.grid.shape, dtype=np.float64)
        array[box] = _source_activity_mbq(spec, name, time_h) * share
        maps[name] = Volume(spec.grid, array)
    return maps


def ct_grid(spec: PhantomSpec, subdivision: int = 1) -> Grid:
    """The CT grid: the SPECT field of view with voxels `subdivision` times smaller."""
    if isinstance(subdivision, bool) or not 1 <= subdivision <= 8:
        raise InvalidInputError("subdivision", subdivision, "must be an integer in [1, 8]")
    return centred_grid(spec.grid_size * subdivision, spec.voxel_mm / subdivision)


def ct_map_hu(spec: PhantomSpec, subdivision: int = 1) -> Volume:
    """CT numbers (HU) on `ct_grid`: air outside the body, partial-volume mix at the edges."""
    grid = ct_grid(spec, subdivision)
    k = spec.supersampling
    body = _occupancy(spec.body, grid, k)
    array = np.full(grid.shape, AIR_HU, dtype=np.float64)
    array[body.box] += body.fraction * (spec.body_hu - AIR_HU)
    structures: list[tuple[Ellipsoid, float]] = [(o.shape, o.hu) for o in spec.organs]
    structures += [(s.shape, s.hu) for s in spec.ct_structures]
    for shape, hu in structures:
        occupancy = _occupancy(shape, grid, k)
        array[occupancy.box] += occupancy.fraction * (hu - spec.body_hu)
    return Volume(grid, array)


def label_masks(spec: PhantomSpec, subdivision: int = 1) -> dict[str, Volume]:
    """Binary organ masks (float32 0/1) on `ct_grid`: voxels at least half inside the organ, and
    always the voxel holding the organ's centre (a tumour smaller than a voxel is not lost)."""
    grid = ct_grid(spec, subdivision)
    masks = {}
    for organ in spec.organs:
        occupancy = _occupancy(organ.shape, grid, spec.supersampling)
        mask = np.zeros(grid.shape, dtype=np.float32)
        mask[occupancy.box] = occupancy.fraction >= 0.5
        x, y, z = np.floor(grid.physical_to_index(organ.shape.centre_mm) + 0.5).astype(int)
        mask[z, y, x] = 1.0
        masks[organ.name] = Volume(grid, mask)
    return masks


# --- image degradation --------------------------------------------------------------------------


def blurred(volume: Volume, fwhm_mm: float) -> Volume:
    """Gaussian blur (system resolution) of FWHM `fwhm_mm`; activity leaving the grid is lost."""
    fwhm = finite_number("fwhm_mm", fwhm_mm, "mm")
    if fwhm < 0:
        raise InvalidInputError("fwhm_mm", fwhm_mm, "must be >= 0 mm")
    if fwhm == 0:
        return volume
    sigma_xyz = fwhm / _FWHM_PER_SIGMA / np.asarray(volume.grid.spacing_mm)
    array = ndimage.gaussian_filter(
        np.asarray(volume.array, dtype=np.float64), sigma=sigma_xyz[::-1], mode="constant"
    )
    return volume.with_array(array)


def with_poisson_noise(volume: Volume, counts_per_mbq: float, seed: int | Sequence[int]) -> Volume:
    """Counts ~ Poisson(activity x counts_per_mbq), returned as MBq (counts / counts_per_mbq)."""
    scale = require_positive("counts_per_mbq", counts_per_mbq, "counts/MBq")
    if np.any(volume.array < 0):
        raise InvalidInputError("volume", float(np.min(volume.array)), "activity must be >= 0")
    counts = np.random.default_rng(seed).poisson(np.asarray(volume.array, np.float64) * scale)
    noisy: FloatArray = counts / scale
    return volume.with_array(noisy)


# --- the default phantom ------------------------------------------------------------------------

# name, tissue (ICRU 46 density), HU, centre (mm, LPS), semi-axes (mm), kinetics:
# (fraction, T_eff h) mono-exponential or (amplitude fraction, T_clearance h, T_uptake h) uptake
_DEFAULT_ORGANS: tuple[tuple[str, str, float, Vector3, Vector3, tuple[float, ...]], ...] = (
    ("left_kidney", "kidney", 30.0, (75.0, 50.0, 30.0), (28.0, 22.0, 55.0), (0.0135, 45.0, 1.5)),
    ("right_kidney", "kidney", 30.0, (-75.0, 50.0, 0.0), (28.0, 22.0, 55.0), (0.0125, 48.0, 1.5)),
    ("liver", "liver", 55.0, (-60.0, -5.0, 125.0), (75.0, 65.0, 70.0), (0.04, 65.0)),
    ("spleen", "spleen", 45.0, (90.0, 20.0, 140.0), (25.0, 45.0, 55.0), (0.012, 65.0)),
    ("tumour_1", "tumour", 35.0, (15.0, -35.0, 30.0), (20.0, 20.0, 20.0), (0.006, 100.0, 4.0)),
    ("tumour_2", "tumour", 35.0, (-30.0, -60.0, -40.0), (12.5, 12.5, 12.5), (0.002, 90.0)),
    ("tumour_3", "tumour", 35.0, (50.0, -50.0, -90.0), (7.5, 7.5, 7.5), (0.0005, 80.0)),
)
_DEFAULT_BODY = Ellipsoid((0.0, 0.0, 0.0), (185.0, 125.0, 295.0))
_DEFAULT_BACKGROUND = (0.08, 40.0)
_DEFAULT_SPINE = CtStructure("spine", Ellipsoid((0.0, 75.0, 0.0), (15.0, 15.0, 190.0)), 400.0)


def default_phantom(
    seed: int = 0, *, grid_size: int = 128, voxel_mm: float | None = None
) -> PhantomSpec:
    """A plausible 177Lu-DOTATOC patient (7400 MBq); the seed varies kinetics (x 0.9-1.1 on
    amplitudes and half-lives) and organ positions (+-4 mm per axis). `voxel_mm` defaults to a
    614.4 mm field of view (4.8 mm at 128, 9.6 mm at 64).

    Kidneys ~1.1 % IA each at the peak (~8 h), T_eff ~45 h: ~0.45 Gy/GBq (177Lu-DOTATOC kidney
    median 0.38 Gy/GBq, SD 0.19; REFERENCE.md); liver 4 % IA, spleen 1.2 % IA; three tumours
    (40, 25, 15 mm) with longer retention (T_eff 80-100 h); body background 8 % IA, T_eff 40 h.
    """
    rng = np.random.default_rng(seed)

    def kinetics(parameters: tuple[float, ...]) -> Kinetics:
        jittered = [p * float(rng.uniform(0.9, 1.1)) for p in parameters]
        if len(jittered) == 2:
            return MonoExponential(jittered[0], jittered[1])
        return UptakeClearance(jittered[0], jittered[1], jittered[2])

    organs = []
    for name, tissue, hu, centre, semi_axes, parameters in _DEFAULT_ORGANS:
        moved = np.asarray(centre) + rng.uniform(-4.0, 4.0, size=3)
        shape = Ellipsoid((float(moved[0]), float(moved[1]), float(moved[2])), semi_axes)
        organs.append(Organ(name, shape, tissue_density_g_ml(tissue), hu, kinetics(parameters)))
    return PhantomSpec(
        grid_size=grid_size,
        voxel_mm=FOV_MM / grid_size if voxel_mm is None else voxel_mm,
        body=_DEFAULT_BODY,
        body_hu=40.0,
        background=kinetics(_DEFAULT_BACKGROUND),
        organs=tuple(organs),
        ct_structures=(_DEFAULT_SPINE,),
    )
