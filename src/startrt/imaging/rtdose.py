"""Absorbed-dose maps as DICOM RT Dose (PS3.3 A.18), so that viewers and planning systems can
overlay them on the SPECT/CT.

RT Dose module (C.8.8.3): uint32 pixels times DoseGridScaling give Gy; the frames are slices at
GridFrameOffsetVector (relative offsets, first 0, along the normal of ImageOrientationPatient,
C.8.8.3.2) from ImagePositionPatient; Multi-frame module (C.7.6.6) with FrameIncrementPointer to
that vector; RT Series module (C.8.8.1).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.uid import RTDoseStorage, generate_uid

from startrt.imaging import dicom_common as dc
from startrt.imaging.spect import SpectImage
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

MAX_STORED = 2**31 - 1  # uint32, kept below 2**31 for readers that take 32 bits as signed
GRID_FRAME_OFFSET_VECTOR = 0x3004000C
# DoseSummationType has Defined Terms, which may be extended (PS3.3 C.8.8.3); every standard term
# (PLAN, FRACTION, RECORD, ...) requires a referenced RT Plan or Treatment Record, which molecular
# radiotherapy does not have.
DOSE_SUMMATION_TYPE = "MRT_CYCLE"
StudyReference = tuple[str, str, str]  # (patient_id, study_uid, frame_of_reference_uid)


def write_rtdose(
    dose_gy: Volume,
    path: Path,
    *,
    reference: SpectImage | StudyReference,
    description: str = "",
) -> Path:
    """Write `dose_gy` as an RT Dose file at `path` in the patient, study and frame of reference
    of `reference` (a SPECT read from DICOM, or (patient_id, study_uid, frame_of_reference_uid))."""
    dc.require_slices_along_normal(dose_gy.grid, "dose_gy")
    dose = np.asarray(dose_gy.array, dtype=np.float64)
    if not np.all(np.isfinite(dose)) or dose.min() < 0:
        raise InvalidInputError("dose_gy", float(dose.min()), "must be finite and >= 0 Gy")
    study, frame_of_reference_uid = _study_of(reference)
    ds = dc.new_instance(
        RTDoseStorage,
        modality="RTDOSE",
        study=study,
        series_uid=generate_uid(),
        frame_of_reference_uid=frame_of_reference_uid,
        series_number=3,
        series_description=description,
        content_datetime=datetime.now(),
    )
    _set_dose_image(ds, dose_gy.grid, dose, description)
    return dc.save(ds, path)


def _study_of(reference: SpectImage | StudyReference) -> tuple[Dataset, str]:
    if isinstance(reference, SpectImage):
        header = dc.read_dataset(reference.source, stop_before_pixels=True)
        return dc.study_module_of(header), reference.frame_of_reference_uid
    patient_id, study_uid, frame_of_reference_uid = reference
    return dc.study_module(patient_id, study_uid, datetime.now()), frame_of_reference_uid


def _set_dose_image(
    ds: Dataset, grid: Grid, dose: npt.NDArray[np.float64], description: str
) -> None:
    """General Image, Image Plane, Image Pixel, Multi-frame and RT Dose modules."""
    scaling = dc.slope_for(float(dose.max()), MAX_STORED)
    slices = grid.shape[0]
    ds.OperatorsName = ""
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = dc.decimal_strings(grid.origin_mm)
    ds.ImageOrientationPatient = dc.orientation_of(grid)
    ds.PixelSpacing = dc.pixel_spacing_of(grid)
    ds.SliceThickness = dc.decimal_strings([grid.spacing_mm[2]])[0]
    dc.set_image_pixel(ds, grid, bits=32, signed=False)
    ds.NumberOfFrames = slices
    ds.FrameIncrementPointer = GRID_FRAME_OFFSET_VECTOR
    ds.GridFrameOffsetVector = dc.decimal_strings(np.arange(slices) * grid.spacing_mm[2])
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseComment = description[:64]
    ds.DoseSummationType = DOSE_SUMMATION_TYPE
    ds.DoseGridScaling = scaling
    ds.PixelData = dc.quantize(dose, scaling, MAX_STORED, np.uint32).tobytes()


def read_rtdose(path: Path) -> Volume:
    """The dose (Gy) of an RT Dose file: stored * DoseGridScaling, frames ordered along the
    normal; GridFrameOffsetVector relative (first 0) or absolute z (axial), C.8.8.3.2."""
    ds = dc.read_dataset(path)
    if ds.get("DoseUnits") != "GY":
        raise InvalidInputError(str(path), f"DoseUnits={ds.get('DoseUnits')}", "must be GY")
    frames = dc.pixel_array(ds, path).astype(np.float64) * float(
        dc.require(ds, "DoseGridScaling", path)
    )
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    offsets = np.asarray(dc.require(ds, "GridFrameOffsetVector", path), dtype=float)
    if offsets.size != frames.shape[0]:
        raise InvalidInputError(str(path), offsets.size, "one GridFrameOffsetVector per frame")
    offsets -= offsets[0]  # absolute z: the first frame is at ImagePositionPatient too
    order = np.argsort(offsets)
    if offsets.size > 1:
        spacing = dc.even_spacing(offsets[order], f"{path}: GridFrameOffsetVector")
    else:
        spacing = dc.slice_spacing(ds, path)
    position = np.asarray(dc.require(ds, "ImagePositionPatient", path), dtype=float)
    orientation = [float(v) for v in dc.require(ds, "ImageOrientationPatient", path)]
    normal = np.cross(orientation[:3], orientation[3:])
    grid = dc.grid_from_plane(
        position + offsets[order[0]] * normal,
        orientation,
        dc.require(ds, "PixelSpacing", path),
        (frames.shape[0], frames.shape[1], frames.shape[2]),
        spacing,
    )
    return Volume(grid, frames[order])
