"""Monitoring pages: a patient's records with their source-data verification and data queries,
a query's page (raise, answer, close, re-open, its audited steps and the record's corrections
since it was raised), the query report by site, patient and age, and SDV progress by site and
form. Every action goes through `monitoring.services` (role checked, audited); a patient,
record or query the user may not see is 404, a step the user's role may not take 403."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from startrt import fields
from startrt.validation import InvalidInputError
from startrt.web.monitoring import services as monitoring
from startrt.web.monitoring.models import Query
from startrt.web.pages.event_views import KINDS
from startrt.web.pages.views import paginate, refusal, visible_patient
from startrt.web.pages.worklist import cycle_url
from startrt.web.trial import audit, concealment
from startrt.web.trial.dates import site_time_zone
from startrt.web.trial.models import Patient, Site
from startrt.web.trial.permissions import roles_at, visible_patients
from startrt.web.trial.services import ENTRY_ROLES

CORRECTION_SLUGS = {kind.model._meta.label_lower: slug for slug, kind in KINDS.items()}


def _holds(request: HttpRequest, patient: Patient, roles: tuple[object, ...]) -> bool:
    return bool(roles_at(request.user, patient.site) & {str(role) for role in roles})


def _record(patient: Patient, record_type: str, record_id: int) -> Model:
    """The patient's record, or 404 (a record type that is not monitored, a slot among them)."""
    try:
        record = monitoring.record_of(record_type, record_id)
    except (InvalidInputError, ObjectDoesNotExist) as missing:
        raise Http404("no such record") from missing
    if record.patient_id != patient.pk:
        raise Http404("no such record")
    return record


def correction_url(record: Model) -> str:
    """Where the site corrects `record`: its correction page, the screening form, its cycle."""
    patient: Patient = record.patient
    slug = CORRECTION_SLUGS.get(record._meta.label_lower)
    if slug is not None:
        return reverse("pages:correct_record", args=(patient.trial_id, slug, record.pk))
    number = getattr(record, "number", None) or getattr(
        getattr(record, "cycle", None), "number", None
    )
    if number is not None:
        return cycle_url(patient.trial_id, number)
    return reverse("pages:patient", args=(patient.trial_id,)) + "#screening"


class VersionForm(forms.Form):
    expected_version = forms.IntegerField(widget=forms.HiddenInput)


class StepForm(VersionForm):
    text = forms.CharField(label="Text", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class RaiseForm(forms.Form):
    field_name = forms.ChoiceField(label="Field")
    text = forms.CharField(label="Query", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def __init__(self, record: Model, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["field_name"].choices = [
            (name, monitoring.field_label(name)) for name in monitoring.queryable_fields(record)
        ]


# --- a patient's records ------------------------------------------------------------------


@dataclass(frozen=True)
class RecordRow:
    """A monitored record on the patient's monitoring page."""

    record_type: str
    record: Model
    form: str
    name: str
    verified: bool


@require_http_methods(["GET"])
@login_required
def patient_monitoring(request: HttpRequest, trial_id: str) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    rows = [
        RecordRow(
            record_type,
            record,
            audit.table_name(record._meta.db_table),
            monitoring.record_name(record),
            verified,
        )
        for record_type, record, verified in monitoring.records_of(patient)
    ]
    context = {
        "patient": patient,
        "rows": rows,
        "queries": _report_rows(Query.objects.filter(patient=patient)),
        "can_monitor": _holds(request, patient, monitoring.MONITORING_ROLES),
    }
    return render(request, "pages/monitoring.html", context)


@require_POST
@login_required
def verify_record(
    request: HttpRequest, trial_id: str, record_type: str, record_id: int
) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    record = _record(patient, record_type, record_id)
    form = VersionForm(request.POST)
    name = monitoring.record_name(record)
    if not form.is_valid():
        raise Http404("no version given")
    try:
        monitoring.verify(
            request.user, record, expected_version=form.cleaned_data["expected_version"]
        )
    except InvalidInputError as error:
        messages.error(request, f"{name} not marked verified: {error.rule}.")
    else:
        messages.success(request, f"{name} marked verified.")
    return redirect(reverse("pages:monitoring", args=(patient.trial_id,)) + "#records")


@require_http_methods(["GET", "POST"])
@login_required
def raise_query(
    request: HttpRequest, trial_id: str, record_type: str, record_id: int
) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    record = _record(patient, record_type, record_id)
    form = RaiseForm(record, request.POST if request.method == "POST" else None)
    status = 200
    if form.is_bound:
        if form.is_valid():
            try:
                query = monitoring.raise_query(
                    request.user, record, form.cleaned_data["field_name"], form.cleaned_data["text"]
                )
            except InvalidInputError as error:
                status = refusal(form, error)
            else:
                messages.success(request, "Query raised: the site sees it on its worklist.")
                return redirect("pages:query", patient.trial_id, query.pk)
        else:
            status = 422
    context = {
        "patient": patient,
        "record": record,
        "name": monitoring.record_name(record),
        "form": form,
        "can_monitor": _holds(request, patient, monitoring.MONITORING_ROLES),
    }
    return render(request, "pages/query_raise.html", context, status=status)


# --- a query -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One audited step of a query: what was done, by whom, when, with which text."""

    step: str
    who: str
    at: datetime
    text: str


STEP_NAMES = {"answered": "Answered", "closed": "Closed", "open": "Re-opened"}


def _steps(query: Query) -> list[Step]:
    return [
        Step(
            "Raised" if entry.action == "insert" else STEP_NAMES[(entry.new or {})["status"]],
            entry.username,
            entry.at,
            (entry.new or {}).get("text", "") if entry.action == "insert" else entry.reason,
        )
        for entry in monitoring.query_steps(query)
    ]


ACTIONS = {
    "answer": (monitoring.answer_query, "Answer sent: the monitor reviews it."),
    "close": (monitoring.close_query, "Query closed."),
    "reopen": (monitoring.reopen_query, "Query re-opened: the site sees it on its worklist."),
}


@require_http_methods(["GET", "POST"])
@login_required
def query_page(request: HttpRequest, trial_id: str, query_id: int) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    query = get_object_or_404(Query, pk=query_id, patient=patient)
    record = _record(patient, query.record_type, query.record_id)
    form = StepForm(initial={"expected_version": query.version})
    status = 200
    if request.method == "POST":
        action = next((name for name in ACTIONS if name in request.POST), None)
        if action is None:
            raise Http404("no such step")
        step, done = ACTIONS[action]
        form = StepForm(request.POST)
        if form.is_valid():
            try:
                step(
                    request.user,
                    query,
                    form.cleaned_data["text"],
                    expected_version=form.cleaned_data["expected_version"],
                )
            except InvalidInputError as error:
                status = refusal(form, error)
            else:
                messages.success(request, done)
                return redirect("pages:query", patient.trial_id, query.pk)
        else:
            status = 422
        query.refresh_from_db()
    can_answer = query.status == Query.Status.OPEN and _holds(request, patient, ENTRY_ROLES)
    form.fields["text"].label = "Answer" if can_answer else "Note"
    zone = site_time_zone(patient.site)
    corrections = concealment.readable(monitoring.changes_since_raised(query), request.user)
    name = query.field_name.rsplit(".", 1)[-1]
    context = {
        "patient": patient,
        "query": query,
        "record_name": monitoring.record_name(record),
        "field": monitoring.field_label(query.field_name),
        "current_value": fields.format_value(
            name, monitoring.field_value(record, query.field_name), with_unit=True
        ),
        "version_now": record.version,
        "correction_url": correction_url(record),
        "steps": _steps(query),
        "corrections": [audit.for_people(entry, zone) for entry in corrections],
        "form": form,
        "can_answer": can_answer,
        "can_close": query.status != Query.Status.CLOSED
        and _holds(request, patient, monitoring.MONITORING_ROLES),
        "can_reopen": query.status == Query.Status.CLOSED
        and _holds(request, patient, monitoring.MONITORING_ROLES),
        "days_open": monitoring.days_open(query),
    }
    return render(request, "pages/query.html", context, status=status)


# --- the query report and SDV progress -------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """A query in the report: its record's form, its field's label, days open."""

    query: Query
    subject: str
    days_open: int


def _report_rows(queries: QuerySet[Query]) -> list[ReportRow]:
    return [
        ReportRow(query, monitoring.query_subject(query), monitoring.days_open(query))
        for query in queries.select_related("patient__site").order_by("raised_at", "pk")
    ]


class QueryFilter(forms.Form):
    site = forms.ModelChoiceField(
        queryset=Site.objects.none(), required=False, empty_label="all", to_field_name="code"
    )
    patient = forms.CharField(required=False, label="Trial ID contains", max_length=32)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "all"), ("unclosed", "open or answered"), *Query.Status.choices],
    )
    min_days_open = forms.IntegerField(required=False, min_value=0, label="Open at least (days)")


@require_http_methods(["GET"])
@login_required
def query_report(request: HttpRequest) -> HttpResponse:
    patients = visible_patients(request.user)
    filters = QueryFilter(request.GET or None)
    filters.fields["site"].queryset = Site.objects.filter(pk__in=patients.values("site")).order_by(
        "name"
    )
    queries = monitoring.visible_queries(request.user)
    minimum = None
    if filters.is_valid():
        given = filters.cleaned_data
        if given["site"] is not None:
            queries = queries.filter(patient__site=given["site"])
        if given["patient"]:
            queries = queries.filter(patient__trial_id__icontains=given["patient"])
        if given["status"] == "unclosed":
            queries = queries.exclude(status=Query.Status.CLOSED)
        elif given["status"]:
            queries = queries.filter(status=given["status"])
        minimum = given["min_days_open"]
    rows = [row for row in _report_rows(queries) if minimum is None or row.days_open >= minimum]
    context = {
        "filters": filters,
        "filtered": bool(request.GET),
        "page": paginate(request, rows),
    }
    return render(request, "pages/queries.html", context)


@require_http_methods(["GET"])
@login_required
def sdv_page(request: HttpRequest) -> HttpResponse:
    rows = monitoring.sdv_progress(visible_patients(request.user))
    return render(request, "pages/sdv.html", {"rows": rows})
