"""A cycle's dosimetry study uploaded by the physicist as a zip of the study folder (as
`startrt phantom make` writes it, or an export of the clinic's SPECT/CT with its VOIs).

The zip is kept as `<stamp>.zip` and unzipped into `<stamp>/` under
DATA_DIR/studies/<trial id>/cycle-<n>/, then computed in the request (`record_dosimetry` with
the study path: load_study + compute_dosimetry, organ method; a few seconds for a 64^3 study,
synchronous on purpose: the physicist waits for the result) and stored as the cycle's
DosimetryResult, source "computed", with the study path and its number of time points.
A replaced study stays on disk: the audit trail names it.

Unzipping trusts nothing in the archive: it must be a zip of at most STUDY_UPLOAD_MAX_BYTES,
with at most STUDY_MAX_MEMBERS members whose names are relative paths without "..", backslash
or NUL, no symbolic links, devices or encrypted members, and at most STUDY_UNZIPPED_MAX_BYTES
in total, counted while writing (the sizes the archive declares are checked first, not
believed). A refused upload leaves no file behind. The limits are Django settings
(`STARTRT_STUDY_UPLOAD_MAX_BYTES`, `STARTRT_STUDY_UNZIPPED_MAX_BYTES`,
`STARTRT_STUDY_MAX_MEMBERS`), defaults below.
"""

from __future__ import annotations

import secrets
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Protocol

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from startrt.validation import InvalidInputError
from startrt.web.treatment.doses import studies_root
from startrt.web.treatment.models import Cycle, DosimetryResult
from startrt.web.treatment.services import record_dosimetry, require_administered
from startrt.web.trial.changes import StaleVersionError, check_version
from startrt.web.trial.models import Role
from startrt.web.trial.permissions import require_role

STUDY_UPLOAD_MAX_BYTES = 1 << 30  # 1 GiB: four SPECT/CT sessions, compressed
STUDY_UNZIPPED_MAX_BYTES = 4 << 30  # 4 GiB
STUDY_MAX_MEMBERS = 20_000
CHUNK_BYTES = 1 << 20
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


def upload_study(
    user: AbstractBaseUser,
    cycle: Cycle,
    upload: Upload,
    *,
    reason: str = "",
    expected_version: int | None = None,
) -> DosimetryResult:
    """Store, unzip and compute the uploaded study as the cycle's dosimetry (physicists);
    replacing earlier dosimetry needs its version and a reason, checked before the upload is
    stored (and again, under lock, when the result is saved)."""
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
    name = upload.name or "study.zip"
    archive, folder = _new_place(cycle)
    try:
        study = _unzip(_save(upload, name, archive), name, folder)
        return record_dosimetry(
            user,
            cycle,
            study_path=study.relative_to(studies_root()).as_posix(),
            reason=reason,
            expected_version=expected_version,
        )
    except InvalidInputError as error:
        _remove(archive, folder)
        if error.field == "study_path" and not isinstance(error, StaleVersionError):
            raise InvalidInputError("study", name, error.rule) from None
        raise
    except BaseException:
        _remove(archive, folder)
        raise


def _new_place(cycle: Cycle) -> tuple[Path, Path]:
    """A new, unique `<stamp>.zip` and `<stamp>/` in the cycle's folder of studies."""
    stamp = f"{timezone.now():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    parent = studies_root() / cycle.patient.trial_id / f"cycle-{cycle.number}"
    parent.mkdir(parents=True, exist_ok=True)
    return parent / f"{stamp}.zip", parent / stamp


def _remove(archive: Path, folder: Path) -> None:
    archive.unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


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
            budget = _limit("STUDY_UNZIPPED_MAX_BYTES", STUDY_UNZIPPED_MAX_BYTES)
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
    size_limit = _limit("STUDY_UNZIPPED_MAX_BYTES", STUDY_UNZIPPED_MAX_BYTES)
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
