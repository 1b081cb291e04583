"""The absorbed doses of one cycle from its loaded study: time-activity curves per VOI, fits,
TIA, and dose by the organ S-value method, the voxel method or a single time point.

Per VOI (and the remainder outside every VOI) the activity at each time point is the region's
unmixed total (`voi_activity`); curves are fitted with `tac.fit_best` (AICc), or integrated from
one time point (Hanscheid 2018 by default, Madsen 2018 with a population half-life).
- organ: OpenDose S values (ICRP 110 AM / AF by the patient's sex) with the self-dose scaled to
  the VOI's mass, plus cross-dose between the kidneys, liver and spleen; tumours by the sphere
  model; other VOIs by local deposition.
- voxel: a TIA map (the reference time point's activity map times each region's TIA / A(t_ref))
  convolved with the Lanconelli 177Lu voxel S kernel (scaled to the ICRP 107 electron energy,
  density-corrected by 1.04 / voxel density), and local deposition for comparison; each VOI's
  dose is its unmixed value, its DVH weighted by the voxel fractions.
- stp: as organ, with the TIA from the time point nearest `stp_time_h` (default 96 h).
Masses: VOI volume (CT-drawn) x tissue density (ICRP 89 / ICRU 46).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from startrt.clinical.sex import Sex
from startrt.dosimetry.bed import Radiobiology, bed_for_fit_gy
from startrt.dosimetry.marrow import red_marrow_self_dose
from startrt.dosimetry.marrow_cross_dose import red_marrow_cross_dose
from startrt.dosimetry.organ_dose import organ_self_dose_gy, sphere_dose_gy
from startrt.dosimetry.partial_volume import (
    PsfCorrection,
    StudyPsfCorrection,
    study_psf_correction,
)
from startrt.dosimetry.single_time_point import hanscheid_tia_mbq_h, madsen_tia_mbq_h
from startrt.dosimetry.study import Study, TimePoint
from startrt.dosimetry.tac import FitResult, TimeActivityCurve, fit_best
from startrt.dosimetry.uncertainty import UncertaintyBudget, VoiUncertainty, voi_uncertainty
from startrt.dosimetry.voi_activity import REMAINDER, Regions, tia_map_mbq_h
from startrt.dosimetry.voxel_dose import (
    VoiDose,
    kernel_dose_gy,
    local_deposition_dose_gy,
    voi_dose_statistics,
)
from startrt.imaging.recovery import RecoveryCurve, correct_activity
from startrt.imaging.spect import SpectImage
from startrt.imaging.volume import FloatArray, Volume
from startrt.physics.nuclides import LU177
from startrt.physics.organ_s_values import SOURCE_ORGANS, organ_s_value, self_target_name
from startrt.physics.tissue import TISSUE_DENSITY_G_ML, voi_density_g_ml
from startrt.physics.voxel_kernels import VoxelKernel, load_kernel, mass_scaled_kernel
from startrt.validation import InvalidInputError

Method = Literal["voxel", "organ", "stp"]
KIDNEYS = ("left_kidney", "right_kidney")
VOXEL_REFERENCE_TIME_H = 24.0
STP_TIME_H = 96.0
SOFT_TISSUE = TISSUE_DENSITY_G_ML["soft_tissue"]
RED_MARROW = "red_marrow"
MASS_SCALING_TOLERANCE = 0.10  # larger differences: resample the TIA map to the kernel


@dataclass(frozen=True)
class VoiResult:
    """One VOI's dosimetry for the cycle."""

    name: str
    volume_ml: float
    mass_g: float
    times_h: tuple[float, ...]
    activity_mbq: tuple[float, ...]
    fit: FitResult | None
    fit_model: str
    tia_mbq_h: float
    tia_sd_mbq_h: float | None
    effective_half_life_h: float | None
    dose_gy: float
    dose_gy_per_gbq: float
    local_deposition_dose_gy: float | None
    bed_gy: float | None
    recovery_coefficient: float | None
    statistics: VoiDose | None
    pvc_uncertainty_percent: float | None = None  # partial_volume.UNCERTAINTY
    uncertainty: VoiUncertainty | None = None  # of the TIA and dose (EANM, `uncertainty`)


@dataclass(frozen=True)
class CycleDosimetryResult:
    method: Method
    injected_activity_mbq: float
    times_h: tuple[float, ...]
    vois: Mapping[str, VoiResult]
    dose_map: Volume | None
    tia_map: Volume | None
    dose_reference: SpectImage | None  # the SPECT whose grid the maps are on
    notes: tuple[str, ...]
    partial_volume_correction: Mapping[str, object] | None = None  # with the PSF: how

    def to_json(self) -> dict[str, object]:
        """The JSON shape shared with `phantom make`'s truth: {"vois": {name: {...}}, ...}."""
        return {
            "method": self.method,
            "injected_activity_mbq": self.injected_activity_mbq,
            "time_points_h": list(self.times_h),
            "vois": {
                name: {
                    "tia_mbq_h": voi.tia_mbq_h,
                    "tia_sd_mbq_h": voi.tia_sd_mbq_h,
                    "dose_gy": voi.dose_gy,
                    "dose_gy_per_gbq": voi.dose_gy_per_gbq,
                    "fit_model": voi.fit_model,
                    "effective_half_life_h": voi.effective_half_life_h,
                    "mass_g": voi.mass_g,
                    "volume_ml": voi.volume_ml,
                    "local_deposition_dose_gy": voi.local_deposition_dose_gy,
                    "bed_gy": voi.bed_gy,
                    "recovery_coefficient": voi.recovery_coefficient,
                    "pvc_uncertainty_percent": voi.pvc_uncertainty_percent,
                    **({} if voi.uncertainty is None else voi.uncertainty.to_json()),
                }
                for name, voi in self.vois.items()
            },
            "partial_volume_correction": self.partial_volume_correction,
            "notes": list(self.notes),
        }


def _no_progress(_: str) -> None:
    return None


def compute_dosimetry(
    study: Study,
    *,
    method: Method = "voxel",
    recovery_curve: RecoveryCurve | None = None,
    recovery_max_volume_ml: float = 100.0,
    stp_time_h: float = STP_TIME_H,
    population_half_life_h: Mapping[str, float] | None = None,
    blood_samples: BloodSamples | None = None,
    kidney_radiobiology: Radiobiology | None = None,
    psf_fwhm_mm: float | None = None,
    uncertainty_budget: UncertaintyBudget | None = None,
    progress: Callable[[str], None] = _no_progress,
) -> CycleDosimetryResult:
    """Dosimetry of one cycle (see the module docstring); with `blood_samples`, the red-marrow
    dose (blood-method self-dose plus cross-dose) is added as the VOI "red_marrow". With
    `psf_fwhm_mm` (the SPECT's resolution), every method's activities are corrected for partial
    volume by the GTM with that PSF and the voxel TIA map by RBV (`partial_volume`). Each VOI's
    TIA and dose carry their standard uncertainty (`uncertainty`) from `uncertainty_budget`
    (the site's; the module's stated defaults when None, as the notes say)."""
    if method not in ("voxel", "organ", "stp"):
        raise InvalidInputError("method", method, "must be voxel, organ or stp")
    if psf_fwhm_mm is not None and recovery_curve is not None:
        raise InvalidInputError(
            "psf_fwhm_mm", psf_fwhm_mm, "give the PSF or a recovery curve, not both (two PVCs)"
        )
    notes: list[str] = [f"VOIs from {study.voi_source}"]
    notes.extend(note for tp in study.time_points for note in tp.spect.notes)
    times = tuple(tp.time_h for tp in study.time_points)
    progress("time-activity curves")
    regions = _regions(study)
    psf = None if psf_fwhm_mm is None else study_psf_correction(study, psf_fwhm_mm)
    if psf is not None:
        notes.append(psf.note())
    curves, recovery, pvc_uncertainty = _time_activity_curves(
        study, regions, recovery_curve, recovery_max_volume_ml, psf
    )
    masses = {name: _mass_g(name, study.vois.volume_ml(name), notes) for name in study.vois.names}
    progress("fitting time-activity curves")
    if method == "stp":
        index = int(np.argmin([abs(t - stp_time_h) for t in times]))
        integrations = {
            name: _single_time_point(
                name, curves[name][index], times[index], population_half_life_h
            )
            for name in curves
        }
        notes.append(f"single time point at {times[index]:.1f} h")
    else:
        integrations = {name: _fit(name, times, curves[name], notes) for name in curves}

    gbq = study.injected_activity_mbq / 1000.0
    phantom: Literal["AM", "AF"] = "AF" if study.patient_sex == "female" else "AM"
    if study.patient_sex is None:
        notes.append("patient sex not in the DICOM header: ICRP 110 adult male S values")
    dose_map = tia_map = None
    dose_reference: SpectImage | None = None
    local: dict[str, float] = {}
    statistics: dict[str, VoiDose] = {}
    if method == "voxel":
        progress("voxel dose")
        index = int(np.argmin([abs(t - VOXEL_REFERENCE_TIME_H) for t in times]))
        dose_reference = study.time_points[index].spect
        dose_map, tia_map, doses, local, statistics = _voxel_doses(
            study.time_points[index],
            regions[index],
            index,
            curves,
            integrations,
            notes,
            None if psf is None else psf.time_points[index],
        )
    else:
        progress("organ dose")
        doses = _organ_doses(study.vois.names, integrations, masses, phantom, notes)

    budget = _uncertainty_budget(uncertainty_budget, notes)
    vois = {}
    for name in study.vois.names:
        tia, tia_sd, fit, model = integrations[name]
        vois[name] = VoiResult(
            name=name,
            volume_ml=study.vois.volume_ml(name),
            mass_g=masses[name],
            times_h=times,
            activity_mbq=curves[name],
            fit=fit,
            fit_model=model,
            tia_mbq_h=tia,
            tia_sd_mbq_h=tia_sd,
            effective_half_life_h=None if fit is None else fit.effective_half_life_h,
            dose_gy=doses[name],
            dose_gy_per_gbq=doses[name] / gbq,
            local_deposition_dose_gy=local.get(name),
            bed_gy=_kidney_bed(name, doses[name], fit, kidney_radiobiology),
            recovery_coefficient=recovery.get(name),
            statistics=statistics.get(name),
            pvc_uncertainty_percent=pvc_uncertainty.get(name),
            uncertainty=voi_uncertainty(
                tia_mbq_h=tia,
                fit_tia_sd_mbq_h=tia_sd,
                dose_gy=doses[name],
                volume_ml=study.vois.volume_ml(name),
                partial_volume_relative=pvc_uncertainty.get(name, 0.0) / 100.0,
                budget=budget,
            ),
        )
    if blood_samples is not None:
        tias = {name: integration[0] for name, integration in integrations.items()}
        vois[RED_MARROW] = _marrow_result(blood_samples, study.patient_sex, gbq, tias, notes)
    return CycleDosimetryResult(
        method=method,
        injected_activity_mbq=study.injected_activity_mbq,
        times_h=times,
        vois=vois,
        dose_map=dose_map,
        tia_map=tia_map,
        dose_reference=dose_reference,
        notes=tuple(notes),
        partial_volume_correction=None if psf is None else psf.summary(),
    )


Integration = tuple[float, float | None, FitResult | None, str]


def _uncertainty_budget(budget: UncertaintyBudget | None, notes: list[str]) -> UncertaintyBudget:
    """The site's budget, or the stated defaults, said in the notes either way."""
    stated = budget is not None
    budget = UncertaintyBudget() if budget is None else budget
    notes.append(
        f"uncertainty (EANM, Gear 2018): calibration {budget.calibration_relative:.1%}, "
        f"S value or kernel {budget.dose_factor_relative:.1%}, VOI boundary "
        f"{budget.boundary_mm:g} mm" + ("" if stated else " (assumed: no site values given)")
    )
    return budget


def _time_activity_curves(
    study: Study,
    regions: list[Regions],
    recovery_curve: RecoveryCurve | None,
    recovery_max_volume_ml: float,
    psf: StudyPsfCorrection | None,
) -> tuple[dict[str, tuple[float, ...]], dict[str, float], dict[str, float]]:
    """Each region's activity (MBq) per time point: the GTM with the PSF when `psf` is given,
    else without blur and recovery-corrected for small VOIs when a curve is given; the recovery
    coefficient applied per VOI; the PVC uncertainty (%) per VOI, the largest over time points."""
    uncertainty: dict[str, float] = {}
    if psf is None:
        totals = [
            r.totals(tp.activity_mbq.array)
            for r, tp in zip(regions, study.time_points, strict=True)
        ]
    else:
        corrected = [
            correction.totals(tp.activity_mbq.array)
            for correction, tp in zip(psf.time_points, study.time_points, strict=True)
        ]
        totals = [values for values, _ in corrected]
        uncertainty = {name: max(u[name] for _, u in corrected) for name in study.vois.names}
    curves = {name: tuple(max(t[name], 0.0) for t in totals) for name in totals[0]}
    recovery: dict[str, float] = {}
    if recovery_curve is not None:
        for name in study.vois.names:
            volume = study.vois.volume_ml(name)
            if volume <= recovery_max_volume_ml:
                corrections = [correct_activity(a, volume, recovery_curve) for a in curves[name]]
                curves[name] = tuple(c.corrected_mbq for c in corrections)
                recovery[name] = corrections[0].coefficient
    return curves, recovery, uncertainty


@dataclass(frozen=True)
class BloodSamples:
    """Blood activity concentrations (MBq/mL) at times after injection (h), with the patient
    data the red-marrow mass needs."""

    times_h: tuple[float, ...]
    mbq_per_ml: tuple[float, ...]
    weight_kg: float | None = None
    sex: Sex | None = None


def _marrow_result(
    samples: BloodSamples,
    study_sex: str | None,
    gbq: float,
    region_tia_mbq_h: Mapping[str, float],
    notes: list[str],
) -> VoiResult:
    """The red marrow: blood-method self-dose (its local deposition) plus the cross-dose from
    the kidneys, liver and spleen and the remainder of the body; the total body is the regions'
    sum (the VOIs and the remainder of the SPECT field of view)."""
    sex = samples.sex or (Sex(study_sex) if study_sex else None)
    if sex is None:
        raise InvalidInputError("sex", None, "the red-marrow mass needs the patient's sex")
    marrow = red_marrow_self_dose(
        samples.times_h, samples.mbq_per_ml, sex=sex, weight_kg=samples.weight_kg
    )
    cross = red_marrow_cross_dose(
        {name: tia for name, tia in region_tia_mbq_h.items() if name in SOURCE_ORGANS},
        total_body_tia_mbq_h=sum(region_tia_mbq_h.values()),
        marrow_tia_mbq_h=marrow.red_marrow_tia_mbq_h,
        phantom="AF" if sex == Sex.FEMALE else "AM",
    )
    dose_gy = marrow.self_dose_gy + cross.total_gy
    parts = ", ".join(f"{source} {gy:.4g}" for source, gy in cross.by_source_gy.items())
    notes.append(
        f"red marrow: blood method, RMBLR {marrow.red_marrow_to_blood_ratio:g}, mass "
        f"{marrow.red_marrow_mass_g:.0f} g; self-dose {marrow.self_dose_gy:.4g} Gy + cross-dose "
        f"{cross.total_gy:.4g} Gy ({parts}) = {dose_gy:.4g} Gy (EANM 2022)"
    )
    notes.extend(f"red marrow: {note}" for note in cross.notes)
    fit = marrow.blood_fit
    return VoiResult(
        name=RED_MARROW,
        volume_ml=marrow.red_marrow_mass_g,  # 1 g/mL, as the blood method assumes
        mass_g=marrow.red_marrow_mass_g,
        times_h=samples.times_h,
        activity_mbq=tuple(c * marrow.red_marrow_mass_g for c in samples.mbq_per_ml),
        fit=fit,
        fit_model=f"blood {fit.model}",
        tia_mbq_h=marrow.red_marrow_tia_mbq_h,
        tia_sd_mbq_h=None,
        effective_half_life_h=fit.effective_half_life_h,
        dose_gy=dose_gy,
        dose_gy_per_gbq=dose_gy / gbq,
        local_deposition_dose_gy=marrow.self_dose_gy,
        bed_gy=None,
        recovery_coefficient=None,
        statistics=None,
    )


def _regions(study: Study) -> list[Regions]:
    """The regions of each time point (computed once per distinct VOI set)."""
    built: dict[int, Regions] = {}
    for time_point in study.time_points:
        if id(time_point.vois) not in built:
            built[id(time_point.vois)] = Regions.of(time_point.vois.masks)
    return [built[id(time_point.vois)] for time_point in study.time_points]


def _fit(
    name: str, times: tuple[float, ...], activity: tuple[float, ...], notes: list[str]
) -> Integration:
    if len(times) == 1:
        notes.append(f"{name}: one time point, Hanscheid single-time-point TIA")
        return hanscheid_tia_mbq_h(activity[0], times[0]), None, None, "hanscheid_stp"
    fit = fit_best(TimeActivityCurve(name, times, activity))
    return fit.tia_mbq_h, fit.tia_sd_mbq_h, fit, fit.model


def _single_time_point(
    name: str, activity: float, time_h: float, population_half_life_h: Mapping[str, float] | None
) -> Integration:
    if population_half_life_h and name in population_half_life_h:
        tia = madsen_tia_mbq_h(activity, time_h, population_half_life_h[name])
        return tia, None, None, "madsen_stp"
    return hanscheid_tia_mbq_h(activity, time_h), None, None, "hanscheid_stp"


def _mass_g(name: str, volume_ml: float, notes: list[str]) -> float:
    try:
        density = voi_density_g_ml(name)
    except InvalidInputError:
        density = SOFT_TISSUE
        notes.append(
            f"{name}: no tissue density known for this name, soft tissue {SOFT_TISSUE} g/mL"
        )
    return volume_ml * density


def _organ_doses(
    names: tuple[str, ...],
    integrations: Mapping[str, Integration],
    masses: Mapping[str, float],
    phantom: Literal["AM", "AF"],
    notes: list[str],
) -> dict[str, float]:
    doses = {}
    sources = [name for name in names if name in SOURCE_ORGANS]
    for name in names:
        tia = integrations[name][0]
        if name in SOURCE_ORGANS:
            dose = organ_self_dose_gy(tia, name, masses[name], phantom)
            target = self_target_name(name)
            for source in sources:
                if source != name:
                    s_value = organ_s_value(source, target, phantom).s_mgy_per_mbq_s
                    dose += integrations[source][0] * 3600.0 * s_value / 1000.0
        elif name.startswith("tumour") or name.startswith("tumor"):
            dose = sphere_dose_gy(tia, masses[name])
        else:
            dose = tia * LU177.local_deposition_gy_g_per_mbq_h / masses[name]
            notes.append(f"{name}: local deposition (no S value for this region)")
        doses[name] = dose
    if len(sources) > 1:
        notes.append(f"cross-dose between {', '.join(sources)} from OpenDose {phantom} S values")
    return doses


def _density_map(regions: Regions) -> FloatArray:
    """Density (g/mL) per voxel: the regions' tissue densities mixed by their fractions."""
    densities = []
    for name in regions.names:
        try:
            densities.append(SOFT_TISSUE if name == REMAINDER else voi_density_g_ml(name))
        except InvalidInputError:
            densities.append(SOFT_TISSUE)
    weights = regions.fractions_in_support
    covered = weights.sum(axis=0)
    mixed = np.divide(
        np.asarray(densities) @ weights,
        covered,
        out=np.full_like(covered, SOFT_TISSUE),
        where=covered > 0,
    )
    density = np.full(regions.shape, SOFT_TISSUE)
    density[regions.support] = mixed
    return density


def _voxel_doses(
    time_point: TimePoint,
    regions: Regions,
    index: int,
    curves: Mapping[str, tuple[float, ...]],
    integrations: Mapping[str, Integration],
    notes: list[str],
    psf: PsfCorrection | None,
) -> tuple[Volume, Volume, dict[str, float], dict[str, float], dict[str, VoiDose]]:
    reference = time_point.activity_mbq
    if psf is not None:
        reference = reference.with_array(psf.nominal.corrected(reference.array))
        notes.append(
            f"voxel activity at {time_point.time_h:.1f} h corrected by RBV (Thomas 2011) "
            "with the PSF GTM's region values"
        )
    ratios = {
        name: integrations[name][0] / curves[name][index] if curves[name][index] > 0 else 0.0
        for name in regions.names
    }
    tia_map = tia_map_mbq_h(reference, regions, ratios)
    density = _density_map(regions)
    kernel, kernel_note = _kernel_for(reference.grid.spacing_mm)
    result = kernel_dose_gy(tia_map, kernel, normalize_to_electron_energy=True)
    dose_map = result.dose.with_array(result.dose.array * (SOFT_TISSUE / density))
    local_map = local_deposition_dose_gy(tia_map, density)
    notes.append(
        f"voxel TIA map from the {time_point.time_h:.1f} h image scaled by each region's "
        "fitted kinetics"
    )
    notes.append(
        kernel_note
        + (", map resampled to the kernel's voxel" if result.resampled else "")
        + f", scaled x{result.normalization_factor:.4f} to the ICRP 107 electron energy"
    )
    kernel_doses = regions.unmix(dose_map.array)
    local_doses = regions.unmix(local_map.array)
    names = time_point.vois.names
    statistics = {
        name: voi_dose_statistics(dose_map, time_point.vois.masks[name]) for name in names
    }
    return (
        dose_map,
        tia_map,
        {name: kernel_doses[name] for name in names},
        {name: local_doses[name] for name in names},
        statistics,
    )


def _kernel_for(spacing_mm: tuple[float, float, float]) -> tuple[VoxelKernel, str]:
    """The Lanconelli kernel for the image voxel: the exact size, or for isotropic voxels
    within MASS_SCALING_TOLERANCE of a shipped size the nearest one mass-scaled; otherwise the
    nearest one, to which the TIA map is resampled."""
    size = spacing_mm[0]
    nearest = load_kernel(size)
    name = f"Lanconelli {nearest.voxel_mm:g} mm soft-tissue kernel"
    isotropic = max(spacing_mm) - min(spacing_mm) <= 0.01 * size
    if nearest.is_same_size or not isotropic:
        return nearest, name
    if abs(size / nearest.voxel_mm - 1.0) <= MASS_SCALING_TOLERANCE:
        return mass_scaled_kernel(nearest, size), f"{name} mass-scaled to {size:g} mm"
    return nearest, name


def _kidney_bed(
    name: str, dose_gy: float, fit: FitResult | None, radiobiology: Radiobiology | None
) -> float | None:
    """The kidney's BED with its fitted kinetics, for the caller's (the protocol's) alpha/beta
    and repair half-time; none without them."""
    if radiobiology is None or name not in KIDNEYS or fit is None or fit.model == "trapezoid":
        return None
    return bed_for_fit_gy(dose_gy, fit, radiobiology.alpha_beta_gy, radiobiology.repair_half_time_h)
