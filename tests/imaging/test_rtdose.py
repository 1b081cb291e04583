"""RT Dose: round trip, DoseGridScaling by hand, frame offsets, reference to the SPECT study."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest

from startrt.imaging.dicom_scan import scan_dicom_folder
from startrt.imaging.rtdose import read_rtdose, write_rtdose
from startrt.imaging.spect import read_spect, write_spect_nm
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

ROTATED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
GRID = Grid((6, 5, 4), (4.8, 4.8, 4.8), (-100.0, 50.5, -20.25), ROTATED)
AXIAL = Grid((6, 5, 4), (4.8, 4.8, 4.8), (-100.0, 50.5, -20.25))
REFERENCE = ("START-001", "1.2.3.4", "1.2.3.5")


def dose(grid: Grid = GRID) -> Volume:
    return Volume(grid, np.random.default_rng(5).uniform(0.0, 40.0, grid.shape))


def rewrite(path: Path, **attributes: object) -> Path:
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path)
    return path


def test_round_trip_keeps_grid_and_values(tmp_path: Path) -> None:
    volume = dose()
    back = read_rtdose(write_rtdose(volume, tmp_path / "dose.dcm", reference=REFERENCE))
    assert back.grid.matches(GRID, tolerance_mm=1e-3)
    # the peak maps to 2**31 - 1: error at most half a step
    assert np.abs(back.array - volume.array).max() <= 0.5 * volume.array.max() / (2**31 - 1) * 1.01


def test_header_is_rt_dose_in_gray(tmp_path: Path) -> None:
    path = write_rtdose(dose(), tmp_path / "dose.dcm", reference=REFERENCE, description="cycle 1")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.2"
    assert ds.Modality == "RTDOSE"
    assert (ds.DoseUnits, ds.DoseType) == ("GY", "PHYSICAL")
    assert (ds.BitsAllocated, ds.PixelRepresentation) == (32, 0)
    assert [float(v) for v in ds.GridFrameOffsetVector] == [0.0, 4.8, 9.6, 14.4]
    assert (ds.PatientID, ds.StudyInstanceUID, ds.FrameOfReferenceUID) == REFERENCE
    assert ds.SeriesDescription == "cycle 1"


def test_dose_grid_scaling_by_hand(tmp_path: Path) -> None:
    path = write_rtdose(dose(), tmp_path / "dose.dcm", reference=REFERENCE)
    stored = np.full(GRID.shape, 1234, dtype=np.uint32)
    rewrite(path, PixelData=stored.tobytes(), DoseGridScaling="0.001")
    # 1234 * 0.001 Gy = 1.234 Gy
    assert np.allclose(read_rtdose(path).array, 1.234, rtol=1e-12)


def test_absolute_and_descending_frame_offsets(tmp_path: Path) -> None:
    volume = dose(AXIAL)
    path = write_rtdose(volume, tmp_path / "dose.dcm", reference=REFERENCE)
    # absolute mode (axial only): offsets are the z of each frame, first = ImagePositionPatient z
    rewrite(path, GridFrameOffsetVector=[-20.25, -15.45, -10.65, -5.85])
    assert read_rtdose(path).grid.matches(AXIAL, tolerance_mm=1e-3)
    # frames stored from the top: first frame at z = -5.85, offsets 0, -4.8, -9.6, -14.4
    ds = pydicom.dcmread(path)
    rewrite(
        path,
        PixelData=np.ascontiguousarray(ds.pixel_array[::-1]).tobytes(),
        ImagePositionPatient=[-100.0, 50.5, -5.85],
        GridFrameOffsetVector=[0.0, -4.8, -9.6, -14.4],
    )
    back = read_rtdose(path)
    assert back.grid.matches(AXIAL, tolerance_mm=1e-3)
    assert np.allclose(back.array, volume.array, atol=volume.array.max() / 2**30)


def test_reference_spect_gives_patient_study_and_frame_of_reference(tmp_path: Path) -> None:
    nm = write_spect_nm(
        Volume(GRID, np.ones(GRID.shape)),
        tmp_path / "spect",
        acquisition_datetime=datetime(2024, 3, 11, 10, 0),
        injection_datetime=datetime(2024, 3, 10, 10, 0),
        injected_activity_mbq=7400.0,
        patient_id="START-042",
        study_uid="1.2.3.40",
        frame_of_reference_uid="1.2.3.50",
    )
    spect = read_spect(scan_dicom_folder(nm.parent).series("NM")[0])
    ds = pydicom.dcmread(write_rtdose(dose(), tmp_path / "dose.dcm", reference=spect))
    assert (ds.PatientID, ds.StudyInstanceUID) == ("START-042", "1.2.3.40")
    assert ds.FrameOfReferenceUID == "1.2.3.50"
    assert ds.SeriesInstanceUID != spect.series_uid


def test_negative_dose_is_refused(tmp_path: Path) -> None:
    negative = dose().array.copy()
    negative[1, 2, 3] = -0.5
    with pytest.raises(InvalidInputError, match="dose_gy"):
        write_rtdose(Volume(GRID, negative), tmp_path / "dose.dcm", reference=REFERENCE)


def test_relative_dose_units_are_refused(tmp_path: Path) -> None:
    path = rewrite(
        write_rtdose(dose(), tmp_path / "dose.dcm", reference=REFERENCE), DoseUnits="RELATIVE"
    )
    with pytest.raises(InvalidInputError, match="GY") as error:
        read_rtdose(path)
    assert error.value.field == str(path)


def test_uneven_frame_offsets_are_refused(tmp_path: Path) -> None:
    path = rewrite(
        write_rtdose(dose(), tmp_path / "dose.dcm", reference=REFERENCE),
        GridFrameOffsetVector=[0.0, 4.8, 9.6, 20.0],
    )
    with pytest.raises(InvalidInputError, match="evenly spaced"):
        read_rtdose(path)
