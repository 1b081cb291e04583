"""The treatment pages of a patient. The overview: schedule, one row per cycle (status, date,
activity, doses) linking to its page, the cumulative kidney dose against the protocol's limit
and adverse events. A page per cycle: its state, the next step, and only the actions the
user's roles may take at that step (pre-cycle labs with CTCAE grades and go/delay/stop, the
release signed with the password, administration, dosimetry entered or computed from an
uploaded study, the planner's proposal accepted or overridden, deviations signed), with the
corrections (reschedule, cancel, unlock, corrected administration or dosimetry) folded away.
Every POST goes through the services and redirects (POST/redirect/GET) to the changed section
with a success message, or shows the page again with the form's errors. And the capecitabine
page (the library's assessment, prescription, dispensing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from startrt import fields
from startrt.clinical.capecitabine import DOSE_LEVELS_PERCENT
from startrt.protocol.capecitabine import CapecitabineDecision, gives_capecitabine
from startrt.validation import InvalidInputError
from startrt.web.events import services as events
from startrt.web.events.models import AdverseEvent
from startrt.web.pages.forms import (
    AdverseEventForm,
    IsoDateInput,
    IsoDateTimeInput,
    PasswordForm,
    UnlockForm,
    add_library_errors,
)
from startrt.web.pages.kidney_dose import kidney_dose_panel, proposal_reasoning
from startrt.web.pages.lab_views import LabsForm
from startrt.web.pages.views import INVALID, refusal, visible_patient
from startrt.web.treatment import capecitabine
from startrt.web.treatment import services as treatment
from startrt.web.treatment.doses import DOSE_FIELDS, plan_outdated
from startrt.web.treatment.models import CapecitabinePrescription, Cycle, Deviation, PlanProposal
from startrt.web.treatment.study_tasks import dosimetry_summary
from startrt.web.trial.models import Patient, Role, Screening
from startrt.web.trial.permissions import roles_at
from startrt.web.trial.services import ENTRY_ROLES, current_protocol

DATETIME = IsoDateTimeInput()
DATE = IsoDateInput()
REASON = forms.Textarea(attrs={"rows": 2})


class LabelledForm(forms.Form):
    """A form whose fields without a label of their own are labelled by `startrt.fields`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if field.label is None:
                field.label = fields.label(name)


class VersionForm(LabelledForm):
    expected_version = forms.IntegerField(widget=forms.HiddenInput)


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


class DosimetryForm(LabelledForm):
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


class CapecitabineForm(LabelledForm):
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


class DispensingForm(LabelledForm):
    tablets_500 = forms.IntegerField(min_value=0, initial=0, label="Tablets of 500 mg")
    tablets_150 = forms.IntegerField(min_value=0, initial=0, label="Tablets of 150 mg")


class ProposeForm(forms.Form):
    """Ask the planner; `cycle` is the cycle page the button is on (where an error shows)."""

    cycle = forms.IntegerField(required=False, widget=forms.HiddenInput)


ACTION_ROLES: dict[str, tuple[Role, ...]] = {
    "labs": ENTRY_ROLES,
    "administration": ENTRY_ROLES,
    "adverse_event": ENTRY_ROLES,
    "release": (Role.INVESTIGATOR,),
    "unlock": (Role.INVESTIGATOR,),
    "reschedule": (Role.INVESTIGATOR,),
    "cancel": (Role.INVESTIGATOR,),
    "deviation": (Role.INVESTIGATOR,),
    "dosimetry": (Role.PHYSICIST,),
    "propose": (Role.PHYSICIST, Role.INVESTIGATOR),
    "decide_plan": (Role.PHYSICIST,),
}
"""The pages' actions and the roles that may take them: the roles the services require
(`require_role`), so a page offers no button that would end in 403 (tests/web/
test_cycle_pages.py posts every action as every role)."""

SUCCESS: dict[str, tuple[str, str]] = {
    "labs": ("labs", "Cycle {number}: pre-cycle labs saved."),
    "release": ("release", "Cycle {number} released, signed by you."),
    "unlock": ("release", "Cycle {number}: release unlocked; its plan may change."),
    "reschedule": ("cycle-state", "Cycle {number} rescheduled."),
    "cancel": ("cycle-state", "Cycle {number} cancelled: the course ends with it."),
    "administration": ("administration", "Cycle {number}: administration saved."),
    "dosimetry": ("dosimetry", "Cycle {number}: dosimetry saved."),
    "deviation": ("deviations", "Cycle {number}: deviation signed."),
    "propose": ("plan", "Cycle {number}: the planner's proposal is below."),
    "accept": ("plan", "Cycle {number}: proposal accepted, the cycle is planned."),
    "override": ("plan", "Cycle {number}: proposal overridden, the cycle is planned."),
    "adverse_event": ("adverse-events", "Adverse event reported."),
    "prescribe": ("", "Cycle {number}: capecitabine prescribed."),
    "dispense": ("", "Cycle {number}: capecitabine dispensed."),
}
"""Per form kind: the section a successful POST lands on and the message it shows."""


def allowed_actions(roles: set[str]) -> set[str]:
    """The actions of `ACTION_ROLES` open to a user holding `roles` at the patient's site."""
    return {
        action
        for action, allowed in ACTION_ROLES.items()
        if roles & {role.value for role in allowed}
    }


Action = Callable[[Patient, dict[str, Any]], object]


def _act(
    request: HttpRequest,
    trial_id: str,
    form_class: type[forms.Form],
    key: str,
    action: Action,
    *,
    page: str = "cycle",
    number: int | None = None,
) -> HttpResponse:
    """Run `action` on the valid form, then redirect (POST/redirect/GET) to `page` at the
    changed section with a success message; else `page` again with the form's errors (422;
    409 for a record changed since it was loaded, or signed). `key` names the form,
    `{kind}-{cycle number}` for a cycle's action (else `number` gives the cycle)."""
    patient = visible_patient(request, trial_id)
    kind, _, suffix = key.partition("-")
    if number is None and suffix.isdigit():
        number = int(suffix)
    form = form_class(request.POST, request.FILES)
    status = INVALID
    if form.is_valid():
        try:
            action(patient, form.cleaned_data)
        except InvalidInputError as error:
            status = refusal(form, error)
        else:
            section, text = SUCCESS[kind]
            messages.success(request, text.format(number=number))
            args = (
                [patient.trial_id]
                if number is None or page != "cycle"
                else [patient.trial_id, number]
            )
            anchor = f"#{section}" if section else ""
            return redirect(reverse(f"pages:{page}", args=args) + anchor)
    bound = {key: form}
    if page == "cycle" and number is not None:
        return _render_cycle(request, patient, number, status=status, forms_by_key=bound)
    render_page = _render if page in ("cycle", "treatment") else _render_capecitabine
    return render_page(request, patient, status=status, forms_by_key=bound)


def _cycle(patient: Patient, number: int) -> Cycle:
    return get_object_or_404(Cycle, patient=patient, number=number)


def _proposal(patient: Patient, proposal_id: int) -> PlanProposal:
    return get_object_or_404(PlanProposal, patient=patient, pk=proposal_id)


def _cycle_view(
    service: Callable[..., object],
    form_class: type[forms.Form],
    key: str,
    *,
    page: str = "cycle",
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


@require_GET
@login_required
def cycle_page(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    return _render_cycle(request, visible_patient(request, trial_id), number)


@require_POST
@login_required
def record_labs(request: HttpRequest, trial_id: str, number: int) -> HttpResponse:
    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.record_labs(
            request.user,
            patient,
            LabsForm.panel_values(data),
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
def propose(request: HttpRequest, trial_id: str) -> HttpResponse:
    """Ask the planner; lands on the page of the cycle the proposal is for."""
    patient = visible_patient(request, trial_id)
    number = treatment.plannable_cycle_number(patient) or _posted_cycle(request) or 1

    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.propose_next_cycle(request.user, patient)

    return _act(request, trial_id, ProposeForm, "propose", action, number=number)


def _posted_cycle(request: HttpRequest) -> int | None:
    """The cycle page a planner button was on (ProposeForm's hidden field)."""
    form = ProposeForm(request.POST)
    return form.cleaned_data["cycle"] if form.is_valid() else None


@require_POST
@login_required
def accept(request: HttpRequest, trial_id: str, proposal_id: int) -> HttpResponse:
    number = _proposal(visible_patient(request, trial_id), proposal_id).for_cycle

    def action(patient: Patient, data: dict[str, Any]) -> object:
        proposal = _proposal(patient, proposal_id)
        return treatment.accept_proposal(
            request.user, proposal, expected_version=data["expected_version"]
        )

    return _act(request, trial_id, VersionForm, "accept", action, number=number)


@require_POST
@login_required
def override(request: HttpRequest, trial_id: str, proposal_id: int) -> HttpResponse:
    number = _proposal(visible_patient(request, trial_id), proposal_id).for_cycle

    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.override_proposal(request.user, _proposal(patient, proposal_id), **data)

    return _act(request, trial_id, OverrideForm, "override", action, number=number)


@require_POST
@login_required
def sign_deviation(request: HttpRequest, trial_id: str, deviation_id: int) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    deviation = get_object_or_404(
        Deviation.objects.select_related("cycle"), patient=patient, pk=deviation_id
    )

    def action(patient: Patient, data: dict[str, Any]) -> object:
        return treatment.sign_deviation(
            request,
            deviation,
            password=data["password"],
            expected_version=data["expected_version"],
        )

    key = f"deviation-{deviation_id}"
    return _act(request, trial_id, SignedForm, key, action, number=deviation.cycle.number)


@require_POST
@login_required
def report_adverse_event(request: HttpRequest, trial_id: str) -> HttpResponse:
    shown = AdverseEventForm.shown_again(request.POST)
    if shown is not None:  # the chosen term's grades, nothing saved
        patient = visible_patient(request, trial_id)
        return _render(request, patient, forms_by_key={"adverse_event": shown})

    def action(patient: Patient, data: dict[str, Any]) -> object:
        record = {name: data[name] for name in AdverseEventForm.RECORD.model_fields}
        return events.report_adverse_event(request.user, patient, record)

    return _act(request, trial_id, AdverseEventForm, "adverse_event", action, page="treatment")


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
        "labs_form": bound.get(f"labs-{number}") or LabsForm(site=cycle.patient.site),
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


@dataclass(frozen=True)
class NextStep:
    """What a cycle waits for, and the action of `ACTION_ROLES` that does it ("" for none)."""

    text: str
    action: str = ""


def next_step(row: dict[str, Any] | None, proposal: PlanProposal | None) -> NextStep:
    """The cycle's next step from its stored state (`row` of `_cycle_row`, None for a cycle
    not planned yet) and the latest proposal for it; the services check each step again."""
    if row is None or row["plan_outdated"]:
        if proposal is not None and proposal.status == PlanProposal.Status.PROPOSED:
            return NextStep("Accept the planner's proposal, or override it.", "decide_plan")
        return NextStep("Ask the planner for this cycle's activity.", "propose")
    cycle = row["cycle"]
    if cycle.status == Cycle.Status.CANCELLED:
        return NextStep("Nothing more: the course ended with this cancelled cycle.")
    if cycle.status == Cycle.Status.ADMINISTERED:
        if row["dosimetry"] is None:
            return NextStep("Enter the kidney doses of this cycle.", "dosimetry")
        if row["next_planned"]:
            return NextStep(f"Nothing more here: cycle {cycle.number + 1} is planned.")
        return NextStep("Ask the planner for the next cycle.", "propose")
    if row["awaiting_signature"]:
        return NextStep("Sign the protocol deviation before the release.", "deviation")
    if cycle.released_by:
        return NextStep("Record the administration.", "administration")
    panel = row["panels"][-1] if row["panels"] else None
    if panel is None:
        return NextStep("Enter the pre-cycle labs.", "labs")
    if panel.decision["action"] != "go":
        return NextStep(
            f"Labs: {panel.decision['action']}. Repeat the labs, or reschedule the cycle.", "labs"
        )
    return NextStep("Release the cycle, signed with your password.", "release")


def _render(
    request: HttpRequest,
    patient: Patient,
    *,
    status: int = 200,
    forms_by_key: dict[str, forms.Form] | None = None,
) -> HttpResponse:
    """The overview: one row per cycle linking to its page, the kidney dose, the schedule
    (folded) and the adverse events (the report form on `?report=adverse-event`, or with its
    errors)."""
    bound = forms_by_key or {}
    allocation = getattr(patient, "allocation", None)
    arm = treatment.treatment_arm(patient) if allocation else None
    cycles = list(patient.cycles.order_by("number").select_related("dosimetry"))
    context = {
        "patient": patient,
        "allocation": allocation,
        "gives_capecitabine": arm is not None and arm.capecitabine,
        "can": allowed_actions(roles_at(request.user, patient.site)),
        "schedule": treatment.schedule_for(patient) if allocation else None,
        "cycles": [(cycle, getattr(cycle, "dosimetry", None)) for cycle in cycles],
        "plannable": treatment.plannable_cycle_number(patient) if allocation else None,
        "kidney": kidney_dose_panel(patient) if allocation else None,
        "adverse_events": AdverseEvent.objects.filter(patient=patient).order_by("onset_date"),
        "adverse_event_form": bound.get("adverse_event")
        or (AdverseEventForm() if request.GET.get("report") == "adverse-event" else None),
    }
    return render(request, "pages/treatment.html", context, status=status)


def _render_cycle(
    request: HttpRequest,
    patient: Patient,
    number: int,
    *,
    status: int = 200,
    forms_by_key: dict[str, forms.Form] | None = None,
) -> HttpResponse:
    """Cycle `number`'s page: its state, its next step and the actions the user's roles may
    take at that step; also the page of the next cycle before it is planned (its proposal)."""
    bound = forms_by_key or {}
    if getattr(patient, "allocation", None) is None:
        raise Http404("not randomized: no treatment course")
    cycle = patient.cycles.filter(number=number).select_related("dosimetry").first()
    plannable = treatment.plannable_cycle_number(patient)
    if cycle is None and number != plannable:
        raise Http404(f"no cycle {number}")
    row = None
    if cycle is not None:
        row = _cycle_row(cycle, bound)
        row["next_planned"] = patient.cycles.filter(number=number + 1).exists()
    proposal = patient.plan_proposals.filter(for_cycle=number).order_by("-id").first()
    arm = treatment.treatment_arm(patient)
    proposal_version = {"expected_version": getattr(proposal, "version", 0)}
    step = next_step(row, proposal)
    context = {
        "patient": patient,
        "number": number,
        "cycle": cycle,
        "row": row,
        "step": step,
        "step_who": " or ".join(str(role.label) for role in ACTION_ROLES.get(step.action, ())),
        "can": allowed_actions(roles_at(request.user, patient.site)),
        "previous": number - 1 if number > 1 else None,
        "following": number + 1
        if row and (row["next_planned"] or plannable == number + 1)
        else None,
        "plan_next": plannable == number + 1,
        "proposal": proposal,
        "reasoning": None if proposal is None else proposal_reasoning(proposal),
        "dosimetry_summary": None if cycle is None else dosimetry_summary(cycle),
        "accept_form": bound.get("accept") or VersionForm(initial=proposal_version),
        "override_form": bound.get("override") or OverrideForm(initial=proposal_version),
        "propose_form": bound.get("propose") or ProposeForm(initial={"cycle": number}),
        "gives_capecitabine": arm.capecitabine
        and gives_capecitabine(arm.id, number, current_protocol()),
    }
    return render(request, "pages/cycle.html", context, status=status)


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
