"""DICOM helpers shared by the SPECT, CT and RT Dose readers and writers.

Reading with errors that name the file; dates and times (PS3.5 6.2: DA, TM, DT); plane geometry
(PS3.3 C.7.6.2 Image Plane: ImagePositionPatient, ImageOrientationPatient, PixelSpacing);
quantization to unsigned integers with a slope; and the modules every written instance carries:
Patient (C.7.1.1), General Study (C.7.2.1), General Series (C.7.3.1), Frame of Reference
(C.7.4.1), General Equipment (C.7.5.1), SOP Common (C.12.1), with the PS3.10 7.1 file meta
information in Explicit VR Little Endian.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import DA, DT, TM, DSfloat, format_number_as_ds

from startrt.imaging.volume import Grid
from startrt.validation import InvalidInputError

MANUFACTURER = "startrt"
SLICE_SPACING_TOLERANCE = 0.01  # relative deviation allowed between consecutive slice gaps
STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def read_dataset(
    path: Path,
    *,
    stop_before_pixels: bool = False,
    specific_tags: Sequence[str] | None = None,
    decode_all: bool = True,
) -> Dataset:
    """The dataset in `path` (only `specific_tags` if given). With `decode_all`, every element
    is decoded now (pydicom decodes lazily), so that any malformed element is an
    InvalidInputError naming the file rather than a later surprise; series of hundreds of
    slices skip it for speed and are checked element by element as they are used."""
    try:
        dataset = pydicom.dcmread(
            path,
            stop_before_pixels=stop_before_pixels,
            specific_tags=None if specific_tags is None else list(specific_tags),
        )
        if decode_all:
            for _ in dataset.iterall():
                pass
    except Exception as error:  # any parse failure is the file's fault
        raise InvalidInputError(
            str(path), "unreadable", f"is not a valid DICOM file ({error})"
        ) from error
    return dataset


def pixel_array(ds: Dataset, path: Path) -> npt.NDArray[np.generic]:
    """Stored pixel values of `ds` (frames, rows, columns or rows, columns)."""
    try:
        return ds.pixel_array
    except Exception as error:  # truncated or inconsistent pixel data
        raise InvalidInputError(str(path), "PixelData", f"cannot be decoded ({error})") from error


def require(ds: Dataset, keyword: str, path: Path) -> Any:
    """Value of a required attribute, refusing the file when it is absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        raise InvalidInputError(str(path), keyword, "required attribute is missing or empty")
    return value


def parse_datetime(date: object, time: object, path: Path, field: str) -> datetime:
    """A DA value and a TM value combined (PS3.5 6.2), refusing malformed values."""
    try:
        return datetime.combine(DA(str(date)), TM(str(time)))
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            str(path), f"{field}={date} {time}", f"malformed ({error})"
        ) from error


def parse_dt(value: object, path: Path, field: str) -> datetime:
    """A DT value (PS3.5 6.2), possibly with a UTC offset (then time zone aware)."""
    try:
        return DT(str(value))
    except (ValueError, TypeError) as error:
        raise InvalidInputError(str(path), f"{field}={value}", f"malformed ({error})") from error


def acquisition_datetime(ds: Dataset, path: Path, *, series_fallback: bool = True) -> datetime:
    """Start of acquisition: AcquisitionDateTime, else AcquisitionDate + AcquisitionTime, else
    (with `series_fallback`) SeriesDate + SeriesTime (PS3.3 C.7.10.1 General Acquisition, C.7.3.1
    General Series). Without `series_fallback` a file lacking the acquisition date and time is
    refused: the series (and content) time of a reconstruction is when it was made, often tens of
    minutes after the scan."""
    if ds.get("AcquisitionDateTime"):
        return parse_dt(ds.AcquisitionDateTime, path, "AcquisitionDateTime")
    pairs = [("AcquisitionDate", "AcquisitionTime")]
    if series_fallback:
        pairs.append(("SeriesDate", "SeriesTime"))
    for date_keyword, time_keyword in pairs:
        if ds.get(date_keyword) and ds.get(time_keyword):
            date, time = ds.get(date_keyword), ds.get(time_keyword)
            return parse_datetime(date, time, path, f"{date_keyword}/{time_keyword}")
    if not series_fallback:
        raise InvalidInputError(
            str(path),
            "AcquisitionDateTime",
            "no AcquisitionDateTime nor AcquisitionDate + AcquisitionTime (SeriesDate/Time and "
            "ContentDate/Time are not used: they may be the reconstruction's time, after the scan)",
        )
    raise InvalidInputError(str(path), "acquisition time", "no acquisition or series date and time")


def format_dt(moment: datetime) -> tuple[str, str, str]:
    """(DA, TM, DT) strings of a naive datetime."""
    return (
        moment.strftime("%Y%m%d"),
        moment.strftime("%H%M%S.%f"),
        moment.strftime("%Y%m%d%H%M%S.%f"),
    )


def slope_for(peak: float, max_stored: int) -> float:
    """A RescaleSlope (DS, at most 16 characters) mapping `peak` near `max_stored`; the returned
    float is exactly the value written, so quantization uses what readers will apply."""
    if peak <= 0:
        return 1.0
    return float(format_number_as_ds(peak / max_stored))


def quantize(
    values: npt.NDArray[np.floating], slope: float, max_stored: int, dtype: npt.DTypeLike
) -> npt.NDArray[np.generic]:
    """Non-negative `values` as unsigned integers: round(values / slope), clipped to max_stored."""
    stored: npt.NDArray[np.generic] = np.clip(np.rint(values / slope), 0, max_stored).astype(dtype)
    return stored


def decimal_strings(values: Iterable[float]) -> list[DSfloat]:
    """Values as DS (PS3.5 6.2: at most 16 characters), rounded to fit."""
    return [DSfloat(float(v), auto_format=True) for v in values]


def set_image_pixel(ds: Dataset, grid: Grid, *, bits: int, signed: bool) -> None:
    """Image Pixel module (PS3.3 C.7.6.3) of monochrome slices of `grid`: one sample,
    MONOCHROME2, rows x columns of the grid, `bits` stored in `bits` allocated."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if signed else 0


def orientation_of(grid: Grid) -> list[DSfloat]:
    """ImageOrientationPatient: cosines of the row (x index) then column (y index) directions."""
    matrix = grid.direction_matrix()
    return decimal_strings([*matrix[:, 0], *matrix[:, 1]])


def pixel_spacing_of(grid: Grid) -> list[DSfloat]:
    """PixelSpacing: row spacing (between rows, y) then column spacing (x), PS3.3 10.7.1.3."""
    return decimal_strings([grid.spacing_mm[1], grid.spacing_mm[0]])


def require_slices_along_normal(grid: Grid, field: str) -> None:
    """DICOM stacks slices along row x column; refuse grids whose z axis points the other way."""
    matrix = grid.direction_matrix()
    if not np.allclose(np.cross(matrix[:, 0], matrix[:, 1]), matrix[:, 2], atol=1e-6):
        raise InvalidInputError(field, grid.direction, "z axis must be the cross product x * y")


def grid_from_plane(
    first_position: npt.ArrayLike,
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    shape: tuple[int, int, int],
    slice_spacing_mm: float,
) -> Grid:
    """Grid of `shape` (slices, rows, columns) whose slices follow row x column from the first."""
    row_cosines = np.asarray(orientation[:3], dtype=float)
    column_cosines = np.asarray(orientation[3:], dtype=float)
    normal = np.cross(row_cosines, column_cosines)
    direction = np.column_stack([row_cosines, column_cosines, normal])
    slices, rows, columns = shape
    x, y, z = (float(v) for v in np.asarray(first_position, dtype=float))
    return Grid(
        size=(columns, rows, slices),
        spacing_mm=(float(pixel_spacing[1]), float(pixel_spacing[0]), slice_spacing_mm),
        origin_mm=(x, y, z),
        direction=tuple(float(v) for v in direction.ravel()),
    )


def slice_spacing(ds: Dataset, path: Path) -> float:
    """SpacingBetweenSlices (0018,0088), else SliceThickness (0018,0050), in mm, > 0."""
    value = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness")
    if value is None or float(value) <= 0:
        raise InvalidInputError(
            str(path), value, "SpacingBetweenSlices or SliceThickness must be > 0 mm"
        )
    return float(value)


def stack_slices(
    files: Sequence[Path],
    value_mapping: Callable[[Dataset, Path], tuple[float, float]] | None = None,
) -> tuple[Grid, npt.NDArray[np.float64], list[tuple[Dataset, Path]]]:
    """Single-frame images of one series sorted along the slice normal and rescaled: stored *
    slope + intercept with each slice's `value_mapping` (slope, intercept), by default
    RescaleSlope/Intercept; slices must share orientation, size, spacing and be evenly spaced.

    Returns the grid, the values [z, y, x] and (dataset, path) in slice order."""
    slices = [(read_dataset(path, decode_all=False), path) for path in files]
    first, first_path = slices[0]
    orientation = [
        float(v) for v in require(image_plane(first), "ImageOrientationPatient", first_path)
    ]
    normal = np.cross(orientation[:3], orientation[3:])
    for ds, path in slices:
        _require_same_plane(ds, first, path)
    slices.sort(key=lambda pair: float(np.dot(normal, image_plane(pair[0]).ImagePositionPatient)))
    positions = np.array([np.dot(normal, image_plane(ds).ImagePositionPatient) for ds, _ in slices])
    if len(slices) > 1:
        spacing = even_spacing(positions, f"series of {first_path}")
    else:
        spacing = slice_spacing(first, first_path)
    mapping = value_mapping or rescale
    values = np.stack([_mapped(ds, path, *mapping(ds, path)) for ds, path in slices])
    shape = (values.shape[0], values.shape[1], values.shape[2])
    grid = grid_from_plane(
        image_plane(slices[0][0]).ImagePositionPatient,
        orientation,
        first.PixelSpacing,
        shape,
        spacing,
    )
    return grid, values, slices


def image_plane(ds: Dataset) -> Dataset:
    """The dataset holding a single-frame slice's ImagePositionPatient and
    ImageOrientationPatient: the file itself (C.7.6.2 Image Plane) when it has a position, else
    its first DetectorInformationSequence item (C.8.4.11 NM Detector, where NM images carry
    them)."""
    detectors = ds.get("DetectorInformationSequence")
    if ds.get("ImagePositionPatient") is None and detectors:
        item: Dataset = detectors[0]
        return item
    return ds


def _require_same_plane(ds: Dataset, first: Dataset, path: Path) -> None:
    plane, first_plane = image_plane(ds), image_plane(first)
    for keyword, source, reference in (
        ("ImageOrientationPatient", plane, first_plane),
        ("PixelSpacing", ds, first),
    ):
        value = require(source, keyword, path)
        if not np.allclose(
            np.asarray(value, float), np.asarray(reference.get(keyword), float), 1e-4
        ):
            raise InvalidInputError(str(path), keyword, "differs from the series' first slice")
    require(plane, "ImagePositionPatient", path)
    size = (require(ds, "Rows", path), require(ds, "Columns", path))
    if size != (first.Rows, first.Columns) or ds.get("NumberOfFrames", 1) != 1:
        raise InvalidInputError(str(path), "Rows/Columns", "not one slice of the series' size")


def even_spacing(positions: npt.NDArray[np.float64], field: str) -> float:
    """Mean gap (mm) of sorted slice positions, refusing uneven or repeated slices."""
    gaps = np.diff(positions)
    spacing = float(gaps.mean())
    if spacing <= 0 or np.max(np.abs(gaps - spacing)) > SLICE_SPACING_TOLERANCE * spacing:
        raise InvalidInputError(
            field, [round(float(g), 3) for g in gaps], "slices must be evenly spaced"
        )
    return spacing


def rescale(ds: Dataset, path: Path) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) (PS3.3 C.11.1 Modality LUT), 1 and 0 when absent."""
    try:
        return float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0))
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            str(path), "RescaleSlope/Intercept", f"malformed ({error})"
        ) from None


def _mapped(ds: Dataset, path: Path, slope: float, intercept: float) -> npt.NDArray[np.float64]:
    return pixel_array(ds, path).astype(np.float64) * slope + intercept


def study_module(patient_id: str, study_uid: str, study_datetime: datetime) -> Dataset:
    """Patient (C.7.1.1) and General Study (C.7.2.1) attributes for a new study."""
    date, time, _ = format_dt(study_datetime)
    study = Dataset()
    study.PatientName = ""  # pseudonymised trial data: the ID identifies the patient
    study.PatientID = patient_id
    study.PatientBirthDate = ""
    study.PatientSex = ""
    study.StudyInstanceUID = study_uid
    study.StudyDate = date
    study.StudyTime = time
    study.StudyID = study_uid[-16:]  # SH; needed by DICOMDIR study records (PS3.3 F.5)
    study.AccessionNumber = ""
    study.ReferringPhysicianName = ""
    return study


def study_module_of(ds: Dataset) -> Dataset:
    """The Patient and General Study attributes of an existing instance (same patient, study)."""
    study = Dataset()
    for keyword in STUDY_KEYWORDS:
        setattr(study, keyword, ds.get(keyword, ""))
    return study


def new_instance(
    sop_class_uid: str,
    *,
    modality: str,
    study: Dataset,
    series_uid: str,
    frame_of_reference_uid: str,
    series_number: int,
    series_description: str,
    content_datetime: datetime,
) -> FileDataset:
    """A new instance (new SOP Instance UID): file meta plus the common modules listed above."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.update(study)
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = MANUFACTURER
    date, time, _ = format_dt(content_datetime)
    ds.ContentDate = date
    ds.ContentTime = time
    return ds


def save(ds: FileDataset, path: Path) -> Path:
    """Write `ds` as a PS3.10 file (preamble, file meta, Explicit VR Little Endian)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
