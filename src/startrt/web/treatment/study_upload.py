"""A cycle's dosimetry study uploaded by the physicist as a zip of the study folder (as
`startrt phantom make` writes it, or an export of the clinic's SPECT/CT with its VOIs).

The upload is written and unzipped in a private staging folder, DATA_DIR/studies/.incoming/
(0700), de-identified there (`imaging.deidentify`: DICOM PS3.15 basic profile, PatientID and
PatientName replaced by the trial pseudonym, dates kept for the dosimetry; the uploaded zip and
files other than DICOM and the label-image VOIs are not kept), then moved by one atomic rename
to DATA_DIR/studies/<trial id>/cycle-<n>/<stamp>/ and computed (`record_dosimetry` with the
study path: load_study + compute_dosimetry, organ method) and stored as the cycle's
DosimetryResult, source "computed", with the study path and its number of time points. The
pages run it in two halves: `check_upload` + `stage_upload` in the request, `compute_staged` on
the task queue (`study_tasks`), which also writes the figures of the study's voxel dosimetry to
<stamp>-figures/ beside the study; the API's `upload_study` runs both in the request. A
replaced study stays on disk: the audit trail names it. Any error removes the staging folder,
the stored study and its figures; a staging folder left by a killed process is removed by a later
upload once it is older than STAGING_MAX_AGE_S.

The study must be the patient's: the PatientID of its DICOM files (before de-identification)
must be the trial pseudonym, or the uploader confirms that the study belongs to the patient
(`patient_confirmed`), which the audit trail records (`doses.record_patient_confirmation`).

Unzipping trusts nothing in the archive: it must be a zip of at most STUDY_UPLOAD_MAX_BYTES,
with at most STUDY_MAX_MEMBERS members whose names are relative paths without "..", backslash
or NUL, no symbolic links, devices or encrypted members, and at most STUDY_UNZIPPED_MAX_BYTES
in total, counted while writing (the sizes the archive declares are checked first, not
believed). The limits are Django settings (`STARTRT_STUDY_UPLOAD_MAX_BYTES`,
`STARTRT_MAX_STUDY_BYTES` for the unzipped size, read by settings.py from the environment
variable of the same name, `STARTRT_STUDY_MAX_MEMBERS`), defaults below. The unzipped
default, 1 GiB, fits a 4-time-point study with room to spare: per time point a 128^3 float32
SPECT (8 MiB) and a 512 x 512 x 300 CT of 16-bit pixels (150 MiB) plus headers (~1 MiB):
4 x 159 MiB = 636 MiB, with an RTSTRUCT or a SEG of a few tens of MiB; 4 GiB was six times
that.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.figures import write_figures
from startrt.dosimetry.study import load_study
from startrt.imaging.deidentify import deidentify_folder
from startrt.validation import InvalidInputError
from startrt.web.treatment.doses import reading_study, studies_root
from startrt.web.treatment.models import Cycle, DosimetryResult
from startrt.web.treatment.services import record_dosimetry, require_administered
from startrt.web.trial.changes import StaleVersionError, check_version
from startrt.web.trial.models import Role
from startrt.web.trial.permissions import require_role

STUDY_UPLOAD_MAX_BYTES = 1 << 30  # 1 GiB: four SPECT/CT sessions, compressed
STUDY_UNZIPPED_MAX_BYTES = 1 << 30  # 1 GiB: four SPECT/CT sessions (~640 MiB, docstring)
UNZIPPED_SETTING = "MAX_STUDY_BYTES"
STAGING = ".incoming"
STAGING_MAX_AGE_S = 6 * 3600
STUDY_MAX_MEMBERS = 20_000
CHUNK_BYTES = 1 << 20
DEFAULT_NAME = "study.zip"
UPLOAD_FILE = "upload.zip"
FIGURES_SUFFIX = "-figures"
# the steps of a computation, as the page shows them
UNZIPPING, DEIDENTIFYING = "unzipping", "de-identifying"
FITTING, COMPUTING_DOSE = "fitting time-activity curves", "computing dose"
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


class Upload(Protocol):
    """What the study upload reads of Django's UploadedFile."""

    name: str | None
    size: int | None

    def chunks(self, chunk_size: int | None = None) -> Iterable[bytes]: ...


def _limit(name: str, default: int) -> int:
    value: int = getattr(settings, f"STARTRT_{name}", default)
    return value


def _unzipped_limit() -> int:
    return _limit(UNZIPPED_SETTING, STUDY_UNZIPPED_MAX_BYTES)


@dataclass(frozen=True)
class StoredStudy:
    """A computed study: the cycle's stored dosimetry, and with figures their folder (under
    DATA_DIR/studies) and each VOI's row of the figures' voxel dosimetry."""

    result: DosimetryResult
    figures_path: str = ""
    vois: tuple[dict[str, object], ...] = ()


def upload_study(
    user: AbstractBaseUser,
    cycle: Cycle,
    upload: Upload,
    *,
    reason: str = "",
    expected_version: int | None = None,
    patient_confirmed: bool = False,
) -> DosimetryResult:
    """Store, unzip, de-identify and compute the uploaded study as the cycle's dosimetry
    (physicists), in one call (the API); the pages run `compute_staged` on the task queue."""
    check_upload(user, cycle, reason=reason, expected_version=expected_version)
    staging = stage_upload(upload)
    stored = compute_staged(
        user,
        cycle,
        staging,
        upload.name or DEFAULT_NAME,
        reason=reason,
        expected_version=expected_version,
        patient_confirmed=patient_confirmed,
    )
    return stored.result


def check_upload(
    user: AbstractBaseUser, cycle: Cycle, *, reason: str, expected_version: int | None
) -> None:
    """A physicist's upload for an administered cycle; replacing earlier dosimetry needs its
    version and a reason, checked before the upload is stored (and again, under lock, when the
    result is saved)."""
    require_role(user, cycle.patient.site, Role.PHYSICIST)
    require_administered(cycle)
    existing = DosimetryResult.objects.filter(cycle=cycle).first()
    if existing is not None:
        if expected_version is None:
            raise InvalidInputError(
                "expected_version", None, "replacing dosimetry names its version"
            )
        check_version(existing, expected_version, "dosimetry result")
        if not reason.strip():
            raise InvalidInputError("reason", reason, "a correction of dosimetry needs a reason")


def stage_upload(upload: Upload) -> Path:
    """A new staging folder holding the upload as UPLOAD_FILE (refused past the size limit,
    nothing kept)."""
    staging = _staging_folder()
    try:
        _save(upload, upload.name or DEFAULT_NAME, staging / UPLOAD_FILE)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _no_progress(_: str) -> None:
    return None


def compute_staged(
    user: AbstractBaseUser,
    cycle: Cycle,
    staging: Path,
    name: str,
    *,
    reason: str = "",
    expected_version: int | None = None,
    patient_confirmed: bool = False,
    figures: bool = False,
    progress: Callable[[str], None] = _no_progress,
) -> StoredStudy:
    """Unzip, de-identify, move into place and compute the staged upload (`stage_upload`) as
    the cycle's dosimetry, telling `progress` each STEP; with `figures`, the figures of the
    study's voxel dosimetry (`dosimetry.figures`) are written first, into the folder beside
    the study named `<stamp>-figures`. A study whose PatientID is not the patient's trial
    pseudonym needs `patient_confirmed`. Any error removes the staging folder, the study and
    its figures; the staging folder is removed in any case."""
    folder = _new_place(cycle)
    figures_folder = folder.with_name(f"{folder.name}{FIGURES_SUFFIX}")
    try:
        unzipped = staging / "study"
        archive = staging / UPLOAD_FILE
        progress(UNZIPPING)
        study = _unzip(archive, name, unzipped)
        archive.unlink()  # the upload as sent is identifying: not kept
        progress(DEIDENTIFYING)
        _deidentify(unzipped, cycle, name, patient_confirmed=patient_confirmed)
        os.rename(unzipped, folder)  # atomic: the study appears whole or not at all
        stored = folder / study.relative_to(unzipped)
        study_path = stored.relative_to(studies_root()).as_posix()
        vois: tuple[dict[str, object], ...] = ()
        if figures:
            vois = _write_figures(cycle, stored, study_path, figures_folder, progress)
        progress(COMPUTING_DOSE)
        result = record_dosimetry(
            user,
            cycle,
            study_path=study_path,
            reason=reason,
            expected_version=expected_version,
            study_patient_confirmed=patient_confirmed,
        )
        figures_path = figures_folder.relative_to(studies_root()).as_posix() if figures else ""
        return StoredStudy(result, figures_path, vois)
    except InvalidInputError as error:
        _remove(folder, figures_folder)
        if error.field == "study_path" and not isinstance(error, StaleVersionError):
            raise InvalidInputError("study", name, error.rule) from None
        raise
    except BaseException:
        _remove(folder, figures_folder)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove(*folders: Path) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _write_figures(
    cycle: Cycle,
    stored: Path,
    study_path: str,
    figures_folder: Path,
    progress: Callable[[str], None],
) -> tuple[dict[str, object], ...]:
    """The figures of the study's voxel dosimetry (the stored doses are the organ method's,
    `record_dosimetry`), and each VOI's fit, half-life, TIA and voxel-method dose."""
    progress(FITTING)

    def dose_step(message: str) -> None:
        if message.endswith("dose"):
            progress(COMPUTING_DOSE)

    with reading_study(study_path):
        study = load_study(stored)
        if study.patient_sex is None:
            study = dataclasses.replace(study, patient_sex=cycle.patient.sex)
        result = compute_dosimetry(study, method="voxel", progress=dose_step)
    write_figures(result, study, figures_folder)
    return tuple(
        {
            "voi": voi.name,
            "fit_model": voi.fit_model,
            "effective_half_life_h": voi.effective_half_life_h,
            "tia_mbq_h": voi.tia_mbq_h,
            "voxel_dose_gy": voi.dose_gy,
        }
        for voi in result.vois.values()
    )


def _deidentify(study: Path, cycle: Cycle, name: str, *, patient_confirmed: bool) -> None:
    """De-identify the unzipped study in place; refuse it unless every DICOM file named the
    patient's pseudonym as PatientID, or the uploader confirmed the patient."""
    trial_id = cycle.patient.trial_id
    try:
        done = deidentify_folder(study, trial_id)
    except InvalidInputError as error:
        raise InvalidInputError("study", name, f"{error.value}: {error.rule}") from None
    if not done.dicom_files:
        raise InvalidInputError("study", name, "holds no DICOM file: a study needs SPECT images")
    if done.original_patient_ids != {trial_id} and not patient_confirmed:
        raise InvalidInputError(
            "patient_confirmed",
            False,
            f"the study's DICOM PatientID is not {trial_id}: confirm that this study belongs "
            f"to {trial_id}",
        )


def _staging_folder() -> Path:
    """A new private (0700) folder under DATA_DIR/studies/.incoming, on the file system of the
    studies (so the final move is one rename); older staging folders, left by a process killed
    mid-upload, are removed first."""
    root = studies_root() / STAGING
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    cutoff = time.time() - STAGING_MAX_AGE_S
    for old in root.iterdir():
        try:
            if old.lstat().st_mtime >= cutoff:
                continue
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        except OSError:
            pass  # another upload cleaning it at the same time
    return Path(tempfile.mkdtemp(prefix="upload-", dir=root))


def _new_place(cycle: Cycle) -> Path:
    """A new, unique `<stamp>` path (not created) in the cycle's folder of studies."""
    stamp = f"{timezone.now():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    parent = studies_root() / cycle.patient.trial_id / f"cycle-{cycle.number}"
    parent.mkdir(parents=True, exist_ok=True)
    return parent / stamp


def _save(upload: Upload, name: str, archive: Path) -> Path:
    """The upload written to `archive`, refused past the size limit (counted, not declared)."""
    limit = _limit("STUDY_UPLOAD_MAX_BYTES", STUDY_UPLOAD_MAX_BYTES)
    too_big = InvalidInputError("study", name, f"must be at most {limit} bytes")
    if upload.size is not None and upload.size > limit:
        raise too_big
    written = 0
    with archive.open("xb") as out:
        for chunk in upload.chunks(CHUNK_BYTES):
            written += len(chunk)
            if written > limit:
                raise too_big
            out.write(chunk)
    return archive


def _unzip(archive: Path, name: str, folder: Path) -> Path:
    """Unzip into `folder` (see the module docstring); the study folder: `folder`, or the one
    folder the zip holds at its top."""
    if not zipfile.is_zipfile(archive):
        raise InvalidInputError("study", name, "is not a zip archive")
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            _check_members(members, name)
            folder.mkdir()
            budget = _unzipped_limit()
            for member in members:
                budget = _extract(zipped, member, folder, budget, name)
    except InvalidInputError:
        raise
    except ZIP_ERRORS as error:
        raise InvalidInputError(
            "study", name, f"is a damaged or unsupported zip ({error})"
        ) from None
    except OSError as error:  # e.g. a member twice, a file where a folder is, a name too long
        rule = f"could not be unzipped ({error.strerror})"
        raise InvalidInputError("study", name, rule) from None
    top = [path for path in folder.iterdir() if path.name != "__MACOSX"]
    return top[0] if len(top) == 1 and top[0].is_dir() else folder


def _check_members(members: list[zipfile.ZipInfo], name: str) -> None:
    count_limit = _limit("STUDY_MAX_MEMBERS", STUDY_MAX_MEMBERS)
    if len(members) > count_limit:
        raise InvalidInputError("study", name, f"holds {len(members)} files, at most {count_limit}")
    size_limit = _unzipped_limit()
    declared = sum(member.file_size for member in members)
    if declared > size_limit:
        raise InvalidInputError("study", name, f"unzips to {declared} bytes, at most {size_limit}")
    for member in members:
        _check_member(member, name)


def _check_member(member: zipfile.ZipInfo, name: str) -> None:
    path = member.filename
    parts = PurePosixPath(path).parts
    unsafe = (
        not parts
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or ".." in parts
        or ":" in parts[0]
    )
    if unsafe:
        raise InvalidInputError(
            "study", name, f"member {path!r}: paths must stay inside the study folder"
        )
    kind = stat.S_IFMT(member.external_attr >> 16)  # 0 when the zip gives no Unix file type
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise InvalidInputError(
            "study", name, f"member {path!r}: only files and folders (no links or devices)"
        )
    if member.flag_bits & 0x1:
        raise InvalidInputError("study", name, f"member {path!r}: encrypted members are refused")


def _extract(
    zipped: zipfile.ZipFile, member: zipfile.ZipInfo, folder: Path, budget: int, name: str
) -> int:
    """Write one member under `folder`; the bytes left of the unzipped-size budget."""
    target = (folder / member.filename).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise InvalidInputError("study", name, f"member {member.filename!r} leaves the folder")
    if member.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return budget
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipped.open(member) as source, target.open("xb") as out:
        while chunk := source.read(CHUNK_BYTES):
            budget -= len(chunk)
            if budget < 0:
                raise InvalidInputError("study", name, "unzips to more than the size limit")
            out.write(chunk)
    return budget
