"""CT DICOM series: round trip in HU, slice sorting, agreement with GDCM, refused series."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from startrt.imaging.ct import CtImage, read_ct, write_ct_series
from startrt.imaging.dicom_scan import scan_dicom_folder
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

# rotated 90 degrees about z: index x runs along patient +y, index y along patient -x
ROTATED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
GRID = Grid((8, 6, 5), (0.9765625, 0.9765625, 2.5), (-250.0, 120.5, -412.75), ROTATED)
ACQUISITION = datetime(2024, 3, 11, 2, 30, 15)


def hounsfield(grid: Grid = GRID) -> Volume:
    rng = np.random.default_rng(3)
    return Volume(grid, rng.integers(-1024, 3000, grid.shape).astype(np.float64))


def write(folder: Path, volume: Volume | None = None) -> Path:
    return write_ct_series(
        volume or hounsfield(),
        folder,
        patient_id="START-001",
        study_uid="1.2.3.4",
        frame_of_reference_uid="1.2.3.5",
        acquisition_datetime=ACQUISITION,
    )


def read(folder: Path) -> CtImage:
    (series,) = scan_dicom_folder(folder).series("CT")
    return read_ct(series)


def test_round_trip_is_exact_for_integer_hu(tmp_path: Path) -> None:
    volume = hounsfield()
    series_folder = write(tmp_path, volume)
    ct = read(series_folder)
    assert ct.volume.grid.matches(GRID, tolerance_mm=1e-3)
    assert np.array_equal(ct.volume.array, volume.array)
    assert ct.acquisition_datetime == ACQUISITION
    assert ct.frame_of_reference_uid == "1.2.3.5"
    assert ct.series_uid == pydicom.dcmread(next(series_folder.iterdir())).SeriesInstanceUID


def test_slices_are_int16_with_intercept_minus_1024(tmp_path: Path) -> None:
    volume = hounsfield()
    files = sorted(write(tmp_path, volume).iterdir())
    assert len(files) == 5
    ds = pydicom.dcmread(files[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert (ds.BitsAllocated, ds.PixelRepresentation) == (16, 1)
    assert (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024.0, 1.0)
    # stored = HU + 1024
    assert np.array_equal(ds.pixel_array, volume.array[0] + 1024)


def test_hu_are_rounded_to_integers(tmp_path: Path) -> None:
    volume = Volume(GRID, np.full(GRID.shape, 10.4))
    assert np.all(read(write(tmp_path, volume)).volume.array == 10.0)


def test_file_names_do_not_set_the_slice_order(tmp_path: Path) -> None:
    volume = hounsfield()
    series_folder = write(tmp_path, volume)
    files = sorted(series_folder.iterdir())
    for path, new_name in zip(files, reversed([f"z{i}" for i in range(len(files))]), strict=True):
        path.rename(series_folder / new_name)
    assert np.array_equal(read(series_folder).volume.array, volume.array)


def test_geometry_and_values_agree_with_gdcm(tmp_path: Path) -> None:
    volume = hounsfield()
    series_folder = write(tmp_path, volume)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series_folder)))
    image = reader.Execute()
    assert Grid.of(image).matches(GRID, tolerance_mm=1e-3)
    assert np.array_equal(sitk.GetArrayFromImage(image), volume.array)


def test_missing_slice_is_refused(tmp_path: Path) -> None:
    series_folder = write(tmp_path)
    sorted(series_folder.iterdir())[2].unlink()
    with pytest.raises(InvalidInputError, match="evenly spaced"):
        read(series_folder)


def test_slice_of_another_orientation_is_refused(tmp_path: Path) -> None:
    series_folder = write(tmp_path)
    odd = sorted(series_folder.iterdir())[1]
    ds = pydicom.dcmread(odd)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.save_as(odd)
    with pytest.raises(InvalidInputError, match="differs") as error:
        read(series_folder)
    assert error.value.field == str(odd)


def test_writer_refuses_values_outside_int16_storage(tmp_path: Path) -> None:
    air_outside = hounsfield().array.copy()
    air_outside[0, 0, 0] = -3024
    with pytest.raises(InvalidInputError, match="volume_hu"):
        write(tmp_path, Volume(GRID, air_outside))
