"""SPECT DICOM: NM multi-frame round trips, units, decay correction, times, refused headers."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.uid import PositronEmissionTomographyImageStorage, generate_uid

from startrt.imaging.dicom_scan import scan_dicom_folder
from startrt.imaging.spect import SpectImage, read_spect, write_spect_nm
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

INJECTION = datetime(2024, 3, 10, 22, 30)
# rotated 90 degrees about z: index x runs along patient +y, index y along patient -x
ROTATED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
GRID = Grid((6, 5, 4), (4.8, 4.8, 4.8), (-100.0, 50.5, -20.25), ROTATED)
VOXEL_ML = 4.8**3 / 1000  # 0.110592 mL
LU177_HALF_LIFE_H = 6.647 * 24  # 159.528 h


def activity(grid: Grid = GRID, peak_mbq: float = 2.0) -> Volume:
    rng = np.random.default_rng(7)
    return Volume(grid, rng.uniform(0.0, peak_mbq, grid.shape))


def write(folder: Path, volume: Volume | None = None, **overrides: object) -> Path:
    kwargs: dict[str, object] = {
        "acquisition_datetime": INJECTION + timedelta(hours=24),
        "injection_datetime": INJECTION,
        "injected_activity_mbq": 7400.0,
        "patient_id": "START-001",
        "study_uid": "1.2.3.4",
        "frame_of_reference_uid": "1.2.3.5",
        **overrides,
    }
    return write_spect_nm(volume or activity(), folder, **kwargs)  # type: ignore[arg-type]


def read(path: Path, **kwargs: object) -> SpectImage:
    series = scan_dicom_folder(path.parent).series(pydicom.dcmread(path).Modality)
    assert len(series) == 1
    return read_spect(series[0], **kwargs)  # type: ignore[arg-type]


def edit(path: Path, change: Callable[[Dataset], object]) -> Path:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)
    return path


def radiopharmaceutical(ds: Dataset) -> Dataset:
    item: Dataset = ds.RadiopharmaceuticalInformationSequence[0]
    return item


def set_stored(ds: Dataset, stored: np.ndarray, slope: str) -> None:
    ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.RescaleSlope = slope


def test_bqml_round_trip_keeps_grid_values_and_header(tmp_path: Path) -> None:
    volume = activity()
    spect = read(write(tmp_path, volume))
    assert spect.volume.grid.matches(GRID, tolerance_mm=1e-3)
    # uint16 quantization: the peak maps to 65535, so the error is at most half a step
    step_mbq = volume.array.max() / 65535
    assert np.abs(spect.volume.array - volume.array).max() <= 0.5 * step_mbq * 1.001
    assert spect.injection_datetime == INJECTION
    assert spect.acquisition_datetime == INJECTION + timedelta(hours=24)
    assert spect.injected_activity_mbq == pytest.approx(7400.0)
    assert spect.frame_of_reference_uid == "1.2.3.5"
    assert spect.source.parent == tmp_path


def test_written_file_is_nm_multiframe_recon_tomo(tmp_path: Path) -> None:
    ds = pydicom.dcmread(write(tmp_path))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.20"
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.ImageType[2] == "RECON TOMO"
    assert ds.NumberOfFrames == 4
    assert list(ds.SliceVector) == [1, 2, 3, 4]
    assert ds.BitsAllocated == 16
    assert ds.pixel_array.max() == 65535
    assert (ds.PatientID, ds.StudyInstanceUID) == ("START-001", "1.2.3.4")
    # NM Isotope module: Radionuclide Total Dose in MBq (PS3.3 C.8.4.10.1.7)
    assert float(radiopharmaceutical(ds).RadionuclideTotalDose) == pytest.approx(7400.0)


def test_geometry_agrees_with_gdcm(tmp_path: Path) -> None:
    """SimpleITK (GDCM) is an independent reader of the NM geometry and of RescaleSlope."""
    volume = activity()
    path = write(tmp_path, volume)
    image = sitk.ReadImage(str(path))
    assert Grid.of(image).matches(GRID, tolerance_mm=1e-3)
    bq_per_ml = sitk.GetArrayFromImage(image)
    assert np.allclose(bq_per_ml * VOXEL_ML / 1e6, read(path).volume.array, rtol=1e-9)


def test_bqml_conversion_by_hand(tmp_path: Path) -> None:
    stored = np.full(GRID.shape, 1000)
    path = edit(write(tmp_path), lambda ds: set_stored(ds, stored, "0.5"))
    # 1000 * 0.5 = 500 Bq/mL; * 0.110592 mL = 55.296 Bq = 5.5296e-5 MBq per voxel
    assert np.allclose(read(path).volume.array, 5.5296e-5, rtol=1e-12)


def test_counts_with_calibration_by_hand(tmp_path: Path) -> None:
    path = write(
        tmp_path, units="CNTS", calibration_cps_per_mbq=10.0, acquisition_duration_s=1200.0
    )
    ds = pydicom.dcmread(path)
    rotation = ds.RotationInformationSequence[0]
    # 60 views of 20 000 ms = 1200 s
    assert (rotation.NumberOfFramesInRotation, rotation.ActualFrameDuration) == (60, 20000)
    edit(path, lambda ds: set_stored(ds, np.full(GRID.shape, 24000), "1"))
    # 24 000 counts / 1200 s = 20 cps; / 10 cps per MBq = 2.0 MBq per voxel
    assert np.allclose(read(path, calibration_cps_per_mbq=10.0).volume.array, 2.0)


def test_counts_round_trip(tmp_path: Path) -> None:
    volume = activity()
    path = write(
        tmp_path, volume, units="CNTS", calibration_cps_per_mbq=9.5, acquisition_duration_s=900.0
    )
    back = read(path, calibration_cps_per_mbq=9.5).volume.array
    assert np.abs(back - volume.array).max() <= 0.5 * volume.array.max() / 65535 * 1.001


def test_counts_without_calibration_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, units="CNTS", calibration_cps_per_mbq=10.0, acquisition_duration_s=60.0)
    with pytest.raises(InvalidInputError, match="calibration") as error:
        read(path)
    assert error.value.field == str(path)


def test_admin_decay_correction_by_hand(tmp_path: Path) -> None:
    path = write(tmp_path)  # START, acquired 24 h after the injection
    at_start = read(path).volume.array
    edit(path, lambda ds: setattr(ds, "DecayCorrection", "ADMIN"))
    # values at the administration time, brought to the acquisition 24 h later:
    # lambda = 0.693147 / 159.528 h = 0.00434501 /h; * 24 h = 0.104280;
    # exp(-0.104280) = exp(-0.1) * exp(-0.004280) = 0.904837 * 0.995729 = 0.900973
    factor = math.exp(-math.log(2) * 24 / LU177_HALF_LIFE_H)
    assert factor == pytest.approx(0.900973, abs=1e-6)
    assert np.allclose(read(path).volume.array, at_start * factor, rtol=1e-12)
    edit(path, lambda ds: setattr(ds, "DecayCorrection", "NONE"))
    assert np.allclose(read(path).volume.array, at_start, rtol=1e-12)


def test_admin_writer_stores_values_at_the_injection(tmp_path: Path) -> None:
    volume = activity()
    start = write(tmp_path / "start", volume)
    admin = write(tmp_path / "admin", volume, decay_correction="ADMIN")

    def stored_bq_per_ml(path: Path) -> np.ndarray:
        ds = pydicom.dcmread(path)
        return ds.pixel_array * float(ds.RescaleSlope)

    ratio = stored_bq_per_ml(admin).max() / stored_bq_per_ml(start).max()
    assert ratio == pytest.approx(1 / 0.900973, rel=1e-5)
    back = read(admin).volume.array
    assert np.abs(back - volume.array).max() <= 0.5 * volume.array.max() / 65535 * 1.001


@pytest.mark.parametrize(
    ("injection", "acquisition", "hours"),
    [
        # across midnight: 22:30 -> 02:30 next day
        (datetime(2024, 3, 10, 22, 30), datetime(2024, 3, 11, 2, 30), 4.0),
        # across days and a leap day: Feb 27, 28, 29, Mar 1, 2, 3 = 5 days (120 h) + 1.5 h
        (datetime(2024, 2, 27, 10, 15), datetime(2024, 3, 3, 11, 45), 121.5),
        # across the new year: 30 Dec 09:00 -> 6 Jan 09:00 = 7 days
        (datetime(2023, 12, 30, 9, 0), datetime(2024, 1, 6, 9, 0), 168.0),
    ],
)
def test_time_after_injection_uses_date_and_time(
    tmp_path: Path, injection: datetime, acquisition: datetime, hours: float
) -> None:
    path = write(tmp_path, acquisition_datetime=acquisition, injection_datetime=injection)
    spect = read(path)
    assert spect.time_after_injection_h == pytest.approx(hours, abs=1e-9)
    assert (spect.injection_datetime, spect.acquisition_datetime) == (injection, acquisition)


def test_acquisition_date_and_time_without_datetime(tmp_path: Path) -> None:
    def split(ds: Dataset) -> None:
        del ds.AcquisitionDateTime
        ds.AcquisitionDate, ds.AcquisitionTime = "20240313", "101500"

    spect = read(edit(write(tmp_path), split))
    # 10 March 22:30 -> 13 March 10:15 = 2 days (48 h) + 11.75 h
    assert spect.time_after_injection_h == pytest.approx(59.75)


def test_utc_offsets_are_honoured(tmp_path: Path) -> None:
    def offsets(ds: Dataset) -> None:
        radiopharmaceutical(ds).RadiopharmaceuticalStartDateTime = "20240310223000+0100"
        ds.AcquisitionDateTime = "20240311033000+0200"

    spect = read(edit(write(tmp_path), offsets))
    # 22:30 +01:00 = 21:30 UTC; 03:30 +02:00 = 01:30 UTC next day: 4 h
    assert spect.time_after_injection_h == pytest.approx(4.0)
    assert spect.acquisition_datetime == datetime(2024, 3, 11, 3, 30)


def test_injection_time_without_date_is_refused_unless_given(tmp_path: Path) -> None:
    path = edit(
        write(tmp_path),
        lambda ds: delattr(radiopharmaceutical(ds), "RadiopharmaceuticalStartDateTime"),
    )
    with pytest.raises(InvalidInputError, match="injection date") as error:
        read(path)
    assert error.value.field == str(path)
    spect = read(path, injection_datetime=datetime(2024, 3, 10, 22, 30))
    assert spect.time_after_injection_h == pytest.approx(24.0)


def test_given_injection_must_agree_with_the_header(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert read(path, injection_datetime=INJECTION + timedelta(seconds=30)).injection_datetime == (
        INJECTION
    )
    with pytest.raises(InvalidInputError, match="differs") as error:
        read(path, injection_datetime=INJECTION - timedelta(days=1))
    assert error.value.field == str(path)
    with pytest.raises(InvalidInputError, match="differs"):
        read(path, injected_activity_mbq=7000.0)


def test_acquisition_before_injection_is_refused(tmp_path: Path) -> None:
    # one second before the injection at 22:30:00
    path = edit(write(tmp_path), lambda ds: setattr(ds, "AcquisitionDateTime", "20240310222959"))
    with pytest.raises(InvalidInputError, match="before the injection") as error:
        read(path)
    assert error.value.field == str(path)


@pytest.mark.parametrize(
    ("total_dose", "expected_mbq"),
    [("7400", 7400.0), ("7.4e9", 7400.0), ("7400000000", 7400.0)],
)
def test_injected_activity_in_mbq_or_bq(
    tmp_path: Path, total_dose: str, expected_mbq: float
) -> None:
    path = edit(
        write(tmp_path),
        lambda ds: setattr(radiopharmaceutical(ds), "RadionuclideTotalDose", total_dose),
    )
    assert read(path).injected_activity_mbq == pytest.approx(expected_mbq)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: delattr(radiopharmaceutical(ds), "RadionuclideTotalDose"), "activity"),
        (lambda ds: setattr(radiopharmaceutical(ds), "RadionuclideTotalDose", "5e5"), "MBq"),
        (lambda ds: delattr(ds, "RadiopharmaceuticalInformationSequence"), "injection"),
        (lambda ds: setattr(radiopharmaceutical(ds), "RadionuclideHalfLife", "21624"), "177Lu"),
        (lambda ds: setattr(ds, "RescaleIntercept", "-1e9"), "negative"),
        (lambda ds: setattr(ds, "Units", "PROPCPS"), "BQML or CNTS"),
        (lambda ds: delattr(ds, "Units"), "BQML or CNTS"),
        (lambda ds: delattr(ds, "DecayCorrection"), "NONE, START or ADMIN"),
        (lambda ds: delattr(ds, "DetectorInformationSequence"), "ImagePositionPatient"),
        (lambda ds: setattr(ds, "SpacingBetweenSlices", "0"), "must not be 0"),
        (lambda ds: setattr(ds, "NumberOfSlices", 8), "NumberOfSlices"),
    ],
)
def test_bad_headers_are_refused_naming_the_file(
    tmp_path: Path, change: Callable[[Dataset], object], message: str
) -> None:
    path = edit(write(tmp_path), change)
    with pytest.raises(InvalidInputError, match=message) as error:
        read(path)
    assert error.value.field.startswith(str(path))


def test_frames_follow_the_slice_vector(tmp_path: Path) -> None:
    volume = activity()
    path = write(tmp_path, volume)
    reference = read(path).volume.array

    def reverse_frames(ds: Dataset) -> None:
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[::-1]).tobytes()
        ds.SliceVector = [4, 3, 2, 1]

    assert np.array_equal(read(edit(path, reverse_frames)).volume.array, reference)


def test_negative_spacing_stacks_frames_against_the_normal(tmp_path: Path) -> None:
    """C.8.4.15: negative SpacingBetweenSlices puts each frame in front of the previous one."""
    path = write(tmp_path)
    reference = read(path).volume

    def stack_from_the_top(ds: Dataset) -> None:
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[::-1]).tobytes()
        # ROTATED's normal is +z: the top frame is 3 * 4.8 mm above the origin's -20.25
        ds.DetectorInformationSequence[0].ImagePositionPatient = [-100.0, 50.5, -5.85]
        ds.SpacingBetweenSlices = "-4.8"

    flipped = read(edit(path, stack_from_the_top)).volume
    assert flipped.grid.matches(reference.grid, tolerance_mm=1e-3)
    assert np.array_equal(flipped.array, reference.array)


def split_into_pet_slices(path: Path, folder: Path) -> None:
    """Rewrite a multi-frame NM file as single-frame PT slices (PET Image Storage)."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    detector = ds.DetectorInformationSequence[0]
    normal = np.cross(
        np.asarray(detector.ImageOrientationPatient[:3], float),
        np.asarray(detector.ImageOrientationPatient[3:], float),
    )
    series_uid = generate_uid()
    for index in reversed(range(frames.shape[0])):  # file order must not matter
        piece = pydicom.dcmread(path)
        for keyword in ("NumberOfFrames", "FrameIncrementPointer", "SliceVector"):
            delattr(piece, keyword)
        piece.Modality = "PT"
        piece.SOPClassUID = PositronEmissionTomographyImageStorage
        piece.SOPInstanceUID = generate_uid()
        piece.file_meta.MediaStorageSOPClassUID = piece.SOPClassUID
        piece.file_meta.MediaStorageSOPInstanceUID = piece.SOPInstanceUID
        piece.SeriesInstanceUID = series_uid
        piece.ImageOrientationPatient = detector.ImageOrientationPatient
        origin = np.asarray(detector.ImagePositionPatient, float)
        piece.ImagePositionPatient = list(origin + index * 4.8 * normal)
        piece.PixelData = np.ascontiguousarray(frames[index]).tobytes()
        piece.save_as(folder / f"slice{index:02d}")


def test_series_of_single_frame_slices(tmp_path: Path) -> None:
    volume = activity()
    multiframe = write(tmp_path / "nm", volume)
    (tmp_path / "pt").mkdir()
    split_into_pet_slices(multiframe, tmp_path / "pt")
    series = scan_dicom_folder(tmp_path / "pt").series("PT")
    assert len(series) == 1
    assert len(series[0].files) == 4
    slices = read_spect(series[0])
    assert slices.volume.grid.matches(GRID, tolerance_mm=1e-3)
    assert np.allclose(slices.volume.array, read(multiframe).volume.array, rtol=1e-12)


def test_128_cubed_reads_in_well_under_a_second(tmp_path: Path) -> None:
    grid = Grid((128, 128, 128), (4.8, 4.8, 4.8), (-307.2, -307.2, -307.2))
    path = write(tmp_path, activity(grid))
    start = time.perf_counter()
    spect = read(path)
    assert time.perf_counter() - start < 0.5
    assert spect.volume.array.shape == (128, 128, 128)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"acquisition_datetime": INJECTION - timedelta(minutes=1)}, "acquisition_datetime"),
        ({"injected_activity_mbq": 0.0}, "injected_activity_mbq"),
        ({"units": "CNTS"}, "units"),
        ({"units": "CNTS", "calibration_cps_per_mbq": -1.0, "acquisition_duration_s": 10.0}, "cal"),
        ({"units": "PROPCPS"}, "units"),
    ],
)
def test_writer_refuses_bad_arguments(
    tmp_path: Path, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        write(tmp_path, **overrides)
    assert field in error.value.field


def test_writer_refuses_negative_activity_and_left_handed_grids(tmp_path: Path) -> None:
    negative = activity().array.copy()
    negative[0, 0, 0] = -1e-3
    with pytest.raises(InvalidInputError, match="volume_mbq"):
        write(tmp_path, Volume(GRID, negative))
    mirrored = Grid((6, 5, 4), (4.8, 4.8, 4.8), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, -1))
    with pytest.raises(InvalidInputError, match="cross product"):
        write(tmp_path, activity(mirrored))
