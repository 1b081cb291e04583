"""DICOM RT Structure Sets: VOI masks <-> closed planar contours on the CT slices.

Writing: per VOI and CT slice, the 0.5 iso-line of the mask (marching squares, contourpy) gives
closed polygons on the slice's voxel-centre plane, each referencing its CT image. Reading, onto
any grid of the same frame of reference: each contour plane is filled on its own (holes by
containment; exact lengths inside along x on `supersampling` lines per voxel in y) and stands for
a slab as thick as the spacing of the contour planes, giving the fraction of each voxel inside
(see `read_rtstruct`).
DICOM PS3.3 A.19 (RT Structure Set IOD), C.8.8.5-C.8.8.8.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
_FAR = 1e9  # x past every contour (voxel indices)
PLANE_TOLERANCE_MM = 0.05  # contours this close along the slice normal share a plane
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
    # Frame of Reference module (PS3.3 C.7.4.1): the CT's frame, so viewers place the contours.
    dataset.FrameOfReferenceUID = first.FrameOfReferenceUID
    dataset.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
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


def read_rtstruct(path: Path, reference: Grid, *, supersampling: int = 8) -> dict[str, Volume]:
    """Masks (fraction of each voxel inside, float32) on the `reference` grid of every ROI with
    closed planar contours, keyed by snake_case ROI name.

    The contours may be drawn on a CT of another grid (spacing, slice thickness, field of view)
    in the same frame of reference. Each contour plane is filled on its own: a contour with most
    of its vertices inside an odd number of the ROI's other contours of that plane is a hole and
    overlapping outlines are united (CLOSEDPLANAR_XOR contours toggle what they enclose);
    contours of different planes never interact. A plane stands for a slab (C.8.8.6.2) as thick
    as its ContourSlabThickness, centred on the plane moved by its ContourOffsetVector, when the
    file states them, else as the spacing of the file's contour planes (the drawing CT's slices;
    the reference slice spacing if the file has one plane only); either way extending at most
    halfway to the file's next plane on each side (overlapping slabs are split there).
    A voxel's fraction is the in-plane fraction (exact along x, on `supersampling` lines of
    constant y per voxel) weighted by the share of its thickness each slab covers. ROIs with
    only points or open contours are left out. Refused: contours off the grid or not parallel
    to its slices; a slab thickness <= 0, an offset not normal to the plane or without a
    thickness, contours of one plane stating different slabs.
    """
    require_supersampling(supersampling)
    dataset = _read_dataset(path)
    rois = dataset.get("StructureSetROISequence", [])
    names = {int(roi.ROINumber): str(roi.ROIName) for roi in rois}
    planes_of: dict[str, tuple[str, list[_Plane]]] = {}
    for roi_contour in dataset.get("ROIContourSequence", []):
        label = names.get(int(roi_contour.ReferencedROINumber))
        if label is None:
            raise InvalidInputError(
                str(path), roi_contour.ReferencedROINumber, "unknown ROI number"
            )
        planes = _contour_planes(path, label, roi_contour, reference)
        if not planes:
            continue
        name = voi_name(label)
        if name in planes_of:
            raise InvalidInputError(str(path), label, f"two ROIs have the VOI name {name}")
        planes_of[name] = (label, planes)
    heights = np.array([p.z for _, planes in planes_of.values() for p in planes])
    spacing = _plane_spacing(heights)
    masks: dict[str, Volume] = {}
    for name, (_, planes) in planes_of.items():
        array = np.zeros(reference.shape, dtype=np.float64)
        for plane, (low, high) in zip(planes, _slabs(planes, spacing, heights), strict=True):
            fraction = _plane_fraction(plane, reference.shape[1:], supersampling)
            for index in range(max(0, int(np.floor(low + 0.5))), reference.shape[0]):
                covered = min(high, index + 0.5) - max(low, index - 0.5)
                if covered <= 0:
                    break
                array[index] += covered * fraction
        masks[name] = Volume(reference, np.clip(array, 0.0, 1.0).astype(np.float32))
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


@dataclass(frozen=True)
class _Plane:
    """The closed contours of one ROI on one plane: z (continuous reference slice index) and
    (x, y) index polygons, each with whether it is an XOR contour; the slab the contours stand
    for when the file states it (ContourSlabThickness, ContourOffsetVector along the normal), in
    reference slice indices."""

    z: float
    polygons: tuple[Polygon, ...]
    xor: tuple[bool, ...]
    slab: _Slab | None = None


@dataclass(frozen=True)
class _Slab:
    """A stated slab (C.8.8.6.2): thickness and the offset of its centre from the contour plane
    along the slice normal, in reference slice indices."""

    thickness: float
    offset: float


def _contour_planes(path: Path, label: str, roi_contour: Dataset, grid: Grid) -> list[_Plane]:
    """Closed planar contours of one ROI as (x, y) index polygons, grouped by plane (within
    PLANE_TOLERANCE_MM), in increasing z."""
    contours: list[_Contour] = []
    for contour in roi_contour.get("ContourSequence", []):
        kind = contour.get("ContourGeometricType")
        if kind not in ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR"):
            continue
        index = grid.physical_to_index(_contour_points(path, label, contour))
        if np.ptp(index[:, 2]) > 0.5:
            raise InvalidInputError(str(path), label, "contour not parallel to the grid's slices")
        upper = np.asarray(grid.size) - 0.5
        if np.any(index < -0.5) or np.any(index > upper):
            raise InvalidInputError(str(path), label, "contour outside the reference grid")
        z = float(index[:, 2].mean())
        slab = _stated_slab(path, label, contour, grid)
        contours.append(_Contour(z, index[:, :2], kind == "CLOSEDPLANAR_XOR", slab))
    contours.sort(key=lambda item: item.z)
    tolerance = PLANE_TOLERANCE_MM / grid.spacing_mm[2]
    planes: list[_Plane] = []
    group: list[_Contour] = []
    for item in contours:
        if group and item.z - group[0].z > tolerance:
            planes.append(_plane(path, label, group))
            group = []
        group.append(item)
    if group:
        planes.append(_plane(path, label, group))
    return planes


@dataclass(frozen=True)
class _Contour:
    z: float
    polygon: Polygon
    xor: bool
    slab: _Slab | None


def _plane(path: Path, label: str, group: list[_Contour]) -> _Plane:
    slabs = {item.slab for item in group}
    if len(slabs) > 1:
        raise InvalidInputError(
            str(path), label, "contours of one plane state different ContourSlabThickness/Offset"
        )
    return _Plane(
        float(np.mean([item.z for item in group])),
        tuple(item.polygon for item in group),
        tuple(item.xor for item in group),
        slabs.pop(),
    )


def _stated_slab(path: Path, label: str, contour: Dataset, grid: Grid) -> _Slab | None:
    """ContourSlabThickness (3006,0044) with ContourOffsetVector (3006,0045), which must be
    normal to the contour plane (C.8.8.6.2), in reference slice indices; None when absent."""
    thickness = contour.get("ContourSlabThickness")
    if thickness is None or thickness == "":
        if contour.get("ContourOffsetVector"):
            raise InvalidInputError(
                str(path), label, "ContourOffsetVector without ContourSlabThickness"
            )
        return None
    if not float(thickness) > 0:
        raise InvalidInputError(str(path), label, f"ContourSlabThickness={thickness} must be > 0")
    offset_mm = np.asarray(contour.get("ContourOffsetVector") or [0.0, 0.0, 0.0], dtype=float)
    if offset_mm.shape != (3,):
        raise InvalidInputError(str(path), label, "ContourOffsetVector must be 3 numbers (mm)")
    normal = grid.direction_matrix()[:, 2]
    along = float(np.dot(offset_mm, normal))
    if np.linalg.norm(offset_mm - along * normal) > PLANE_TOLERANCE_MM:
        raise InvalidInputError(
            str(path), label, f"ContourOffsetVector={list(offset_mm)} is not normal to the plane"
        )
    spacing = grid.spacing_mm[2]
    return _Slab(float(thickness) / spacing, along / spacing)


def _plane_spacing(heights: npt.NDArray[np.float64]) -> float:
    """Slab thickness (reference slice indices) of a contour plane: the median step between the
    file's distinct contour planes (the drawing CT's slices), one reference slice if only one."""
    steps = np.diff(np.unique(heights))
    steps = steps[steps > 1e-3]
    return float(np.median(steps)) if steps.size else 1.0


def _slabs(
    planes: list[_Plane], spacing: float, heights: npt.NDArray[np.float64]
) -> list[tuple[float, float]]:
    """(low, high) z of the slab of each plane: +-thickness/2 (the stated ContourSlabThickness,
    else the spacing of the file's planes), at most halfway to the file's neighbouring contour
    planes, moved by the stated ContourOffsetVector."""
    distinct = np.unique(heights)
    slabs = []
    for plane in planes:
        below = distinct[distinct < plane.z - 1e-3]
        above = distinct[distinct > plane.z + 1e-3]
        thickness = spacing if plane.slab is None else plane.slab.thickness
        centre = plane.z if plane.slab is None else plane.z + plane.slab.offset
        half_low = thickness / 2 if below.size == 0 else min(thickness, plane.z - below[-1]) / 2
        half_high = thickness / 2 if above.size == 0 else min(thickness, above[0] - plane.z) / 2
        slabs.append((centre - half_low, centre + half_high))
    return slabs


def _plane_fraction(plane: _Plane, shape_yx: tuple[int, int], supersampling: int) -> FloatArray:
    """Fraction of each voxel of a slice inside one contour plane: along `supersampling` lines
    of constant y per voxel, the exact length inside in each voxel (so no aliasing with the
    drawing CT's pixels along x). CLOSED_PLANAR contours: a point is inside if more of the outer
    contours than of the holes (contours inside an odd number of the plane's other contours)
    contain it, so nested contours alternate and overlapping outer contours add up;
    CLOSEDPLANAR_XOR contours then toggle the points they contain."""
    fraction = np.zeros(shape_yx, dtype=np.float32)
    points = np.concatenate(plane.polygons)
    low = np.maximum(np.ceil(points.min(axis=0) - 0.5), 0).astype(int)
    high = np.minimum(np.floor(points.max(axis=0) + 0.5), np.array(shape_yx[::-1]) - 1)
    (x0, y0), (x1, y1) = low, high.astype(int) + 1
    if x1 <= x0 or y1 <= y0:
        return fraction
    offsets = (np.arange(supersampling) + 0.5) / supersampling - 0.5
    ys = (np.arange(y0, y1)[:, None] + offsets).ravel()
    closed = [p for p, xor in zip(plane.polygons, plane.xor, strict=True) if not xor]
    events_x, events_net, events_xor = [], [], []
    for polygon, xor in zip(plane.polygons, plane.xor, strict=True):
        crossing_x = _crossings(polygon, ys)  # rows x edges, sorted, +inf past the last
        entering = np.where(np.arange(crossing_x.shape[1]) % 2 == 0, 1, -1)[None, :]
        real = np.isfinite(crossing_x)
        if xor:
            events_net.append(np.zeros(crossing_x.shape, dtype=np.int32))
            events_xor.append(real.astype(np.int32))
        else:
            others = [other for other in closed if other is not polygon]
            depth = sum(int(np.mean(_contains(other, polygon)) > 0.5) for other in others)
            sign = 1 if depth % 2 == 0 else -1  # most vertices: robust to touching outlines
            events_net.append(np.where(real, sign * entering, 0).astype(np.int32))
            events_xor.append(np.zeros(crossing_x.shape, dtype=np.int32))
        events_x.append(np.where(real, crossing_x, _FAR))
    xs = np.concatenate(events_x, axis=1)
    order = np.argsort(xs, axis=1, kind="stable")
    xs = np.take_along_axis(xs, order, axis=1)
    net = np.cumsum(np.take_along_axis(np.concatenate(events_net, axis=1), order, axis=1), axis=1)
    toggles = np.take_along_axis(np.concatenate(events_xor, axis=1), order, axis=1)
    inside = (net > 0) != (np.cumsum(toggles, axis=1) % 2 == 1)  # after each event
    start, length = xs[:, :-1], np.where(inside[:, :-1], np.diff(xs, axis=1), 0.0)
    edges = np.arange(x0, x1 + 1) - 0.5  # voxel boundaries along x
    covered = np.zeros((ys.size, edges.size))
    for segment in range(start.shape[1]):  # length inside left of each boundary
        covered += np.clip(edges[None, :] - start[:, segment, None], 0.0, length[:, segment, None])
    per_voxel = np.diff(covered, axis=1).reshape(y1 - y0, supersampling, x1 - x0)
    fraction[y0:y1, x0:x1] = np.clip(per_voxel.mean(axis=1), 0.0, 1.0)
    return fraction


def _crossings(polygon: Polygon, ys: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """x of the crossings of the lines y = ys with one polygon's edges (half-open rule at
    vertices), sorted per line, +inf past the line's last crossing (rows x max crossings)."""
    start = polygon
    end = np.roll(polygon, -1, axis=0)
    crosses = (start[:, 1][None, :] <= ys[:, None]) != (end[:, 1][None, :] <= ys[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (end[:, 0] - start[:, 0]) / (end[:, 1] - start[:, 1])
        crossing_x = np.where(crosses, start[:, 0] + (ys[:, None] - start[:, 1]) * slope, np.inf)
    crossing_x.sort(axis=1)
    count = int(crosses.sum(axis=1).max()) if ys.size else 0
    return crossing_x[:, : max(2, count + count % 2)]


def _contains(polygon: Polygon, points: Polygon) -> npt.NDArray[np.bool_]:
    """Which of the (x, y) points lie inside the polygon (even crossings of a ray in +x)."""
    start = polygon
    end = np.roll(polygon, -1, axis=0)
    xs, ys = points[:, :1], points[:, 1:]
    crosses = (start[:, 1][None, :] <= ys) != (end[:, 1][None, :] <= ys)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (end[:, 0] - start[:, 0]) / (end[:, 1] - start[:, 1])
        crossing_x = start[:, 0] + (ys - start[:, 1]) * slope
    inside: npt.NDArray[np.bool_] = np.sum(crosses & (crossing_x < xs), axis=1) % 2 == 1
    return inside
