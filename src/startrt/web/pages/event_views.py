"""The follow-up and events page of a patient: consents, adverse events, tumour assessments
(RECIST 1.1 responses computed by the library), end of treatment, follow-up contacts and death,
each entered once and corrected afterwards on its own page with a reason, based on the version
the user saw.

Every action goes through the services (one transaction, role checked, audited). A patient of
another site is 404, like a record the patient does not have. A refused value comes back next
to its field (422); a correction based on a version that has moved on is refused with a message
saying so (409), nothing overwritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from startrt.validation import InvalidInputError
from startrt.web.events import services as events
from startrt.web.events.models import (
    AdverseEvent,
    Death,
    EndOfTreatment,
    FollowUp,
    TumourAssessment,
)
from startrt.web.pages.forms import (
    AdverseEventForm,
    ConsentForm,
    CorrectionForm,
    DeathForm,
    EndOfTreatmentForm,
    FollowUpForm,
    SeriesForm,
    TimePointForm,
    record_initial,
)
from startrt.web.pages.views import refusal, visible_patient
from startrt.web.trial import services as trial
from startrt.web.trial.models import Consent, Patient
from startrt.web.trial.permissions import roles_at

EntryForm = CorrectionForm | SeriesForm | TimePointForm


@dataclass(frozen=True)
class Kind:
    """A kind of record on the page: its model, form, first-entry and correction services."""

    title: str
    model: type[Model]
    form: type[CorrectionForm] | None  # None: the tumour assessment's forms depend on the series
    add: Callable[..., Model] | None  # (user, patient, data); None: entered on another page
    change: Callable[..., Model]  # (user, record, data, *, reason, expected_version)


KINDS: dict[str, Kind] = {
    "consent": Kind("Consent", Consent, ConsentForm, trial.record_consent, trial.change_consent),
    "adverse-event": Kind(
        "Adverse event", AdverseEvent, AdverseEventForm, None, events.change_adverse_event
    ),
    "tumour-assessment": Kind(
        "Tumour assessment",
        TumourAssessment,
        None,
        events.record_tumour_assessment,
        events.change_tumour_assessment,
    ),
    "end-of-treatment": Kind(
        "End of treatment",
        EndOfTreatment,
        EndOfTreatmentForm,
        events.record_end_of_treatment,
        events.change_end_of_treatment,
    ),
    "follow-up": Kind(
        "Follow-up", FollowUp, FollowUpForm, events.record_follow_up, events.change_follow_up
    ),
    "death": Kind("Death", Death, DeathForm, events.record_death, events.change_death),
}


def _kind(slug: str) -> Kind:
    kind = KINDS.get(slug)
    if kind is None:
        raise Http404(f"no record kind {slug}")
    return kind


def _latest_assessment(patient: Patient) -> TumourAssessment | None:
    return TumourAssessment.objects.filter(patient=patient).order_by("assessment_date").last()


def _form(
    kind: Kind,
    patient: Patient,
    record: Model | None,
    data: Any = None,
) -> EntryForm:
    """The entry form of `kind` (a correction of `record` when given), bound to `data`."""
    correction = record is not None
    if kind.form is not None:
        initial = record_initial(record, kind.form) if record is not None else None
        return kind.form(data, initial=initial, correction=correction)
    latest = record if isinstance(record, TumourAssessment) else _latest_assessment(patient)
    if latest is None:  # the first assessment defines the baseline lesions
        return SeriesForm(data, correction=False)
    if correction and not latest.series["follow_up"]:  # only the baseline: corrected as JSON
        initial = {
            "series": json.dumps(latest.series, indent=2),
            "expected_version": latest.version,
        }
        return SeriesForm(data, initial=initial, correction=True)
    initial = TimePointForm.initial_of(latest.series, latest.version) if correction else None
    return TimePointForm(latest.series, data, initial=initial, correction=correction)


def _record_data(form: EntryForm, patient: Patient) -> dict[str, Any]:
    if isinstance(form, CorrectionForm):
        return form.record_data()
    latest = _latest_assessment(patient)
    return form.series_data(None if latest is None else latest.series)


def _apply(
    request: HttpRequest, kind: Kind, patient: Patient, record: Model | None, form: EntryForm
) -> int | None:
    """Run the service for a valid form; the HTTP status of a refusal (its message then shown
    in the form), None when saved."""
    if not form.is_valid():
        return 422
    try:
        data = _record_data(form, patient)
        if record is None:
            assert kind.add is not None
            kind.add(request.user, patient, data)
        else:
            kind.change(
                request.user,
                record,
                data,
                reason=form.cleaned_data["correction_reason"],
                expected_version=form.cleaned_data["expected_version"],
            )
    except InvalidInputError as error:
        return refusal(form, error)
    return None


@require_http_methods(["GET"])
@login_required
def events_page(request: HttpRequest, trial_id: str) -> HttpResponse:
    return _render_events(request, visible_patient(request, trial_id))


@require_POST
@login_required
def add_record(request: HttpRequest, trial_id: str, kind_slug: str) -> HttpResponse:
    """First entry of a record of `kind_slug` from the events page."""
    patient = visible_patient(request, trial_id)
    kind = _kind(kind_slug)
    if kind.add is None:
        raise Http404(f"{kind.title} is entered on another page")
    form = _form(kind, patient, None, request.POST)
    status = _apply(request, kind, patient, None, form)
    if status is None:
        return _back_to_events(patient, kind_slug)
    return _render_events(request, patient, status=status, forms_given={kind_slug: form})


@require_http_methods(["GET", "POST"])
@login_required
def correct_record(
    request: HttpRequest, trial_id: str, kind_slug: str, record_id: int
) -> HttpResponse:
    """A record's correction page: its current values, the reason, the version it is based on."""
    patient = visible_patient(request, trial_id)
    kind = _kind(kind_slug)
    record = get_object_or_404(kind.model, pk=record_id, patient=patient)
    form = _form(kind, patient, record, request.POST if request.method == "POST" else None)
    if form.is_bound and isinstance(form, AdverseEventForm):
        form = AdverseEventForm.shown_again(request.POST, correction=True) or form
    status = 200
    if form.is_bound:
        refused = _apply(request, kind, patient, record, form)
        if refused is None:
            return _back_to_events(patient, kind_slug)
        status = refused
        record = kind.model._default_manager.get(pk=record.pk)  # as it stands now
    context = {
        "patient": patient,
        "kind": kind,
        "kind_slug": kind_slug,
        "record": record,
        "form": form,
        "can_enter": _can_enter(request, patient),
    }
    return render(request, "pages/correction.html", context, status=status)


def _back_to_events(patient: Patient, kind_slug: str) -> HttpResponse:
    return redirect(reverse("pages:events", args=[patient.trial_id]) + f"#{kind_slug}")


def _can_enter(request: HttpRequest, patient: Patient) -> bool:
    return bool(roles_at(request.user, patient.site) & {r.value for r in trial.ENTRY_ROLES})


def _render_events(
    request: HttpRequest,
    patient: Patient,
    *,
    status: int = 200,
    forms_given: dict[str, forms.Form] | None = None,
) -> HttpResponse:
    given = forms_given or {}
    end = EndOfTreatment.objects.filter(patient=patient).first()
    death = Death.objects.filter(patient=patient).first()

    def add_form(slug: str, entered: Model | None = None) -> forms.Form | None:
        """The first-entry form, unless the (single) record is entered; the refused form."""
        if slug in given:
            return given[slug]
        return None if entered is not None else _form(KINDS[slug], patient, None)

    context = {
        "patient": patient,
        "allocation": getattr(patient, "allocation", None),
        "can_enter": _can_enter(request, patient),
        "consents": Consent.objects.filter(patient=patient).order_by("signed_on", "pk"),
        "consent_form": add_form("consent"),
        "adverse_events": AdverseEvent.objects.filter(patient=patient).order_by("onset_date", "pk"),
        "assessments": TumourAssessment.objects.filter(patient=patient).order_by("assessment_date"),
        "assessment_form": add_form("tumour-assessment"),
        "end": end,
        "end_form": add_form("end-of-treatment", end),
        "follow_ups": FollowUp.objects.filter(patient=patient).order_by("date"),
        "follow_up_form": add_form("follow-up"),
        "death": death,
        "death_form": add_form("death", death),
    }
    return render(request, "pages/events.html", context, status=status)
