"""The treatment page of a patient: schedule, cycles (rescheduled within the protocol window or
as a confirmed deviation, cancelled), pre-cycle labs with CTCAE grades and go/delay/stop, the
release signed with the password (and its reasoned unlock), administration and its
corrections, dosimetry entered, corrected or computed from an uploaded study, the planner's
proposal (accepted or overridden by the physicist), each cycle's protocol deviations with
their reason and signer (an overridden activity signed by the investigator's password before
the release), the cumulative kidney dose against the
protocol's limit as an inline SVG, and adverse events; and the capecitabine page (the library's
assessment, prescription, dispensing). Every action goes through the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from startrt.clinical.capecitabine import DOSE_LEVELS_PERCENT
from startrt.protocol.capecitabine import CapecitabineDecision, gives_capecitabine
from startrt.protocol.vocabulary import AdverseEventOutcome, Attribution, SeriousnessCriterion
from startrt.validation import InvalidInputError
from startrt.web.events import services as events
from startrt.web.events.models import AdverseEvent
from startrt.web.pages.forms import PasswordForm, UnlockForm, add_library_errors
from startrt.web.pages.views import INVALID, refusal, visible_patient
from startrt.web.treatment import capecitabine
from startrt.web.treatment import services as treatment
from startrt.web.treatment.doses import DOSE_FIELDS, plan_outdated
from startrt.web.treatment.models import CapecitabinePrescription, Cycle, Deviation, PlanProposal
from startrt.web.treatment.study_upload import upload_study
from startrt.web.trial.models import Patient, Screening
from startrt.web.trial.permissions import roles_at
from startrt.web.trial.services import current_protocol

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
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATE = forms.DateInput(attrs={"type": "date"})
REASON = forms.Textarea(attrs={"rows": 2})


class VersionForm(forms.Form):
    expected_version = forms.IntegerField(widget=forms.HiddenInput)


class LabsForm(forms.Form):
    drawn_at = forms.DateTimeField(widget=DATETIME)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in LAB_FIELDS:
            self.fields[name] = forms.FloatField(required=False, label=name)


class SignedForm(VersionForm, PasswordForm):
    """An action on the record at the version shown, signed by re-entering the password (a
    release, a deviation)."""


class RescheduleForm(VersionForm):
    planned_date = forms.DateField(widget=DATE)
    reason = forms.CharField(max_length=2000, widget=REASON)
    accept_deviation = forms.BooleanField(
        required=False, label="Outside the protocol window: record as a protocol deviation"
    )


class CancelForm(VersionForm):
    reason = forms.CharField(max_length=2000, widget=REASON)


class AdministrationForm(VersionForm):
    activity_gbq = forms.FloatField()
    lot = forms.CharField(max_length=64)
    infusion_start = forms.DateTimeField(widget=DATETIME)
    infusion_end = forms.DateTimeField(widget=DATETIME)
    inpatient_days = forms.FloatField(required=False, help_text="Days in hospital, 0-60.")
    reason = forms.CharField(required=False, widget=REASON, help_text="Required for a correction.")


class DosimetryForm(forms.Form):
    left_kidney_dose_gy = forms.FloatField()
    right_kidney_dose_gy = forms.FloatField()
    kidney_effective_half_life_h = forms.FloatField(required=False)
    marrow_dose_gy = forms.FloatField(required=False)
    left_kidney_dose_sd_gy = forms.FloatField(
        required=False, label="Left kidney dose, standard uncertainty (Gy)"
    )
    right_kidney_dose_sd_gy = forms.FloatField(
        required=False, label="Right kidney dose, standard uncertainty (Gy)"
    )
    kidney_dose_sd_systematic_share = forms.FloatField(
        required=False,
        label="Systematic share of the variance (0-1)",
        help_text="The part every cycle shares (calibration, method); blank: the model's default.",
    )
    imaging_sessions = forms.IntegerField(required=False, help_text="SPECT/CT sessions, 1-10.")
    reason = forms.CharField(required=False, widget=REASON, help_text="Required for a correction.")
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class StudyUploadForm(forms.Form):
    study = forms.FileField(help_text="A zip of the study folder (DICOM SPECT/CT and VOIs).")
    patient_confirmed = forms.BooleanField(
        required=False,
        label="This study belongs to this patient",
        help_text="Needed when the study's DICOM PatientID is not the trial pseudonym; recorded "
        "in the audit trail. Names and IDs are removed from the stored files.",
    )
    reason = forms.CharField(required=False, widget=REASON, help_text="Required to replace.")
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class OverrideForm(VersionForm):
    activity_gbq = forms.FloatField(
        help_text="Above the proposal or past a dose limit: a protocol deviation, which the "
        "investigator signs before the cycle is released."
    )
    reason = forms.CharField(max_length=500)


class AdverseEventForm(forms.Form):
    term = forms.CharField(max_length=200)
    ctcae_grade = forms.TypedChoiceField(choices=[(g, g) for g in range(1, 6)], coerce=int)
    onset_date = forms.DateField(widget=DATE)
    resolved_date = forms.DateField(widget=DATE, required=False)
    serious = forms.BooleanField(required=False)
    seriousness_criteria = forms.MultipleChoiceField(
        choices=SeriousnessCriterion.choices(), required=False, widget=forms.CheckboxSelectMultiple
    )
    attribution_prrt = forms.ChoiceField(choices=Attribution.choices())
    attribution_capecitabine = forms.ChoiceField(choices=Attribution.choices())
    outcome = forms.ChoiceField(choices=AdverseEventOutcome.choices())


class CapecitabineForm(forms.Form):
    weight_kg = forms.FloatField()
    height_cm = forms.FloatField()
    age_years = forms.FloatField()
    creatinine_umol_l = forms.FloatField()
    dose_level_percent = forms.TypedChoiceField(
        choices=[(level, f"{level} %") for level in DOSE_LEVELS_PERCENT],
        coerce=int,
        required=False,
        empty_value=100,
        initial=100,
        help_text="100 %, or reduced after toxicity.",
    )


class DispensingForm(forms.Form):
    tablets_500 = forms.IntegerField(min_value=0, initial=0, label="Tablets of 500 mg")
    tablets_150 = forms.IntegerField(min_value=0, initial=0, label="Tablets of 150 mg")


Action = Callable[[Patient, dict[str, Any]], object]


def _act(
    request: HttpRequest,
    trial_id: str,
    form_class: type[forms.Form],
    key: str,
    action: Action,
    *,
    page: str = "treatment",
) -> HttpResponse:
    """Run `action` on the valid form; else the page again with the form's errors (422; 409
    for a record changed since it was loaded, or signed)."""
    patient = visible_patient(request, trial_id)
    form = form_class(request.POST, request.FILES)
    status = INVALID
    if form.is_valid():
        try:
            action(patient, form.cleaned_data)
        except InvalidInputError as error:
            status = refusal(form, error)
        else:
            return redirect(f"pages:{page}", trial_id=patient.trial_id)
    render_page = _render if page == "treatment" else _render_capecitabine
    return render_page(request, patient, status=status, forms_by_key={key: form})


def _cycle(patient: Patient, number: int) -> Cycle:
    return get_object_or_404(Cycle, patient=patient, number=number)


def _proposal(patient: Patient, proposal_id: int) -> PlanProposal:
    return get_object_or_404(PlanProposal, patient=patient, pk=proposal_id)


def _cycle_view(
    service: Callable[..., object],
    form_class: type[forms.Form],
    key: str,
    *,
    page: str = "treatment",
) -> Callable[[HttpRequest, str, int], HttpResponse]:
    """The POST view that runs `service(user, cycle, **form data)` on the patient's cycle
    `number` through `_act` (the form keyed `{key}-{number}`)."""

    @require_POST
    @login_required
    def view(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
        def action(patient: Patient, data: dict[str, Any]) -> object:
            return service(request.user, _cycle(patient, number), **data)

        return _act(request, trial_id, form_class, f"{key}-{number}", action, page=page)

    return view


@require_GET
@login_required
def treatment_page(request: HttpRequest, trial_id: str) -> HttpResponse:
    return _render(request, visible_patient(request, trial_id))


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
            request,
            _cycle(patient, number),
            password=data["password"],
            expected_version=data["expected_version"],
        )

    return _act(request, trial_id, SignedForm, f"release-{number}", action)


@require_POST
@login_required
def unlock_release(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.unlock_release(request, _cycle(patient, number), **data)

    return _act(request, trial_id, UnlockForm, f"unlock-{number}", action)


reschedule = _cycle_view(treatment.reschedule_cycle, RescheduleForm, "reschedule")
cancel = _cycle_view(treatment.cancel_cycle, CancelForm, "cancel")
administer = _cycle_view(treatment.record_administration, AdministrationForm, "administration")
dosimetry = _cycle_view(treatment.record_dosimetry, DosimetryForm, "dosimetry")


@require_POST
@login_required
def study(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    """Upload a study (zip) and compute the cycle's dosimetry from it, in the request."""

    def action(patient: Patient, data: dict[str, Any]) -> object:
        return upload_study(
            request.user,
            _cycle(patient, number),
            data["study"],
            reason=data["reason"],
            expected_version=data["expected_version"],
            patient_confirmed=data["patient_confirmed"],
        )

    return _act(request, trial_id, StudyUploadForm, f"study-{number}", action)


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
def sign_deviation(request: HttpRequest, trial_id: str, deviation_id: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.sign_deviation(
            request,
            get_object_or_404(Deviation, patient=patient, pk=deviation_id),
            password=data["password"],
            expected_version=data["expected_version"],
        )

    return _act(request, trial_id, SignedForm, f"deviation-{deviation_id}", action)


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


def _administration_initial(cycle: Cycle) -> dict[str, Any]:
    """The recorded administration, for its correction form (or the version alone)."""
    initial: dict[str, Any] = {"expected_version": cycle.version}
    if cycle.status == Cycle.Status.ADMINISTERED:
        initial.update(
            activity_gbq=cycle.administered_activity_gbq,
            lot=cycle.lot,
            infusion_start=cycle.infusion_start,
            infusion_end=cycle.infusion_end,
            inpatient_days=cycle.inpatient_days,
        )
    return initial


def _dosimetry_initial(cycle: Cycle) -> dict[str, Any]:
    result = getattr(cycle, "dosimetry", None)
    if result is None:
        return {}
    return {
        **{name: getattr(result, name) for name in (*DOSE_FIELDS, "imaging_sessions")},
        "expected_version": result.version,
    }


def _cycle_row(cycle: Cycle, bound: dict[str, forms.Form]) -> dict[str, Any]:
    number = cycle.number
    version = {"expected_version": cycle.version}
    result = getattr(cycle, "dosimetry", None)
    planned = cycle.status == Cycle.Status.PLANNED
    deviations = list(cycle.deviations.standing())
    return {
        "cycle": cycle,
        "panels": list(cycle.lab_panels.order_by("drawn_at", "id")),
        "dosimetry": result,
        "release_locked": treatment.release_locked(cycle),
        "plan_outdated": plan_outdated(cycle),
        "window": treatment.window_check(cycle, cycle.planned_date) if planned else None,
        "labs_form": bound.get(f"labs-{number}") or LabsForm(),
        "release_form": bound.get(f"release-{number}") or SignedForm(initial=version),
        "deviations": [
            {
                "deviation": deviation,
                "form": bound.get(f"deviation-{deviation.pk}")
                or SignedForm(initial={"expected_version": deviation.version}),
            }
            for deviation in deviations
        ],
        "awaiting_signature": any(deviation.awaiting_signature for deviation in deviations),
        "unlock_form": bound.get(f"unlock-{number}") or UnlockForm(),
        "reschedule_form": bound.get(f"reschedule-{number}")
        or RescheduleForm(initial={**version, "planned_date": cycle.planned_date}),
        "cancel_form": bound.get(f"cancel-{number}") or CancelForm(initial=version),
        "administration_form": bound.get(f"administration-{number}")
        or AdministrationForm(initial=_administration_initial(cycle)),
        "dosimetry_form": bound.get(f"dosimetry-{number}")
        or DosimetryForm(initial=_dosimetry_initial(cycle)),
        "study_form": bound.get(f"study-{number}")
        or StudyUploadForm(initial={"expected_version": getattr(result, "version", None)}),
    }


def _render(
    request: HttpRequest,
    patient: Patient,
    *,
    status: int = 200,
    forms_by_key: dict[str, forms.Form] | None = None,
) -> HttpResponse:
    bound = forms_by_key or {}
    cycles = patient.cycles.order_by("number").select_related("dosimetry")
    proposal = patient.plan_proposals.order_by("-id").first()
    allocation = getattr(patient, "allocation", None)
    arm = treatment.treatment_arm(patient) if allocation else None
    context = {
        "patient": patient,
        "allocation": allocation,
        "gives_capecitabine": arm is not None and arm.capecitabine,
        "roles": roles_at(request.user, patient.site),
        "schedule": treatment.schedule_for(patient) if allocation else None,
        "rows": [_cycle_row(cycle, bound) for cycle in cycles],
        "proposal": proposal,
        "accept_form": bound.get("accept")
        or VersionForm(initial={"expected_version": getattr(proposal, "version", 0)}),
        "override_form": bound.get("override")
        or OverrideForm(initial={"expected_version": getattr(proposal, "version", 0)}),
        "propose_form": bound.get("propose"),
        "chart": kidney_dose_svg(
            treatment.cumulative_kidney_doses(patient) if allocation else [],
            current_protocol().renal_limit.limit_gy,
        ),
        "adverse_events": AdverseEvent.objects.filter(patient=patient).order_by("onset_date"),
        "adverse_event_form": bound.get("adverse_event") or AdverseEventForm(),
    }
    return render(request, "pages/treatment.html", context, status=status)


# --- capecitabine --------------------------------------------------------------------------


@require_GET
@login_required
def capecitabine_page(request: HttpRequest, trial_id: str) -> HttpResponse:
    """The capecitabine cycles; `?cycle=N&weight_kg=...` shows the library's assessment of
    cycle N's course for those values (nothing is stored)."""
    patient = visible_patient(request, trial_id)
    number = request.GET.get("cycle", "")
    if not number.isdigit():
        return _render_capecitabine(request, patient)
    cycle = _cycle(patient, int(number))
    form = CapecitabineForm(request.GET)
    assessment = None
    if form.is_valid():
        try:
            assessment = capecitabine.assess_capecitabine(request.user, cycle, **form.cleaned_data)
        except InvalidInputError as error:
            add_library_errors(form, error)
    status = 200 if assessment is not None else INVALID
    return _render_capecitabine(
        request,
        patient,
        status=status,
        forms_by_key={f"prescribe-{cycle.number}": form},
        assessment=assessment,
    )


prescribe = _cycle_view(
    capecitabine.prescribe_capecitabine, CapecitabineForm, "prescribe", page="capecitabine"
)


@require_POST
@login_required
def dispense(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        prescription = get_object_or_404(
            CapecitabinePrescription, patient=patient, cycle__number=number
        )
        return capecitabine.dispense(request.user, prescription, **data)

    return _act(
        request, trial_id, DispensingForm, f"dispense-{number}", action, page="capecitabine"
    )


def _capecitabine_initial(patient: Patient, cycle: Cycle) -> dict[str, Any]:
    """Weight, height and age from the screening record; creatinine from the cycle's latest
    labs, else the screening record (the prescriber checks them)."""
    screening = Screening.objects.filter(patient=patient).first()
    record = {} if screening is None else screening.record
    panel = cycle.lab_panels.order_by("drawn_at", "id").last()
    creatinine = None if panel is None else panel.values.get("creatinine_umol_l")
    return {
        "weight_kg": record.get("weight_kg"),
        "height_cm": record.get("height_cm"),
        "age_years": record.get("age_years"),
        "creatinine_umol_l": creatinine or record.get("creatinine_umol_l"),
        "dose_level_percent": 100,
    }


def _render_capecitabine(
    request: HttpRequest,
    patient: Patient,
    *,
    status: int = 200,
    forms_by_key: dict[str, forms.Form] | None = None,
    assessment: CapecitabineDecision | None = None,
) -> HttpResponse:
    bound = forms_by_key or {}
    refusal = ""
    rows = []
    if getattr(patient, "allocation", None) is None:
        refusal = "Not randomized: no treatment course."
    elif not treatment.treatment_arm(patient).capecitabine:
        refusal = f"Arm {treatment.treatment_arm(patient).id} gives no capecitabine."
    else:
        arm, protocol = treatment.treatment_arm(patient).id, current_protocol()
        cycles = patient.cycles.exclude(status=Cycle.Status.CANCELLED).order_by("number")
        for cycle in (c for c in cycles if gives_capecitabine(arm, c.number, protocol)):
            prescription = CapecitabinePrescription.objects.filter(cycle=cycle).first()
            rows.append(
                {
                    "cycle": cycle,
                    "prescription": prescription,
                    "course_tablets": prescription
                    and capecitabine.prescribed_tablets(prescription),
                    "dispensed_tablets": prescription
                    and capecitabine.dispensed_tablets(prescription),
                    "dispensings": prescription
                    and prescription.dispensings.order_by("dispensed_at", "id"),
                    "form": bound.get(f"prescribe-{cycle.number}")
                    or CapecitabineForm(initial=_capecitabine_initial(patient, cycle)),
                    "dispense_form": bound.get(f"dispense-{cycle.number}") or DispensingForm(),
                    "assessment": assessment
                    if assessment is not None and assessment.cycle_number == cycle.number
                    else None,
                }
            )
    shown = {f"{kind}-{row['cycle'].number}" for row in rows for kind in ("prescribe", "dispense")}
    context = {
        "patient": patient,
        "refusal": refusal,
        "rows": rows,
        "roles": roles_at(request.user, patient.site),
        "capecitabine_cycles": current_protocol().schedule.capecitabine_prrt_cycles,
        "unshown_forms": [form for key, form in bound.items() if key not in shown],
    }
    return render(request, "pages/capecitabine.html", context, status=status)
