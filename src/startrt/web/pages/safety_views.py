"""Serious adverse event pages: the SAE listing (every case the user may read, with the initial
report's clock, follow-ups and the SUSAR flag, and the serious events not yet reported), a
case's page (the initial report, follow-ups, the notification of each, the awareness time and
its correction) and the page opening a case. Every action goes through `safety.services`
(role checked, audited); a patient, event or case the user may not see is 404, an action the
role may not take 403. Times are read and shown in the patient's site's zone."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from startrt.validation import InvalidInputError
from startrt.web.events.models import AdverseEvent
from startrt.web.pages.forms import datetime_field
from startrt.web.pages.views import refusal, visible_patient
from startrt.web.safety import notifications
from startrt.web.safety import services as safety
from startrt.web.safety.models import SaeReport, SeriousAdverseEvent
from startrt.web.trial.dates import site_time_zone
from startrt.web.trial.models import Patient
from startrt.web.trial.permissions import roles_at, visible_patients
from startrt.web.trial.services import ENTRY_ROLES


def _initial_report_hours() -> int:
    return safety.safety_rules(safety.current_protocol()).initial_report_hours


def _can_report(request: HttpRequest, patient: Patient) -> bool:
    return bool(roles_at(request.user, patient.site) & {role.value for role in ENTRY_ROLES})


class AwarenessForm(forms.Form):
    aware_at = datetime_field(
        label="Site aware at",
        help_text="When the site first learnt of the serious event (YYYY-MM-DD HH:MM, the "
        "site's local time).",
    )


class CorrectAwarenessForm(AwarenessForm):
    reason = forms.CharField(label="Reason for the correction", max_length=2000)
    expected_version = forms.IntegerField(widget=forms.HiddenInput)


class ReportForm(forms.Form):
    narrative = forms.CharField(
        label="Narrative",
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=safety.NARRATIVE_MAX_CHARS,
        help_text="What happened, treatment of the event, relevant history and tests; for a "
        "follow-up, what is new.",
    )


# --- the listing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListingRow:
    status: safety.CaseStatus
    initial: SaeReport | None


@require_http_methods(["GET"])
@login_required
def sae_list(request: HttpRequest) -> HttpResponse:
    cases = (
        safety.visible_cases(request.user)
        .select_related("patient__site", "adverse_event")
        .prefetch_related("reports")
        .order_by("-aware_at", "-pk")
    )
    rows = []
    for case in cases:
        status = safety.case_status(case)
        reports = sorted(case.reports.all(), key=lambda r: r.number)
        rows.append(ListingRow(status, reports[0] if reports else None))
    unreported = safety.unreported_serious_events(visible_patients(request.user))
    context = {
        "initial_report_hours": _initial_report_hours(),
        "rows": rows,
        "overdue": sum(1 for row in rows if row.status.overdue),
        "unreported": [(event, _can_report(request, event.patient)) for event in unreported],
    }
    return render(request, "pages/safety/list.html", context)


# --- opening a case ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def open_sae(request: HttpRequest, trial_id: str, event_id: int) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    event = get_object_or_404(AdverseEvent, pk=event_id, patient=patient)
    existing = SeriousAdverseEvent.objects.filter(adverse_event=event).first()
    if existing is not None:
        return redirect("pages:sae", patient.trial_id, existing.pk)
    if not _can_report(request, patient):
        raise PermissionDenied("needs the role Research nurse or Investigator at the site")
    form = AwarenessForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_bound:
        if form.is_valid():
            try:
                case = safety.open_case(request.user, event, form.cleaned_data["aware_at"])
            except InvalidInputError as error:
                status = refusal(form, error)
            else:
                messages.success(request, "SAE case opened: submit the initial report.")
                return redirect("pages:sae", patient.trial_id, case.pk)
        else:
            status = 422
    context = {
        "patient": patient,
        "event": event,
        "form": form,
        "initial_report_hours": _initial_report_hours(),
    }
    return render(request, "pages/safety/open.html", context, status=status)


# --- a case ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    report: SaeReport
    title: str
    timeliness: str
    susar_lines: list[str]


def _case(request: HttpRequest, trial_id: str, case_id: int) -> SeriousAdverseEvent:
    patient = visible_patient(request, trial_id)
    return get_object_or_404(
        SeriousAdverseEvent.objects.select_related("patient__site", "adverse_event"),
        pk=case_id,
        patient=patient,
    )


def _render_case(
    request: HttpRequest,
    case: SeriousAdverseEvent,
    *,
    status: int = 200,
    report_form: ReportForm | None = None,
    awareness_form: CorrectAwarenessForm | None = None,
) -> HttpResponse:
    state = safety.case_status(case)
    reports = list(case.reports.select_related("submitted_by", "susar_decision").order_by("number"))
    zone = site_time_zone(case.patient.site)
    rows = [
        ReportRow(
            report,
            notifications.report_title(report),
            notifications.timeliness_text(report),
            notifications.susar_lines(report),
        )
        for report in reports
    ]
    initial = {"aware_at": case.aware_at.astimezone(zone), "expected_version": case.version}
    context = {
        "patient": case.patient,
        "case": case,
        "event": case.adverse_event,
        "state": state,
        "rows": rows,
        "can_report": _can_report(request, case.patient),
        "report_form": report_form or ReportForm(),
        "awareness_form": awareness_form or CorrectAwarenessForm(initial=initial),
    }
    return render(request, "pages/safety/case.html", context, status=status)


@require_http_methods(["GET"])
@login_required
def sae_case(request: HttpRequest, trial_id: str, case_id: int) -> HttpResponse:
    return _render_case(request, _case(request, trial_id, case_id))


@require_POST
@login_required
def submit_report(request: HttpRequest, trial_id: str, case_id: int) -> HttpResponse:
    """The initial report when none is submitted, else the next follow-up."""
    case = _case(request, trial_id, case_id)
    form = ReportForm(request.POST)
    if not form.is_valid():
        return _render_case(request, case, status=422, report_form=form)
    initial = not case.reports.exists()
    submit = safety.submit_initial_report if initial else safety.submit_follow_up
    try:
        report = submit(request.user, case, form.cleaned_data["narrative"])
    except InvalidInputError as error:
        return _render_case(request, case, status=refusal(form, error), report_form=form)
    report.refresh_from_db()
    sent = (
        f"the safety desk was notified ({', '.join(report.notified_to)})"
        if report.notified_at
        else f"the notification failed: {report.notification_error}"
    )
    messages.success(request, f"{notifications.report_title(report)} submitted; {sent}.")
    return redirect(reverse("pages:sae", args=(trial_id, case.pk)) + "#reports")


@require_POST
@login_required
def correct_awareness(request: HttpRequest, trial_id: str, case_id: int) -> HttpResponse:
    case = _case(request, trial_id, case_id)
    form = CorrectAwarenessForm(request.POST)
    if not form.is_valid():
        return _render_case(request, case, status=422, awareness_form=form)
    try:
        safety.correct_awareness(
            request.user,
            case,
            form.cleaned_data["aware_at"],
            reason=form.cleaned_data["reason"],
            expected_version=form.cleaned_data["expected_version"],
        )
    except InvalidInputError as error:
        return _render_case(request, case, status=refusal(form, error), awareness_form=form)
    messages.success(request, "Awareness time corrected; the initial report's deadline moved.")
    return redirect("pages:sae", trial_id, case.pk)


@require_POST
@login_required
def resend_notification(
    request: HttpRequest, trial_id: str, case_id: int, number: int
) -> HttpResponse:
    case = _case(request, trial_id, case_id)
    report = get_object_or_404(SaeReport, case=case, number=number)
    report = safety.notify(request.user, report.pk)
    if report.notification_error:
        messages.error(request, f"Notification failed again: {report.notification_error}")
    else:
        messages.success(request, "Notification sent to the safety desk.")
    return redirect(reverse("pages:sae", args=(trial_id, case.pk)) + "#reports")
