"""Quantitative SPECT: activity maps (MBq per voxel at the acquisition start) from DICOM, and the
NM multi-frame writer used by tests and the phantom.

Read: NM Image (PS3.3 A.5) reconstructed tomography, one multi-frame file whose frames are the
slices (C.8.4.8 NM Multi-frame: SliceVector; C.8.4.11 NM Detector: ImagePositionPatient and
ImageOrientationPatient in DetectorInformationSequence; C.8.4.15 NM Reconstruction: signed
SpacingBetweenSlices), or a series of single-frame slices (PT or NM; position and orientation
in C.7.6.2 Image Plane, or for NM in the NM Detector module). Enhanced multi-frame images (per-frame
functional groups, C.7.6.16) are refused.
Injection: RadiopharmaceuticalInformationSequence (C.8.4.10 NM Isotope).

Time point (the acquisition start, to which the values refer), in this order:
1. AcquisitionDateTime (0008,002A);
2. else AcquisitionDate (0008,0022) + AcquisitionTime (0008,0032) (C.7.10.1);
3. else the file is refused. SeriesDate/Time and ContentDate/Time are never used: in a
   reconstruction they are usually when it was made (often 30-60 min after the scan), which
   would shift the time point silently. A series of slices takes its earliest slice's time.
   A recon-tomo NM file has no per-frame times (its frames are slices, not time frames).
The scan's duration (RotationInformationSequence: ActualFrameDuration x
NumberOfFramesInRotation, C.8.4.12; else ActualFrameDuration (0018,1242)) matters when the values
are not decay corrected (DecayCorrection NONE): they are then the mean over the scan, i.e. the
activity at its midpoint, and are brought to the start by lambda T / (1 - exp(-lambda T))
(x1.0011 for 30 min of 177Lu), so that the time point stays the start for every DecayCorrection.
Without a stated duration NONE is read as START (the difference is below 0.1 % per 20 min).

Values, per file or slice:
- RealWorldValueMappingSequence (0040,9096; items C.7.6.16.2.11.1) with an item whose
  MeasurementUnitsCodeSequence is (Bq/ml, UCUM): Bq/mL = stored * RealWorldValueSlope +
  RealWorldValueIntercept. Preferred when present; it is accepted when Units is absent, or CNTS
  with a different mapping from RescaleSlope/Intercept (counts as the modality value, Bq/mL as
  the real-world value: Siemens xSPECT Quant), or any other Units. Refused naming both: Units
  BQML whose RescaleSlope/Intercept differ from the RWVM's slope/intercept; Units CNTS whose
  rescale equals the RWVM's (the same numbers cannot be counts and Bq/mL); two Bq/ml items that
  disagree; a Bq/ml item given only as a LUT.
- else stored * RescaleSlope + RescaleIntercept in Units (0054,1001) BQML or CNTS (C.8.9.1 PET
  Series, used by quantitative SPECT too).
DecayCorrection (0054,1102) NONE / START / ADMIN.

Negative values (reconstruction noise, rescale rounding): up to NEGATIVE_SHARE_LIMIT (1 %) of the
voxels, with a non-negative total, they are clipped to 0 and counted in `SpectImage.notes`; more,
or a negative total, is refused naming the file and the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.uid import NuclearMedicineImageStorage, generate_uid

from startrt.imaging import dicom_common as dc
from startrt.imaging.dicom_scan import SeriesInfo
from startrt.imaging.volume import Grid, Volume
from startrt.physics.nuclides import LU177, SECONDS_PER_HOUR
from startrt.validation import InvalidInputError, PlausibleRange, require_positive

Units = Literal["BQML", "CNTS"]
DecayCorrection = Literal["NONE", "START", "ADMIN"]

INJECTED_ACTIVITY_MBQ = PlausibleRange(1.0, 30000.0, "MBq")
HALF_LIFE_TOLERANCE = 0.01  # relative; a header half-life further from 177Lu's is refused
LU177_PEAK_WINDOW_KEV = (187.2, 228.8)  # 208 keV photopeak +- 10 %
MAX_STORED = 65535  # uint16
FRAMES_PER_ROTATION = 60  # written acquisitions: 60 views of 6 degrees
BQ_PER_MBQ = 1.0e6
INJECTION_TIME_TOLERANCE = timedelta(minutes=1)
ACTIVITY_TOLERANCE = 0.01
NEGATIVE_SHARE_LIMIT = 0.01  # more negative voxels than this share refuses the image
MAPPING_TOLERANCE = 1e-4  # relative; RWVM and Rescale slope/intercept closer than this agree
BQ_PER_ML_CODE = ("Bq/ml", "UCUM")  # MeasurementUnitsCodeSequence (CodeValue, scheme)
FUNCTIONAL_GROUPS = ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
_T = TypeVar("_T", datetime, float)


@dataclass(frozen=True)
class SpectImage:
    """A SPECT activity map, MBq per voxel at the acquisition start (not decay corrected)."""

    volume: Volume
    acquisition_datetime: datetime
    injection_datetime: datetime
    injected_activity_mbq: float
    series_uid: str
    frame_of_reference_uid: str
    source: Path
    notes: tuple[str, ...] = ()  # what the reader changed or assumed, for the results' notes

    def __post_init__(self) -> None:
        _check_times_and_activity(
            self.acquisition_datetime,
            self.injection_datetime,
            self.injected_activity_mbq,
            time_field=str(self.source),
            activity_field=str(self.source),
        )

    @property
    def time_after_injection_h(self) -> float:
        """Hours from the injection to the acquisition start (dates and times)."""
        return _hours_between(self.injection_datetime, self.acquisition_datetime)


def read_spect(
    series: SeriesInfo,
    *,
    calibration_cps_per_mbq: float | None = None,
    injection_datetime: datetime | None = None,
    injected_activity_mbq: float | None = None,
) -> SpectImage:
    """Read a quantitative SPECT series as MBq per voxel at the acquisition start.

    CNTS images need `calibration_cps_per_mbq` (counts per second per MBq; ignored for BQML).
    `injection_datetime` / `injected_activity_mbq` (from the administration record) supply what
    the header lacks: the NM Isotope module (C.8.4.10) has a start time but no date; when the
    header has them too they must agree (1 min, 1 %). Refuses, naming the file: missing injection
    date+time or activity, a missing acquisition date+time, acquisition before the injection, a
    nuclide other than 177Lu, unknown or conflicting units (Units vs RealWorldValueMapping),
    unknown decay correction, more than 1 % negative voxels or a negative total. What the reader
    changed or assumed (negatives clipped, Bq/mL from the RWVM) is in the image's `notes`."""
    if len(series.files) == 1:
        path = series.files[0]
        ds = dc.read_dataset(path)
        grid, values = _multiframe_volume(ds, path)
        acquisition = dc.acquisition_datetime(ds, path, series_fallback=False)
    else:
        grid, values, slices = dc.stack_slices(
            series.files, lambda d, p: _value_mapping(d, p).slope_intercept
        )
        ds, path = slices[0]
        acquisition = min(dc.acquisition_datetime(d, p, series_fallback=False) for d, p in slices)
    mapping = _value_mapping(ds, path)
    notes = [] if mapping.note is None else [f"{path}: {mapping.note}"]
    values = _clip_small_negatives(values, path, notes)
    item = _radiopharmaceutical(ds, path)
    header_injection, acquisition = _naive_local(_header_injection(item, path), acquisition)
    injection = _reconcile(
        path,
        "injection_datetime",
        header_injection,
        injection_datetime,
        lambda header, given: abs(header - given) <= INJECTION_TIME_TOLERANCE,
        "injection date+time missing: no RadiopharmaceuticalStartDateTime (a start time alone "
        "has no date) and no injection_datetime given",
    )
    activity_mbq = _reconcile(
        path,
        "injected_activity_mbq",
        _header_activity_mbq(item, path),
        injected_activity_mbq,
        lambda header, given: abs(header / given - 1) <= ACTIVITY_TOLERANCE,
        "injected activity missing: no RadionuclideTotalDose and no injected_activity_mbq given",
    )
    scale = _mbq_per_voxel_per_unit(ds, path, grid, calibration_cps_per_mbq, mapping.units)
    scale *= _decay_to_acquisition_start(ds, path, _hours_between(injection, acquisition))
    return SpectImage(
        volume=Volume(grid, values * scale),
        acquisition_datetime=acquisition,
        injection_datetime=injection,
        injected_activity_mbq=activity_mbq,
        series_uid=series.uid,
        frame_of_reference_uid=str(dc.require(ds, "FrameOfReferenceUID", path)),
        source=path,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class _ValueMapping:
    """Stored value -> image value (slope, intercept) and the image value's unit."""

    slope: float
    intercept: float
    units: str | None  # BQML, CNTS, or whatever Units says (refused later)
    note: str | None = None

    @property
    def slope_intercept(self) -> tuple[float, float]:
        return self.slope, self.intercept


def _value_mapping(ds: Dataset, path: Path) -> _ValueMapping:
    """The RWVM's Bq/ml mapping when present (checked against Units), else the Rescale's."""
    for keyword in FUNCTIONAL_GROUPS:
        if keyword in ds:
            raise InvalidInputError(
                str(path),
                keyword,
                "enhanced multi-frame functional groups (C.7.6.16) are not read: their per-frame "
                "rescale and position would be ignored",
            )
    rescale_slope, rescale_intercept = dc.rescale(ds, path)
    units = ds.get("Units") or None
    rwvm = _bq_per_ml_mapping(ds, path)
    if rwvm is None:
        return _ValueMapping(rescale_slope, rescale_intercept, units)
    slope, intercept = rwvm
    same = _close(slope, rescale_slope) and _close(intercept, rescale_intercept, abs(slope))
    stated = (
        f"RealWorldValueMapping Bq/ml slope={slope:g} intercept={intercept:g}, "
        f"RescaleSlope={rescale_slope:g} RescaleIntercept={rescale_intercept:g}"
    )
    if units == "BQML" and not same:
        raise InvalidInputError(
            str(path), f"Units=BQML; {stated}", "Bq/mL by Units and by RWVM disagree"
        )
    if units == "CNTS" and same:
        raise InvalidInputError(
            str(path),
            f"Units=CNTS; {stated}",
            "the same values are counts by Units and Bq/mL by RWVM",
        )
    note = None
    if units != "BQML":
        note = f"Bq/mL from the RealWorldValueMappingSequence (Units={units})"
    return _ValueMapping(slope, intercept, "BQML", note)


def _bq_per_ml_mapping(ds: Dataset, path: Path) -> tuple[float, float] | None:
    """(RealWorldValueSlope, RealWorldValueIntercept) of the RWVM items in Bq/ml (UCUM)."""
    found: list[tuple[float, float]] = []
    for item in ds.get("RealWorldValueMappingSequence") or []:
        codes = item.get("MeasurementUnitsCodeSequence") or []
        code = codes[0] if codes else Dataset()
        if (str(code.get("CodeValue", "")), str(code.get("CodingSchemeDesignator", ""))) != (
            BQ_PER_ML_CODE
        ):
            continue
        if item.get("RealWorldValueSlope") in (None, ""):
            raise InvalidInputError(
                str(path), "RealWorldValueMappingSequence Bq/ml", "needs RealWorldValueSlope"
            )
        try:
            mapping = (
                float(item.RealWorldValueSlope),
                float(item.get("RealWorldValueIntercept") or 0.0),
            )
        except (TypeError, ValueError) as error:
            raise InvalidInputError(
                str(path), "RealWorldValueSlope/Intercept", f"malformed ({error})"
            ) from None
        if mapping[0] == 0 or not all(math.isfinite(v) for v in mapping):
            raise InvalidInputError(str(path), mapping, "RealWorldValueSlope must be finite, != 0")
        if found and not (
            _close(mapping[0], found[0][0]) and _close(mapping[1], found[0][1], abs(mapping[0]))
        ):
            raise InvalidInputError(
                str(path), f"Bq/ml mappings {found[0]} and {mapping}", "RWVM items disagree"
            )
        found.append(mapping)
    return found[0] if found else None


def _close(a: float, b: float, scale: float = 0.0) -> bool:
    return math.isclose(a, b, rel_tol=MAPPING_TOLERANCE, abs_tol=MAPPING_TOLERANCE * scale)


def _clip_small_negatives(
    values: npt.NDArray[np.float64], path: Path, notes: list[str]
) -> npt.NDArray[np.float64]:
    """Clip a few negative voxels to 0 with a note; refuse many, or a negative total."""
    negative = values < 0
    count = int(np.count_nonzero(negative))
    if count == 0:
        return values
    share = count / values.size
    total = float(values.sum())
    if share > NEGATIVE_SHARE_LIMIT or total < 0:
        raise InvalidInputError(
            str(path),
            f"{count} of {values.size} voxels negative after rescale (min {values.min():g}, "
            f"total {total:g})",
            f"negative values: at most {NEGATIVE_SHARE_LIMIT:.0%} of the voxels and a "
            "non-negative total are clipped to 0",
        )
    notes.append(
        f"{path}: {count} negative voxels ({share:.3%}, min {values.min():g} image units) "
        "clipped to 0"
    )
    return np.where(negative, 0.0, values)


def _multiframe_volume(ds: Dataset, path: Path) -> tuple[Grid, npt.NDArray[np.float64]]:
    """Frames ordered by SliceVector and stacked along the normal (row x column) from the first
    frame's position, SpacingBetweenSlices apart; a negative spacing stacks them against the
    normal (C.8.4.15), which is read as the same volume with the frames reversed."""
    frames = dc.pixel_array(ds, path).astype(np.float64)
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    if ds.get("NumberOfSlices") and int(ds.NumberOfSlices) != frames.shape[0]:
        raise InvalidInputError(str(path), ds.NumberOfSlices, "NumberOfSlices differs from frames")
    if "SliceVector" in ds:
        frames = frames[np.argsort(np.asarray(ds.SliceVector, dtype=int), kind="stable")]
    detector = ds.DetectorInformationSequence[0] if ds.get("DetectorInformationSequence") else ds
    position = detector.get("ImagePositionPatient") or ds.get("ImagePositionPatient")
    orientation = detector.get("ImageOrientationPatient") or ds.get("ImageOrientationPatient")
    if position is None or orientation is None:
        raise InvalidInputError(str(path), "geometry", "no ImagePositionPatient/Orientation")
    first = np.asarray(position, dtype=float)
    spacing = _signed_frame_spacing_mm(ds, path)
    if spacing < 0:
        normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
        first = first + (frames.shape[0] - 1) * spacing * normal
        frames, spacing = frames[::-1], -spacing
    grid = dc.grid_from_plane(
        first,
        orientation,
        dc.require(ds, "PixelSpacing", path),
        (frames.shape[0], frames.shape[1], frames.shape[2]),
        spacing,
    )
    slope, intercept = _value_mapping(ds, path).slope_intercept
    return grid, frames * slope + intercept


def _signed_frame_spacing_mm(ds: Dataset, path: Path) -> float:
    value = ds.get("SpacingBetweenSlices")
    if value is None or value == "":
        return dc.slice_spacing(ds, path)
    if float(value) == 0:
        raise InvalidInputError(str(path), value, "SpacingBetweenSlices must not be 0 mm")
    return float(value)


def _radiopharmaceutical(ds: Dataset, path: Path) -> Dataset:
    """RadiopharmaceuticalInformationSequence[0] (C.8.4.10), refusing other nuclides."""
    items = ds.get("RadiopharmaceuticalInformationSequence")
    item = items[0] if items else Dataset()
    half_life_s = item.get("RadionuclideHalfLife")
    lu177_half_life_s = LU177.half_life_h * SECONDS_PER_HOUR
    if half_life_s and abs(float(half_life_s) / lu177_half_life_s - 1) > HALF_LIFE_TOLERANCE:
        raise InvalidInputError(str(path), f"RadionuclideHalfLife={half_life_s} s", "not 177Lu")
    return item


def _header_injection(item: Dataset, path: Path) -> datetime | None:
    if not item.get("RadiopharmaceuticalStartDateTime"):
        return None
    return dc.parse_dt(
        item.RadiopharmaceuticalStartDateTime, path, "RadiopharmaceuticalStartDateTime"
    )


def _header_activity_mbq(item: Dataset, path: Path) -> float | None:
    """RadionuclideTotalDose: MBq in NM (C.8.4.10.1.7), Bq in PET (C.8.9.2); the plausible
    ranges of the two readings do not overlap, so the value itself tells which was written."""
    value = item.get("RadionuclideTotalDose")
    if value is None or value == "":
        return None
    number = float(value)
    for mbq in (number, number / BQ_PER_MBQ):
        if INJECTED_ACTIVITY_MBQ.low <= mbq <= INJECTED_ACTIVITY_MBQ.high:
            return mbq
    raise InvalidInputError(
        str(path), f"RadionuclideTotalDose={value}", "implausible as MBq and as Bq"
    )


def _reconcile(
    path: Path,
    field: str,
    from_header: _T | None,
    given: _T | None,
    agree: Callable[[_T, _T], bool],
    missing: str,
) -> _T:
    """The header's value, else the given one; when both are present they must agree."""
    if from_header is None:
        if given is None:
            raise InvalidInputError(str(path), field, missing)
        return given
    if given is not None and not agree(from_header, given):
        raise InvalidInputError(str(path), f"{field}={from_header}", f"header differs from {given}")
    return from_header


def _naive_local(
    injection: datetime | None, acquisition: datetime
) -> tuple[datetime | None, datetime]:
    """Both as naive local times; with UTC offsets on both, on the acquisition's clock."""
    if injection is None:
        return None, acquisition.replace(tzinfo=None)
    if injection.tzinfo is not None and acquisition.tzinfo is not None:
        injection = injection.astimezone(acquisition.tzinfo)
    return injection.replace(tzinfo=None), acquisition.replace(tzinfo=None)


def _check_times_and_activity(
    acquisition: datetime,
    injection: datetime,
    activity_mbq: float,
    *,
    time_field: str,
    activity_field: str,
) -> None:
    if acquisition < injection:
        raise InvalidInputError(
            time_field,
            f"acquisition {acquisition.isoformat()}, injection {injection.isoformat()}",
            "SPECT acquisition time is before the injection",
        )
    INJECTED_ACTIVITY_MBQ.check(activity_field, activity_mbq)


def _hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / SECONDS_PER_HOUR


def _mbq_per_voxel_per_unit(
    ds: Dataset, path: Path, grid: Grid, calibration_cps_per_mbq: float | None, units: str | None
) -> float:
    """Factor from the image unit to MBq per voxel: Bq/mL * mL / 1e6, or counts / s / (cps/MBq)."""
    if units == "BQML":
        return grid.voxel_volume_ml / BQ_PER_MBQ
    if units == "CNTS":
        if calibration_cps_per_mbq is None:
            raise InvalidInputError(
                str(path), "CNTS", "counts need calibration_cps_per_mbq (counts/s per MBq)"
            )
        calibration = require_positive(
            "calibration_cps_per_mbq", calibration_cps_per_mbq, "cps/MBq"
        )
        return 1.0 / (_acquisition_duration_s(ds, path) * calibration)
    raise InvalidInputError(str(path), f"Units={units}", "units must be BQML or CNTS")


def _acquisition_duration_s(ds: Dataset, path: Path) -> float:
    """Sum over rotations of ActualFrameDuration (ms) x NumberOfFramesInRotation (C.8.4.12), or
    ActualFrameDuration (0018,1242) of a single frame."""
    rotations = ds.get("RotationInformationSequence")
    if rotations:
        duration_ms: float = sum(
            float(dc.require(r, "ActualFrameDuration", path))
            * int(dc.require(r, "NumberOfFramesInRotation", path))
            for r in rotations
        )
    else:
        duration_ms = float(dc.require(ds, "ActualFrameDuration", path))
    if duration_ms <= 0:
        raise InvalidInputError(str(path), duration_ms, "acquisition duration must be > 0 ms")
    return duration_ms / 1000.0


def _stated_duration_s(ds: Dataset, path: Path) -> float | None:
    """The acquisition duration when the header states it, else None."""
    if not ds.get("RotationInformationSequence") and ds.get("ActualFrameDuration") in (None, ""):
        return None
    return _acquisition_duration_s(ds, path)


def _scan_mean_to_start(duration_s: float) -> float:
    """A(start) / mean of A over a scan of `duration_s`: lambda T / (1 - exp(-lambda T))."""
    decays = math.log(2) / LU177.half_life_h * duration_s / SECONDS_PER_HOUR
    return decays / -math.expm1(-decays)


def _decay_to_acquisition_start(ds: Dataset, path: Path, elapsed_h: float) -> float:
    """Factor bringing the values to the acquisition start: 1 for START; the decay from the
    injection for ADMIN; for NONE, from the scan's mean (its midpoint) to its start,
    lambda T / (1 - exp(-lambda T)), when the duration T is stated, else 1."""
    correction = ds.get("DecayCorrection")
    if correction == "START":
        return 1.0
    if correction == "NONE":
        duration_s = _stated_duration_s(ds, path)
        return 1.0 if duration_s is None else _scan_mean_to_start(duration_s)
    if correction == "ADMIN":
        return LU177.decay_factor(elapsed_h)
    raise InvalidInputError(
        str(path), f"DecayCorrection={correction}", "decay correction must be NONE, START or ADMIN"
    )


def write_spect_nm(
    volume_mbq: Volume,
    folder: Path,
    *,
    acquisition_datetime: datetime,
    injection_datetime: datetime,
    injected_activity_mbq: float,
    patient_id: str,
    study_uid: str,
    frame_of_reference_uid: str,
    units: Units = "BQML",
    calibration_cps_per_mbq: float | None = None,
    acquisition_duration_s: float | None = None,
    decay_correction: DecayCorrection = "START",
    series_description: str = "",
) -> Path:
    """Write MBq-per-voxel activity (at the acquisition start) as one NM multi-frame file
    (RECON TOMO, uint16 with one RescaleSlope) in `folder`; returns the file's path.

    CNTS needs `calibration_cps_per_mbq` and `acquisition_duration_s`; ADMIN stores values
    decay-corrected to the injection (divided by exp(-lambda t)); NONE with CNTS (whose duration
    is written) stores the mean over the scan, as `read_spect` expects."""
    _check_times_and_activity(
        acquisition_datetime,
        injection_datetime,
        injected_activity_mbq,
        time_field="acquisition_datetime",
        activity_field="injected_activity_mbq",
    )
    dc.require_slices_along_normal(volume_mbq.grid, "volume_mbq")
    activity = np.asarray(volume_mbq.array, dtype=np.float64)
    if not np.all(np.isfinite(activity)) or activity.min() < 0:
        raise InvalidInputError("volume_mbq", float(activity.min()), "must be finite and >= 0")
    if decay_correction == "ADMIN":
        elapsed_h = _hours_between(injection_datetime, acquisition_datetime)
        activity = activity / LU177.decay_factor(elapsed_h)
    ds = dc.new_instance(
        NuclearMedicineImageStorage,
        modality="NM",
        study=dc.study_module(patient_id, study_uid, acquisition_datetime),
        series_uid=generate_uid(),
        frame_of_reference_uid=frame_of_reference_uid,
        series_number=2,
        series_description=series_description,
        content_datetime=acquisition_datetime,
    )
    if units == "BQML":
        image_values = activity * BQ_PER_MBQ / volume_mbq.grid.voxel_volume_ml
    elif units == "CNTS":
        image_values = activity * _set_counts_acquisition(
            ds, calibration_cps_per_mbq, acquisition_duration_s
        )
        if decay_correction == "NONE":  # counts are the scan's mean, as the reader expects
            image_values /= _scan_mean_to_start(_acquisition_duration_s(ds, folder))
    else:
        raise InvalidInputError("units", units, "must be BQML or CNTS")
    _set_nm_image(ds, volume_mbq.grid, image_values)
    _set_acquisition(ds, acquisition_datetime, units, decay_correction)
    _set_isotope(ds, injection_datetime, injected_activity_mbq)
    return dc.save(ds, folder / f"NM_{ds.SeriesInstanceUID}.dcm")


def _set_counts_acquisition(
    ds: Dataset, calibration_cps_per_mbq: float | None, acquisition_duration_s: float | None
) -> float:
    """Write the rotation (C.8.4.12) and return counts per MBq for the duration as encoded."""
    if calibration_cps_per_mbq is None or acquisition_duration_s is None:
        raise InvalidInputError(
            "units", "CNTS", "needs calibration_cps_per_mbq and acquisition_duration_s"
        )
    calibration = require_positive("calibration_cps_per_mbq", calibration_cps_per_mbq, "cps/MBq")
    duration_s = require_positive("acquisition_duration_s", acquisition_duration_s, "s")
    frame_ms = max(1, round(duration_s * 1000.0 / FRAMES_PER_ROTATION))
    rotation = Dataset()
    rotation.StartAngle = 0
    rotation.AngularStep = 360 / FRAMES_PER_ROTATION
    rotation.RotationDirection = "CW"
    rotation.ScanArc = 360
    rotation.ActualFrameDuration = frame_ms
    rotation.NumberOfFramesInRotation = FRAMES_PER_ROTATION
    ds.RotationInformationSequence = [rotation]
    return calibration * frame_ms * FRAMES_PER_ROTATION / 1000.0


def _set_nm_image(ds: Dataset, grid: Grid, image_values: npt.NDArray[np.float64]) -> None:
    """NM Image Pixel, Multi-frame, NM Multi-frame, NM Detector, NM Reconstruction (C.8.4)."""
    slope = dc.slope_for(float(image_values.max()), MAX_STORED)
    pixels = dc.quantize(image_values, slope, MAX_STORED, np.uint16)
    slices = grid.shape[0]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.InstanceNumber = 1
    dc.set_image_pixel(ds, grid, bits=16, signed=False)
    ds.PixelSpacing = dc.pixel_spacing_of(grid)
    ds.RescaleSlope = slope
    ds.RescaleIntercept = 0
    ds.NumberOfFrames = slices
    ds.FrameIncrementPointer = [0x00540080]  # SliceVector
    ds.SliceVector = list(range(1, slices + 1))
    ds.NumberOfSlices = slices
    ds.NumberOfEnergyWindows = ds.NumberOfDetectors = ds.NumberOfRotations = 1
    ds.SpacingBetweenSlices = ds.SliceThickness = dc.decimal_strings([grid.spacing_mm[2]])[0]
    detector = Dataset()
    detector.CollimatorType = "PARA"
    detector.FocalDistance = None
    detector.ImagePositionPatient = dc.decimal_strings(grid.origin_mm)
    detector.ImageOrientationPatient = dc.orientation_of(grid)
    ds.DetectorInformationSequence = [detector]
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()


def _set_acquisition(
    ds: Dataset, acquisition: datetime, units: Units, decay_correction: DecayCorrection
) -> None:
    date, time, date_time = dc.format_dt(acquisition)
    ds.SeriesDate = ds.AcquisitionDate = date
    ds.SeriesTime = ds.AcquisitionTime = time
    ds.AcquisitionDateTime = date_time
    ds.Units = units
    ds.DecayCorrection = decay_correction
    ds.CountsAccumulated = None
    ds.BodyPartExamined = "ABDOMEN"
    ds.PatientOrientationCodeSequence = []
    ds.PatientGantryRelationshipCodeSequence = []
    ds.AcquisitionContextSequence = []
    if "RotationInformationSequence" not in ds:
        ds.RotationInformationSequence = []


def _set_isotope(ds: Dataset, injection: datetime, activity_mbq: float) -> None:
    """NM Isotope module (C.8.4.10): 177Lu photopeak window and the administration."""
    window_range = Dataset()
    window_range.EnergyWindowLowerLimit, window_range.EnergyWindowUpperLimit = LU177_PEAK_WINDOW_KEV
    window = Dataset()
    window.EnergyWindowRangeSequence = [window_range]
    window.EnergyWindowName = "Lu177 208 keV"
    ds.EnergyWindowInformationSequence = [window]
    _, time, date_time = dc.format_dt(injection)
    item = Dataset()
    item.Radiopharmaceutical = LU177.name
    item.RadiopharmaceuticalStartTime = time
    item.RadiopharmaceuticalStartDateTime = date_time
    item.RadionuclideCodeSequence = []
    item.RadionuclideTotalDose, item.RadionuclideHalfLife = dc.decimal_strings(
        [activity_mbq, LU177.half_life_h * SECONDS_PER_HOUR]  # MBq in NM (C.8.4.10.1.7)
    )
    ds.RadiopharmaceuticalInformationSequence = [item]
