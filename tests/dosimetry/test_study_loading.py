"""Loading a cycle's study: alignment of moved time points, and errors that name the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.study import load_study
from startrt.imaging.phantom_study import make_phantom_study
from startrt.imaging.volume import Volume
from startrt.validation import InvalidInputError

Phantom = tuple[Path, dict[str, Any]]


def copy_of(phantom: Phantom, tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    shutil.copytree(phantom[0], folder)
    return folder


def spect_file(folder: Path, time_point: str) -> Path:
    return next((folder / time_point / "spect").glob("*.dcm"))


def edit(path: Path, **attributes: str) -> None:
    dataset = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        if keyword == "RadiopharmaceuticalStartDateTime":
            dataset.RadiopharmaceuticalInformationSequence[
                0
            ].RadiopharmaceuticalStartDateTime = value
        else:
            setattr(dataset, keyword, value)
    dataset.save_as(path)


def test_time_points_are_read_in_time_order(phantom_64: Phantom) -> None:
    study = load_study(phantom_64[0], declared_aligned=True)
    assert [round(tp.time_h, 3) for tp in study.time_points] == [4.0, 24.0, 96.0, 168.0]
    assert study.injected_activity_mbq == pytest.approx(7400.0)
    assert set(study.vois.names) >= {"left_kidney", "right_kidney", "liver", "spleen"}
    assert study.voi_source.endswith("rtstruct.dcm")


def test_another_injection_is_refused_naming_the_file(phantom_64: Phantom, tmp_path: Path) -> None:
    folder = copy_of(phantom_64, tmp_path)
    moved = spect_file(folder, "tp3_96h")
    edit(moved, RadiopharmaceuticalStartDateTime="20250303123700")
    with pytest.raises(InvalidInputError, match="injection time differs") as error:
        load_study(folder, declared_aligned=True)
    assert error.value.field == str(moved)


def test_an_acquisition_before_the_injection_is_refused(
    phantom_64: Phantom, tmp_path: Path
) -> None:
    folder = copy_of(phantom_64, tmp_path)
    early = spect_file(folder, "tp1_4h")
    edit(
        early,
        AcquisitionDateTime="20250303083700",
        AcquisitionDate="20250303",
        AcquisitionTime="083700",
    )
    with pytest.raises(InvalidInputError) as error:
        load_study(folder, declared_aligned=True)
    assert error.value.field == str(early)


def test_a_study_without_vois_is_refused(phantom_64: Phantom, tmp_path: Path) -> None:
    folder = copy_of(phantom_64, tmp_path)
    (folder / "rtstruct.dcm").unlink()
    (folder / "seg.dcm").unlink()
    with pytest.raises(InvalidInputError, match="RTSTRUCT, a SEG") as error:
        load_study(folder, declared_aligned=True)
    assert error.value.field == str(folder)


def test_the_seg_is_used_without_an_rtstruct(phantom_64: Phantom, tmp_path: Path) -> None:
    folder = copy_of(phantom_64, tmp_path)
    (folder / "rtstruct.dcm").unlink()
    study = load_study(folder, declared_aligned=True)
    assert study.voi_source == str(folder / "seg.dcm")
    truth = phantom_64[1]["vois"]["liver"]["volume_ml"]
    assert study.vois.volume_ml("liver") == pytest.approx(truth, rel=0.02)


def test_a_label_image_outside_the_spect_is_refused(phantom_64: Phantom, tmp_path: Path) -> None:
    from startrt.imaging.image_files import write_image
    from startrt.imaging.volume import Grid

    folder = copy_of(phantom_64, tmp_path)
    (folder / "rtstruct.dcm").unlink()
    (folder / "seg.dcm").unlink()
    far = Grid((10, 10, 10), (2.0, 2.0, 2.0), (5000.0, 5000.0, 5000.0))
    labels = np.zeros(far.shape, dtype=np.float32)
    labels[3:6, 3:6, 3:6] = 1
    write_image(Volume(far, labels), folder / "labels.nii.gz")
    (folder / "labels.json").write_text(json.dumps({"1": "left_kidney"}), encoding="utf-8")
    with pytest.raises(InvalidInputError, match="left_kidney") as error:
        load_study(folder, declared_aligned=True)
    assert error.value.field == str(folder / "labels.nii.gz")


@pytest.mark.slow
def test_moved_time_points_are_registered(tmp_path: Path) -> None:
    shifts = ((0.0, 0.0, 0.0), (9.0, -6.0, 4.0), (-7.0, 5.0, 3.0), (6.0, 6.0, -5.0))
    folder = tmp_path / "moved"
    written = make_phantom_study(folder, seed=4, grid_size=64, ct_subdivision=2, shifts_mm=shifts)
    truth = json.loads(written.truth_file.read_text(encoding="utf-8"))["vois"]
    registered = load_study(folder)
    for time_point, shift in zip(registered.time_points[1:], shifts[1:], strict=True):
        assert time_point.alignment.method == "registered"
        # the transform maps reference points to the moved time point: translation = shift
        assert np.allclose(time_point.alignment.translation_mm, shift, atol=1.5)
    aligned = compute_dosimetry(registered, method="organ").vois["left_kidney"].tia_mbq_h
    naive = compute_dosimetry(load_study(folder, declared_aligned=True), method="organ")
    unaligned = naive.vois["left_kidney"].tia_mbq_h
    expected = truth["left_kidney"]["tia_mbq_h"]
    assert abs(aligned / expected - 1) < 0.02
    assert abs(unaligned / expected - 1) > abs(aligned / expected - 1)
