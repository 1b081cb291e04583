"""A cycle's study computed on the task queue (django-tasks, database backend: the trial's own
SQLite or PostgreSQL database), never in the request: `submit_study` checks the upload, saves it
to the staging folder and enqueues `compute_study_job`, whose row and the StudyJob are committed
together; the worker (`startrt manage db_worker`, started by `startrt serve`) unzips,
de-identifies, draws the figures and stores the dosimetry (`study_upload.compute_staged`),
recording each step on the StudyJob for the page. A refusal fails the job with its field,
value and rule, and leaves nothing stored (staging, study and figures removed).

On SQLite the worker's claim of a task is one short EXCLUSIVE transaction and every step is an
autocommitted update; the computation holds no lock, so the web server's writers (BEGIN
IMMEDIATE, 30 s busy timeout, WAL: settings.py) never wait on it for more than a moment."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django_tasks import task

from startrt import fields
from startrt.dosimetry.figures import DVH_FILE, SLICES_FILE, TAC_FILE
from startrt.validation import InvalidInputError
from startrt.web.treatment.doses import studies_root
from startrt.web.treatment.models import Cycle, StudyJob
from startrt.web.treatment.study_upload import (
    DEFAULT_NAME,
    STAGING_MAX_AGE_S,
    UPLOAD_FILE,
    Upload,
    check_upload,
    compute_staged,
    stage_upload,
)

logger = logging.getLogger(__name__)
# the figures a done job shows, by the name in their URL
FIGURES = {
    "time_activity": (TAC_FILE, "Time-activity curves: measured (points) and fitted (line)"),
    "dvh": (DVH_FILE, "Dose-volume histograms"),
    "dose_slices": (SLICES_FILE, "Absorbed dose over the CT, through the kidneys"),
}
VOI_COLUMNS = ("fit_model", "effective_half_life_h", "tia_mbq_h", "voxel_dose_gy")
fields.register("tia_mbq_h", "Time-integrated activity", "MBq h", 0)
fields.register("voxel_dose_gy", "Dose, voxel method", "Gy", 2)


def submit_study(
    user: AbstractBaseUser,
    cycle: Cycle,
    upload: Upload,
    *,
    reason: str = "",
    expected_version: int | None = None,
    patient_confirmed: bool = False,
) -> StudyJob:
    """Check the upload (`study_upload.check_upload`), save it to staging and enqueue its
    computation; the queued job. Nothing is kept when enqueueing fails."""
    check_upload(user, cycle, reason=reason, expected_version=expected_version)
    staging = stage_upload(upload)
    try:
        with transaction.atomic():
            job = StudyJob.objects.create(
                patient=cycle.patient,
                cycle=cycle,
                submitted_by=user,
                upload_name=upload.name or DEFAULT_NAME,
                staging_path=staging.relative_to(studies_root()).as_posix(),
                reason=reason,
                expected_version=expected_version,
                patient_confirmed=patient_confirmed,
            )
            job.task_id = str(compute_study_job.enqueue(job.pk).id)
            job.save(update_fields=["task_id"])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return job


@task()
def compute_study_job(job_id: int) -> str:
    """Run the queued job: its state, step and outcome on the StudyJob; the final state."""
    job = StudyJob.objects.select_related("cycle__patient", "submitted_by").get(pk=job_id)
    if job.state != StudyJob.State.QUEUED:
        return str(job.state)  # already run (a task run twice after a worker was killed)
    _update(job, state=StudyJob.State.RUNNING)
    staging = studies_root() / job.staging_path
    try:
        if not (staging / UPLOAD_FILE).is_file():
            raise InvalidInputError(
                "study",
                job.upload_name,
                f"its upload is gone: staging folders are removed after {STAGING_MAX_AGE_S // 3600}"
                " hours (was no task worker running?); upload it again",
            )
        stored = compute_staged(
            job.submitted_by,
            job.cycle,
            staging,
            job.upload_name,
            reason=job.reason,
            expected_version=job.expected_version,
            patient_confirmed=job.patient_confirmed,
            figures=True,
            progress=lambda step: _update(job, step=step),
        )
    except InvalidInputError as error:
        _update(
            job,
            state=StudyJob.State.FAILED,
            error_field=error.field,
            error_value=fields.display(error.value),
            error_rule=error.rule,
        )
        return str(job.state)
    except Exception as error:
        logger.exception("study job %s failed", job_id)
        _update(
            job,
            state=StudyJob.State.FAILED,
            error_field="study",
            error_value=job.upload_name,
            error_rule=f"could not be computed ({type(error).__name__}); see the server log",
        )
        raise
    _update(
        job,
        state=StudyJob.State.DONE,
        step="",
        result=stored.result,
        result_version=stored.result.version,
        figures_path=stored.figures_path,
        summary={"vois": list(stored.vois)},
    )
    return str(job.state)


def _update(job: StudyJob, **values: Any) -> None:
    """Set `values` on the job and save just them (one short autocommitted write)."""
    for name, value in values.items():
        setattr(job, name, value)
    job.save(update_fields=[*values, "updated_at"])


def figure_file(job: StudyJob, name: str) -> Path | None:
    """The PNG file of a done job's figure `name` (FIGURES), None if there is none."""
    if name not in FIGURES or job.state != StudyJob.State.DONE or not job.figures_path:
        return None
    path = studies_root() / job.figures_path / FIGURES[name][0]
    return path if path.is_file() else None


def dosimetry_summary(cycle: Cycle) -> dict[str, Any]:
    """What `pages/dosimetry_summary.html` shows for the cycle: its latest study job (state,
    step, refusal), and for the latest done job that is still the cycle's dosimetry its figures
    (names with captions, served by the figure view) and each VOI's row, formatted by
    `startrt.fields`."""
    jobs = StudyJob.objects.filter(cycle=cycle).order_by("-id")
    latest = jobs.first()
    result = getattr(cycle, "dosimetry", None)
    done = (
        None
        if result is None
        else jobs.filter(
            state=StudyJob.State.DONE, result=result, result_version=result.version
        ).first()
    )
    figures = []
    rows = []
    if done is not None:
        figures = [
            {"name": name, "caption": caption}
            for name, (_, caption) in FIGURES.items()
            if figure_file(done, name) is not None
        ]
        rows = [
            {
                "voi": str(voi["voi"]).replace("_", " "),
                "cells": [fields.format_value(column, voi.get(column)) for column in VOI_COLUMNS],
            }
            for voi in done.summary.get("vois", [])
        ]
    return {
        "job": latest,
        "done_job": done,
        "figures": figures,
        "columns": [fields.label(column) for column in VOI_COLUMNS],
        "rows": rows,
    }
