"""JSON API of the treatment course: cycles and schedule, rescheduling (window-checked) and
cancellation, pre-cycle labs, the signed release of a cycle (password; unlock with a reason),
administration and its corrections, capecitabine (the library's assessment, prescription,
dispensing), dosimetry entered, corrected or computed from an uploaded study (zip), the
cumulative kidney dose against the protocol's limit, the planner's proposals that the
physicist accepts or overrides, and the protocol deviations (a date outside the window; an
overridden activity above the proposal or past a limit, signed by the investigator's password
before the cycle is released).

As in `api.trial`: a patient outside the user's sites answers 404, the services check the role
(403), the library validates (422) and an edit of an older version is refused (409)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.http import Http404, HttpRequest
from ninja import Field, File, Form, Path, Router, Schema, Status, UploadedFile

from startrt.protocol.capecitabine import CapecitabineDecision
from startrt.web.api.trial import (
    NO_NUL,
    Number,
    TrialId,
    WholeNumber,
    patient_responses,
    visible_patient,
)
from startrt.web.signing import services as signing
from startrt.web.treatment import capecitabine, services
from startrt.web.treatment.doses import plan_outdated
from startrt.web.treatment.models import (
    CapecitabinePrescription,
    Cycle,
    Deviation,
    Dispensing,
    DosimetryResult,
    LabPanel,
    PlanProposal,
)
from startrt.web.treatment.study_upload import upload_study
from startrt.web.trial.models import Patient
from startrt.web.trial.services import current_protocol

router = Router(tags=["treatment"])

CycleNumber = Annotated[int, Path(ge=1, le=32767, example=1)]
ProposalId = Annotated[int, Path(ge=1, le=2**31 - 1, example=1)]
DeviationId = Annotated[int, Path(ge=1, le=2**31 - 1, example=1)]
Version = Annotated[WholeNumber, Field(ge=1, le=2**31 - 1)]
Reason = Annotated[str, Field(pattern=NO_NUL, max_length=2000)]
Password = Annotated[str, Field(pattern=NO_NUL, max_length=4096)]
SigningTokenField = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]{0,128}$",
        description="a signing token (POST /api/signing-session) of this session, instead of "
        "the password and code",
    ),
]
OtpToken = Annotated[
    str,
    Field(
        pattern=r"^[0-9 ]{0,12}$",
        description="a current code of the signer's authenticator app, needed (investigators) "
        "when this session was not verified by one at login",
    ),
]


class DeviationOut(Schema):
    id: int
    cycle: int
    kind: str = Field(description="window (date outside the window) or activity (planned)")
    description: str = Field(description="what departs from the protocol (the library's)")
    reason: str = Field(description="why, as recorded by the physicist or investigator")
    planned_activity_gbq: float | None
    predicted_cumulative_kidney_gy: float | None
    decision: dict[str, Any] = Field(description="the library's check with the plan it read")
    recorded_by: str
    recorded_at: datetime
    signed_by: str
    signed_at: datetime | None
    awaiting_signature: bool = Field(description="the cycle is neither released nor given")
    withdrawn_at: datetime | None
    withdrawn_reason: str
    version: int


class CycleOut(Schema):
    number: int
    status: str
    planned_date: date
    planned_activity_gbq: float
    administered_activity_gbq: float | None
    lot: str
    infusion_start: datetime | None
    infusion_end: datetime | None
    released_by: str
    released_at: datetime | None
    release_locked: bool = Field(description="the release is signed: the plan is locked")
    plan_outdated: bool = Field(description="planned on values corrected since: re-plan")
    window_deviation: str = Field(description="why the date lies outside the window, if so")
    deviations: list[DeviationOut] = Field(description="its standing protocol deviations")
    inpatient_days: float | None
    version: int


class VisitOut(Schema):
    kind: str
    cycle_number: int | None
    target_date: date
    earliest: date
    latest: date
    done: bool
    label: str
    administered_date: date | None


class LabsIn(Schema):
    values: dict[str, Any] = Field(
        description="PatientLabs fields; LLN/ULN as <field>_lln / <field>_uln"
    )
    drawn_at: datetime
    cycle: WholeNumber | None = Field(
        default=None, ge=1, le=32767, description="number of the planned cycle the labs precede"
    )


class LabPanelOut(Schema):
    id: int
    cycle: int | None
    drawn_at: datetime
    values: dict[str, Any]
    grades: dict[str, Any]
    decision: dict[str, Any]
    entered_by: str


class ReleaseIn(Schema):
    expected_version: Version
    password: Password = Field(
        "", description="the investigator's password (or signing_token): the release is signed"
    )
    otp_token: OtpToken = ""
    signing_token: SigningTokenField = ""


class SignDeviationIn(Schema):
    expected_version: Version
    password: Password = Field(
        "", description="the investigator's password (or signing_token): the deviation is signed"
    )
    otp_token: OtpToken = ""
    signing_token: SigningTokenField = ""


class UnlockIn(Schema):
    password: Password = ""
    reason: Reason
    otp_token: OtpToken = ""
    signing_token: SigningTokenField = ""


def _second_factor(
    request: HttpRequest, password: str, otp_token: str, signing_token: str = ""
) -> None:
    """With a one-time code in the body (and no signing token): check the password and the code
    (verifying the session) before the signed service call, which then re-checks the password
    alone."""
    if otp_token and not signing_token:
        signing.check_password(request, password, otp_token)


class RescheduleIn(Schema):
    planned_date: date
    reason: Reason
    expected_version: Version
    accept_deviation: bool = Field(
        default=False, description="confirm a date outside the protocol window as a deviation"
    )


class CancelIn(Schema):
    reason: Reason
    expected_version: Version


class AdministrationIn(Schema):
    activity_gbq: Number = Field(examples=[7.4])
    lot: str = Field(pattern=NO_NUL, max_length=64, examples=["LU-2025-17"])
    infusion_start: datetime
    infusion_end: datetime
    inpatient_days: Number | None = Field(default=None, description="days in hospital, 0-60")
    expected_version: Version
    reason: str = Field(
        default="", pattern=NO_NUL, description="required for a correction of a recorded one"
    )


class DosimetryIn(Schema):
    left_kidney_dose_gy: Number
    right_kidney_dose_gy: Number
    kidney_effective_half_life_h: Number | None = None
    marrow_dose_gy: Number | None = None
    left_kidney_dose_sd_gy: Number | None = Field(default=None, description="standard uncertainty")
    right_kidney_dose_sd_gy: Number | None = Field(default=None, description="standard uncertainty")
    kidney_dose_sd_systematic_share: Number | None = Field(
        default=None, description="share of the variance shared by the patient's cycles, 0-1"
    )
    imaging_sessions: WholeNumber | None = Field(
        default=None, description="SPECT/CT sessions, 1-10"
    )
    reason: str = Field(default="", pattern=NO_NUL, description="required to replace results")
    expected_version: Version | None = Field(
        default=None, description="the version of the results replaced"
    )


class DosimetryOut(Schema):
    cycle: int
    left_kidney_dose_gy: float
    right_kidney_dose_gy: float
    kidney_effective_half_life_h: float | None
    marrow_dose_gy: float | None
    left_kidney_dose_sd_gy: float | None
    right_kidney_dose_sd_gy: float | None
    kidney_dose_sd_systematic_share: float | None
    imaging_sessions: int | None
    source: str
    study_path: str
    entered_by: str
    entered_at: datetime
    version: int


class CumulativeDoseOut(Schema):
    cycle: int
    cumulative_gy: float


class KidneyDoseOut(Schema):
    kidney: str
    limit_gy: float
    cumulative: list[CumulativeDoseOut]


class ProposalOut(Schema):
    id: int
    for_cycle: int
    plan: dict[str, Any]
    status: str
    proposed_by: str
    proposed_at: datetime
    decided_by: str
    decided_at: datetime | None
    reason: str
    override_activity_gbq: float | None
    version: int


class AcceptIn(Schema):
    expected_version: Version
    planned_date: date | None = Field(default=None, description="default: the schedule's target")


class OverrideIn(AcceptIn):
    reason: str = Field(pattern=NO_NUL)
    activity_gbq: Number = Field(examples=[1.4])


def _cycle(patient: Patient, number: int) -> Cycle:
    cycle: Cycle | None = Cycle.objects.filter(patient=patient, number=number).first()
    if cycle is None:
        raise Http404(f"patient {patient.trial_id} has no cycle {number}")
    return cycle


def _cycle_out(cycle: Cycle) -> CycleOut:
    return CycleOut(
        number=cycle.number,
        status=cycle.status,
        planned_date=cycle.planned_date,
        planned_activity_gbq=cycle.planned_activity_gbq,
        administered_activity_gbq=cycle.administered_activity_gbq,
        lot=cycle.lot,
        infusion_start=cycle.infusion_start,
        infusion_end=cycle.infusion_end,
        released_by=cycle.released_by,
        released_at=cycle.released_at,
        release_locked=services.release_locked(cycle),
        plan_outdated=plan_outdated(cycle),
        window_deviation=cycle.window_deviation,
        deviations=[_deviation_out(deviation) for deviation in cycle.deviations.standing()],
        inpatient_days=cycle.inpatient_days,
        version=cycle.version,
    )


def _deviation_out(deviation: Deviation) -> DeviationOut:
    names = [name for name in DeviationOut.model_fields if name != "cycle"]
    return DeviationOut(
        cycle=deviation.cycle.number, **{name: getattr(deviation, name) for name in names}
    )


def _proposal(patient: Patient, proposal_id: int) -> PlanProposal:
    proposal: PlanProposal | None = patient.plan_proposals.filter(pk=proposal_id).first()
    if proposal is None:
        raise Http404(f"patient {patient.trial_id} has no plan proposal {proposal_id}")
    return proposal


def _proposal_out(proposal: PlanProposal) -> ProposalOut:
    return ProposalOut.model_validate(proposal, from_attributes=True)


def _panel_out(panel: LabPanel) -> LabPanelOut:
    return LabPanelOut(
        id=panel.pk,
        cycle=None if panel.cycle is None else panel.cycle.number,
        drawn_at=panel.drawn_at,
        values=panel.values,
        grades=panel.grades,
        decision=panel.decision,
        entered_by=panel.entered_by,
    )


def _dosimetry_out(result: DosimetryResult) -> DosimetryOut:
    return DosimetryOut(
        cycle=result.cycle.number,
        left_kidney_dose_gy=result.left_kidney_dose_gy,
        right_kidney_dose_gy=result.right_kidney_dose_gy,
        kidney_effective_half_life_h=result.kidney_effective_half_life_h,
        marrow_dose_gy=result.marrow_dose_gy,
        left_kidney_dose_sd_gy=result.left_kidney_dose_sd_gy,
        right_kidney_dose_sd_gy=result.right_kidney_dose_sd_gy,
        kidney_dose_sd_systematic_share=result.kidney_dose_sd_systematic_share,
        imaging_sessions=result.imaging_sessions,
        source=result.source,
        study_path=result.study_path,
        entered_by=result.entered_by,
        entered_at=result.entered_at,
        version=result.version,
    )


CYCLE_URL = "/patients/{trial_id}/cycles/{number}"
PLAN_URL = "/patients/{trial_id}/plan/{proposal_id}"


@router.get("/patients/{trial_id}/cycles", response=patient_responses(200, list[CycleOut]))
def list_cycles(request: HttpRequest, trial_id: TrialId) -> list[CycleOut]:
    """The patient's cycles in order: planned, administered or cancelled."""
    patient = visible_patient(request, trial_id)
    return [_cycle_out(cycle) for cycle in Cycle.objects.filter(patient=patient)]


@router.get("/patients/{trial_id}/schedule", response=patient_responses(200, list[VisitOut]))
def get_schedule(request: HttpRequest, trial_id: TrialId) -> list[VisitOut]:
    """The visit calendar with windows (empty before a first cycle date; 422 before
    randomization)."""
    schedule = services.schedule_for(visible_patient(request, trial_id))
    visits = () if schedule is None else schedule.visits
    return [VisitOut.model_validate(visit, from_attributes=True) for visit in visits]


@router.post("/patients/{trial_id}/labs", response=patient_responses(201, LabPanelOut, 403))
def post_labs(request: HttpRequest, trial_id: TrialId, body: LabsIn) -> Status[LabPanelOut]:
    """Store a lab panel with its CTCAE grades and the pre-cycle decision go/delay/stop."""
    patient = visible_patient(request, trial_id)
    cycle = None if body.cycle is None else _cycle(patient, body.cycle)
    panel = services.record_labs(
        request.user, patient, body.values, drawn_at=body.drawn_at, cycle=cycle
    )
    return Status(201, _panel_out(panel))


@router.post(f"{CYCLE_URL}/release", response=patient_responses(200, CycleOut, 403, 409))
def release_cycle(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: ReleaseIn
) -> CycleOut:
    """Release a planned cycle on a 'go' of its latest labs (investigators), signed with the
    password (422 if wrong; signing locks after 5 wrong ones in 15 minutes) and, for a session
    not verified by a code at login, `otp_token`: the signature locks the plan."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    _second_factor(request, body.password, body.otp_token, body.signing_token)
    released = services.release_cycle(
        request,
        cycle,
        password=body.password,
        expected_version=body.expected_version,
        signing_token=body.signing_token,
    )
    return _cycle_out(released)


@router.post(f"{CYCLE_URL}/release/unlock", response=patient_responses(200, CycleOut, 403))
def unlock_release(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: UnlockIn
) -> CycleOut:
    """End the release signature's lock (the signer or an investigator; password and reason)."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    _second_factor(request, body.password, body.otp_token, body.signing_token)
    return _cycle_out(
        services.unlock_release(
            request,
            cycle,
            password=body.password,
            reason=body.reason,
            signing_token=body.signing_token,
        )
    )


@router.post(f"{CYCLE_URL}/reschedule", response=patient_responses(200, CycleOut, 403, 409))
def reschedule_cycle(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: RescheduleIn
) -> CycleOut:
    """Move a planned cycle with a reason (investigators); a date outside the protocol window
    is refused (422, naming the window) unless confirmed as a deviation; a signed release
    refuses it (409) until unlocked, and an unlocked release is withdrawn by it."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    return _cycle_out(services.reschedule_cycle(request.user, cycle, **body.model_dump()))


@router.post(f"{CYCLE_URL}/cancel", response=patient_responses(200, CycleOut, 403, 409))
def cancel_cycle(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: CancelIn
) -> CycleOut:
    """Cancel a planned cycle with a reason (investigators; 409 while its release is signed);
    the course ends with it."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    return _cycle_out(services.cancel_cycle(request.user, cycle, **body.model_dump()))


@router.post(f"{CYCLE_URL}/administration", response=patient_responses(200, CycleOut, 403, 409))
def record_administration(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: AdministrationIn
) -> CycleOut:
    """Record the administration of a released cycle, or correct it with a reason."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    given = services.record_administration(request.user, cycle, **body.model_dump())
    return _cycle_out(given)


@router.post(f"{CYCLE_URL}/dosimetry", response=patient_responses(200, DosimetryOut, 403, 409))
def record_dosimetry(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: DosimetryIn
) -> DosimetryOut:
    """Enter the absorbed doses of an administered cycle (physicists); replacing them needs
    their version and a reason, and supersedes an undecided proposal made from the old ones."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    return _dosimetry_out(services.record_dosimetry(request.user, cycle, **body.model_dump()))


@router.post(
    f"{CYCLE_URL}/dosimetry/study", response=patient_responses(200, DosimetryOut, 403, 409)
)
def upload_dosimetry_study(
    request: HttpRequest,
    trial_id: TrialId,
    number: CycleNumber,
    study: File[UploadedFile],
    reason: str = Form("", pattern=NO_NUL, max_length=2000),
    expected_version: int | None = Form(None, ge=1, le=2**31 - 1),
    patient_confirmed: bool = Form(False),
) -> DosimetryOut:
    """Upload the cycle's study as a zip of its folder (multipart; physicists): unzipped
    safely (no paths leaving the folder, size limits), de-identified (PatientID and name
    become the trial pseudonym) and computed in the request (a few seconds) as the cycle's
    dosimetry, source "computed"; replacing earlier dosimetry needs its version and a reason.
    A study whose DICOM PatientID is not the trial pseudonym needs `patient_confirmed=true`
    (the uploader confirms the study is this patient's; audited)."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    result = upload_study(
        request.user,
        cycle,
        study,
        reason=reason,
        expected_version=expected_version,
        patient_confirmed=patient_confirmed,
    )
    return _dosimetry_out(result)


@router.get("/patients/{trial_id}/dosimetry", response=patient_responses(200, list[DosimetryOut]))
def list_dosimetry(request: HttpRequest, trial_id: TrialId) -> list[DosimetryOut]:
    """The dosimetry of every cycle that has it, in cycle order."""
    results = DosimetryResult.objects.filter(patient=visible_patient(request, trial_id))
    return [
        _dosimetry_out(result)
        for result in results.select_related("cycle").order_by("cycle__number")
    ]


@router.get("/patients/{trial_id}/kidney-dose", response=patient_responses(200, KidneyDoseOut))
def kidney_dose(request: HttpRequest, trial_id: TrialId) -> KidneyDoseOut:
    """The cumulative absorbed kidney dose after each cycle with dosimetry and the protocol's
    limit (422 before randomization)."""
    doses = services.cumulative_kidney_doses(visible_patient(request, trial_id))
    limit = current_protocol().renal_limit
    return KidneyDoseOut(
        kidney=limit.kidney,
        limit_gy=limit.limit_gy,
        cumulative=[CumulativeDoseOut(cycle=cycle, cumulative_gy=gy) for cycle, gy in doses],
    )


@router.get("/patients/{trial_id}/plan", response=patient_responses(200, list[ProposalOut]))
def list_proposals(request: HttpRequest, trial_id: TrialId) -> list[ProposalOut]:
    """The planner's proposals, oldest first: proposed, accepted, overridden or superseded."""
    proposals = PlanProposal.objects.filter(patient=visible_patient(request, trial_id))
    return [_proposal_out(proposal) for proposal in proposals.order_by("id")]


@router.post("/patients/{trial_id}/plan", response=patient_responses(201, ProposalOut, 403))
def propose_plan(request: HttpRequest, trial_id: TrialId) -> Status[ProposalOut]:
    """The planner's proposal for the next cycle from the doses so far (stored as decided)."""
    proposal = services.propose_next_cycle(request.user, visible_patient(request, trial_id))
    return Status(201, _proposal_out(proposal))


@router.post(f"{PLAN_URL}/accept", response=patient_responses(200, ProposalOut, 403, 409))
def accept_plan(
    request: HttpRequest, trial_id: TrialId, proposal_id: ProposalId, body: AcceptIn
) -> ProposalOut:
    """The physicist accepts the proposal: its cycle is planned with the proposed activity."""
    proposal = _proposal(visible_patient(request, trial_id), proposal_id)
    return _proposal_out(services.accept_proposal(request.user, proposal, **body.model_dump()))


@router.post(f"{PLAN_URL}/override", response=patient_responses(200, ProposalOut, 403, 409))
def override_plan(
    request: HttpRequest, trial_id: TrialId, proposal_id: ProposalId, body: OverrideIn
) -> ProposalOut:
    """The physicist overrides the proposal with another activity and a reason."""
    proposal = _proposal(visible_patient(request, trial_id), proposal_id)
    return _proposal_out(services.override_proposal(request.user, proposal, **body.model_dump()))


@router.get("/patients/{trial_id}/deviations", response=patient_responses(200, list[DeviationOut]))
def list_deviations(request: HttpRequest, trial_id: TrialId) -> list[DeviationOut]:
    """The patient's protocol deviations, oldest first, withdrawn ones included."""
    deviations = Deviation.objects.filter(patient=visible_patient(request, trial_id))
    return [_deviation_out(deviation) for deviation in deviations.select_related("cycle")]


@router.post(
    "/patients/{trial_id}/deviations/{deviation_id}/sign",
    response=patient_responses(200, DeviationOut, 403, 409),
)
def sign_deviation(
    request: HttpRequest, trial_id: TrialId, deviation_id: DeviationId, body: SignDeviationIn
) -> DeviationOut:
    """The investigator signs an overridden activity's deviation with the password (422 if
    wrong); until then its cycle is neither released nor given."""
    patient = visible_patient(request, trial_id)
    deviation: Deviation | None = patient.deviations.filter(pk=deviation_id).first()
    if deviation is None:
        raise Http404(f"patient {trial_id} has no deviation {deviation_id}")
    _second_factor(request, body.password, body.otp_token, body.signing_token)
    signed = services.sign_deviation(
        request,
        deviation,
        password=body.password,
        expected_version=body.expected_version,
        signing_token=body.signing_token,
    )
    return _deviation_out(signed)


# --- capecitabine (CAP-dTOC, cycles 1-4) ---------------------------------------------------


class CapecitabineIn(Schema):
    weight_kg: Number = Field(examples=[78])
    height_cm: Number = Field(examples=[178])
    age_years: Number = Field(examples=[64])
    creatinine_umol_l: Number = Field(examples=[85])
    dose_level_percent: WholeNumber = Field(default=100, description="100, 75 or 50 (toxicity)")


class DispensingIn(Schema):
    tablets_500: WholeNumber = Field(ge=0, le=100_000)
    tablets_150: WholeNumber = Field(ge=0, le=100_000)


class DispensingOut(Schema):
    tablets_500: int
    tablets_150: int
    dispensed_by: str
    dispensed_at: datetime


class PrescriptionOut(Schema):
    cycle: int
    dose: dict[str, Any] = Field(description="the protocol's capecitabine decision, as stored")
    prescribed_by: str
    prescribed_at: datetime
    course_tablets: dict[str, int]
    dispensed_tablets: dict[str, int]
    dispensings: list[DispensingOut]


def _tablets(counts: dict[int, int]) -> dict[str, int]:
    return {str(strength): count for strength, count in counts.items()}


def _prescription(patient: Patient, number: int) -> CapecitabinePrescription:
    prescription: CapecitabinePrescription | None = CapecitabinePrescription.objects.filter(
        patient=patient, cycle__number=number
    ).first()
    if prescription is None:
        raise Http404(
            f"patient {patient.trial_id} has no capecitabine prescription for cycle {number}"
        )
    return prescription


def _prescription_out(prescription: CapecitabinePrescription) -> PrescriptionOut:
    dispensings = prescription.dispensings.order_by("dispensed_at", "id")
    return PrescriptionOut(
        cycle=prescription.cycle.number,
        dose=prescription.dose,
        prescribed_by=prescription.prescribed_by,
        prescribed_at=prescription.prescribed_at,
        course_tablets=_tablets(capecitabine.prescribed_tablets(prescription)),
        dispensed_tablets=_tablets(capecitabine.dispensed_tablets(prescription)),
        dispensings=[
            DispensingOut.model_validate(row, from_attributes=True) for row in dispensings
        ],
    )


@router.get(
    "/patients/{trial_id}/capecitabine", response=patient_responses(200, list[PrescriptionOut])
)
def list_prescriptions(request: HttpRequest, trial_id: TrialId) -> list[PrescriptionOut]:
    """The capecitabine prescriptions with the tablets dispensed, in cycle order."""
    prescriptions = CapecitabinePrescription.objects.filter(
        patient=visible_patient(request, trial_id)
    ).select_related("cycle")
    return [_prescription_out(row) for row in prescriptions.order_by("cycle__number")]


@router.post(
    f"{CYCLE_URL}/capecitabine/assessment",
    response=patient_responses(200, CapecitabineDecision, 403),
)
def assess_capecitabine(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: CapecitabineIn
) -> CapecitabineDecision:
    """The protocol's decision for the cycle's course (BSA, CrCl, dose per administration in
    500/150 mg tablets, renal adjustment, contraindications with reasons, with its inputs, rule
    and protocol version); stores nothing. 422 for an arm without capecitabine or a cycle past
    the first four."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    return capecitabine.assess_capecitabine(request.user, cycle, **body.model_dump())


@router.post(f"{CYCLE_URL}/capecitabine", response=patient_responses(201, PrescriptionOut, 403))
def prescribe_capecitabine(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: CapecitabineIn
) -> Status[PrescriptionOut]:
    """Prescribe the assessed course (pharmacists, investigators); refused (422) naming every
    contraindication found."""
    cycle = _cycle(visible_patient(request, trial_id), number)
    prescription = capecitabine.prescribe_capecitabine(request.user, cycle, **body.model_dump())
    return Status(201, _prescription_out(prescription))


@router.post(
    f"{CYCLE_URL}/capecitabine/dispensings",
    response=patient_responses(201, DispensingOut, 403),
)
def dispense_capecitabine(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: DispensingIn
) -> Status[DispensingOut]:
    """Record tablets handed out (pharmacists), never more than the course prescribes."""
    prescription = _prescription(visible_patient(request, trial_id), number)
    dispensing: Dispensing = capecitabine.dispense(request.user, prescription, **body.model_dump())
    return Status(201, DispensingOut.model_validate(dispensing, from_attributes=True))
