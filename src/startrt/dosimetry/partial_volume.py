"""Partial-volume correction with the system point-spread function (PSF).

Regions: GTM (Rousset et al., J Nucl Med 1998;39:904). An image of piecewise-uniform regions
(fractional masks f_r, per-voxel values c_r) seen through the PSF h is y = sum_r c_r RSF_r with
the regional spread functions RSF_r = h * f_r. Weighting y with each region's mask gives the
square system t_i = sum_x f_i(x) y(x) = sum_j G_ij c_j, G_ij = sum_x f_i(x) RSF_j(x), solved for
the regions' true per-voxel values c_j (least squares if G is singular). With FWHM 0, RSF_r = f_r
and G is the masks' Gram matrix: exactly `voi_activity.Regions.unmix`.

PSF: a 3-D Gaussian of the given FWHM in patient space (per axis sigma = FWHM / 2 sqrt(2 ln 2)
/ voxel size, so anisotropic voxels are handled), truncated at 4 sigma, zero outside the image
(activity beyond the field of view is not imaged), as `scipy.ndimage.gaussian_filter`.

The remainder (outside every VOI) is split by the body outline (CT > -500 HU, holes filled per
slice so lungs count as body, the largest connected part so the couch does not; a fractional mask
on the SPECT grid): "body", the soft tissue holding the background activity, and "outside_body".
One remainder region would claim uniform activity in air as in tissue; blurred, its spread
function would predict spill-in from air that does not exist and mis-model the background
spilling into the organs. The outside region is fitted rather than fixed at 0, so that counts
outside a tight outline (reconstruction and scatter-correction residue) are not credited to
the body or the VOIs; in phantoms it comes out ~0. Without a CT the remainder stays one region.

Voxels: region-based voxel-wise correction (RBV; Thomas et al., Eur J Nucl Med Mol Imaging
2011;38:1104): corrected(x) = y(x) m(x) / (h * m)(x), with m = sum_r c_r f_r the GTM's
piecewise-uniform image (negative c_r set to 0); where h * m is below 1e-6 of its maximum, m.

Uncertainty: the GTM solved again with the FWHM 10 % smaller and larger; per region half the
difference of the two results relative to the nominal one, in percent: the sensitivity to a 10 %
standard uncertainty of the measured FWHM, one of the components Gear et al. (EJNMMI
2018;45:2456) list for propagation. Counting noise is not included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from startrt.dosimetry.study import Study, TimePoint
from startrt.dosimetry.voi_activity import REMAINDER
from startrt.imaging.registration import moved_grid
from startrt.imaging.vois import fractional_mask
from startrt.imaging.volume import FloatArray, Grid, Vector3, Volume
from startrt.validation import InvalidInputError, finite_number

BODY = "body"
OUTSIDE_BODY = "outside_body"
BODY_OUTLINE_HU = -500.0
FWHM_RELATIVE_UNCERTAINTY = 0.10
TRUNCATE_SIGMAS = 4.0
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
METHOD = "GTM (Rousset 1998) with a Gaussian PSF; voxels by RBV (Thomas 2011)"
UNCERTAINTY = "half the change for a PSF FWHM 10 % smaller / larger, largest over time points"
_RBV_FLOOR = 1e-6
_BODY_SUPERSAMPLING = 2  # 8 points per SPECT voxel: the outline's edge holds little activity

Box = tuple[slice, ...]
Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Patch:
    """A function on the grid that is zero outside `box` ([z, y, x] slices)."""

    box: Box
    values: Float64Array


def _local(inner: Box, outer: Box) -> Box:
    return tuple(
        slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, outer, strict=True)
    )


def _dot(a: _Patch, b: _Patch) -> float:
    """sum_x a(x) b(x) over the overlap of the two boxes."""
    overlap = tuple(
        slice(max(p.start, q.start), min(p.stop, q.stop)) for p, q in zip(a.box, b.box, strict=True)
    )
    if any(s.start >= s.stop for s in overlap):
        return 0.0
    return float(np.vdot(a.values[_local(overlap, a.box)], b.values[_local(overlap, b.box)]))


def psf_sigma_voxels(fwhm_mm: float, spacing_mm: Vector3) -> tuple[float, float, float]:
    """Gaussian sigma in voxels per array axis [z, y, x] for an isotropic FWHM in mm."""
    sigma_mm = fwhm_mm / FWHM_PER_SIGMA
    sx, sy, sz = spacing_mm
    return (sigma_mm / sz, sigma_mm / sy, sigma_mm / sx)


def _blurred(patch: _Patch, sigma: Sequence[float], shape: tuple[int, ...]) -> _Patch:
    """h * patch on its box widened by the kernel radius (cut at the grid: zero outside it),
    equal to filtering the whole grid."""
    radius = [int(TRUNCATE_SIGMAS * s + 0.5) for s in sigma]
    box = tuple(
        slice(max(b.start - r, 0), min(b.stop + r, n))
        for b, r, n in zip(patch.box, radius, shape, strict=True)
    )
    padded = np.zeros(tuple(s.stop - s.start for s in box))
    padded[_local(patch.box, box)] = patch.values
    spread = ndimage.gaussian_filter(padded, sigma, mode="constant", truncate=TRUNCATE_SIGMAS)
    return _Patch(box, spread)


def _positive_box(name: str, fraction: FloatArray) -> Box:
    """The bounding box of the voxels with a fraction > 0; refused if there is none."""
    positive = fraction > 0
    occupied = [np.flatnonzero(np.any(positive, axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
    if occupied[0].size == 0:
        raise InvalidInputError(name, 0.0, "the VOI has no voxel inside the image")
    return tuple(slice(int(i[0]), int(i[-1]) + 1) for i in occupied)


@dataclass(frozen=True, eq=False)  # equality of arrays is not a bool: compare by identity
class PsfRegions:
    """The GTM of one grid's regions (VOIs, then body and outside_body, or the remainder)."""

    names: tuple[str, ...]
    shape: tuple[int, ...]
    spacing_mm: Vector3
    fwhm_mm: float
    fractions: tuple[_Patch, ...]
    spreads: tuple[_Patch, ...]
    transfer: Float64Array  # G[i, j] = sum_x f_i(x) RSF_j(x)

    @classmethod
    def of(
        cls,
        masks: Mapping[str, FloatArray],
        spacing_mm: Vector3,
        fwhm_mm: float,
        body: FloatArray | None = None,
    ) -> PsfRegions:
        """The regions of the VOI fractional `masks` (arrays [z, y, x] of one shape) and of the
        remainder, split by the `body` fraction per voxel when given, for a PSF of `fwhm_mm`."""
        if not masks:
            raise InvalidInputError("masks", {}, "must hold at least one VOI")
        shape: tuple[int, ...] = np.shape(next(iter(masks.values())))
        covered = np.zeros(shape)
        patches: list[tuple[str, _Patch]] = []
        for name, mask in masks.items():
            box = _positive_box(name, np.asarray(mask))
            patch = _Patch(box, np.asarray(mask[box], dtype=np.float64))
            covered[box] += patch.values
            patches.append((name, patch))
        remainder = np.clip(1.0 - covered, 0.0, 1.0)
        if body is None:
            rest = {REMAINDER: remainder}
        else:
            inside = np.minimum(
                np.clip(np.asarray(body, np.float64) - covered, 0.0, None), remainder
            )
            rest = {BODY: inside, OUTSIDE_BODY: remainder - inside}
        full = tuple(slice(0, n) for n in shape)
        patches += [(name, _Patch(full, part)) for name, part in rest.items() if np.any(part > 0)]
        fractions = tuple(patch for _, patch in patches)
        return cls(
            names=tuple(name for name, _ in patches),
            shape=shape,
            spacing_mm=spacing_mm,
            fwhm_mm=fwhm_mm,
            fractions=fractions,
            spreads=(),
            transfer=np.zeros((0, 0)),
        ).at_fwhm(fwhm_mm)

    def at_fwhm(self, fwhm_mm: float) -> PsfRegions:
        """The same regions seen through a Gaussian PSF of `fwhm_mm` (>= 0)."""
        fwhm = finite_number("psf_fwhm_mm", fwhm_mm, "mm")
        if fwhm < 0:
            raise InvalidInputError("psf_fwhm_mm", fwhm_mm, "must be >= 0 mm")
        sigma = psf_sigma_voxels(fwhm, self.spacing_mm)
        spreads = tuple(_blurred(fraction, sigma, self.shape) for fraction in self.fractions)
        transfer = np.array([[_dot(f, rsf) for rsf in spreads] for f in self.fractions])
        return replace(self, fwhm_mm=fwhm, spreads=spreads, transfer=transfer)

    def weighted(self, values: FloatArray) -> Float64Array:
        """t_i = sum_x f_i(x) y(x): the GTM's right-hand side (the same at any FWHM)."""
        observed = np.asarray(values, dtype=np.float64)
        return np.array([np.vdot(f.values, observed[f.box]) for f in self.fractions])

    def _solution(self, weighted: Float64Array) -> Float64Array:
        solution, *_ = np.linalg.lstsq(self.transfer, weighted, rcond=None)
        return np.asarray(solution, dtype=np.float64)

    def unmix(self, values: FloatArray) -> dict[str, float]:
        """Each region's own per-voxel value c_r: the GTM solution for the image `values`."""
        solution = self._solution(self.weighted(values))
        return dict(zip(self.names, (float(c) for c in solution), strict=True))

    def voxel_sums(self) -> dict[str, float]:
        """sum(f_r) per region: its volume in voxels."""
        return {n: float(f.values.sum()) for n, f in zip(self.names, self.fractions, strict=True)}

    def totals(self, values: FloatArray) -> dict[str, float]:
        """Each VOI's total (c_r sum f_r) and the remainder's (body and outside summed), named
        as `voi_activity.Regions` names them."""
        return self.totals_of_weighted(self.weighted(values))

    def totals_of_weighted(self, weighted: Float64Array) -> dict[str, float]:
        """`totals` from the right-hand side `weighted` (see `weighted`)."""
        solution, sums = self._solution(weighted), self.voxel_sums()
        totals = {name: c * sums[name] for name, c in zip(self.names, solution, strict=True)}
        rest = [name for name in self.names if name in (BODY, OUTSIDE_BODY, REMAINDER)]
        voi_totals = {name: value for name, value in totals.items() if name not in rest}
        return {**voi_totals, REMAINDER: sum(totals[name] for name in rest)}

    def corrected(self, values: FloatArray) -> Float64Array:
        """The RBV-corrected image: values x m / (h * m), m the piecewise-uniform GTM image."""
        observed = np.asarray(values, dtype=np.float64)
        solution = np.maximum(self._solution(self.weighted(observed)), 0.0)
        model = np.zeros(self.shape)
        blurred = np.zeros(self.shape)
        for c, fraction, spread in zip(solution, self.fractions, self.spreads, strict=True):
            model[fraction.box] += c * fraction.values
            blurred[spread.box] += c * spread.values
        floor = _RBV_FLOOR * float(blurred.max(initial=0.0))
        corrected: Float64Array = np.divide(
            observed * model, blurred, out=model.copy(), where=blurred > floor
        )
        return corrected


@dataclass(frozen=True, eq=False)
class PsfCorrection:
    """One time point's GTM at the nominal FWHM and 10 % narrower and wider."""

    nominal: PsfRegions
    narrower: PsfRegions
    wider: PsfRegions

    @classmethod
    def of(cls, regions: PsfRegions) -> PsfCorrection:
        """`regions` and the same at +-10 % FWHM (their spread functions dropped: only their
        transfer matrices are used)."""
        change = FWHM_RELATIVE_UNCERTAINTY * regions.fwhm_mm
        narrower, wider = (
            replace(regions.at_fwhm(regions.fwhm_mm + sign * change), spreads=())
            for sign in (-1.0, 1.0)
        )
        return cls(regions, narrower, wider)

    def totals(self, values: FloatArray) -> tuple[dict[str, float], dict[str, float]]:
        """Totals by region (see `PsfRegions.totals`) and their uncertainty in percent."""
        weighted = self.nominal.weighted(values)  # the three share their regions
        nominal, low, high = (
            r.totals_of_weighted(weighted) for r in (self.nominal, self.narrower, self.wider)
        )
        uncertainty = {
            name: 100.0 * abs(high[name] - low[name]) / (2.0 * abs(value)) if value else 0.0
            for name, value in nominal.items()
        }
        return nominal, uncertainty


def body_fraction(ct: Volume, target: Grid) -> FloatArray:
    """Fraction of each `target` voxel inside the body: CT > -500 HU as a fractional mask on
    `target`; then, on `target`, voxels enclosed by the body in their slice (lungs, bowel gas)
    set to 1 and every part but the largest connected one (the couch) set to 0."""
    tissue = Volume(ct.grid, (np.asarray(ct.array) > BODY_OUTLINE_HU).astype(np.float32))
    fraction = fractional_mask(tissue, target, supersampling=_BODY_SUPERSAMPLING)
    solid = fraction >= 0.5
    filled = np.stack([ndimage.binary_fill_holes(plane) for plane in solid])
    fraction[filled & ~solid] = 1.0
    labels, count = ndimage.label(fraction > 0)
    if count == 0:
        raise InvalidInputError("ct", "no voxel > -500 HU", "the body outline needs tissue")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    fraction[labels != int(np.argmax(sizes))] = 0.0
    return fraction


@dataclass(frozen=True)
class StudyPsfCorrection:
    """The PSF correction of each time point of a study, and where the body outline came from."""

    fwhm_mm: float
    time_points: tuple[PsfCorrection, ...]
    body_outline: str

    def note(self) -> str:
        return (
            f"partial-volume correction: {METHOD}, PSF FWHM {self.fwhm_mm:g} mm, body outline "
            f"{self.body_outline}; pvc_uncertainty_percent: {UNCERTAINTY}"
        )

    def summary(self) -> dict[str, object]:
        return {
            "method": METHOD,
            "psf_fwhm_mm": self.fwhm_mm,
            "body_outline": self.body_outline,
            "uncertainty": UNCERTAINTY,
        }


def study_psf_correction(study: Study, fwhm_mm: float) -> StudyPsfCorrection:
    """The GTMs of every time point (built once per distinct VOI set and outline). The outline
    is each time point's own CT, else the first time point's CT moved as its VOIs were, else
    none (one remainder region)."""
    fwhm = finite_number("psf_fwhm_mm", fwhm_mm, "mm")
    if not fwhm > 0:
        raise InvalidInputError("psf_fwhm_mm", fwhm_mm, "must be > 0 mm")
    built: dict[tuple[int, int, Grid | None], PsfCorrection] = {}
    corrections = []
    for time_point in study.time_points:
        ct = _outline_ct(study, time_point)
        key = (
            id(time_point.vois),
            id(None if ct is None else ct.array),
            None if ct is None else ct.grid,
        )
        if key not in built:
            grid = time_point.vois.grid
            body = None if ct is None else body_fraction(ct, grid)
            regions = PsfRegions.of(time_point.vois.masks, grid.spacing_mm, fwhm, body)
            built[key] = PsfCorrection.of(regions)
        corrections.append(built[key])
    has_ct = study.time_points[0].ct is not None
    outline = f"CT > {BODY_OUTLINE_HU:g} HU" if has_ct else "none (no CT): one remainder region"
    return StudyPsfCorrection(fwhm, tuple(corrections), outline)


def _outline_ct(study: Study, time_point: TimePoint) -> Volume | None:
    if time_point.ct is not None:
        return time_point.ct.volume
    reference = study.time_points[0].ct
    if reference is None:
        return None
    return Volume(moved_grid(reference.volume.grid, time_point.alignment), reference.volume.array)
