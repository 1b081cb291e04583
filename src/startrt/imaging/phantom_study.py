"""A synthetic patient study on disk: the analytic phantom written as real DICOM, with its truth.

Per time point (folder `tp<i>_<hours>h`): a quantitative SPECT (NM multi-frame) in `spect/` and a
CT series in `ct/`, one imaging session each (own study and frame of reference), acquired at the
injection time + hours (dates and times, across days). VOIs drawn on the first CT as RTSTRUCT
(`rtstruct.dcm`) and SEG (`seg.dcm`); the analytic truth in `truth.json`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from startrt.imaging.camera import (
    DEFAULT_ACQUISITION_S,
    DEFAULT_NOISE_GAIN,
    DEFAULT_SENSITIVITY_CPS_PER_MBQ,
    Acquisition,
    DepthDependentResolution,
    GaussianResolution,
    Resolution,
    camera_image,
)
from startrt.imaging.ct import write_ct_series
from startrt.imaging.osem import OsemReconstruction
from startrt.imaging.phantom import (
    Ellipsoid,
    Kinetics,
    MonoExponential,
    PhantomSpec,
    activity_map_mbq,
    ct_map_hu,
    default_phantom,
    label_masks,
    organ_activity_mbq,
    translated,
    truth,
)
from startrt.imaging.rtstruct import write_rtstruct
from startrt.imaging.seg import write_seg
from startrt.imaging.spect import write_spect_nm
from startrt.imaging.volume import Vector3
from startrt.validation import InvalidInputError, finite_number

DEFAULT_INJECTION = datetime(2025, 3, 3, 10, 37)
MAX_TIME_POINTS = 10


@dataclass(frozen=True)
class PhantomTimePoint:
    """Files of one imaging session."""

    time_h: float
    acquisition_datetime: datetime
    spect_file: Path
    ct_folder: Path


@dataclass(frozen=True)
class PhantomStudy:
    """What `make_phantom_study` wrote."""

    folder: Path
    time_points: tuple[PhantomTimePoint, ...]
    rtstruct_file: Path
    seg_file: Path
    truth_file: Path


def make_phantom_study(
    out_dir: Path,
    *,
    seed: int = 0,
    time_points_h: Sequence[float] = (4.0, 24.0, 96.0, 168.0),
    spect_units: Literal["BQML", "CNTS"] = "BQML",
    decay_correction: Literal["NONE", "START", "ADMIN"] = "START",
    blur_fwhm_mm: float = 0.0,
    noise: bool = False,
    shifts_mm: Sequence[Vector3] | None = None,
    grid_size: int = 128,
    ct_subdivision: int = 1,
    calibration_cps_per_mbq: float = DEFAULT_SENSITIVITY_CPS_PER_MBQ,
    acquisition_duration_s: float = DEFAULT_ACQUISITION_S,
    noise_gain: float = DEFAULT_NOISE_GAIN,
    orbit_radius_mm: float | None = None,
    osem: OsemReconstruction | None = None,
    injection_datetime: datetime = DEFAULT_INJECTION,
    spec: PhantomSpec | None = None,
    patient_id: str | None = None,
) -> PhantomStudy:
    """Write the phantom (`default_phantom(seed, grid_size=...)` unless `spec` is given) as a
    study in `out_dir` (new or empty).

    SPECT (`imaging/camera.py`): activity at the acquisition start, blurred by a Gaussian of
    `blur_fwhm_mm` or, with `orbit_radius_mm`, by the depth-dependent resolution of a
    medium-energy collimator on that circular orbit; `noise`: clinical-level noise, Poisson on
    MBq x calibration_cps_per_mbq x acquisition_duration_s / noise_gain (the noise-equivalent
    counts) drawn at the source and blurred alike, so the expected image is the blurred activity.
    `osem` (`imaging/osem.py`) instead: projections on its orbit (Poisson counts of MBq x
    calibration x duration when `noise`), reconstructed by OSEM (then no blur nor orbit here).
    CNTS images need the same calibration to be read back. `shifts_mm`: one patient displacement
    per time point (SPECT and CT move together; the VOIs follow the first time point).
    `patient_id`: the DICOM PatientID (default `PHANTOM-<seed>`), e.g. a trial pseudonym.
    """
    phantom = default_phantom(seed, grid_size=grid_size) if spec is None else spec
    times = _checked_times(time_points_h)
    shifts = _checked_shifts(shifts_mm, len(times))
    resolution = _resolution(phantom, blur_fwhm_mm, orbit_radius_mm, osem, shifts)
    acquisition = Acquisition(calibration_cps_per_mbq, acquisition_duration_s, noise_gain)
    _require_empty(out_dir)
    patient_id = f"PHANTOM-{seed}" if patient_id is None else patient_id
    written = []
    for index, (time_h, shift) in enumerate(zip(times, shifts, strict=True), start=1):
        anatomy = translated(phantom, shift)
        session = out_dir / f"tp{index}_{time_h:g}h"
        acquired = injection_datetime + timedelta(hours=time_h)
        study_uid, frame_uid = generate_uid(), generate_uid()
        activity = activity_map_mbq(anatomy, time_h)
        if osem is None:
            noisy = acquisition if noise else None
            activity = camera_image(activity, resolution, noisy, seed=(seed, index))
        else:
            activity = osem.image(activity, acquisition, (seed, index) if noise else None)
        spect_file = write_spect_nm(
            activity,
            session / "spect",
            acquisition_datetime=acquired,
            injection_datetime=injection_datetime,
            injected_activity_mbq=phantom.injected_activity_mbq,
            patient_id=patient_id,
            study_uid=study_uid,
            frame_of_reference_uid=frame_uid,
            units=spect_units,
            calibration_cps_per_mbq=calibration_cps_per_mbq,
            acquisition_duration_s=acquisition_duration_s,
            decay_correction=decay_correction,
            series_description=f"phantom SPECT {time_h:g} h",
        )
        ct_folder = write_ct_series(
            ct_map_hu(anatomy, ct_subdivision),
            session / "ct",
            patient_id=patient_id,
            study_uid=study_uid,
            frame_of_reference_uid=frame_uid,
            acquisition_datetime=acquired,
            series_description=f"phantom CT {time_h:g} h",
        )
        written.append(PhantomTimePoint(time_h, acquired, spect_file, ct_folder))
    reference_ct = [pydicom.dcmread(path) for path in sorted(written[0].ct_folder.iterdir())]
    masks = label_masks(translated(phantom, shifts[0]), ct_subdivision)
    rtstruct = write_rtstruct(masks, reference_ct, out_dir / "rtstruct.dcm")
    seg = write_seg(masks, reference_ct, out_dir / "seg.dcm")
    record = truth_record(phantom, times, injection_datetime, seed)
    record["acquisition"] = {
        "spect_units": spect_units,
        "decay_correction": decay_correction,
        "calibration_cps_per_mbq": calibration_cps_per_mbq,
        "acquisition_duration_s": acquisition_duration_s,
        "blur_fwhm_mm": blur_fwhm_mm,
        "orbit_radius_mm": orbit_radius_mm,
        "noise": noise,
        "noise_gain": noise_gain,
        "osem": None if osem is None else _osem_record(osem),
        "shifts_mm": [list(shift) for shift in shifts],
        "ct_subdivision": ct_subdivision,
    }
    truth_file = out_dir / "truth.json"
    truth_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return PhantomStudy(out_dir, tuple(written), rtstruct, seg, truth_file)


def truth_record(
    spec: PhantomSpec, times_h: Sequence[float], injection: datetime, seed: int
) -> dict[str, object]:
    """The JSON-ready truth: per VOI TIA, dose, mass, volume, kinetics and A(t) at the times."""
    vois = {}
    for name, voi in truth(spec).items():
        vois[name] = {
            "tia_mbq_h": voi.tia_mbq_h,
            "dose_gy": voi.dose_gy,
            "mass_g": voi.mass_g,
            "volume_ml": voi.volume_ml,
            "density_g_ml": spec.organ(name).density_g_ml,
            "activity_mbq": [organ_activity_mbq(spec, name, t) for t in times_h],
            "kinetics": _kinetics_record(spec.organ(name).kinetics, spec.injected_activity_mbq),
        }
    return {
        "vois": vois,
        "injected_activity_mbq": spec.injected_activity_mbq,
        "injection_datetime": injection.isoformat(),
        "time_points_h": list(times_h),
        "acquisition_datetimes": [(injection + timedelta(hours=t)).isoformat() for t in times_h],
        "seed": seed,
        "grid": {"size": spec.grid_size, "voxel_mm": spec.voxel_mm},
        "background": _kinetics_record(spec.background, spec.injected_activity_mbq),
    }


def _kinetics_record(kinetics: Kinetics, injected_mbq: float) -> dict[str, object]:
    if isinstance(kinetics, MonoExponential):
        return {
            "model": "mono",
            "a0_mbq": kinetics.initial_fraction * injected_mbq,
            "effective_half_life_h": kinetics.effective_half_life_h,
        }
    return {
        "model": "uptake",
        "amplitude_mbq": kinetics.amplitude_fraction * injected_mbq,
        "clearance_half_life_h": kinetics.clearance_half_life_h,
        "uptake_half_life_h": kinetics.uptake_half_life_h,
    }


def _resolution(
    spec: PhantomSpec,
    blur_fwhm_mm: float,
    orbit_radius_mm: float | None,
    osem: OsemReconstruction | None,
    shifts: Sequence[Vector3],
) -> Resolution:
    """A Gaussian of `blur_fwhm_mm`, or the depth-dependent blur of a camera orbiting outside
    the body; with `osem`, none (its projector blurs). Refused together: one sets the FWHM."""
    if osem is not None and (blur_fwhm_mm != 0.0 or orbit_radius_mm is not None):
        raise InvalidInputError("osem", osem, "takes no blur_fwhm_mm nor orbit_radius_mm")
    if orbit_radius_mm is not None and blur_fwhm_mm != 0.0:
        raise InvalidInputError(
            "blur_fwhm_mm", blur_fwhm_mm, "must be 0 with orbit_radius_mm (the orbit sets it)"
        )
    radius_mm = osem.orbit.radius_mm if osem is not None else orbit_radius_mm
    reach_mm = max(_farthest_from_axis_mm(spec.body.translated(shift)) for shift in shifts)
    if radius_mm is not None and radius_mm <= reach_mm:
        raise InvalidInputError(
            "orbit_radius_mm", radius_mm, f"must clear the body (> {reach_mm:.0f} mm)"
        )
    if orbit_radius_mm is not None:
        return DepthDependentResolution(orbit_radius_mm)
    return GaussianResolution(blur_fwhm_mm)  # 0 mm with osem (unused: its projector blurs)


def _osem_record(osem: OsemReconstruction) -> dict[str, object]:
    return {
        "orbit_radius_mm": osem.orbit.radius_mm,
        "views": osem.orbit.views,
        "iterations": osem.iterations,
        "subsets": osem.subsets,
    }


def _farthest_from_axis_mm(shape: Ellipsoid) -> float:
    """Largest distance (mm) of the ellipsoid's outline from the z axis (720 directions)."""
    angles = np.linspace(0.0, 2.0 * math.pi, 721)
    x_mm = shape.centre_mm[0] + shape.semi_axes_mm[0] * np.cos(angles)
    y_mm = shape.centre_mm[1] + shape.semi_axes_mm[1] * np.sin(angles)
    return float(np.max(np.hypot(x_mm, y_mm)))


def _checked_times(time_points_h: Sequence[float]) -> tuple[float, ...]:
    times = tuple(finite_number("time_points_h", t, "h") for t in time_points_h)
    if not 1 <= len(times) <= MAX_TIME_POINTS:
        raise InvalidInputError("time_points_h", time_points_h, f"needs 1-{MAX_TIME_POINTS} times")
    if times[0] < 0 or any(b <= a for a, b in itertools.pairwise(times)):
        raise InvalidInputError("time_points_h", time_points_h, "must be >= 0 and increasing")
    return times


def _checked_shifts(shifts_mm: Sequence[Vector3] | None, count: int) -> tuple[Vector3, ...]:
    if shifts_mm is None:
        return ((0.0, 0.0, 0.0),) * count
    if len(shifts_mm) != count:
        raise InvalidInputError("shifts_mm", shifts_mm, f"needs one shift per time point ({count})")
    return tuple(shifts_mm)


def _require_empty(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InvalidInputError(str(out_dir), "exists", "must be a new or empty folder")
    out_dir.mkdir(parents=True, exist_ok=True)
