"""A cycle's study uploaded as a zip: stored under DATA_DIR/studies, unzipped safely, computed
by the dosimetry layer (in the request through the API; queued by the pages,
tests/web/test_study_tasks.py) and stored as the cycle's DosimetryResult (source
"computed", the study path, its time points as imaging sessions); unsafe or broken archives are
refused naming the rule, leaving no file behind. Stored studies are de-identified (no name or
hospital ID in any stored file) and must be the patient's: PatientID = the trial pseudonym, or
the uploader's confirmation, audited.

The study is a 32^3 phantom (19.2 mm voxels, four time points at 4, 24, 96 and 168 h, injected
7.4 GBq on 3 March 2025) written by `make_phantom_study`, as `startrt phantom make` does; its
truth is the analytic kidney dose."""

from __future__ import annotations

import io
import json
import os
import stat
import warnings
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from startrt.imaging.phantom_study import make_phantom_study
from startrt.validation import InvalidInputError
from startrt.web.treatment import study_upload
from startrt.web.treatment.models import Cycle, DosimetryResult, StudyJob
from startrt.web.treatment.services import record_dosimetry
from startrt.web.treatment.study_tasks import compute_study_job
from startrt.web.treatment.study_upload import upload_study
from startrt.web.trial.models import AuditEntry, Patient
from web.test_treatment import Sites, Staff, give, planned_cycle, randomized

INJECTED = date(2025, 3, 3)  # the phantom's injection day (make_phantom_study's default)
API_URL = "/api/patients/S01-LUN-001/cycles/1/dosimetry/study"
Study = tuple[bytes, dict[str, Any]]


PATIENT_NAME, HOSPITAL_ID = "Doe^Jane", "MRN-778899"


def phantom_study_zip(folder: Path, patient_id: str) -> Study:
    """The zipped study folder (one top folder, `study/`) and the phantom's truth; its DICOM
    files carry PATIENT_NAME, `patient_id`, a birth date and an institution."""
    written = make_phantom_study(folder, seed=2, grid_size=32, ct_subdivision=1)
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID = PATIENT_NAME, patient_id
        ds.PatientBirthDate, ds.InstitutionName = "19600102", "St Elsewhere Hospital"
        ds.save_as(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, Path("study") / path.relative_to(folder))
    truth = json.loads(written.truth_file.read_text(encoding="utf-8"))
    return buffer.getvalue(), truth


@pytest.fixture(scope="module")
def phantom_zip(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """The study as the clinic exports it: the patient's name and hospital ID."""
    return phantom_study_zip(tmp_path_factory.mktemp("phantom_32") / "study", HOSPITAL_ID)


@pytest.fixture(scope="module")
def pseudonymised_zip(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """The study exported under the trial pseudonym as PatientID (and still a name)."""
    return phantom_study_zip(tmp_path_factory.mktemp("phantom_32p") / "study", "S01-LUN-001")


def stored_bytes(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in stored_files(data_dir))


@pytest.fixture
def data_dir(tmp_path: Path, settings: Any) -> Path:
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def given(team: Staff, sites: Sites) -> Cycle:
    """S01-LUN-001 (dTOC): cycle 1 planned on the phantom's injection day and given."""
    patient: Patient = randomized(team, sites, 1)
    return give(team, planned_cycle(team, patient, planned_date=INJECTED), 7.4)


def stored_files(data_dir: Path) -> list[Path]:
    studies = data_dir / "studies"
    return sorted(path for path in studies.rglob("*") if path.is_file()) if studies.exists() else []


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def zipped(write: Callable[[zipfile.ZipFile], None]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate name written below
        with zipfile.ZipFile(buffer, "w") as archive:
            write(archive)
    return buffer.getvalue()


def symlink(archive: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("study/link.dcm")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive.writestr(info, "/etc/passwd")


def encrypted() -> bytes:
    """A one-member zip whose headers say "encrypted" (general purpose flag bit 0; zipfile
    cannot write one): the flag set in the local header (offset 6) and the central one (8)."""
    content = bytearray(zipped(lambda archive: archive.writestr("study/a.dcm", b"x")))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        content[content.index(signature) + offset] |= 0x1
    return bytes(content)


def twice(archive: zipfile.ZipFile) -> None:
    archive.writestr("study/a.dcm", b"x")
    archive.writestr("study/a.dcm", b"y")


UNSAFE: list[tuple[str, bytes, str]] = [
    ("not a zip", b"PK\x03\x04 but not really a zip archive", "is not a zip archive"),
    (
        "parent folder",
        zipped(lambda archive: archive.writestr("study/../../evil.dcm", b"x")),
        "paths must stay inside the study folder",
    ),
    (
        "absolute path",
        zipped(lambda archive: archive.writestr("/etc/cron.d/evil", b"x")),
        "paths must stay inside the study folder",
    ),
    (
        "drive letter",
        zipped(lambda archive: archive.writestr("C:/evil.dcm", b"x")),
        "paths must stay inside the study folder",
    ),
    ("symbolic link", zipped(symlink), "no links or devices"),
    ("encrypted", encrypted(), "encrypted members are refused"),
    ("a member twice", zipped(twice), "could not be unzipped (File exists)"),
    (
        "no study inside",
        zipped(lambda archive: archive.writestr("study/readme.txt", b"hello")),
        "a study needs SPECT images",
    ),
]


@pytest.mark.parametrize(
    ("content", "rule"), [(c, r) for _, c, r in UNSAFE], ids=[i for i, _, _ in UNSAFE]
)
def test_unsafe_or_broken_archives_are_refused_and_leave_nothing(
    team: Staff, given: Cycle, data_dir: Path, content: bytes, rule: str
) -> None:
    upload = SimpleUploadedFile("study.zip", content, content_type="application/zip")
    with pytest.raises(InvalidInputError) as refused:
        upload_study(team["physicist"], given, upload)
    assert (refused.value.field, refused.value.value) == ("study", "study.zip")
    assert rule in refused.value.rule
    assert stored_files(data_dir) == []
    assert not DosimetryResult.objects.exists()


@pytest.mark.parametrize(
    ("setting", "limit", "rule"),
    [
        ("STARTRT_STUDY_UPLOAD_MAX_BYTES", 100, "must be at most 100 bytes"),
        ("STARTRT_STUDY_MAX_MEMBERS", 2, "holds 3 files, at most 2"),
        ("STARTRT_MAX_STUDY_BYTES", 2999, "unzips to 3000 bytes, at most 2999"),
    ],
)
def test_size_limits_are_enforced(
    team: Staff,
    given: Cycle,
    data_dir: Path,
    settings: Any,
    setting: str,
    limit: int,
    rule: str,
) -> None:
    setattr(settings, setting, limit)

    def three_files(archive: zipfile.ZipFile) -> None:
        for index in range(3):
            archive.writestr(f"study/{index}.dcm", b"\x00" * 1000)

    upload = SimpleUploadedFile("big.zip", zipped(three_files))
    with pytest.raises(InvalidInputError, match="study") as refused:
        upload_study(team["physicist"], given, upload)
    assert rule in refused.value.rule
    assert stored_files(data_dir) == []


def test_only_a_physicist_uploads_and_only_for_a_given_cycle(
    team: Staff, sites: Sites, data_dir: Path
) -> None:
    patient = randomized(team, sites, 1)
    cycle = planned_cycle(team, patient)
    upload = SimpleUploadedFile("study.zip", zipped(symlink))
    with pytest.raises(PermissionDenied):
        upload_study(team["investigator"], cycle, upload)
    with pytest.raises(InvalidInputError, match="dosimetry follows an administered cycle"):
        upload_study(team["physicist"], cycle, upload)
    assert stored_files(data_dir) == []


@pytest.mark.slow
def test_a_study_from_another_day_is_refused(
    team: Staff, sites: Sites, data_dir: Path, phantom_zip: Study
) -> None:
    cycle = give(team, planned_cycle(team, randomized(team, sites, 1)), 7.4)  # 17 March
    upload = SimpleUploadedFile("study.zip", phantom_zip[0])
    with pytest.raises(InvalidInputError, match="injection on 2025-03-03 in the study") as refused:
        upload_study(team["physicist"], cycle, upload, patient_confirmed=True)
    assert refused.value.field == "study"
    assert stored_files(data_dir) == []


@pytest.mark.slow
def test_the_api_computes_the_uploaded_study_and_replaces_it_with_a_reason(
    team: Staff, given: Cycle, data_dir: Path, phantom_zip: Study
) -> None:
    content, truth = phantom_zip
    physicist = client_for(team["physicist"])
    refused = client_for(team["nurse"]).post(
        API_URL, {"study": SimpleUploadedFile("study.zip", content), "patient_confirmed": "true"}
    )
    assert refused.status_code == 403, refused.content
    assert stored_files(data_dir) == []
    hidden = client_for(team["uppsala"]).post(
        API_URL, {"study": SimpleUploadedFile("study.zip", content), "patient_confirmed": "true"}
    )
    assert hidden.status_code == 404
    unconfirmed = physicist.post(API_URL, {"study": SimpleUploadedFile("study.zip", content)})
    assert (unconfirmed.status_code, unconfirmed.json()["field"]) == (422, "patient_confirmed")
    assert stored_files(data_dir) == []

    answer = physicist.post(
        API_URL, {"study": SimpleUploadedFile("study.zip", content), "patient_confirmed": "true"}
    )
    assert answer.status_code == 200, answer.content
    result = answer.json()
    assert (result["source"], result["imaging_sessions"], result["version"]) == ("computed", 4, 1)
    assert result["study_path"].startswith("S01-LUN-001/cycle-1/")
    assert result["study_path"].endswith("/study")
    folder = data_dir / "studies" / result["study_path"]
    assert (folder / "rtstruct.dcm").is_file()
    # de-identified: neither the upload as sent nor its name, hospital ID, birth date or
    # institution is kept in any stored file; the PatientID is the pseudonym
    assert not (folder / "truth.json").exists()
    assert not list(folder.parent.parent.glob("*.zip"))
    stored = stored_bytes(data_dir)
    for value in (PATIENT_NAME, "Doe", HOSPITAL_ID, "19600102", "St Elsewhere"):
        assert value.encode() not in stored, value
    header = pydicom.dcmread(folder / "rtstruct.dcm", stop_before_pixels=True)
    assert (header.PatientID, header.PatientIdentityRemoved) == ("S01-LUN-001", "YES")
    confirmed = AuditEntry.objects.get(
        table="treatment_dosimetryresult", action="update", new__study_patient_confirmed=True
    )
    assert (confirmed.username, confirmed.patient_trial_id) == ("physicist.lund", "S01-LUN-001")
    assert confirmed.reason == "the uploader confirmed that this study belongs to S01-LUN-001"
    # the organ method on 19.2 mm voxels finds the known kidney doses within 10 %
    vois = truth["vois"]
    assert result["left_kidney_dose_gy"] == pytest.approx(vois["left_kidney"]["dose_gy"], rel=0.1)
    assert result["right_kidney_dose_gy"] == pytest.approx(vois["right_kidney"]["dose_gy"], rel=0.1)
    kidney = physicist.get("/api/patients/S01-LUN-001/kidney-dose").json()
    mean = (result["left_kidney_dose_gy"] + result["right_kidney_dose_gy"]) / 2
    assert kidney["cumulative"] == [{"cycle": 1, "cumulative_gy": pytest.approx(mean)}]

    again = physicist.post(
        API_URL, {"study": SimpleUploadedFile("study.zip", content), "patient_confirmed": "true"}
    )
    assert (again.status_code, again.json()["field"]) == (422, "expected_version")
    stale = physicist.post(
        API_URL,
        {
            "study": SimpleUploadedFile("study.zip", content),
            "patient_confirmed": "true",
            "expected_version": "2",
            "reason": "re-export",
        },
    )
    assert stale.status_code == 409
    replaced = physicist.post(
        API_URL,
        {
            "study": SimpleUploadedFile("study.zip", content),
            "patient_confirmed": "true",
            "expected_version": "1",
            "reason": "VOIs redrawn in the clinic",
        },
    )
    assert replaced.status_code == 200
    assert replaced.json()["version"] == 2
    assert replaced.json()["study_path"] != result["study_path"]
    entry = AuditEntry.objects.get(
        table="treatment_dosimetryresult", action="update", reason="VOIs redrawn in the clinic"
    )
    assert entry.old["study_path"] == result["study_path"]
    # both studies kept (the audit trail names the old one)
    studies = data_dir / "studies" / "S01-LUN-001" / "cycle-1"
    assert len([path for path in studies.iterdir() if path.is_dir()]) == 2


@pytest.mark.slow
def test_the_page_queues_the_upload_and_the_job_shows_refusals_and_the_result(
    team: Staff, given: Cycle, data_dir: Path, phantom_zip: Study
) -> None:
    """The page queues the study (tests/web/test_study_tasks.py runs the queue's worker);
    here the queued task runs in-process: the job's page names each refusal."""
    physicist = client_for(team["physicist"])
    url = "/patients/S01-LUN-001/treatment/cycles/1/study/"

    def uploaded(data: dict[str, Any]) -> str:
        answer = physicist.post(url, data)
        job = StudyJob.objects.latest("id")
        assert (answer.status_code, answer["Location"]) == (
            302,
            f"/patients/S01-LUN-001/treatment/study-jobs/{job.pk}/",
        )
        compute_study_job.call(job.pk)
        return physicist.get(answer["Location"]).content.decode()

    broken = uploaded({"study": SimpleUploadedFile("notes.zip", b"not a zip")})
    assert "Study “notes.zip” is not a zip archive" in broken
    unconfirmed = uploaded({"study": SimpleUploadedFile("study.zip", phantom_zip[0])})
    assert "is not S01-LUN-001: confirm that this study belongs" in unconfirmed
    assert not DosimetryResult.objects.exists()
    done = uploaded(
        {"study": SimpleUploadedFile("study.zip", phantom_zip[0]), "patient_confirmed": "on"}
    )
    assert "Stored as the cycle's dosimetry (version 1)" in done
    result = DosimetryResult.objects.get()
    assert (result.source, result.imaging_sessions) == ("computed", 4)


# --- interrupted uploads, the patient's study, de-identification ------------------------------


def test_a_failure_mid_extraction_leaves_no_file(
    team: Staff, given: Cycle, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second member's extraction fails (a full disk): the files already unzipped, the
    upload and the staging folder are all removed. While it unzips, nothing is in the
    patient's folder of studies (a process killed then leaves only a staging folder)."""
    real_extract = study_upload._extract
    calls = []
    visible_meanwhile = []

    def failing(*args: Any) -> int:
        calls.append(args[1].filename)
        if len(calls) == 2:
            patient_folder = data_dir / "studies" / "S01-LUN-001"
            visible_meanwhile.extend(path for path in patient_folder.rglob("*") if path.is_file())
            raise OSError(28, "No space left on device")
        return real_extract(*args)

    monkeypatch.setattr(study_upload, "_extract", failing)

    def three_files(archive: zipfile.ZipFile) -> None:
        for index in range(3):
            archive.writestr(f"study/{index}.dcm", b"\x00" * 1000)

    upload = SimpleUploadedFile("study.zip", zipped(three_files))
    with pytest.raises(InvalidInputError, match="No space left on device"):
        upload_study(team["physicist"], given, upload)
    assert calls == ["study/0.dcm", "study/1.dcm"]
    assert visible_meanwhile == []
    assert stored_files(data_dir) == []
    assert list((data_dir / "studies" / ".incoming").iterdir()) == []


def test_a_staging_folder_left_by_a_killed_upload_is_removed_later(
    team: Staff, given: Cycle, data_dir: Path
) -> None:
    staging = data_dir / "studies" / ".incoming"
    old, recent = staging / "upload-old", staging / "upload-recent"
    for folder in (old, recent):
        (folder / "study").mkdir(parents=True)
        (folder / "study" / "half.dcm").write_bytes(b"half a file")
    os.utime(old, (0, 0))
    upload = SimpleUploadedFile("study.zip", zipped(symlink))
    with pytest.raises(InvalidInputError):
        upload_study(team["physicist"], given, upload)
    assert sorted(path.name for path in staging.iterdir()) == ["upload-recent"]  # in progress


def test_a_study_of_another_patient_id_is_refused_unless_confirmed(
    team: Staff, given: Cycle, data_dir: Path, phantom_zip: Study
) -> None:
    upload = SimpleUploadedFile("study.zip", phantom_zip[0])
    with pytest.raises(InvalidInputError) as refused:
        upload_study(team["physicist"], given, upload)
    assert (refused.value.field, refused.value.value) == ("patient_confirmed", False)
    assert "DICOM PatientID is not S01-LUN-001" in refused.value.rule
    assert HOSPITAL_ID not in refused.value.rule
    assert stored_files(data_dir) == []
    assert not DosimetryResult.objects.exists()


def test_the_default_unzipped_limit_fits_a_study_and_is_far_below_4_gib() -> None:
    four_time_points = 4 * (128**3 * 4 + 512 * 512 * 300 * 2 + 300 * 4096)
    assert four_time_points < study_upload.STUDY_UNZIPPED_MAX_BYTES <= 1 << 30


@pytest.mark.slow
def test_a_study_under_the_pseudonym_needs_no_confirmation_and_is_deidentified(
    team: Staff, given: Cycle, data_dir: Path, pseudonymised_zip: Study
) -> None:
    content, truth = pseudonymised_zip
    upload = SimpleUploadedFile("study.zip", content)
    result = upload_study(team["physicist"], given, upload)
    assert result.left_kidney_dose_gy == pytest.approx(
        truth["vois"]["left_kidney"]["dose_gy"], rel=0.1
    )
    stored = stored_bytes(data_dir)
    assert PATIENT_NAME.encode() not in stored
    assert b"19600102" not in stored
    assert not AuditEntry.objects.filter(new__study_patient_confirmed=True).exists()


@pytest.mark.slow
def test_a_study_folder_of_another_patient_id_is_refused_unless_confirmed(
    team: Staff, given: Cycle, data_dir: Path
) -> None:
    """A study put under DATA_DIR/studies by other means (not uploaded, so not
    de-identified) is matched by its PatientID too."""
    folder = data_dir / "studies" / "S01-LUN-001" / "cycle-1"
    make_phantom_study(folder, seed=2, grid_size=32)  # PatientID PHANTOM-2
    with pytest.raises(InvalidInputError, match="PatientID is not S01-LUN-001"):
        record_dosimetry(team["physicist"], given, study_path="S01-LUN-001/cycle-1")
    result = record_dosimetry(
        team["physicist"],
        given,
        study_path="S01-LUN-001/cycle-1",
        study_patient_confirmed=True,
    )
    assert result.source == "computed"
    assert AuditEntry.objects.filter(new__study_patient_confirmed=True).count() == 1
