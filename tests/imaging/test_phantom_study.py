"""Phantom study on disk: real DICOM read back by pydicom and the project's readers; truth.json."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest

from startrt.imaging.ct import read_ct
from startrt.imaging.dicom_scan import scan_dicom_folder
from startrt.imaging.osem import OsemReconstruction
from startrt.imaging.phantom_study import PhantomStudy, make_phantom_study
from startrt.imaging.rtstruct import read_rtstruct
from startrt.imaging.seg import read_seg
from startrt.imaging.spect import read_spect
from startrt.validation import InvalidInputError

VOIS = {"left_kidney", "right_kidney", "liver", "spleen", "tumour_1", "tumour_2", "tumour_3"}
LN2 = math.log(2.0)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> PhantomStudy:
    """Default 4 time points on the small grid (64^3 voxels of 9.6 mm), BQML, no noise."""
    return make_phantom_study(tmp_path_factory.mktemp("study") / "phantom", seed=5, grid_size=64)


def load_truth(study: PhantomStudy) -> dict:  # type: ignore[type-arg]
    return json.loads(study.truth_file.read_text(encoding="utf-8"))


def kinetics_mbq(record: dict, time_h: float) -> float:  # type: ignore[type-arg]
    """A(t) from a truth.json kinetics record, written out here (second implementation)."""
    if record["model"] == "mono":
        return record["a0_mbq"] * math.exp(-LN2 / record["effective_half_life_h"] * time_h)
    clearance = LN2 / record["clearance_half_life_h"]
    uptake = LN2 / record["uptake_half_life_h"]
    return record["amplitude_mbq"] * (math.exp(-clearance * time_h) - math.exp(-uptake * time_h))


def total_mbq(truth: dict, time_h: float) -> float:  # type: ignore[type-arg]
    organs = sum(kinetics_mbq(voi["kinetics"], time_h) for voi in truth["vois"].values())
    return organs + kinetics_mbq(truth["background"], time_h)


def test_layout_and_files_readable_by_pydicom(study: PhantomStudy) -> None:
    folder = study.folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "rtstruct.dcm",
        "seg.dcm",
        "tp1_4h",
        "tp2_24h",
        "tp3_96h",
        "tp4_168h",
        "truth.json",
    ]
    for point in study.time_points:
        assert point.spect_file.parent.name == "spect"
        assert point.ct_folder.parent.name == "ct"
        assert pydicom.dcmread(point.spect_file).Modality == "NM"
        slices = sorted(point.ct_folder.iterdir())
        assert len(slices) == 64
        assert pydicom.dcmread(slices[0]).Modality == "CT"
    assert pydicom.dcmread(study.rtstruct_file).Modality == "RTSTRUCT"
    assert pydicom.dcmread(study.seg_file).Modality == "SEG"


def test_acquisition_times_cross_days(study: PhantomStudy) -> None:
    first = pydicom.dcmread(study.time_points[0].spect_file)
    second = pydicom.dcmread(study.time_points[1].spect_file)
    # injection 2025-03-03 10:37; 4 h -> 14:37 the same day; 24 h -> 10:37 the next day
    injection = first.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    assert str(injection).startswith("20250303103700")
    assert str(first.AcquisitionDateTime).startswith("20250303143700")
    assert str(second.AcquisitionDateTime).startswith("20250304103700")
    assert [p.acquisition_datetime for p in study.time_points][-1] == datetime(2025, 3, 10, 10, 37)


def test_spect_read_back_holds_the_analytic_activity(study: PhantomStudy) -> None:
    truth = load_truth(study)
    spects = [read_spect(s) for s in scan_dicom_folder(study.folder).series("NM")]
    spects.sort(key=lambda image: image.acquisition_datetime)
    assert [s.time_after_injection_h for s in spects] == [4.0, 24.0, 96.0, 168.0]
    for spect in spects:
        assert spect.injected_activity_mbq == pytest.approx(7400.0)
        assert spect.volume.grid.size == (64, 64, 64)
        assert spect.volume.grid.spacing_mm == pytest.approx((9.6, 9.6, 9.6))
        expected = total_mbq(truth, spect.time_after_injection_h)
        # uint16 with one slope (max / 65535): each voxel within slope/2, but the ~28000 equal
        # background voxels round alike, a bias up to 28000 x slope/2 ~ 3e-4 of the total
        assert float(spect.volume.array.sum()) == pytest.approx(expected, rel=1e-3)


def test_ct_read_back_shares_the_spect_frame_of_reference(study: PhantomStudy) -> None:
    index = scan_dicom_folder(study.folder)
    cts = sorted((read_ct(s) for s in index.series("CT")), key=lambda c: c.acquisition_datetime)
    spect_frames = {s.frame_of_reference_uid for s in index.series("NM")}
    assert {ct.frame_of_reference_uid for ct in cts} == spect_frames
    assert len(spect_frames) == 4  # one imaging session per time point
    first = cts[0].volume
    assert first.grid.matches(read_spect(index.series("NM")[0]).volume.grid)
    assert float(first.array.min()) == -1000.0
    assert float(first.array.max()) == 400.0  # spine


def test_truth_json_shape_and_values(study: PhantomStudy) -> None:
    truth = load_truth(study)
    assert set(truth["vois"]) == VOIS
    assert truth["injected_activity_mbq"] == 7400.0
    assert datetime.fromisoformat(truth["injection_datetime"]) == datetime(2025, 3, 3, 10, 37)
    assert truth["time_points_h"] == [4.0, 24.0, 96.0, 168.0]
    assert truth["seed"] == 5
    for voi in truth["vois"].values():
        assert {"tia_mbq_h", "dose_gy", "mass_g", "volume_ml"} <= set(voi)
        # dose = TIA x 0.0853063 Gy g/(MBq h) / mass (147.9 keV per decay, local deposition)
        assert voi["dose_gy"] == pytest.approx(voi["tia_mbq_h"] * 0.0853063 / voi["mass_g"])
        assert voi["mass_g"] == pytest.approx(voi["volume_ml"] * voi["density_g_ml"])
        for time_h, activity in zip(truth["time_points_h"], voi["activity_mbq"], strict=True):
            assert activity == pytest.approx(kinetics_mbq(voi["kinetics"], time_h), rel=1e-12)
    kidney = truth["vois"]["left_kidney"]
    rates = [LN2 / kidney["kinetics"][k] for k in ("clearance_half_life_h", "uptake_half_life_h")]
    tia = kidney["kinetics"]["amplitude_mbq"] * (1 / rates[0] - 1 / rates[1])
    assert kidney["tia_mbq_h"] == pytest.approx(tia, rel=1e-12)


@pytest.fixture(scope="module")
def fine_ct_study(tmp_path_factory: pytest.TempPathFactory) -> PhantomStudy:
    """One time point, CT voxels of 4.8 mm (half the SPECT's)."""
    folder = tmp_path_factory.mktemp("fine") / "phantom"
    return make_phantom_study(folder, seed=1, time_points_h=(24.0,), grid_size=64, ct_subdivision=2)


@pytest.mark.slow
def test_vois_read_back_from_rtstruct_and_seg(fine_ct_study: PhantomStudy) -> None:
    truth = load_truth(fine_ct_study)
    ct = read_ct(scan_dicom_folder(fine_ct_study.time_points[0].ct_folder).series("CT")[0])
    assert ct.volume.grid.size == (128, 128, 128)
    for masks in (
        read_seg(fine_ct_study.seg_file),
        read_rtstruct(fine_ct_study.rtstruct_file, ct.volume.grid),
    ):
        assert set(masks) == VOIS
        for name in ("left_kidney", "liver", "tumour_1"):
            mask = masks[name]
            volume_ml = float(mask.array.sum()) * mask.grid.voxel_volume_ml
            assert volume_ml == pytest.approx(truth["vois"][name]["volume_ml"], rel=0.05)


@pytest.mark.slow
def test_counts_noise_blur_and_shift(tmp_path: Path) -> None:
    study = make_phantom_study(
        tmp_path / "phantom",
        seed=2,
        time_points_h=(24.0, 96.0),
        spect_units="CNTS",
        blur_fwhm_mm=10.0,
        noise=True,
        shifts_mm=[(0.0, 0.0, 0.0), (9.6, 0.0, 0.0)],
        grid_size=64,
    )
    truth = load_truth(study)
    assert truth["acquisition"]["shifts_mm"] == [[0.0, 0.0, 0.0], [9.6, 0.0, 0.0]]
    index = scan_dicom_folder(study.folder)
    for series in index.series("NM"):
        spect = read_spect(series, calibration_cps_per_mbq=10.0)
        # noise-equivalent counts: MBq x 10 cps/MBq x 1800 s / gain 160 (~4e4 at 96 h): within
        # 4 Poisson SD, plus 1e-3 for the uint16 rounding; the blur loses ~nothing
        expected = total_mbq(truth, spect.time_after_injection_h)
        tolerance = 4.0 / math.sqrt(expected * 112.5) + 1e-3
        assert float(spect.volume.array.sum()) == pytest.approx(expected, rel=tolerance)
    cts = sorted((read_ct(s) for s in index.series("CT")), key=lambda c: c.acquisition_datetime)
    before, after = cts[0].volume.array, cts[1].volume.array
    # the patient moved one voxel (9.6 mm) towards +x (array axis 2)
    assert np.mean(np.abs(after[:, :, 1:] - before[:, :, :-1])) < 0.01
    assert np.mean(np.abs(after - before)) > 1.0


def test_truth_is_analytic_whatever_the_camera(study: PhantomStudy, tmp_path: Path) -> None:
    """The same seed with depth-dependent resolution and noise: truth.json's VOIs unchanged,
    the images different (blurred: lower peak; noisy), their totals the analytic activity."""
    degraded = make_phantom_study(
        tmp_path / "phantom", seed=5, grid_size=64, noise=True, orbit_radius_mm=250.0
    )
    truth, ideal_truth = load_truth(degraded), load_truth(study)
    assert truth["vois"] == ideal_truth["vois"]
    assert truth["background"] == ideal_truth["background"]
    assert truth["acquisition"]["orbit_radius_mm"] == 250.0
    assert truth["acquisition"]["noise_gain"] == 160.0
    for ideal_point, point in zip(study.time_points, degraded.time_points, strict=True):
        ideal = read_spect(scan_dicom_folder(ideal_point.spect_file.parent).series("NM")[0])
        image = read_spect(scan_dicom_folder(point.spect_file.parent).series("NM")[0])
        assert float(image.volume.array.max()) < 0.8 * float(ideal.volume.array.max())
        expected = total_mbq(truth, image.time_after_injection_h)
        # 112.5 noise-equivalent counts per MBq (132 MBq at 168 h: SD 0.8 %): within 4 SD
        tolerance = 4.0 / math.sqrt(expected * 112.5) + 1e-3
        assert float(image.volume.array.sum()) == pytest.approx(expected, rel=tolerance)


@pytest.mark.slow
def test_osem_study_keeps_the_truth_and_the_activity(study: PhantomStudy, tmp_path: Path) -> None:
    """Noisy projections on a 250 mm orbit, OSEM 4 x 10 (64^3, 120 views): truth unchanged,
    the reconstructed total the analytic activity (EM keeps the projections' counts)."""
    degraded = make_phantom_study(
        tmp_path / "phantom",
        seed=5,
        grid_size=64,
        time_points_h=(24.0,),
        noise=True,
        osem=OsemReconstruction(),
    )
    truth = load_truth(degraded)
    for name, voi in load_truth(study)["vois"].items():  # the same but for the time points
        assert truth["vois"][name] == {**voi, "activity_mbq": voi["activity_mbq"][1:2]}
    assert truth["acquisition"]["osem"] == {
        "orbit_radius_mm": 250.0,
        "views": 120,
        "iterations": 4,
        "subsets": 10,
    }
    image = read_spect(scan_dicom_folder(degraded.time_points[0].spect_file.parent).series("NM")[0])
    # 871 MBq x 18000 counts/MBq = 1.6e7 counts (SD 0.025 %); OSEM's total is kept within 1 %
    assert float(image.volume.array.sum()) == pytest.approx(total_mbq(truth, 24.0), rel=0.01)


def test_bad_requests_are_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="time_points_h"):
        make_phantom_study(tmp_path / "a", time_points_h=(24.0, 4.0), grid_size=64)
    with pytest.raises(InvalidInputError, match="shifts_mm"):
        make_phantom_study(tmp_path / "b", shifts_mm=[(0.0, 0.0, 0.0)], grid_size=64)
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
    with pytest.raises(InvalidInputError, match="orbit_radius_mm"):
        make_phantom_study(tmp_path / "d", orbit_radius_mm=180.0, grid_size=64)  # body 185 mm
    with pytest.raises(InvalidInputError, match="blur_fwhm_mm"):
        make_phantom_study(tmp_path / "e", orbit_radius_mm=250.0, blur_fwhm_mm=12.0, grid_size=64)
    with pytest.raises(InvalidInputError, match="noise_gain"):
        make_phantom_study(tmp_path / "f", noise_gain=0.0, grid_size=64)
    with pytest.raises(InvalidInputError, match="osem"):
        make_phantom_study(tmp_path / "g", osem=OsemReconstruction(), blur_fwhm_mm=12.0)
    assert not any((tmp_path / name).exists() for name in "defg")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "old.txt").write_text("x")
    with pytest.raises(InvalidInputError) as error:
        make_phantom_study(tmp_path / "c", grid_size=64)
    assert error.value.field == str(tmp_path / "c")


def test_cli_phantom_make_with_the_camera_options(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from startrt.cli import app

    runner = CliRunner()
    arguments = ["phantom", "make", "--grid-size", "32", "--time-points-h", "24"]
    camera = ["--noise", "--depth-dependent-resolution", "--orbit-radius-mm", "260"]
    camera += ["--noise-gain", "100", "--acquisition-duration-s", "2400"]
    result = runner.invoke(app, [*arguments, str(tmp_path / "cli"), *camera, "--json"])
    assert result.exit_code == 0, result.output
    acquisition = json.loads(result.stdout)["acquisition"]
    assert acquisition["orbit_radius_mm"] == 260.0
    assert acquisition["noise_gain"] == 100.0
    assert acquisition["acquisition_duration_s"] == 2400.0
    assert acquisition["calibration_cps_per_mbq"] == 10.0  # the default
    osem = ["--osem", "--osem-iterations", "2", "--orbit-radius-mm", "240", "--noise", "--json"]
    reconstructed = runner.invoke(app, [*arguments, str(tmp_path / "osem"), *osem])
    assert reconstructed.exit_code == 0, reconstructed.output
    assert json.loads(reconstructed.stdout)["acquisition"]["osem"] == {
        "orbit_radius_mm": 240.0,
        "views": 120,
        "iterations": 2,
        "subsets": 10,
    }
    both = ["--blur-fwhm-mm", "12", "--depth-dependent-resolution"]
    refused = runner.invoke(app, [*arguments, str(tmp_path / "x"), *both])
    assert refused.exit_code == 2
    assert "blur_fwhm_mm" in refused.output
    alone = runner.invoke(app, [*arguments, str(tmp_path / "y"), "--orbit-radius-mm", "260"])
    assert alone.exit_code == 2
    assert "--orbit-radius-mm" in alone.output
