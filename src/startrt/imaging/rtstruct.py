"""DICOM RT Structure Sets: VOI masks <-> closed planar contours on the CT slices.

Writing: per VOI and CT slice, the 0.5 iso-line of the mask (marching squares, contourpy) gives
closed polygons on the slice's voxel-centre plane, each referencing its CT image. Reading: the
polygons of each slice are filled with the even-odd rule (so holes and islands in holes are
kept) at supersampled in-plane points, giving the in-plane fraction of each voxel inside.
DICOM PS3.3 A.19 (RT Structure Set IOD), C.8.8.5-C.8.8.8.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path

import contourpy
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

import startrt
from startrt.imaging.dicom_common import study_module_of
from startrt.imaging.vois import (
    masks_on_reference,
    reference_ct_grid,
    require_supersampling,
    voi_name,
)
from startrt.imaging.volume import FloatArray, Grid, Volume
from startrt.validation import InvalidInputError

SERIES_NUMBER = 901
STUDY_REFERENCE_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"  # (retired) Detached Study Management
ISO_LEVEL = 0.5
CONTOUR_DATA = 0x30060050
_COLOURS = ((255, 0, 0), (0, 160, 255), (0, 200, 0), (255, 200, 0), (200, 0, 255), (0, 220, 200))
Polygon = npt.NDArray[np.float64]  # (n, 2) continuous voxel indices (x, y) in one slice


def write_rtstruct(
    masks: Mapping[str, Volume], reference_ct: Sequence[Dataset], path: Path
) -> Path:
    """Write masks drawn on the CT grid as an RT Structure Set referencing the CT slices."""
    grid, slices = reference_ct_grid(reference_ct)
    arrays = masks_on_reference(masks, grid)
    first = slices[0]
    dataset = _new_dataset(first)
    dataset.ReferencedFrameOfReferenceSequence = [_frame_of_reference(first, slices)]
    rois, contours, observations = [], [], []
    for number, (name, array) in enumerate(arrays.items(), start=1):
        rois.append(_roi(number, name, first.FrameOfReferenceUID))
        contours.append(_roi_contours(number, array, grid, slices))
        observations.append(_observation(number, name))
    dataset.StructureSetROISequence = rois
    dataset.ROIContourSequence = contours
    dataset.RTROIObservationsSequence = observations
    dataset.save_as(path, enforce_file_format=True)
    return path


def read_rtstruct(path: Path, reference: Grid, *, supersampling: int = 4) -> dict[str, Volume]:
    """Masks (in-plane fraction of each voxel inside, float32) on the reference CT grid of every
    ROI with closed planar contours, keyed by snake_case ROI name.

    A contour goes to the slice nearest to its plane; ROIs with only points or open contours
    are left out. Refused: contours off the grid or not parallel to its slices.
    """
    require_supersampling(supersampling)
    dataset = _read_dataset(path)
    rois = dataset.get("StructureSetROISequence", [])
    names = {int(roi.ROINumber): str(roi.ROIName) for roi in rois}
    masks: dict[str, Volume] = {}
    for roi_contour in dataset.get("ROIContourSequence", []):
        label = names.get(int(roi_contour.ReferencedROINumber))
        if label is None:
            raise InvalidInputError(
                str(path), roi_contour.ReferencedROINumber, "unknown ROI number"
            )
        by_slice = _polygons_by_slice(path, label, roi_contour, reference)
        if not by_slice:
            continue
        name = voi_name(label)
        if name in masks:
            raise InvalidInputError(str(path), label, f"two ROIs have the VOI name {name}")
        array = np.zeros(reference.shape, dtype=np.float32)
        for index, polygons in by_slice.items():
            array[index] = _even_odd_fraction(polygons, reference.shape[1:], supersampling)
        masks[name] = Volume(reference, array)
    return masks


def _new_dataset(ct: Dataset) -> Dataset:
    """Patient, study, RT series, equipment, structure set and SOP common attributes."""
    now = datetime.datetime.now()
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = RTStructureSetStorage
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.SOPClassUID = RTStructureSetStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.update(study_module_of(ct))
    dataset.Modality = "RTSTRUCT"
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SeriesNumber = SERIES_NUMBER
    dataset.SeriesDescription = "startrt VOIs"
    dataset.OperatorsName = ""
    dataset.Manufacturer = "startrt"
    dataset.SoftwareVersions = startrt.__version__
    dataset.InstanceNumber = 1
    dataset.ApprovalStatus = "UNAPPROVED"
    dataset.StructureSetLabel = "VOIs"
    dataset.StructureSetDate = now.strftime("%Y%m%d")
    dataset.StructureSetTime = now.strftime("%H%M%S")
    return dataset


def _image_reference(ct: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ct.SOPClassUID
    item.ReferencedSOPInstanceUID = ct.SOPInstanceUID
    return item


def _frame_of_reference(ct: Dataset, slices: Sequence[Dataset]) -> Dataset:
    series = Dataset()
    series.SeriesInstanceUID = ct.SeriesInstanceUID
    series.ContourImageSequence = [_image_reference(s) for s in slices]
    study = Dataset()
    study.ReferencedSOPClassUID = STUDY_REFERENCE_SOP_CLASS
    study.ReferencedSOPInstanceUID = ct.StudyInstanceUID
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = ct.FrameOfReferenceUID
    frame.RTReferencedStudySequence = [study]
    return frame


def _roi(number: int, name: str, frame_of_reference_uid: str) -> Dataset:
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = frame_of_reference_uid
    roi.ROIName = name
    roi.ROIGenerationAlgorithm = "AUTOMATIC"
    return roi


def _observation(number: int, name: str) -> Dataset:
    observation = Dataset()
    observation.ObservationNumber = number
    observation.ReferencedROINumber = number
    observation.RTROIInterpretedType = "GTV" if name.startswith("tumo") else "ORGAN"
    observation.ROIInterpreter = ""
    return observation


def _roi_contours(number: int, array: FloatArray, grid: Grid, slices: Sequence[Dataset]) -> Dataset:
    """ROI Contour item: closed planar 0.5 iso-lines of every slice, in patient mm."""
    contours: list[Dataset] = []
    for z in np.flatnonzero(np.any(array >= ISO_LEVEL, axis=(1, 2))):
        for points_xy in _iso_lines(array[z]):
            index = np.column_stack([points_xy, np.full(len(points_xy), float(z))])
            contour = Dataset()
            contour.ContourImageSequence = [_image_reference(slices[int(z)])]
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points_xy)
            contour.ContourNumber = len(contours) + 1
            contour.ContourData = [f"{v:.3f}" for v in grid.index_to_physical(index).ravel()]
            contours.append(contour)
    item = Dataset()
    item.ReferencedROINumber = number
    item.ROIDisplayColor = list(_COLOURS[(number - 1) % len(_COLOURS)])
    item.ContourSequence = contours
    return item


def _iso_lines(slice_yx: FloatArray) -> list[Polygon]:
    """Closed 0.5 iso-lines (x, y voxel indices, first point not repeated) of one slice."""
    rows, columns = (np.flatnonzero(np.any(slice_yx, axis=axis)) for axis in (1, 0))
    y0, x0 = rows[0], columns[0]
    box = slice_yx[y0 : rows[-1] + 1, x0 : columns[-1] + 1].astype(np.float64)
    padded = np.pad(box, 1)  # a zero border closes every iso-line
    generator = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate)
    offset = np.array([x0 - 1.0, y0 - 1.0])
    return [np.asarray(line)[:-1] + offset for line in generator.lines(ISO_LEVEL)]


def _contour_points(path: Path, label: str, contour: Dataset) -> npt.NDArray[np.float64]:
    """ContourData as (n, 3) mm, parsed from the raw DS text when not yet decoded (pydicom's
    per-value DS objects take seconds for the ~1e5 coordinates of a fine CT's contours)."""
    element = contour.get_item(CONTOUR_DATA)
    value = b"" if element is None else element.value
    try:
        if isinstance(value, bytes):
            text = value.decode("ascii").strip()
            values = np.array(text.split("\\") if text else [], dtype=float)
        else:
            values = np.asarray(value, dtype=float).ravel()
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInputError(str(path), label, "ContourData is not numbers") from error
    if values.size < 9 or values.size % 3:
        raise InvalidInputError(str(path), label, "closed contours need >= 3 points")
    return values.reshape(-1, 3)


def _read_dataset(path: Path) -> Dataset:
    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError) as error:
        raise InvalidInputError(
            str(path), type(error).__name__, "not a readable DICOM file"
        ) from error
    if dataset.get("SOPClassUID") != RTStructureSetStorage:
        raise InvalidInputError(str(path), dataset.get("SOPClassUID"), "not an RT Structure Set")
    return dataset


def _polygons_by_slice(
    path: Path, label: str, roi_contour: Dataset, grid: Grid
) -> dict[int, list[Polygon]]:
    """Closed planar contours of one ROI as (x, y) index polygons, grouped by nearest slice."""
    by_slice: dict[int, list[Polygon]] = {}
    for contour in roi_contour.get("ContourSequence", []):
        if contour.ContourGeometricType not in ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR"):
            continue
        index = grid.physical_to_index(_contour_points(path, label, contour))
        if np.ptp(index[:, 2]) > 0.5:
            raise InvalidInputError(str(path), label, "contour not parallel to the grid's slices")
        upper = np.asarray(grid.size) - 0.5
        if np.any(index < -0.5) or np.any(index > upper):
            raise InvalidInputError(str(path), label, "contour outside the reference grid")
        by_slice.setdefault(int(np.floor(index[:, 2].mean() + 0.5)), []).append(index[:, :2])
    return by_slice


def _even_odd_fraction(
    polygons: list[Polygon], shape_yx: tuple[int, int], supersampling: int
) -> FloatArray:
    """Fraction of each voxel of a slice inside the polygons (even-odd rule), from
    supersampling^2 points per voxel; a point is inside if a ray in +x crosses an odd number of
    edges (half-open rule at vertices)."""
    fraction = np.zeros(shape_yx, dtype=np.float32)
    start = np.concatenate(polygons)
    end = np.concatenate([np.roll(polygon, -1, axis=0) for polygon in polygons])
    low = np.maximum(np.ceil(start.min(axis=0) - 0.5), 0).astype(int)
    high = np.minimum(np.floor(start.max(axis=0) + 0.5), np.array(shape_yx[::-1]) - 1)
    (x0, y0), (x1, y1) = low, high.astype(int) + 1
    offsets = (np.arange(supersampling) + 0.5) / supersampling - 0.5
    xs = (np.arange(x0, x1)[:, None] + offsets).ravel()
    ys = (np.arange(y0, y1)[:, None] + offsets).ravel()
    crosses = (start[:, 1][None, :] <= ys[:, None]) != (end[:, 1][None, :] <= ys[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (end[:, 0] - start[:, 0]) / (end[:, 1] - start[:, 1])
    crossing_x = np.where(crosses, start[:, 0] + (ys[:, None] - start[:, 1]) * slope, np.inf)
    crossing_x.sort(axis=1)
    crossing_x = crossing_x[:, : max(1, int(crosses.sum(axis=1).max()))]
    inside = np.zeros((ys.size, xs.size), dtype=bool)
    for column in crossing_x.T:  # each row's crossings, in x order
        inside ^= column[:, None] < xs[None, :]
    shape = (y1 - y0, supersampling, x1 - x0, supersampling)
    fraction[y0:y1, x0:x1] = inside.reshape(shape).mean(axis=(1, 3))
    return fraction
