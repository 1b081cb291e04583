"""CT series: Hounsfield units from single-frame CT Image Storage files, and a writer.

CT Image IOD (PS3.3 A.3): slices sorted along the normal of ImageOrientationPatient by
ImagePositionPatient (C.7.6.2 Image Plane), HU = stored * RescaleSlope + RescaleIntercept
(C.8.2.1 CT Image). The writer stores int16 with RescaleIntercept -1024, one file per slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid

from startrt.imaging import dicom_common as dc
from startrt.imaging.dicom_scan import SeriesInfo
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

RESCALE_INTERCEPT_HU = -1024
MAX_STORED = np.iinfo(np.int16).max
HU_RANGE = (RESCALE_INTERCEPT_HU, MAX_STORED + RESCALE_INTERCEPT_HU)


@dataclass(frozen=True)
class CtImage:
    """A CT volume in HU with its acquisition time and frame of reference."""

    volume: Volume
    acquisition_datetime: datetime
    frame_of_reference_uid: str
    series_uid: str


def read_ct(series: SeriesInfo) -> CtImage:
    """Read a CT series (HU, float32); slices must be evenly spaced with one orientation.

    A series whose files GDCM finds in one folder is read by SimpleITK's series reader (C++,
    a few times faster on hundreds of slices) in float32, so that slices with their own
    RescaleSlope/Intercept are not cast to the first slice's integers, its slice positions
    checked for even spacing; any other layout by the pixel-by-pixel reader
    `dicom_common.stack_slices`."""
    fast = _read_with_gdcm(series)
    if fast is not None:
        volume, first_path = fast
        first = dc.read_dataset(first_path, stop_before_pixels=True)
        acquisition = dc.acquisition_datetime(first, first_path)
    else:
        grid, values, slices = dc.stack_slices(series.files)
        volume = Volume(grid, values.astype(np.float32))
        first, first_path = slices[0]
        acquisition = min(dc.acquisition_datetime(ds, path) for ds, path in slices)
    return CtImage(
        volume=volume,
        acquisition_datetime=acquisition.replace(tzinfo=None),
        frame_of_reference_uid=str(dc.require(first, "FrameOfReferenceUID", first_path)),
        series_uid=series.uid,
    )


def _read_with_gdcm(series: SeriesInfo) -> tuple[Volume, Path] | None:
    """The series via SimpleITK when GDCM sorts exactly its files from one folder, else None."""
    folder = series.files[0].parent
    if any(path.parent != folder for path in series.files):
        return None
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series.uid)
    if sorted(Path(name) for name in names) != sorted(series.files) or len(names) < 2:
        return None
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    reader.SetOutputPixelType(sitk.sitkFloat32)  # each slice's own rescale, not cast to int16
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InvalidInputError(
            str(folder), series.uid, f"CT series unreadable ({error})"
        ) from None

    def tag(index: int, key: str) -> list[float]:
        return [float(v) for v in reader.GetMetaData(index, key).split("\\")]

    for key, keyword in (("0020|0037", "ImageOrientationPatient"), ("0028|0030", "PixelSpacing")):
        first = tag(0, key)
        for index, name in enumerate(names):
            if not np.allclose(tag(index, key), first, atol=1e-4):
                raise InvalidInputError(name, keyword, "differs from the series' first slice")
    normal = np.asarray(image.GetDirection()).reshape(3, 3)[:, 2]
    positions = np.array([np.dot(normal, tag(i, "0020|0032")) for i in range(len(names))])
    dc.even_spacing(positions, f"CT series in {folder}")
    return Volume.from_sitk(image, np.float32), Path(names[0])


def write_ct_series(
    volume_hu: Volume,
    folder: Path,
    *,
    patient_id: str,
    study_uid: str,
    frame_of_reference_uid: str,
    acquisition_datetime: datetime,
    series_description: str = "CT",
) -> Path:
    """Write `volume_hu` as one CT Image file per slice into a new subfolder of `folder`
    (named after the series UID); returns that subfolder. HU are rounded to integers."""
    dc.require_slices_along_normal(volume_hu.grid, "volume_hu")
    hu = np.rint(np.asarray(volume_hu.array, dtype=np.float64))
    if not np.all(np.isfinite(hu)) or hu.min() < HU_RANGE[0] or hu.max() > HU_RANGE[1]:
        raise InvalidInputError("volume_hu", (hu.min(), hu.max()), f"must lie in {HU_RANGE} HU")
    stored = (hu - RESCALE_INTERCEPT_HU).astype(np.int16)
    study = dc.study_module(patient_id, study_uid, acquisition_datetime)
    series_uid = generate_uid()
    series_folder = folder / f"CT_{series_uid}"
    for index, slice_pixels in enumerate(stored):
        ds = dc.new_instance(
            CTImageStorage,
            modality="CT",
            study=study,
            series_uid=series_uid,
            frame_of_reference_uid=frame_of_reference_uid,
            series_number=1,
            series_description=series_description,
            content_datetime=acquisition_datetime,
        )
        _set_ct_slice(ds, volume_hu.grid, index, acquisition_datetime)
        ds.PixelData = np.ascontiguousarray(slice_pixels).tobytes()
        dc.save(ds, series_folder / f"CT_{index + 1:04d}.dcm")
    return series_folder


def _set_ct_slice(ds: Dataset, grid: Grid, index: int, acquisition: datetime) -> None:
    """General Image, Image Plane (C.7.6.2), Image Pixel and CT Image (C.8.2.1) of one slice."""
    date, time, _ = dc.format_dt(acquisition)
    ds.SeriesDate = ds.AcquisitionDate = date
    ds.SeriesTime = ds.AcquisitionTime = time
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "ABDOMEN"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = index + 1
    ds.AcquisitionNumber = 1
    ds.KVP = None
    ds.ImagePositionPatient = dc.decimal_strings(grid.index_to_physical([0, 0, index]))
    ds.ImageOrientationPatient = dc.orientation_of(grid)
    ds.PixelSpacing = dc.pixel_spacing_of(grid)
    ds.SliceThickness = ds.SpacingBetweenSlices = dc.decimal_strings([grid.spacing_mm[2]])[0]
    dc.set_image_pixel(ds, grid, bits=16, signed=True)
    ds.RescaleIntercept = RESCALE_INTERCEPT_HU
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
