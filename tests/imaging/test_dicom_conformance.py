"""Every kind of DICOM object startrt writes passes dicom3tools' `dciodvfy` (an independent IOD
validator, Debian package `dicom3tools`): no error, and only the warnings the README lists with
the reason each is accepted (`ACCEPTED_WARNINGS`). Skipped, saying so, where `dciodvfy` is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.outputs import write_outputs
from startrt.dosimetry.study import load_study
from startrt.imaging.deidentify import deidentify_folder
from startrt.imaging.phantom_study import PhantomStudy, make_phantom_study

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy (Debian package dicom3tools) not installed"
)

# Attributes we write outside the NM IOD on purpose (a Standard Extended SOP Class, as vendors'
# quantitative SPECT is): the reader needs them to give Bq/mL and the time of the injection.
NM_QUANTITATIVE = ("Units", "DecayCorrection", "RescaleSlope", "RescaleIntercept")
NM_INJECTION = ("RadiopharmaceuticalStartDateTime", "RadionuclideHalfLife")
ACCEPTED_WARNINGS = {
    **{f"{name}: not in the NM IOD": "quantitative SPECT" for name in NM_QUANTITATIVE},
    **{f"{name}: not in the NM IOD": "injection time and nuclide" for name in NM_INJECTION},
    "DoseSummationType MRT_CYCLE: unrecognized defined term": "no RT Plan in molecular RT",
    # de-identified copies (PS3.15 E.1-1): StudyID emptied (Z); the pseudonym is the family name
    # alone, trailing component delimiters omitted as PS3.5 6.2 allows
    "StudyID: needed for a DICOMDIR": "emptied by the confidentiality profile",
    "PatientName: single-component form": "the trial pseudonym",
}
# dicom3tools 1.00~20220618 aborts on any 32-bit Pixel Data (attrothr.cc assertion, reported by
# Horos users, horosproject/horos#614); an RT Dose keeps 32 bits for precision, so its header is
# validated with the pixels re-encoded at 16 bits.
KNOWN_32_BIT_ABORT = "Assertion `bitsallocated <= bytesinword*8u' failed"
_NOT_IN_IOD = re.compile(r"</(?:.*/)?(\w+)\(\w{4},\w{4}\)> - Attribute is not present in standard")
_DEFINED_TERM = re.compile(r"</(\w+)\(\w{4},\w{4}\)\[1\]> - Unrecognized defined term = <(\w+)>")


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) of `dciodvfy -new` on `path`; warnings as keys of ACCEPTED_WARNINGS."""
    assert DCIODVFY is not None
    run = subprocess.run([DCIODVFY, "-new", str(path)], capture_output=True, text=True)
    output = run.stdout + run.stderr
    if KNOWN_32_BIT_ABORT in output:
        return dciodvfy(_as_16_bit(path))
    assert run.returncode == 0 or "Error" in output, f"dciodvfy failed on {path}: {output}"
    lines = output.splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    warnings = []
    for line in (line for line in lines if line.startswith("Warning")):
        if match := _NOT_IN_IOD.search(line):
            warnings.append(f"{match[1]}: not in the NM IOD")
        elif match := _DEFINED_TERM.search(line):
            warnings.append(f"{match[1]} {match[2]}: unrecognized defined term")
        elif "</StudyID(0020,0010)> - Missing attribute or value that would be needed" in line:
            warnings.append("StudyID: needed for a DICOMDIR")
        elif "</PatientName(0010,0010)[1]> - " in line and "Retired Person Name form" in line:
            warnings.append("PatientName: single-component form")
        else:
            warnings.append(line)
    return errors, warnings


def _as_16_bit(path: Path) -> Path:
    ds = pydicom.dcmread(path)
    assert ds.BitsAllocated == 32, f"{path}: dciodvfy aborted on {ds.BitsAllocated}-bit pixels"
    high_bits = (ds.pixel_array >> 16).astype(np.uint16)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelData = high_bits.tobytes()
    copy = path.with_name(f"{path.stem}-16bit.dcm")
    ds.save_as(copy, enforce_file_format=True)
    return copy


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[PhantomStudy, Path]:
    """A small phantom study and the dosimetry outputs of its 24 h time point."""
    folder = tmp_path_factory.mktemp("conformance")
    study = make_phantom_study(folder / "study", seed=5, grid_size=32, time_points_h=(4, 24, 96))
    loaded = load_study(study.folder, declared_aligned=True)
    write_outputs(compute_dosimetry(loaded, method="voxel"), loaded, folder / "out")
    return study, folder / "out"


def objects(study: PhantomStudy, out: Path) -> dict[str, Path]:
    return {
        "NM SPECT (Bq/mL)": study.time_points[0].spect_file,
        "CT slice": sorted(study.time_points[0].ct_folder.iterdir())[0],
        "RT Structure Set": study.rtstruct_file,
        "Segmentation": study.seg_file,
        "RT Dose": out / "dose_rtdose.dcm",
    }


@pytest.mark.parametrize(
    "kind", ["NM SPECT (Bq/mL)", "CT slice", "RT Structure Set", "Segmentation", "RT Dose"]
)
def test_each_written_object_has_no_error_and_only_accepted_warnings(
    written: tuple[PhantomStudy, Path], kind: str
) -> None:
    errors, warnings = dciodvfy(objects(*written)[kind])
    assert errors == []
    assert set(warnings) <= set(ACCEPTED_WARNINGS), set(warnings) - set(ACCEPTED_WARNINGS)


def test_count_images_and_deidentified_copies_pass_too(tmp_path: Path) -> None:
    study = make_phantom_study(
        tmp_path / "study", seed=6, grid_size=32, time_points_h=(24,), spect_units="CNTS"
    )
    original = study.time_points[0].spect_file.read_bytes()
    deidentify_folder(study.folder, pseudonym="S01-LUN-999")
    files = [study.folder / "original-count-image.dcm", *sorted(study.folder.rglob("*.dcm"))]
    files[0].write_bytes(original)
    assert len(files) > 3
    for path in files:
        errors, warnings = dciodvfy(path)
        assert errors == [], path
        assert set(warnings) <= set(ACCEPTED_WARNINGS), (path, warnings)


def test_the_validator_catches_what_it_must(
    written: tuple[PhantomStudy, Path], tmp_path: Path
) -> None:
    """The check can fail: the structure set without its frame of reference has two errors."""
    broken = pydicom.dcmread(written[0].rtstruct_file)
    del broken.FrameOfReferenceUID
    del broken.PositionReferenceIndicator
    broken.save_as(tmp_path / "broken.dcm", enforce_file_format=True)
    errors, _ = dciodvfy(tmp_path / "broken.dcm")
    assert len(errors) == 2
    assert all("FrameOfReference" in error for error in errors)


def test_rt_dose_overlays_on_its_ct(written: tuple[PhantomStudy, Path]) -> None:
    """Same study and frame of reference as the 24 h SPECT/CT; Gy; a frame offset per slice."""
    study, out = written
    dose = pydicom.dcmread(out / "dose_rtdose.dcm", stop_before_pixels=True)
    ct = pydicom.dcmread(sorted(study.time_points[1].ct_folder.iterdir())[0])
    assert (dose.StudyInstanceUID, dose.FrameOfReferenceUID) == (
        ct.StudyInstanceUID,
        ct.FrameOfReferenceUID,
    )
    assert dose.DoseUnits == "GY"
    assert len(dose.GridFrameOffsetVector) == dose.NumberOfFrames == 32
    structures = pydicom.dcmread(study.rtstruct_file)
    first_ct = pydicom.dcmread(sorted(study.time_points[0].ct_folder.iterdir())[0])
    assert structures.FrameOfReferenceUID == first_ct.FrameOfReferenceUID
    frame = structures.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == first_ct.FrameOfReferenceUID
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == first_ct.SeriesInstanceUID
    assert len(series.ContourImageSequence) == len(list(study.time_points[0].ct_folder.iterdir()))
