"""The treatment page of a patient: schedule, cycles, pre-cycle labs with CTCAE grades and
go/delay/stop, release, administration, dosimetry, the planner's proposal (accepted or
overridden by the physicist), the cumulative kidney dose against the protocol's limit as an
inline SVG, and adverse events. Every action goes through the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from startrt.validation import InvalidInputError
from startrt.web.events import services as events
from startrt.web.events.models import AdverseEvent, Attribution, Outcome, Seriousness
from startrt.web.pages.forms import add_library_errors
from startrt.web.pages.views import INVALID, _visible_patient
from startrt.web.treatment import services as treatment
from startrt.web.treatment.models import Cycle, PlanProposal
from startrt.web.trial.models import Patient
from startrt.web.trial.services import _protocol

LAB_FIELDS = (
    "hemoglobin_g_l",
    "hemoglobin_g_l_lln",
    "platelets_10e9_l",
    "platelets_10e9_l_lln",
    "leukocytes_10e9_l",
    "leukocytes_10e9_l_lln",
    "neutrophils_10e9_l",
    "neutrophils_10e9_l_lln",
    "creatinine_umol_l",
    "creatinine_umol_l_uln",
    "measured_gfr_ml_min_173",
)
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"})
DATE = forms.DateInput(attrs={"type": "date"})


class VersionForm(forms.Form):
    expected_version = forms.IntegerField(widget=forms.HiddenInput)


class LabsForm(forms.Form):
    drawn_at = forms.DateTimeField(widget=DATETIME)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in LAB_FIELDS:
            self.fields[name] = forms.FloatField(required=False, label=name)


class AdministrationForm(VersionForm):
    activity_gbq = forms.FloatField()
    lot = forms.CharField(max_length=64)
    infusion_start = forms.DateTimeField(widget=DATETIME)
    infusion_end = forms.DateTimeField(widget=DATETIME)


class DosimetryForm(forms.Form):
    left_kidney_gy = forms.FloatField()
    right_kidney_gy = forms.FloatField()
    kidney_effective_half_life_h = forms.FloatField(required=False)
    marrow_gy = forms.FloatField(required=False)


class OverrideForm(VersionForm):
    activity_gbq = forms.FloatField()
    reason = forms.CharField(max_length=500)


class AdverseEventForm(forms.Form):
    term = forms.CharField(max_length=200)
    ctcae_grade = forms.TypedChoiceField(choices=[(g, g) for g in range(1, 6)], coerce=int)
    onset_date = forms.DateField(widget=DATE)
    resolved_date = forms.DateField(widget=DATE, required=False)
    serious = forms.BooleanField(required=False)
    seriousness_criteria = forms.MultipleChoiceField(
        choices=Seriousness.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    attribution_prrt = forms.ChoiceField(choices=Attribution.choices)
    attribution_capecitabine = forms.ChoiceField(choices=Attribution.choices)
    outcome = forms.ChoiceField(choices=Outcome.choices)


Action = Callable[[Patient, dict[str, Any]], object]


def _act(
    request: HttpRequest, trial_id: str, form_class: type[forms.Form], key: str, action: Action
) -> HttpResponse:
    """Run `action` on the valid form; else the page again with the form's errors (422)."""
    patient = _visible_patient(request, trial_id)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            action(patient, form.cleaned_data)
        except InvalidInputError as error:
            add_library_errors(form, error)
        else:
            return redirect("pages:treatment", trial_id=patient.trial_id)
    return _render(request, patient, status=INVALID, forms_by_key={key: form})


def _cycle(patient: Patient, number: int) -> Cycle:
    return get_object_or_404(Cycle, patient=patient, number=number)


def _proposal(patient: Patient, proposal_id: int) -> PlanProposal:
    return get_object_or_404(PlanProposal, patient=patient, pk=proposal_id)


@require_GET
@login_required
def treatment_page(request: HttpRequest, trial_id: str) -> HttpResponse:
    return _render(request, _visible_patient(request, trial_id))


@require_POST
@login_required
def record_labs(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.record_labs(
            request.user,
            patient,
            {name: data[name] for name in LAB_FIELDS if data[name] is not None},
            drawn_at=data["drawn_at"],
            cycle=_cycle(patient, number),
        )

    return _act(request, trial_id, LabsForm, f"labs-{number}", action)


@require_POST
@login_required
def release(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.release_cycle(
            request.user, _cycle(patient, number), expected_version=data["expected_version"]
        )

    return _act(request, trial_id, VersionForm, f"release-{number}", action)


@require_POST
@login_required
def administer(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.record_administration(request.user, _cycle(patient, number), **data)

    return _act(request, trial_id, AdministrationForm, f"administration-{number}", action)


@require_POST
@login_required
def dosimetry(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.record_dosimetry(request.user, _cycle(patient, number), **data)

    return _act(request, trial_id, DosimetryForm, f"dosimetry-{number}", action)


@require_POST
@login_required
def propose(request: HttpRequest, trial_id: str) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.propose_next_cycle(request.user, patient)

    return _act(request, trial_id, forms.Form, "propose", action)


@require_POST
@login_required
def accept(request: HttpRequest, trial_id: str, proposal_id: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        proposal = _proposal(patient, proposal_id)
        return treatment.accept_proposal(
            request.user, proposal, expected_version=data["expected_version"]
        )

    return _act(request, trial_id, VersionForm, "accept", action)


@require_POST
@login_required
def override(request: HttpRequest, trial_id: str, proposal_id: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.override_proposal(request.user, _proposal(patient, proposal_id), **data)

    return _act(request, trial_id, OverrideForm, "override", action)


@require_POST
@login_required
def report_adverse_event(request: HttpRequest, trial_id: str) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return events.report_adverse_event(request.user, patient, data)

    return _act(request, trial_id, AdverseEventForm, "adverse_event", action)


def kidney_dose_svg(doses: list[tuple[int, float]], limit_gy: float) -> dict[str, Any]:
    """Coordinates of the cumulative kidney dose per cycle and of the limit line, in a
    400 x 200 view box (dose 0 at the bottom, 1.2 x the limit or the highest dose at the top)."""
    width, height, margin = 400, 200, 30
    top_gy = max([limit_gy, *(dose for _, dose in doses)]) * 1.2
    last_cycle = max([4, *(cycle for cycle, _ in doses)])

    def x(cycle: int) -> float:
        return margin + (width - 2 * margin) * cycle / last_cycle

    def y(dose_gy: float) -> float:
        return height - margin - (height - 2 * margin) * dose_gy / top_gy

    points = [(0, 0.0), *doses]
    return {
        "points": " ".join(f"{x(cycle):.1f},{y(dose):.1f}" for cycle, dose in points),
        "dots": [(x(cycle), y(dose), cycle, dose) for cycle, dose in doses],
        "limit_y": y(limit_gy),
        "limit_gy": limit_gy,
        "x0": margin,
        "x1": width - margin,
        "y0": height - margin,
    }


def _render(
    request: HttpRequest,
    patient: Patient,
    *,
    status: int = 200,
    forms_by_key: dict[str, forms.Form] | None = None,
) -> HttpResponse:
    bound = forms_by_key or {}
    cycles = list(patient.cycles.order_by("number").prefetch_related("lab_panels"))
    rows = [
        {
            "cycle": cycle,
            "panels": list(cycle.lab_panels.order_by("drawn_at", "id")),
            "dosimetry": getattr(cycle, "dosimetry", None),
            "labs_form": bound.get(f"labs-{cycle.number}") or LabsForm(),
            "release_form": bound.get(f"release-{cycle.number}")
            or VersionForm(initial={"expected_version": cycle.version}),
            "administration_form": bound.get(f"administration-{cycle.number}")
            or AdministrationForm(initial={"expected_version": cycle.version}),
            "dosimetry_form": bound.get(f"dosimetry-{cycle.number}") or DosimetryForm(),
        }
        for cycle in cycles
    ]
    proposal = patient.plan_proposals.order_by("-id").first()
    allocation = getattr(patient, "allocation", None)
    context = {
        "patient": patient,
        "allocation": allocation,
        "schedule": treatment.schedule_for(patient) if allocation else None,
        "rows": rows,
        "proposal": proposal,
        "accept_form": bound.get("accept")
        or VersionForm(initial={"expected_version": getattr(proposal, "version", 0)}),
        "override_form": bound.get("override")
        or OverrideForm(initial={"expected_version": getattr(proposal, "version", 0)}),
        "propose_form": bound.get("propose"),
        "chart": kidney_dose_svg(
            treatment.cumulative_kidney_doses(patient) if allocation else [],
            _protocol().renal_limit.limit_gy,
        ),
        "adverse_events": AdverseEvent.objects.filter(patient=patient).order_by("onset_date"),
        "adverse_event_form": bound.get("adverse_event") or AdverseEventForm(),
    }
    return render(request, "pages/treatment.html", context, status=status)
