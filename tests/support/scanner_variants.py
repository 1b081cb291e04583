"""Scanner-file variants of a phantom study, for the robustness corpus (issue 12 item 9).

Each variant rewrites with pydicom, in place, the DICOM files of a copy of a study written by
`make_phantom_study` (SPECT `tp*/spect/*.dcm`, NM multi-frame; CT `tp*/ct/*/*.dcm`), the way
some scanner, workstation or archive writes the same images: the patient, the activity and the
times stay the same, so a reader must give the reference doses or refuse naming the file and
the rule. Geometry per DICOM PS3.3 C.7.6.2.1.1: the centre of pixel (column i, row j) of a
slice is ImagePositionPatient + i * column spacing * row cosines + j * row spacing * column
cosines; NM frames follow along row x column cosines, SpacingBetweenSlices apart (C.8.4.15).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PositronEmissionTomographyImageStorage, generate_uid
from pydicom.valuerep import DSfloat

MAX_STORED = 65535
BQ_PER_MBQ = 1e6
NM_ONLY = (
    "NumberOfFrames",
    "FrameIncrementPointer",
    "SliceVector",
    "DetectorInformationSequence",
    "EnergyWindowInformationSequence",
    "NumberOfEnergyWindows",
    "NumberOfDetectors",
    "NumberOfRotations",
    "RotationInformationSequence",
    "PatientOrientationCodeSequence",
    "PatientGantryRelationshipCodeSequence",
)
Variant = Callable[[Path], None]


def spect_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("tp*/spect/*.dcm"))


def ct_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("tp*/ct/*/*.dcm"))


def ds_list(values: npt.ArrayLike) -> list[DSfloat]:
    return [DSfloat(float(v), auto_format=True) for v in np.asarray(values, float).ravel()]


def _plane(ds: Dataset) -> Dataset:
    """The dataset holding ImagePositionPatient / ImageOrientationPatient (NM: the detector)."""
    return ds.DetectorInformationSequence[0] if "DetectorInformationSequence" in ds else ds


def _as_new_instance(ds: Dataset) -> None:
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID


def _rewrite(path: Path, change: Callable[[Dataset], None]) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


# --- orientation --------------------------------------------------------------------------


def _flip_in_plane(ds: Dataset, frames: np.ndarray, flip_x: bool, flip_y: bool) -> np.ndarray:
    """Reverse the row and/or column direction of the slices (frames [z, y, x]), moving
    ImagePositionPatient to the new first pixel, so every voxel stays where it was; an NM stack
    whose normal turns round is restacked from its other end."""
    plane = _plane(ds)
    row, column = np.asarray(plane.ImageOrientationPatient, float).reshape(2, 3)
    normal = np.cross(row, column)
    position = np.asarray(plane.ImagePositionPatient, float)
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    if flip_x:
        position = position + (frames.shape[2] - 1) * column_spacing * row
        row, frames = -row, frames[:, :, ::-1]
    if flip_y:
        position = position + (frames.shape[1] - 1) * row_spacing * column
        column, frames = -column, frames[:, ::-1, :]
    if "NumberOfFrames" in ds and np.dot(np.cross(row, column), normal) < 0:
        position = position + (frames.shape[0] - 1) * float(ds.SpacingBetweenSlices) * normal
        frames = frames[::-1]
    plane.ImageOrientationPatient = ds_list([*row, *column])
    plane.ImagePositionPatient = ds_list(position)
    return frames


def reoriented(flip_x: bool, flip_y: bool, patient_position: str) -> Variant:
    """Every SPECT and CT with reversed in-plane axes, as a prone (both) or a feet-first
    (x only: ImageOrientationPatient -1 0 0 0 1 0, NM frames from the head down) acquisition
    writes them."""

    def variant(folder: Path) -> None:
        for path in spect_files(folder) + ct_files(folder):

            def change(ds: Dataset) -> None:
                frames = ds.pixel_array
                frames = frames.reshape(-1, *frames.shape[-2:])
                flipped = _flip_in_plane(ds, frames, flip_x, flip_y)
                ds.PatientPosition = patient_position
                ds.PixelData = np.ascontiguousarray(flipped).tobytes()

            _rewrite(path, change)

    return variant


def negative_slice_spacing(folder: Path) -> None:
    """NM frames stored from the last slice back, with a negative SpacingBetweenSlices
    (C.8.4.15: frames then go against row x column)."""
    for path in spect_files(folder):

        def change(ds: Dataset) -> None:
            plane = _plane(ds)
            row, column = np.asarray(plane.ImageOrientationPatient, float).reshape(2, 3)
            spacing = float(ds.SpacingBetweenSlices)
            frames = ds.pixel_array
            last = np.asarray(plane.ImagePositionPatient, float) + (
                frames.shape[0] - 1
            ) * spacing * np.cross(row, column)
            plane.ImagePositionPatient = ds_list(last)
            ds.SpacingBetweenSlices = DSfloat(-spacing, auto_format=True)
            ds.PixelData = np.ascontiguousarray(frames[::-1]).tobytes()

        _rewrite(path, change)


# --- one file per slice -----------------------------------------------------------------


def _slices(path: Path) -> Iterator[tuple[int, Dataset, npt.NDArray[np.float64], np.ndarray]]:
    """(index, header copy, Bq/mL values [y, x], patient position) of each NM frame."""
    ds = pydicom.dcmread(path)
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    plane = _plane(ds)
    row, column = np.asarray(plane.ImageOrientationPatient, float).reshape(2, 3)
    first = np.asarray(plane.ImagePositionPatient, float)
    step = float(ds.SpacingBetweenSlices) * np.cross(row, column)
    header = copy.deepcopy(ds)
    del header.PixelData
    for index, frame in enumerate(values):
        yield index, copy.deepcopy(header), frame, first + index * step


def _store(ds: Dataset, values: npt.NDArray[np.float64], slope: float) -> None:
    ds.RescaleSlope = DSfloat(slope, auto_format=True)
    ds.RescaleIntercept = 0
    stored = np.clip(np.rint(values / float(ds.RescaleSlope)), 0, MAX_STORED).astype(np.uint16)
    ds.add_new(0x7FE00010, "OW", stored.tobytes())  # PixelData


def _slice_slope(values: npt.NDArray[np.float64], common: float) -> float:
    peak = float(values.max())
    return common if peak <= 0 else peak / MAX_STORED


def single_frames(*, plane_at_top_level: bool, per_slice_rescale: bool) -> Variant:
    """Each NM multi-frame as one NM file per slice (NumberOfFrames 1), the slice's position in
    the NM Detector module (as the multi-frame had it) or in the Image Plane module at the top
    level; optionally each slice with its own RescaleSlope (the slice's maximum at 65535)."""

    def variant(folder: Path) -> None:
        for path in spect_files(folder):
            common = float(pydicom.dcmread(path, stop_before_pixels=True).RescaleSlope)
            for index, ds, values, position in _slices(path):
                ds.NumberOfFrames = ds.NumberOfSlices = 1
                ds.SliceVector = [1]
                ds.InstanceNumber = index + 1
                plane = ds.DetectorInformationSequence[0]
                if plane_at_top_level:
                    ds.ImageOrientationPatient = plane.ImageOrientationPatient
                    ds.ImagePositionPatient = ds_list(position)
                    del plane.ImageOrientationPatient, plane.ImagePositionPatient
                else:
                    plane.ImagePositionPatient = ds_list(position)
                slope = _slice_slope(values, common) if per_slice_rescale else common
                _store(ds, values, slope)
                _as_new_instance(ds)
                ds.save_as(path.with_name(f"NM_{index + 1:03d}.dcm"))
            path.unlink()

    return variant


def pet_storage(folder: Path) -> None:
    """Each SPECT as PET Image Storage (PS3.3 A.21): single-frame PT slices with the Image
    Plane module, each with its own RescaleSlope, Units BQML, DecayCorrection START, the
    injected activity in Bq (C.8.9.2) and the series time the acquisition start."""
    for path in spect_files(folder):
        common = float(pydicom.dcmread(path, stop_before_pixels=True).RescaleSlope)
        for index, ds, values, position in _slices(path):
            plane = ds.DetectorInformationSequence[0]
            ds.ImageOrientationPatient = plane.ImageOrientationPatient
            ds.ImagePositionPatient = ds_list(position)
            for keyword in NM_ONLY:
                if keyword in ds:
                    delattr(ds, keyword)
            ds.SOPClassUID = PositronEmissionTomographyImageStorage
            ds.Modality = "PT"
            ds.ImageType = ["ORIGINAL", "PRIMARY"]
            ds.SeriesType = ["STATIC", "IMAGE"]
            ds.CorrectedImage = ["DECY", "ATTN", "SCAT"]
            ds.SeriesTime = ds.AcquisitionTime
            ds.Units, ds.DecayCorrection = "BQML", "START"
            ds.InstanceNumber = ds.ImageIndex = index + 1
            ds.FrameReferenceTime = 0
            item = ds.RadiopharmaceuticalInformationSequence[0]
            item.RadionuclideTotalDose = DSfloat(
                float(item.RadionuclideTotalDose) * BQ_PER_MBQ, auto_format=True
            )
            _store(ds, values, _slice_slope(values, common))
            _as_new_instance(ds)
            ds.save_as(path.with_name(f"PT_{index + 1:03d}"))
        path.unlink()


def ct_per_slice_rescale(folder: Path) -> None:
    """Every other CT slice with RescaleSlope 0.5 and RescaleIntercept -1000 and its values
    raised by half a HU (stored 2 (HU + 1000) + 1), so that the slices differ in rescale and
    a reader casting to the first slice's integers would be off by 0.5 HU."""
    for index, path in enumerate(ct_files(folder)):
        if index % 2:

            def change(ds: Dataset) -> None:
                hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-1000"
                stored = np.rint(2 * (hu + 1000)) + 1
                ds.PixelData = stored.astype(np.int16).tobytes()

            _rewrite(path, change)


# --- resolution ---------------------------------------------------------------------------


def finer(in_plane: int, across: int = 1) -> Variant:
    """Each SPECT voxel split into in_plane x in_plane x across voxels (Bq/mL unchanged: the
    same activity on other, e.g. non-isotropic 4.8 x 4.8 x 9.6 mm, voxels)."""

    def variant(folder: Path) -> None:
        for path in spect_files(folder):

            def change(ds: Dataset) -> None:
                frames = ds.pixel_array
                for axis, factor in ((0, across), (1, in_plane), (2, in_plane)):
                    frames = np.repeat(frames, factor, axis=axis)
                plane = _plane(ds)
                row, column = np.asarray(plane.ImageOrientationPatient, float).reshape(2, 3)
                row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
                spacing = float(ds.SpacingBetweenSlices)
                first = np.asarray(plane.ImagePositionPatient, float) - (
                    _half_step(in_plane) * (column_spacing * row + row_spacing * column)
                    + _half_step(across) * spacing * np.cross(row, column)
                )
                plane.ImagePositionPatient = ds_list(first)
                ds.PixelSpacing = ds_list([row_spacing / in_plane, column_spacing / in_plane])
                ds.SpacingBetweenSlices = ds.SliceThickness = DSfloat(
                    spacing / across, auto_format=True
                )
                ds.NumberOfFrames = ds.NumberOfSlices = frames.shape[0]
                ds.SliceVector = list(range(1, frames.shape[0] + 1))
                ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
                ds.PixelData = np.ascontiguousarray(frames).tobytes()

            _rewrite(path, change)

    return variant


def _half_step(factor: int) -> float:
    """Distance (in old voxels) from an old voxel's centre to its first sub-voxel's centre."""
    return (factor - 1) / (2 * factor)


# --- files and folders ------------------------------------------------------------------


def nested_random_names(*, one_folder_per_file: bool) -> Variant:
    """Every DICOM file renamed to a random name without extension, each series in one random
    folder or every file in its own nested random folder (depth 1-3), as archives export."""

    def variant(folder: Path) -> None:
        rng = random.Random(12)
        names: dict[str, Path] = {}
        for path in sorted(folder.rglob("*.dcm")):
            series = str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)
            if one_folder_per_file or series not in names:
                depth = rng.randint(1, 3)
                names[series] = folder.joinpath(
                    "export", *(f"{rng.getrandbits(32):08X}" for _ in range(depth))
                )
            target = names[series] / f"{rng.getrandbits(64):016x}"
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)

    return variant


# --- times --------------------------------------------------------------------------------


def without(*keywords: str, index: int | None = None, series_later_min: float = 0.0) -> Variant:
    """The SPECT of time point `index` (every one if None) without `keywords`, its series and
    content time moved `series_later_min` later (a reconstruction made after the scan)."""

    def variant(folder: Path) -> None:
        paths = spect_files(folder)
        for path in paths if index is None else [paths[index]]:

            def change(ds: Dataset) -> None:
                for keyword in keywords:
                    delattr(ds, keyword)
                later = datetime.strptime(ds.SeriesDate + ds.SeriesTime, "%Y%m%d%H%M%S.%f")
                later += timedelta(minutes=series_later_min)
                ds.SeriesDate = ds.ContentDate = later.strftime("%Y%m%d")
                ds.SeriesTime = ds.ContentTime = later.strftime("%H%M%S")

            _rewrite(path, change)

    return variant


# --- enhanced multi-frame -----------------------------------------------------------------


def per_frame_rescale(folder: Path) -> None:
    """The first SPECT with a per-frame Pixel Value Transformation (enhanced multi-frame
    functional groups, C.7.6.16.2.9) that halves the odd frames' slope: readers that honour
    only the top-level RescaleSlope would be wrong on half the slices."""
    path = spect_files(folder)[0]

    def change(ds: Dataset) -> None:
        groups = []
        for frame in range(int(ds.NumberOfFrames)):
            transformation = Dataset()
            transformation.RescaleSlope = DSfloat(
                float(ds.RescaleSlope) * (0.5 if frame % 2 else 1.0), auto_format=True
            )
            transformation.RescaleIntercept = 0
            transformation.RescaleType = "BQML"
            group = Dataset()
            group.PixelValueTransformationSequence = [transformation]
            groups.append(group)
        ds.PerFrameFunctionalGroupsSequence = groups

    _rewrite(path, change)


def two_files_per_series(folder: Path) -> None:
    """The first SPECT's frames in two multi-frame files of one series (two halves, as two bed
    positions exported without being joined)."""
    path = spect_files(folder)[0]
    ds = pydicom.dcmread(path)
    frames, plane = ds.pixel_array, _plane(ds)
    row, column = np.asarray(plane.ImageOrientationPatient, float).reshape(2, 3)
    step = float(ds.SpacingBetweenSlices) * np.cross(row, column)
    first = np.asarray(plane.ImagePositionPatient, float)
    half = frames.shape[0] // 2
    for start, stop in ((0, half), (half, frames.shape[0])):
        piece = copy.deepcopy(ds)
        _plane(piece).ImagePositionPatient = ds_list(first + start * step)
        piece.NumberOfFrames = piece.NumberOfSlices = stop - start
        piece.SliceVector = list(range(1, stop - start + 1))
        piece.PixelData = np.ascontiguousarray(frames[start:stop]).tobytes()
        _as_new_instance(piece)
        piece.save_as(path.with_name(f"NM_part{start}.dcm"))
    path.unlink()


# --- RT Structure Set slabs ------------------------------------------------------------


def contour_slab(
    thickness_mm: float | None,
    offset_mm: tuple[float, float, float] | None,
    *,
    only_roi: str | None = None,
) -> Variant:
    """Every contour of `rtstruct.dcm` with ContourSlabThickness (3006,0044) and/or
    ContourOffsetVector (3006,0045); with `only_roi`, the other ROIs removed."""

    def variant(folder: Path) -> None:
        def change(ds: Dataset) -> None:
            if only_roi is not None:
                number = next(
                    roi.ROINumber for roi in ds.StructureSetROISequence if roi.ROIName == only_roi
                )
                for keyword, key in (
                    ("StructureSetROISequence", "ROINumber"),
                    ("ROIContourSequence", "ReferencedROINumber"),
                    ("RTROIObservationsSequence", "ReferencedROINumber"),
                ):
                    setattr(ds, keyword, [i for i in ds[keyword].value if i[key].value == number])
            for roi in ds.ROIContourSequence:
                for contour in roi.ContourSequence:
                    if thickness_mm is not None:
                        contour.ContourSlabThickness = DSfloat(thickness_mm, auto_format=True)
                    if offset_mm is not None:
                        contour.ContourOffsetVector = ds_list(offset_mm)

        _rewrite(folder / "rtstruct.dcm", change)

    return variant


def without_file_header(folder: Path) -> None:
    """The second SPECT stored as a raw dataset: no preamble, no DICM, no file meta, implicit
    VR little endian (PS3.5 A.1), as some older exporters write."""
    path = spect_files(folder)[1]
    ds = pydicom.dcmread(path)
    ds.preamble = None
    ds.file_meta = FileMetaDataset()
    pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)


def two_slabs_in_one_plane(folder: Path) -> None:
    """The first ROI's first contour stated as a 9.6 mm slab, and a copy of it on the same plane
    as a 4.8 mm slab."""

    def change(ds: Dataset) -> None:
        contours = ds.ROIContourSequence[0].ContourSequence
        copied = copy.deepcopy(contours[0])
        contours[0].ContourSlabThickness = "9.6"
        copied.ContourSlabThickness = "4.8"
        copied.ContourNumber = len(contours) + 1
        contours.append(copied)

    _rewrite(folder / "rtstruct.dcm", change)
