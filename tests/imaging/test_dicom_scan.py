"""Folder scan: series grouping, files of any name and depth, non-DICOM and corrupt files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.fileset import FileSet

from startrt.imaging.ct import write_ct_series
from startrt.imaging.dicom_scan import scan_dicom_folder
from startrt.imaging.spect import write_spect_nm
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

GRID = Grid((4, 3, 5), (4.8, 4.8, 4.8), (0.0, 0.0, 0.0))
ACQUISITION = datetime(2024, 3, 11, 10, 0)


def make_study(folder: Path) -> tuple[Path, Path]:
    """An NM file and a 5-slice CT series in nested folders, renamed without extensions,
    next to a truth.json and a notes file."""
    nm = write_spect_nm(
        Volume(GRID, np.ones(GRID.shape)),
        folder / "day1" / "spect",
        acquisition_datetime=ACQUISITION,
        injection_datetime=datetime(2024, 3, 10, 10, 0),
        injected_activity_mbq=7400.0,
        patient_id="START-001",
        study_uid="1.2.3.4",
        frame_of_reference_uid="1.2.3.5",
        series_description="SPECT 24 h",
    )
    nm = nm.rename(nm.parent / "IM0001")
    ct = write_ct_series(
        Volume(GRID, np.zeros(GRID.shape)),
        folder / "day1" / "ct",
        patient_id="START-001",
        study_uid="1.2.3.4",
        frame_of_reference_uid="1.2.3.5",
        acquisition_datetime=ACQUISITION,
    )
    for index, path in enumerate(sorted(ct.iterdir())):
        path.rename(ct / f"{index:x}")
    (folder / "truth.json").write_text('{"vois": {}}')
    (folder / "day1" / "notes.txt").write_text("acquired on the second day")
    return nm, ct


def test_groups_files_by_series(tmp_path: Path) -> None:
    nm, ct = make_study(tmp_path)
    index = scan_dicom_folder(tmp_path)
    assert len(index.all_series) == 2
    (spect,) = index.series("NM")
    assert spect.files == (nm,)
    assert spect.description == "SPECT 24 h"
    assert spect.frame_of_reference_uid == "1.2.3.5"
    assert spect.uid == pydicom.dcmread(nm).SeriesInstanceUID
    (ct_series,) = index.series("CT")
    assert ct_series.files == tuple(sorted(ct.iterdir()))
    assert len(ct_series.files) == 5
    assert index.series("MR") == []


@pytest.mark.filterwarnings("ignore:Expected implicit VR:UserWarning")
def test_corrupt_dicom_file_is_named(tmp_path: Path) -> None:
    make_study(tmp_path)
    corrupt = tmp_path / "day1" / "broken.dcm"
    meta_group_length = b"\x02\x00\x00\x00UL\x04\x00\x10\x00\x00\x00"
    unknown_vr = b"\x08\x00\x16\x00XX\x40\x00abc"
    corrupt.write_bytes(b"\0" * 128 + b"DICM" + meta_group_length + unknown_vr)
    # the index reads only the series tags: the file is refused for lacking them
    with pytest.raises(InvalidInputError, match="SeriesInstanceUID") as error:
        scan_dicom_folder(tmp_path)
    assert error.value.field == str(corrupt)


def test_truncated_dicom_header_is_named(tmp_path: Path) -> None:
    nm, _ = make_study(tmp_path)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(nm.read_bytes()[:400])
    with pytest.raises(InvalidInputError) as error:
        scan_dicom_folder(tmp_path)
    assert error.value.field == str(truncated)


def test_non_dicom_files_can_be_refused(tmp_path: Path) -> None:
    make_study(tmp_path)
    with pytest.raises(InvalidInputError, match="no DICM preamble") as error:
        scan_dicom_folder(tmp_path, skip_non_dicom=False)
    assert error.value.field in {str(tmp_path / "truth.json"), str(tmp_path / "day1/notes.txt")}


def test_dicomdir_is_skipped(tmp_path: Path) -> None:
    nm, _ = make_study(tmp_path / "source")
    file_set = FileSet()
    file_set.add(nm)
    file_set.write(tmp_path / "media")
    index = scan_dicom_folder(tmp_path / "media")
    assert [series.modality for series in index.all_series] == ["NM"]


def test_mixed_modalities_in_one_series_are_refused(tmp_path: Path) -> None:
    _, ct = make_study(tmp_path)
    odd = sorted(ct.iterdir())[2]
    ds = pydicom.dcmread(odd)
    ds.Modality = "MR"
    ds.save_as(odd)
    with pytest.raises(InvalidInputError, match="modality differs") as error:
        scan_dicom_folder(tmp_path)
    assert error.value.field == str(odd)


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not an existing folder"):
        scan_dicom_folder(tmp_path / "absent")
