"""JSON API of the treatment course: cycles and schedule, pre-cycle labs, release and
administration of a cycle, entered dosimetry with the cumulative kidney dose against the
protocol's limit, and the planner's proposal that the physicist accepts or overrides.

As in `api.trial`: a patient outside the user's sites answers 404, the services check the role
(403), the library validates (422) and an edit of an older version is refused (409)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.http import Http404, HttpRequest
from ninja import Field, Path, Router, Schema, Status

from startrt.web.api.trial import NO_NUL, TrialId, _patient_responses, _visible_patient
from startrt.web.treatment import services
from startrt.web.treatment.models import Cycle, DosimetryResult, LabPanel, PlanProposal
from startrt.web.trial.models import Patient
from startrt.web.trial.services import _protocol

router = Router(tags=["treatment"])

CycleNumber = Annotated[int, Path(ge=1, le=32767, example=1)]
ProposalId = Annotated[int, Path(ge=1, le=2**31 - 1, example=1)]
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]


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
    cycle: int | None = Field(
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


class AdministrationIn(Schema):
    activity_gbq: float = Field(examples=[7.4])
    lot: str = Field(pattern=NO_NUL, max_length=64, examples=["LU-2025-17"])
    infusion_start: datetime
    infusion_end: datetime
    expected_version: Version
    reason: str = Field(
        default="", pattern=NO_NUL, description="required for a correction of a recorded one"
    )


class DosimetryIn(Schema):
    left_kidney_gy: float
    right_kidney_gy: float
    kidney_effective_half_life_h: float | None = None
    marrow_gy: float | None = None
    reason: str = Field(default="", pattern=NO_NUL, description="required to replace results")
    expected_version: Version | None = Field(
        default=None, description="the version of the results replaced"
    )


class DosimetryOut(Schema):
    cycle: int
    left_kidney_gy: float
    right_kidney_gy: float
    kidney_effective_half_life_h: float | None
    marrow_gy: float | None
    source: str
    entered_by: str
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
    activity_gbq: float = Field(examples=[1.4])


def _cycle(patient: Patient, number: int) -> Cycle:
    cycle: Cycle | None = Cycle.objects.filter(patient=patient, number=number).first()
    if cycle is None:
        raise Http404(f"patient {patient.trial_id} has no cycle {number}")
    return cycle


def _cycle_out(cycle: Cycle) -> CycleOut:
    return CycleOut.model_validate(cycle, from_attributes=True)


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
        left_kidney_gy=result.left_kidney_gy,
        right_kidney_gy=result.right_kidney_gy,
        kidney_effective_half_life_h=result.kidney_effective_half_life_h,
        marrow_gy=result.marrow_gy,
        source=result.source,
        entered_by=result.entered_by,
        version=result.version,
    )


CYCLE_URL = "/patients/{trial_id}/cycles/{number}"
PLAN_URL = "/patients/{trial_id}/plan/{proposal_id}"


@router.get("/patients/{trial_id}/cycles", response=_patient_responses(200, list[CycleOut]))
def list_cycles(request: HttpRequest, trial_id: TrialId) -> list[CycleOut]:
    """The patient's cycles in order: planned, administered or cancelled."""
    patient = _visible_patient(request, trial_id)
    return [_cycle_out(cycle) for cycle in Cycle.objects.filter(patient=patient)]


@router.get("/patients/{trial_id}/schedule", response=_patient_responses(200, list[VisitOut]))
def get_schedule(request: HttpRequest, trial_id: TrialId) -> list[VisitOut]:
    """The visit calendar with windows (empty before a first cycle date; 422 before
    randomization)."""
    schedule = services.schedule_for(_visible_patient(request, trial_id))
    visits = () if schedule is None else schedule.visits
    return [VisitOut.model_validate(visit, from_attributes=True) for visit in visits]


@router.post("/patients/{trial_id}/labs", response=_patient_responses(201, LabPanelOut, 403))
def post_labs(request: HttpRequest, trial_id: TrialId, body: LabsIn) -> Status[LabPanelOut]:
    """Store a lab panel with its CTCAE grades and the pre-cycle decision go/delay/stop."""
    patient = _visible_patient(request, trial_id)
    cycle = None if body.cycle is None else _cycle(patient, body.cycle)
    panel = services.record_labs(
        request.user, patient, body.values, drawn_at=body.drawn_at, cycle=cycle
    )
    return Status(201, _panel_out(panel))


@router.post(f"{CYCLE_URL}/release", response=_patient_responses(200, CycleOut, 403, 409))
def release_cycle(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: ReleaseIn
) -> CycleOut:
    """Release a planned cycle on a 'go' of its latest labs (investigators)."""
    cycle = _cycle(_visible_patient(request, trial_id), number)
    released = services.release_cycle(request.user, cycle, expected_version=body.expected_version)
    return _cycle_out(released)


@router.post(f"{CYCLE_URL}/administration", response=_patient_responses(200, CycleOut, 403, 409))
def record_administration(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: AdministrationIn
) -> CycleOut:
    """Record the administration of a released cycle, or correct it with a reason."""
    cycle = _cycle(_visible_patient(request, trial_id), number)
    given = services.record_administration(request.user, cycle, **body.model_dump())
    return _cycle_out(given)


@router.post(f"{CYCLE_URL}/dosimetry", response=_patient_responses(200, DosimetryOut, 403, 409))
def record_dosimetry(
    request: HttpRequest, trial_id: TrialId, number: CycleNumber, body: DosimetryIn
) -> DosimetryOut:
    """Enter the absorbed doses of an administered cycle (physicists); replacing them needs
    their version and a reason."""
    cycle = _cycle(_visible_patient(request, trial_id), number)
    return _dosimetry_out(services.record_dosimetry(request.user, cycle, **body.model_dump()))


@router.get("/patients/{trial_id}/kidney-dose", response=_patient_responses(200, KidneyDoseOut))
def kidney_dose(request: HttpRequest, trial_id: TrialId) -> KidneyDoseOut:
    """The cumulative absorbed kidney dose after each cycle with dosimetry and the protocol's
    limit (422 before randomization)."""
    doses = services.cumulative_kidney_doses(_visible_patient(request, trial_id))
    limit = _protocol().renal_limit
    return KidneyDoseOut(
        kidney=limit.kidney,
        limit_gy=limit.limit_gy,
        cumulative=[CumulativeDoseOut(cycle=cycle, cumulative_gy=gy) for cycle, gy in doses],
    )


@router.post("/patients/{trial_id}/plan", response=_patient_responses(201, ProposalOut, 403))
def propose_plan(request: HttpRequest, trial_id: TrialId) -> Status[ProposalOut]:
    """The planner's proposal for the next cycle from the doses so far (stored as decided)."""
    proposal = services.propose_next_cycle(request.user, _visible_patient(request, trial_id))
    return Status(201, _proposal_out(proposal))


@router.post(f"{PLAN_URL}/accept", response=_patient_responses(200, ProposalOut, 403, 409))
def accept_plan(
    request: HttpRequest, trial_id: TrialId, proposal_id: ProposalId, body: AcceptIn
) -> ProposalOut:
    """The physicist accepts the proposal: its cycle is planned with the proposed activity."""
    proposal = _proposal(_visible_patient(request, trial_id), proposal_id)
    return _proposal_out(services.accept_proposal(request.user, proposal, **body.model_dump()))


@router.post(f"{PLAN_URL}/override", response=_patient_responses(200, ProposalOut, 403, 409))
def override_plan(
    request: HttpRequest, trial_id: TrialId, proposal_id: ProposalId, body: OverrideIn
) -> ProposalOut:
    """The physicist overrides the proposal with another activity and a reason."""
    proposal = _proposal(_visible_patient(request, trial_id), proposal_id)
    return _proposal_out(services.override_proposal(request.user, proposal, **body.model_dump()))
