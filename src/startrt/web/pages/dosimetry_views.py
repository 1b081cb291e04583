"""A cycle's study upload and its computation on the task queue: the upload (saved to staging
and queued; the request returns at once), the job's page, which refreshes itself until the job
is done or failed, and the dosimetry figures, served only to users who may see the patient."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from startrt.validation import InvalidInputError
from startrt.web.pages.treatment_views import StudyUploadForm, _render_cycle
from startrt.web.pages.views import INVALID, refusal, visible_patient
from startrt.web.treatment.models import Cycle, StudyJob
from startrt.web.treatment.study_tasks import dosimetry_summary, figure_file, submit_study

REFRESH_S = 2  # the job page reloads itself this often until the job ends


@require_POST
@login_required
def study(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    """Upload a study (zip) for the cycle: saved and queued, then the job's page; a refusal
    (form, role, version, size) shows the cycle's page again with the form's errors."""
    patient = visible_patient(request, trial_id)
    cycle = get_object_or_404(Cycle, patient=patient, number=number)
    form = StudyUploadForm(request.POST, request.FILES)
    status = INVALID
    if form.is_valid():
        data = form.cleaned_data
        try:
            job = submit_study(
                request.user,
                cycle,
                data["study"],
                reason=data["reason"],
                expected_version=data["expected_version"],
                patient_confirmed=data["patient_confirmed"],
            )
        except InvalidInputError as error:
            status = refusal(form, error)
        else:
            return redirect("pages:study_job", trial_id=patient.trial_id, job_id=job.pk)
    bound = {f"study-{number}": form}
    return _render_cycle(request, patient, number, status=status, forms_by_key=bound)


def _job(request: HttpRequest, trial_id: str, job_id: int) -> StudyJob:
    patient = visible_patient(request, trial_id)
    return get_object_or_404(StudyJob.objects.select_related("cycle"), patient=patient, pk=job_id)


@require_GET
@login_required
def study_job(request: HttpRequest, trial_id: str, job_id: int) -> HttpResponse:
    """The job's state and step; reloads itself (Refresh header) while queued or running, then
    shows the result or the refusal."""
    job = _job(request, trial_id, job_id)
    context = {
        "patient": job.cycle.patient,
        "job": job,
        "refresh_s": REFRESH_S,
        "dosimetry_summary": dosimetry_summary(job.cycle),
    }
    response = render(request, "pages/study_job.html", context)
    if job.state in (StudyJob.State.QUEUED, StudyJob.State.RUNNING):
        response["Refresh"] = str(REFRESH_S)
    return response


@require_GET
@login_required
def study_figure(request: HttpRequest, trial_id: str, job_id: int, name: str) -> FileResponse:
    """A done job's figure (PNG) for a user who may see the patient; 404 otherwise."""
    path = figure_file(_job(request, trial_id, job_id), name)
    if path is None:
        raise Http404("no such figure")
    return FileResponse(path.open("rb"), content_type="image/png")
