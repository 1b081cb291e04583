"""The concomitant medications page of a patient: the list with the protocol's check of each
medication (prohibited therapies flagged as deviations), first entry with a drug picker, the
change page (every field, with a reason and the version seen), the stop of an ongoing medication,
the investigator's acknowledgement of a deviation, and a new check of every medication once the
first cycle has its day.

Every action goes through `medications.services` (one transaction, role checked, audited). A
patient of another site is 404, like a medication the patient does not have. A refused value
comes back next to its field (422); a change based on an older version is refused (409)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from startrt import fields
from startrt.protocol.concomitant_therapy import ConcomitantMedicationRecord, picker_drugs
from startrt.protocol.vocabulary import TherapyFinding
from startrt.validation import InvalidInputError
from startrt.web.medications import services
from startrt.web.medications.models import ConcomitantMedication, MedicationDeviation
from startrt.web.pages.forms import CorrectionForm, date_field, record_initial
from startrt.web.pages.views import refusal, visible_patient
from startrt.web.trial.models import Patient, Role
from startrt.web.trial.permissions import roles_at
from startrt.web.trial.services import ENTRY_ROLES, current_protocol

PICKER_ID = "picker-drugs"


class MedicationForm(CorrectionForm):
    """A medication's fields (the drug name offers the picker's list), and for a change the
    reason and version."""

    RECORD = ConcomitantMedicationRecord

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["drug_name"].widget.attrs.update({"list": PICKER_ID, "autocomplete": "off"})
        self.fields["drug_name"].help_text = "Pick from the list (fills the ATC code) or type."
        self.fields["atc_code"].help_text = "WHO ATC code, e.g. L01EG02."
        self.fields["stop_date"].help_text = "Empty while ongoing."

    def record_data(self) -> dict[str, Any]:
        data = super().record_data()
        return {**data, "route": data["route"] or None}


class StopForm(forms.Form):
    stop_date = date_field(label=fields.label("stop_date"))
    expected_version = forms.IntegerField(widget=forms.HiddenInput)


class AcknowledgeForm(forms.Form):
    reason = forms.CharField(
        label="Acknowledgement: what was done about it",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput)


@dataclass(frozen=True)
class MedicationRow:
    """A row of the list: the medication, its stop form, whether it is a deviation."""

    medication: ConcomitantMedication
    stop_form: StopForm
    flagged: bool


def _stop_form(medication: ConcomitantMedication, data: Any = None) -> StopForm:
    """The stop form of one row (its own element ids: several on the page)."""
    initial = {"expected_version": medication.version}
    return StopForm(data, initial=initial, auto_id=f"stop-{medication.pk}-%s")


def _acknowledge_form(deviation: MedicationDeviation, data: Any = None) -> AcknowledgeForm:
    initial = {"expected_version": deviation.version}
    return AcknowledgeForm(data, initial=initial, auto_id=f"acknowledge-{deviation.pk}-%s")


def _roles(request: HttpRequest, patient: Patient) -> set[str]:
    return roles_at(request.user, patient.site)


def _can_enter(request: HttpRequest, patient: Patient) -> bool:
    return bool(_roles(request, patient) & {role.value for role in ENTRY_ROLES})


def _back(patient: Patient, anchor: str = "medications") -> HttpResponse:
    return redirect(reverse("pages:medications", args=[patient.trial_id]) + f"#{anchor}")


@require_http_methods(["GET"])
@login_required
def medications_page(request: HttpRequest, trial_id: str) -> HttpResponse:
    return _render(request, visible_patient(request, trial_id))


@require_POST
@login_required
def add_medication(request: HttpRequest, trial_id: str) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    form = MedicationForm(request.POST)
    if not form.is_valid():
        return _render(request, patient, status=422, add_form=form)
    try:
        services.record_medication(request.user, patient, form.record_data())
    except InvalidInputError as error:
        return _render(request, patient, status=refusal(form, error), add_form=form)
    return _back(patient)


@require_http_methods(["GET", "POST"])
@login_required
def change_medication(request: HttpRequest, trial_id: str, medication_id: int) -> HttpResponse:
    """A medication's change page: its current values, the reason, the version it is based on."""
    patient = visible_patient(request, trial_id)
    medication = get_object_or_404(ConcomitantMedication, pk=medication_id, patient=patient)
    initial = record_initial(medication, MedicationForm)
    initial["route"] = medication.route
    bound = request.POST if request.method == "POST" else None
    form = MedicationForm(bound, initial=initial, correction=True)
    status = 200
    if form.is_bound:
        status = 422
        if form.is_valid():
            try:
                services.change_medication(
                    request.user,
                    medication,
                    form.record_data(),
                    reason=form.cleaned_data["correction_reason"],
                    expected_version=form.cleaned_data["expected_version"],
                )
            except InvalidInputError as error:
                status = refusal(form, error)
            else:
                return _back(patient, f"medication-{medication.pk}")
        medication.refresh_from_db()
    context = {
        "patient": patient,
        "medication": medication,
        "form": form,
        "drugs": picker_drugs(),
        "picker_id": PICKER_ID,
        "can_enter": _can_enter(request, patient),
    }
    return render(request, "pages/medications/change.html", context, status=status)


@require_POST
@login_required
def stop_medication(request: HttpRequest, trial_id: str, medication_id: int) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    medication = get_object_or_404(ConcomitantMedication, pk=medication_id, patient=patient)
    form = _stop_form(medication, request.POST)
    if not form.is_valid():
        return _render(request, patient, status=422, stop_forms={medication.pk: form})
    try:
        services.stop_medication(
            request.user,
            medication,
            form.cleaned_data["stop_date"],
            expected_version=form.cleaned_data["expected_version"],
        )
    except InvalidInputError as error:
        status = refusal(form, error)
        return _render(request, patient, status=status, stop_forms={medication.pk: form})
    return _back(patient, f"medication-{medication.pk}")


@require_POST
@login_required
def acknowledge_deviation(request: HttpRequest, trial_id: str, deviation_id: int) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    deviation = get_object_or_404(MedicationDeviation, pk=deviation_id, patient=patient)
    form = _acknowledge_form(deviation, request.POST)
    if not form.is_valid():
        return _render(request, patient, status=422, acknowledge_forms={deviation.pk: form})
    try:
        services.acknowledge_deviation(
            request.user,
            deviation,
            reason=form.cleaned_data["reason"],
            expected_version=form.cleaned_data["expected_version"],
        )
    except InvalidInputError as error:
        status = refusal(form, error)
        return _render(request, patient, status=status, acknowledge_forms={deviation.pk: form})
    return _back(patient, f"deviation-{deviation.pk}")


@require_POST
@login_required
def reassess(request: HttpRequest, trial_id: str) -> HttpResponse:
    """Check every medication again (after the first cycle got its day)."""
    patient = visible_patient(request, trial_id)
    changed = services.reassess(request.user, patient)
    names = ", ".join(medication.drug_name for medication in changed) or "none"
    messages.info(request, f"Checked again; findings changed: {names}.")
    return _back(patient)


def _render(
    request: HttpRequest,
    patient: Patient,
    *,
    status: int = 200,
    add_form: MedicationForm | None = None,
    stop_forms: dict[int, StopForm] | None = None,
    acknowledge_forms: dict[int, AcknowledgeForm] | None = None,
) -> HttpResponse:
    stop_given, ack_given = stop_forms or {}, acknowledge_forms or {}
    medications = [
        MedicationRow(
            medication,
            stop_given.get(medication.pk) or _stop_form(medication),
            TherapyFinding(medication.finding).deviation,
        )
        for medication in ConcomitantMedication.objects.filter(patient=patient).order_by(
            "start_date", "pk"
        )
    ]
    deviations = [
        (deviation, ack_given.get(deviation.pk) or _acknowledge_form(deviation))
        for deviation in MedicationDeviation.objects.filter(patient=patient)
        .select_related("medication")
        .order_by("recorded_at", "pk")
    ]
    context = {
        "patient": patient,
        "medications": medications,
        "deviations": deviations,
        "add_form": add_form or MedicationForm(),
        "drugs": picker_drugs(),
        "picker_id": PICKER_ID,
        "can_enter": _can_enter(request, patient),
        "can_acknowledge": Role.INVESTIGATOR.value in _roles(request, patient),
        "first_cycle_date": services.first_cycle_date(patient),
        "pending": any(row.medication.finding == TherapyFinding.PENDING for row in medications),
        "settings": current_protocol().concomitant_therapy,
    }
    return render(request, "pages/medications/list.html", context, status=status)
