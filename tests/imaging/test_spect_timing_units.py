"""SPECT time point (acquisition date/time order), Bq/mL from the RealWorldValueMappingSequence,
and negative values (issue 12 items 4, 5, 7)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import PositronEmissionTomographyImageStorage, generate_uid

from startrt.imaging.dicom_scan import scan_dicom_folder
from startrt.imaging.spect import SpectImage, read_spect, write_spect_nm
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

INJECTION = datetime(2024, 3, 10, 22, 30)
SCAN = INJECTION + timedelta(hours=24)  # 11 March 22:30
GRID = Grid((6, 5, 4), (4.8, 4.8, 4.8), (-100.0, 50.5, -20.25))
VOXEL_ML = 4.8**3 / 1000  # 0.110592 mL
LU177_HALF_LIFE_H = 6.647 * 24  # 159.528 h


def write(folder: Path) -> Path:
    values = np.random.default_rng(3).uniform(0.5, 2.0, GRID.shape)
    return write_spect_nm(
        Volume(GRID, values),
        folder,
        acquisition_datetime=SCAN,
        injection_datetime=INJECTION,
        injected_activity_mbq=7400.0,
        patient_id="START-001",
        study_uid="1.2.3.4",
        frame_of_reference_uid="1.2.3.5",
    )


def read(path: Path, **kwargs: object) -> SpectImage:
    series = scan_dicom_folder(path.parent).series(pydicom.dcmread(path).Modality)
    assert len(series) == 1
    return read_spect(series[0], **kwargs)  # type: ignore[arg-type]


def edit(path: Path, change: Callable[[Dataset], object]) -> Path:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)
    return path


def set_stored(ds: Dataset, stored: np.ndarray, slope: str = "1", intercept: str = "0") -> None:
    ds.PixelData = np.ascontiguousarray(stored.astype(np.uint16)).tobytes()
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept


def rwvm_item(
    slope: float | None, intercept: float = 0.0, code: str = "Bq/ml", scheme: str = "UCUM"
) -> Dataset:
    """A RealWorldValueMappingSequence item (C.7.6.16.2.11.1); slope None: a LUT instead."""
    units = Dataset()
    units.CodeValue = code
    units.CodingSchemeDesignator = scheme
    units.CodeMeaning = code
    item = Dataset()
    item.MeasurementUnitsCodeSequence = [units]
    item.LUTExplanation = code
    item.LUTLabel = code
    item.RealWorldValueFirstValueMapped = 0
    item.RealWorldValueLastValueMapped = 65535
    if slope is None:
        item.RealWorldValueLUTData = [0.0, 1.0]
    else:
        item.RealWorldValueSlope = float(slope)
        item.RealWorldValueIntercept = float(intercept)
    return item


def stored_1000(
    rescale_slope: str, *items: Dataset, units: str | None = None
) -> Callable[[Dataset], None]:
    """Every stored value 1000, the given rescale slope, RWVM items and Units (None: absent)."""

    def change(ds: Dataset) -> None:
        set_stored(ds, np.full(GRID.shape, 1000), rescale_slope)
        if items:
            ds.RealWorldValueMappingSequence = list(items)
        if units is None:
            del ds.Units
        else:
            ds.Units = units

    return change


def mbq_per_voxel(bq_per_ml: float) -> float:
    return bq_per_ml * VOXEL_ML / 1e6


# --- item 4: the time point ---------------------------------------------------------------


def test_acquisition_datetime_alone(tmp_path: Path) -> None:
    def only_datetime(ds: Dataset) -> None:
        del ds.AcquisitionDate, ds.AcquisitionTime
        ds.AcquisitionDateTime = "20240311223000"
        ds.SeriesTime = ds.ContentTime = "231500"  # reconstruction, 45 min later

    spect = read(edit(write(tmp_path), only_datetime))
    assert spect.acquisition_datetime == SCAN
    assert spect.time_after_injection_h == pytest.approx(24.0, abs=1e-12)


def test_acquisition_datetime_wins_over_date_and_time(tmp_path: Path) -> None:
    def differ(ds: Dataset) -> None:
        ds.AcquisitionDate, ds.AcquisitionTime = "20240311", "230000"

    assert read(edit(write(tmp_path), differ)).acquisition_datetime == SCAN


def test_acquisition_date_and_time(tmp_path: Path) -> None:
    def date_and_time(ds: Dataset) -> None:
        del ds.AcquisitionDateTime
        ds.AcquisitionDate, ds.AcquisitionTime = "20240312", "013000"  # across midnight

    spect = read(edit(write(tmp_path), date_and_time))
    # 10 March 22:30 -> 12 March 01:30 = 27 h
    assert spect.time_after_injection_h == pytest.approx(27.0, abs=1e-12)


def test_series_and_content_time_45_min_later_are_ignored(tmp_path: Path) -> None:
    def reconstructed_later(ds: Dataset) -> None:
        del ds.AcquisitionDateTime
        ds.AcquisitionDate, ds.AcquisitionTime = "20240311", "223000"
        ds.SeriesDate = ds.ContentDate = "20240311"
        ds.SeriesTime = ds.ContentTime = "231500"

    spect = read(edit(write(tmp_path), reconstructed_later))
    assert spect.acquisition_datetime == SCAN
    assert spect.time_after_injection_h == pytest.approx(24.0, abs=1e-12)


@pytest.mark.parametrize("keep", ["AcquisitionDate", "AcquisitionTime", None])
def test_missing_acquisition_time_is_refused_not_taken_from_series_or_content(
    tmp_path: Path, keep: str | None
) -> None:
    def no_acquisition(ds: Dataset) -> None:
        for keyword in ("AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime"):
            if keyword != keep:
                delattr(ds, keyword)

    path = edit(write(tmp_path), no_acquisition)
    assert pydicom.dcmread(path).SeriesTime  # a series and content time are there
    with pytest.raises(InvalidInputError, match="SeriesDate/Time and ContentDate/Time") as error:
        read(path)
    assert error.value.field == str(path)


def test_slices_take_the_earliest_slice_time_not_the_series_time(tmp_path: Path) -> None:
    folder = split_into_slices(write(tmp_path / "nm"), tmp_path / "pt")

    def per_slice(index: int) -> Callable[[Dataset], None]:
        def change(ds: Dataset) -> None:
            del ds.AcquisitionDateTime
            ds.AcquisitionDate = "20240311"
            ds.AcquisitionTime = f"2230{index:02d}"  # one second apart
            ds.SeriesTime = "231500"

        return change

    for index, path in enumerate(sorted(folder.iterdir())):
        edit(path, per_slice(index))
    spect = read_spect(scan_dicom_folder(folder).series("PT")[0])
    assert spect.acquisition_datetime == SCAN


def test_undecayed_values_are_brought_from_the_scan_midpoint_to_its_start(tmp_path: Path) -> None:
    path = write(tmp_path)
    at_start = read(path).volume.array

    def thirty_minutes_not_corrected(ds: Dataset) -> None:
        ds.DecayCorrection = "NONE"
        ds.ActualFrameDuration = 1_800_000  # ms

    back = read(edit(path, thirty_minutes_not_corrected)).volume.array
    # lambda = ln 2 / 159.528 h = 0.00434501 /h; lambda T = 0.00217251 for 0.5 h;
    # lambda T / (1 - exp(-lambda T)) = 1 + lambda T / 2 + (lambda T)^2 / 12 = 1.00108665
    factor = math.log(2) / LU177_HALF_LIFE_H * 0.5
    assert factor / -math.expm1(-factor) == pytest.approx(1.00108665, abs=1e-8)
    assert np.allclose(back, at_start * 1.00108665, rtol=1e-8)


def test_undecayed_counts_round_trip(tmp_path: Path) -> None:
    values = np.random.default_rng(5).uniform(0.5, 2.0, GRID.shape)
    path = write_spect_nm(
        Volume(GRID, values),
        tmp_path,
        acquisition_datetime=SCAN,
        injection_datetime=INJECTION,
        injected_activity_mbq=7400.0,
        patient_id="START-001",
        study_uid="1.2.3.4",
        frame_of_reference_uid="1.2.3.5",
        units="CNTS",
        calibration_cps_per_mbq=10.0,
        acquisition_duration_s=1800.0,
        decay_correction="NONE",
    )
    back = read(path, calibration_cps_per_mbq=10.0).volume.array
    assert np.abs(back - values).max() <= 0.5 * values.max() / 65535 * 1.001


# --- item 5: Bq/mL from the RealWorldValueMappingSequence ------------------------------------


def test_rwvm_bq_per_ml_without_units_like_xspect_quant(tmp_path: Path) -> None:
    path = edit(write(tmp_path), stored_1000("1", rwvm_item(0.5, 10)))
    spect = read(path)
    # 1000 * 0.5 + 10 = 510 Bq/mL; * 0.110592 mL = 56.40192 Bq per voxel
    assert np.allclose(spect.volume.array, 5.640192e-5, rtol=1e-12)
    assert any("RealWorldValueMapping" in note for note in spect.notes)


def test_rwvm_bq_per_ml_with_units_cnts_and_a_different_rescale(tmp_path: Path) -> None:
    path = edit(write(tmp_path), stored_1000("1", rwvm_item(0.5), units="CNTS"))
    # counts as the modality value (slope 1), Bq/mL as the real-world value: 500 Bq/mL
    assert np.allclose(read(path).volume.array, mbq_per_voxel(500.0), rtol=1e-12)


def test_rwvm_is_preferred_over_the_rescale(tmp_path: Path) -> None:
    path = edit(write(tmp_path), stored_1000("2", rwvm_item(0.25), units="PROPCPS"))
    assert np.allclose(read(path).volume.array, mbq_per_voxel(250.0), rtol=1e-12)


def test_rwvm_agreeing_with_bqml_is_accepted_without_a_note(tmp_path: Path) -> None:
    path = edit(write(tmp_path), stored_1000("0.5", rwvm_item(0.5), units="BQML"))
    spect = read(path)
    assert np.allclose(spect.volume.array, mbq_per_voxel(500.0), rtol=1e-12)
    assert spect.notes == ()


def test_rwvm_items_in_other_units_are_ignored(tmp_path: Path) -> None:
    suv = rwvm_item(0.001, code="g/ml")
    counts = rwvm_item(3, code="{counts}")
    path = edit(write(tmp_path), stored_1000("0.5", suv, counts, units="BQML"))
    assert np.allclose(read(path).volume.array, mbq_per_voxel(500.0), rtol=1e-12)


@pytest.mark.parametrize(
    ("change", "message", "named"),
    [
        # BQML whose rescale disagrees with the RWVM's slope
        (stored_1000("0.5", rwvm_item(0.25), units="BQML"), "disagree", "Units=BQML"),
        # the same numbers declared counts by Units and Bq/mL by the RWVM
        (stored_1000("0.5", rwvm_item(0.5), units="CNTS"), "counts", "Units=CNTS"),
        # two Bq/ml items that disagree
        (stored_1000("1", rwvm_item(0.5), rwvm_item(0.6)), "disagree", "Bq/ml"),
        # a Bq/ml item without a slope (a LUT)
        (stored_1000("1", rwvm_item(None)), "RealWorldValueSlope", "Bq/ml"),
    ],
)
def test_conflicting_units_are_refused_naming_both(
    tmp_path: Path, change: Callable[[Dataset], None], message: str, named: str
) -> None:
    path = edit(write(tmp_path), change)
    with pytest.raises(InvalidInputError, match=message) as error:
        read(path)
    assert error.value.field == str(path)
    assert named in str(error.value.value)
    if "Units" in named:
        assert "RealWorldValueMapping" in str(error.value.value)


def test_rwvm_on_each_slice_of_a_series(tmp_path: Path) -> None:
    folder = split_into_slices(write(tmp_path / "nm"), tmp_path / "pt")
    for index, path in enumerate(sorted(folder.iterdir())):
        slope = 0.5 * (index + 1)  # each slice its own mapping, as PET slices have

        def change(ds: Dataset, slope: float = slope) -> None:
            ds.PixelData = np.full((5, 6), 1000, np.uint16).tobytes()
            ds.RescaleSlope = "1"
            ds.RealWorldValueMappingSequence = [rwvm_item(slope)]
            del ds.Units

        edit(path, change)
    spect = read_spect(scan_dicom_folder(folder).series("PT")[0])
    per_slice = spect.volume.array.reshape(4, -1)
    expected = [mbq_per_voxel(500.0 * (k + 1)) for k in range(4)]
    assert np.allclose(per_slice, np.asarray(expected)[:, np.newaxis], rtol=1e-12)


# --- item 7: negative values ---------------------------------------------------------------


def stored_with_zeros(zeros: int, others: int = 1000) -> Callable[[Dataset], None]:
    """Stored `others` everywhere but `zeros` voxels 0; slope 1, intercept -1."""

    def change(ds: Dataset) -> None:
        stored = np.full(GRID.shape, others)
        stored.reshape(-1)[:zeros] = 0
        set_stored(ds, stored, "1", "-1")

    return change


def test_a_few_negative_voxels_are_clipped_and_counted(tmp_path: Path) -> None:
    path = edit(write(tmp_path), stored_with_zeros(1))  # 1 of 120 voxels (0.83 %) at -1 Bq/mL
    spect = read(path)
    assert spect.volume.array.min() == 0.0
    assert spect.volume.array.reshape(-1)[0] == 0.0
    assert np.allclose(spect.volume.array.reshape(-1)[1:], mbq_per_voxel(999.0), rtol=1e-12)
    assert len(spect.notes) == 1
    assert "1 negative voxels" in spect.notes[0]
    assert str(path) in spect.notes[0]


def test_clean_images_have_no_notes(tmp_path: Path) -> None:
    assert read(write(tmp_path)).notes == ()


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (stored_with_zeros(2), "2 of 120"),  # 1.7 % > 1 %
        (stored_with_zeros(1, others=1), "total -1"),  # one voxel -1, the rest 0
    ],
)
def test_many_negatives_or_a_negative_total_are_refused(
    tmp_path: Path, change: Callable[[Dataset], None], seen: str
) -> None:
    path = edit(write(tmp_path), change)
    with pytest.raises(InvalidInputError, match="negative values: at most 1%") as error:
        read(path)
    assert error.value.field == str(path)
    assert seen in str(error.value.value)


def split_into_slices(path: Path, folder: Path) -> Path:
    """The NM multi-frame file as single-frame PT slices (PET Image Storage) in `folder`."""
    folder.mkdir(parents=True)
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    detector = ds.DetectorInformationSequence[0]
    series_uid = generate_uid()
    for index in range(frames.shape[0]):
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
        piece.ImagePositionPatient = [float(v) for v in origin + np.array([0.0, 0.0, index * 4.8])]
        piece.PixelData = np.ascontiguousarray(frames[index]).tobytes()
        piece.save_as(folder / f"slice{index:02d}")
    return folder
