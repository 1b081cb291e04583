"""Loading one cycle's post-therapy study: SPECT per time point, CT, VOIs, alignment.

A study folder holds the DICOM of one cycle: one quantitative SPECT per time point (NM or PT),
usually a CT with each (same frame of reference), and the VOIs as RTSTRUCT (contours drawn on the
first time point's CT) or DICOM SEG, or a label image `labels.nii.gz` with `labels.json`
({"1": "left_kidney", ...}). Every later time point is aligned to the first: its CT registered
rigidly to the first CT (or its SPECT to the first SPECT without CT), unless the caller declares
the time points aligned; the VOIs then follow the patient onto each time point's own SPECT grid
(images are never resampled). Errors name the file at fault.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pydicom

from startrt.imaging.ct import CtImage, read_ct
from startrt.imaging.dicom_scan import DicomIndex, SeriesInfo, scan_dicom_folder
from startrt.imaging.registration import (
    DECLARED_ALIGNED,
    RigidAlignment,
    RigidRegistration,
    moved_grid,
)
from startrt.imaging.rtstruct import read_rtstruct
from startrt.imaging.seg import read_seg
from startrt.imaging.spect import SpectImage, read_spect
from startrt.imaging.vois import VoiSet, read_label_image, vois_on_grid
from startrt.imaging.volume import Volume, resample_linear
from startrt.validation import InvalidInputError

Progress = Callable[[str], None]
LABEL_IMAGE = "labels.nii.gz"
LABEL_NAMES = "labels.json"
INJECTION_TOLERANCE_H = 1.0 / 60.0
ACTIVITY_TOLERANCE = 0.01
AIR_HU = -1000.0


@dataclass(frozen=True)
class TimePoint:
    """One imaging session: its SPECT (activity in MBq per voxel, on its own grid), its CT, how
    it was aligned to the first time point, and the VOIs moved onto its SPECT grid."""

    spect: SpectImage
    ct: CtImage | None
    alignment: RigidAlignment
    vois: VoiSet

    @property
    def activity_mbq(self) -> Volume:
        return self.spect.volume

    @property
    def time_h(self) -> float:
        return self.spect.time_after_injection_h


@dataclass(frozen=True)
class Study:
    """Everything the dosimetry of one cycle reads; `vois` are those of the first time point."""

    folder: Path
    time_points: tuple[TimePoint, ...]
    voi_source: str
    patient_id: str
    patient_sex: str | None

    @property
    def vois(self) -> VoiSet:
        return self.time_points[0].vois

    @property
    def injection_datetime(self) -> datetime:
        return self.time_points[0].spect.injection_datetime

    @property
    def injected_activity_mbq(self) -> float:
        return self.time_points[0].spect.injected_activity_mbq


def _no_progress(_: str) -> None:
    return None


def load_study(
    folder: Path,
    *,
    calibration_cps_per_mbq: float | None = None,
    declared_aligned: bool = False,
    progress: Progress = _no_progress,
) -> Study:
    """Read, check and align a study folder (see the module docstring)."""
    progress("scanning DICOM files")
    index = scan_dicom_folder(folder)
    spect_series = index.series("NM") + index.series("PT")
    if not spect_series:
        raise InvalidInputError(str(folder), "no NM or PT series", "a study needs SPECT images")
    spects = []
    for series in spect_series:
        progress(f"reading SPECT {series.files[0].name}")
        spects.append(read_spect(series, calibration_cps_per_mbq=calibration_cps_per_mbq))
    spects.sort(key=lambda spect: spect.acquisition_datetime)
    _require_one_administration(spects)
    ct_series = {series.frame_of_reference_uid: series for series in index.series("CT")}

    def ct_of(spect: SpectImage) -> CtImage | None:
        series = ct_series.get(spect.frame_of_reference_uid)
        if series is None:
            return None
        progress(f"reading CT {series.description or series.uid}")
        return read_ct(series)

    reference = spects[0]
    reference_ct = ct_of(reference)
    progress("reading VOIs")
    masks, source = _read_vois(folder, index, reference_ct)
    registrations = _Registrations(reference, reference_ct)
    time_points: list[TimePoint] = []
    for spect in spects:
        alignment = DECLARED_ALIGNED
        ct = reference_ct if spect is reference else None
        if spect is not reference and not declared_aligned:
            progress(f"registering the {spect.time_after_injection_h:.0f} h time point")
            ct = ct_of(spect)
            alignment = registrations.align(spect, ct)
        same_place = alignment is DECLARED_ALIGNED and bool(time_points)
        if same_place and spect.volume.grid.matches(time_points[0].vois.grid):
            vois = time_points[0].vois  # the same masks on the same grid
        else:
            vois = _vois_on_spect(masks, alignment, spect, source)
        time_points.append(TimePoint(spect, ct, alignment, vois))
    header = pydicom.dcmread(reference.source, stop_before_pixels=True)
    return Study(
        folder=folder,
        time_points=tuple(time_points),
        voi_source=source,
        patient_id=str(header.get("PatientID", "")),
        patient_sex={"F": "female", "M": "male"}.get(str(header.get("PatientSex", ""))),
    )


@dataclass(frozen=True, eq=False)
class _Registrations:
    """Later time points registered to the first: CT to CT when both have one (each CT on its
    own SPECT's grid, so the cost is set by the SPECT size), else SPECT to SPECT; each reference
    is prepared once (on first use) for all the time points."""

    reference: SpectImage
    reference_ct: CtImage | None

    @functools.cached_property
    def _to_reference_ct(self) -> RigidRegistration:
        assert self.reference_ct is not None
        return RigidRegistration(_ct_on_spect_grid(self.reference_ct, self.reference))

    @functools.cached_property
    def _to_reference_spect(self) -> RigidRegistration:
        return RigidRegistration(self.reference.volume)

    def align(self, spect: SpectImage, ct: CtImage | None) -> RigidAlignment:
        if ct is not None and self.reference_ct is not None:
            return self._to_reference_ct.align(_ct_on_spect_grid(ct, spect))
        return self._to_reference_spect.align(spect.volume)


def _ct_on_spect_grid(ct: CtImage, spect: SpectImage) -> Volume:
    return resample_linear(ct.volume, spect.volume.grid, outside=AIR_HU)


def _vois_on_spect(
    masks: Mapping[str, Volume], alignment: RigidAlignment, spect: SpectImage, source: str
) -> VoiSet:
    """The reference VOIs moved with the patient onto a time point's SPECT grid."""
    moved = {
        name: Volume(moved_grid(mask.grid, alignment), mask.array) for name, mask in masks.items()
    }
    try:
        return vois_on_grid(moved, spect.volume.grid)
    except InvalidInputError as error:
        raise InvalidInputError(
            source, error.value, f"VOI {error.field} on the SPECT {spect.source}: {error.rule}"
        ) from None


def _require_one_administration(spects: list[SpectImage]) -> None:
    """All time points must belong to one injection (same time and activity)."""
    first = spects[0]
    for spect in spects[1:]:
        hours = abs((spect.injection_datetime - first.injection_datetime).total_seconds()) / 3600
        if hours > INJECTION_TOLERANCE_H:
            raise InvalidInputError(
                str(spect.source),
                spect.injection_datetime.isoformat(),
                f"injection time differs from {first.injection_datetime} in {first.source}",
            )
        relative = abs(spect.injected_activity_mbq / first.injected_activity_mbq - 1)
        if relative > ACTIVITY_TOLERANCE:
            raise InvalidInputError(
                str(spect.source),
                spect.injected_activity_mbq,
                f"injected activity differs from {first.injected_activity_mbq} MBq in "
                f"{first.source}",
            )
        if spect.acquisition_datetime == first.acquisition_datetime:
            raise InvalidInputError(
                str(spect.source), spect.acquisition_datetime.isoformat(), "two SPECTs at one time"
            )


def _read_vois(
    folder: Path, index: DicomIndex, reference_ct: CtImage | None
) -> tuple[dict[str, Volume], str]:
    structures: list[SeriesInfo] = index.series("RTSTRUCT")
    if structures:
        path = structures[0].files[0]
        if reference_ct is None:
            raise InvalidInputError(
                str(path), "no CT", "RTSTRUCT contours need the CT of the first time point"
            )
        return read_rtstruct(path, reference_ct.volume.grid), str(path)
    segmentations = index.series("SEG")
    if segmentations:
        path = segmentations[0].files[0]
        return read_seg(path), str(path)
    label_image = folder / LABEL_IMAGE
    if label_image.exists():
        return read_label_image(label_image, _label_names(folder / LABEL_NAMES)), str(label_image)
    raise InvalidInputError(
        str(folder), "no VOIs", f"needs an RTSTRUCT, a SEG or {LABEL_IMAGE} with {LABEL_NAMES}"
    )


def _label_names(path: Path) -> Mapping[int, str]:
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
        return {int(label): str(name) for label, name in names.items()}
    except (OSError, ValueError, AttributeError) as error:
        raise InvalidInputError(str(path), type(error).__name__, "needs {label: name}") from None
