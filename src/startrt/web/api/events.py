"""JSON API of clinical events: adverse events, tumour assessments (RECIST 1.1 responses
computed), end of treatment, follow-up and death; each can be corrected after first entry.

As in `api.trial`: a patient outside the user's sites answers 404, the services check the role
(403), the records are validated (422), an edit of an older version is refused (409) and lists
are paginated (`Pages`). First entry is POST; a correction is PUT on the record, with a reason
and the version it is based on (end of treatment and death, one per patient, also take a change
through their POST, as they always did)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from startrt.web.api.trial import (
    ChangeIn,
    CorrectionIn,
    RecordId,
    RecordIn,
    TrialId,
    apply_change,
    paginated,
    patient_record,
    patient_responses,
    visible_patient,
)
from startrt.web.events import services
from startrt.web.events.models import (
    AdverseEvent,
    Death,
    EndOfTreatment,
    FollowUp,
    TumourAssessment,
)
from startrt.web.trial.models import Patient

router = Router(tags=["events"])

AE_FIELDS = (
    "term (a CTCAE v5.0 term as NCI spells it), other_specify (the event's name, for an "
    "'<SOC> - Other, specify' term only), ctcae_grade (1-5, a grade CTCAE defines for the "
    "term), onset_date, resolved_date, serious, seriousness_criteria, attribution_prrt, "
    "attribution_capecitabine, outcome"
)
SERIES = "the RECIST 1.1 series so far (startrt.clinical.recist.parse_series)"
END_FIELDS = "date, reason, details"
FOLLOW_UP_FIELDS = "date, status (alive, dead, lost), progression, progression_date"
DEATH_FIELDS = "date, cause, related_to_treatment"


class AdverseEventIn(RecordIn):
    record: dict[str, Any] = Field(description=AE_FIELDS)


class AdverseEventCorrectionIn(CorrectionIn):
    record: dict[str, Any] = Field(description=AE_FIELDS)


class TumourAssessmentIn(ChangeIn):
    record: dict[str, Any] = Field(
        description=f"{SERIES}; with expected_version the latest time point is corrected"
    )


class TumourAssessmentCorrectionIn(CorrectionIn):
    record: dict[str, Any] = Field(
        description=f"{SERIES}, with as many time points as the latest assessment"
    )


class EndOfTreatmentIn(ChangeIn):
    record: dict[str, Any] = Field(description=END_FIELDS)


class EndOfTreatmentCorrectionIn(CorrectionIn):
    record: dict[str, Any] = Field(description=END_FIELDS)


class FollowUpIn(RecordIn):
    record: dict[str, Any] = Field(description=FOLLOW_UP_FIELDS)


class FollowUpCorrectionIn(CorrectionIn):
    record: dict[str, Any] = Field(description=FOLLOW_UP_FIELDS)


class DeathIn(ChangeIn):
    record: dict[str, Any] = Field(description=DEATH_FIELDS)


class DeathCorrectionIn(CorrectionIn):
    record: dict[str, Any] = Field(description=DEATH_FIELDS)


class AdverseEventOut(Schema):
    id: int
    term: str
    other_specify: str
    meddra_code: str = Field(description="the term's MedDRA code as CTCAE v5.0 lists it")
    soc: str = Field(description="the term's MedDRA System Organ Class")
    ctcae_grade: int
    onset_date: date
    resolved_date: date | None
    serious: bool
    seriousness_criteria: list[str]
    attribution_prrt: str
    attribution_capecitabine: str
    outcome: str
    version: int
    updated_at: datetime


class TumourAssessmentOut(Schema):
    id: int
    assessment_date: date
    series: dict[str, Any]
    response: dict[str, Any]
    version: int
    updated_at: datetime


class EndOfTreatmentOut(Schema):
    date: date
    reason: str
    details: str
    version: int
    updated_at: datetime


class FollowUpOut(Schema):
    id: int
    date: date
    status: str
    progression: bool
    progression_date: date | None
    version: int
    updated_at: datetime


class DeathOut(Schema):
    date: date
    cause: str
    related_to_treatment: bool
    version: int
    updated_at: datetime


def _one(patient: Patient, model: type[EndOfTreatment] | type[Death], what: str) -> Any:
    """The patient's single end of treatment or death record; 404 if none yet."""
    found = model.objects.filter(patient=patient).first()
    if found is None:
        raise Http404(f"patient {patient.trial_id} has no {what} record yet")
    return found


@router.get(
    "/patients/{trial_id}/adverse-events", response=patient_responses(200, list[AdverseEventOut])
)
@paginated
def list_adverse_events(
    request: HttpRequest, trial_id: TrialId, response: HttpResponse
) -> QuerySet[AdverseEvent]:
    """The patient's adverse events in order of onset."""
    patient = visible_patient(request, trial_id)
    return AdverseEvent.objects.filter(patient=patient).order_by("onset_date", "id")


@router.post(
    "/patients/{trial_id}/adverse-events", response=patient_responses(201, AdverseEventOut, 403)
)
def report_adverse_event(
    request: HttpRequest, trial_id: TrialId, body: AdverseEventIn
) -> Status[AdverseEvent]:
    """Report a new adverse event of a randomized patient."""
    patient = visible_patient(request, trial_id)
    return Status(201, services.report_adverse_event(request.user, patient, body.record))


@router.get(
    "/patients/{trial_id}/adverse-events/{event_id}",
    response=patient_responses(200, AdverseEventOut),
)
def get_adverse_event(request: HttpRequest, trial_id: TrialId, event_id: RecordId) -> Any:
    """One adverse event."""
    return patient_record(visible_patient(request, trial_id), AdverseEvent, event_id, "event")


@router.put(
    "/patients/{trial_id}/adverse-events/{event_id}",
    response=patient_responses(200, AdverseEventOut, 403, 409),
)
def correct_adverse_event(
    request: HttpRequest, trial_id: TrialId, event_id: RecordId, body: AdverseEventCorrectionIn
) -> AdverseEvent:
    """Correct an adverse event (grade, seriousness, attribution, outcome, resolution date:
    every field re-entered), with a reason and the version it is based on."""
    patient = visible_patient(request, trial_id)
    event = patient_record(patient, AdverseEvent, event_id, "event")
    return apply_change(services.change_adverse_event, request, event, body)


@router.get(
    "/patients/{trial_id}/tumour-assessments",
    response=patient_responses(200, list[TumourAssessmentOut]),
)
@paginated
def list_tumour_assessments(
    request: HttpRequest, trial_id: TrialId, response: HttpResponse
) -> QuerySet[TumourAssessment]:
    """The patient's tumour assessments in date order, each with its computed responses."""
    patient = visible_patient(request, trial_id)
    return TumourAssessment.objects.filter(patient=patient).order_by("assessment_date")


@router.post(
    "/patients/{trial_id}/tumour-assessments",
    response=patient_responses(201, TumourAssessmentOut, 403, 409),
)
def record_tumour_assessment(
    request: HttpRequest, trial_id: TrialId, body: TumourAssessmentIn
) -> Status[TumourAssessment]:
    """Add the next time point of the series (or correct the latest) with its responses."""
    patient = visible_patient(request, trial_id)
    return Status(201, apply_change(services.record_tumour_assessment, request, patient, body))


@router.put(
    "/patients/{trial_id}/tumour-assessments/{assessment_id}",
    response=patient_responses(200, TumourAssessmentOut, 403, 409),
)
def correct_tumour_assessment(
    request: HttpRequest,
    trial_id: TrialId,
    assessment_id: RecordId,
    body: TumourAssessmentCorrectionIn,
) -> TumourAssessment:
    """Correct the latest assessment; its RECIST responses are computed again."""
    patient = visible_patient(request, trial_id)
    assessment = patient_record(patient, TumourAssessment, assessment_id, "assessment")
    return apply_change(services.change_tumour_assessment, request, assessment, body)


@router.get(
    "/patients/{trial_id}/end-of-treatment", response=patient_responses(200, EndOfTreatmentOut)
)
def get_end_of_treatment(request: HttpRequest, trial_id: TrialId) -> Any:
    """The end of protocol treatment (404 if not recorded yet)."""
    return _one(visible_patient(request, trial_id), EndOfTreatment, "end of treatment")


@router.post(
    "/patients/{trial_id}/end-of-treatment",
    response=patient_responses(200, EndOfTreatmentOut, 403, 409),
)
def record_end_of_treatment(
    request: HttpRequest, trial_id: TrialId, body: EndOfTreatmentIn
) -> EndOfTreatment:
    """Record (or change, with a reason and its version) the end of protocol treatment."""
    patient = visible_patient(request, trial_id)
    return apply_change(services.record_end_of_treatment, request, patient, body)


@router.put(
    "/patients/{trial_id}/end-of-treatment",
    response=patient_responses(200, EndOfTreatmentOut, 403, 409),
)
def correct_end_of_treatment(
    request: HttpRequest, trial_id: TrialId, body: EndOfTreatmentCorrectionIn
) -> EndOfTreatment:
    """Correct the end of treatment, with a reason and the version it is based on."""
    patient = visible_patient(request, trial_id)
    end = _one(patient, EndOfTreatment, "end of treatment")
    return apply_change(services.change_end_of_treatment, request, end, body)


@router.get("/patients/{trial_id}/follow-ups", response=patient_responses(200, list[FollowUpOut]))
@paginated
def list_follow_ups(
    request: HttpRequest, trial_id: TrialId, response: HttpResponse
) -> QuerySet[FollowUp]:
    """The patient's follow-up contacts in date order."""
    patient = visible_patient(request, trial_id)
    return FollowUp.objects.filter(patient=patient).order_by("date")


@router.post("/patients/{trial_id}/follow-ups", response=patient_responses(201, FollowUpOut, 403))
def record_follow_up(request: HttpRequest, trial_id: TrialId, body: FollowUpIn) -> Status[FollowUp]:
    """Record a follow-up contact: vital status and progression."""
    patient = visible_patient(request, trial_id)
    return Status(201, services.record_follow_up(request.user, patient, body.record))


@router.put(
    "/patients/{trial_id}/follow-ups/{follow_up_id}",
    response=patient_responses(200, FollowUpOut, 403, 409),
)
def correct_follow_up(
    request: HttpRequest, trial_id: TrialId, follow_up_id: RecordId, body: FollowUpCorrectionIn
) -> FollowUp:
    """Correct a follow-up contact, with a reason and the version it is based on."""
    patient = visible_patient(request, trial_id)
    follow_up = patient_record(patient, FollowUp, follow_up_id, "follow-up")
    return apply_change(services.change_follow_up, request, follow_up, body)


@router.get("/patients/{trial_id}/death", response=patient_responses(200, DeathOut))
def get_death(request: HttpRequest, trial_id: TrialId) -> Any:
    """The death record (404 if none)."""
    return _one(visible_patient(request, trial_id), Death, "death")


@router.post("/patients/{trial_id}/death", response=patient_responses(200, DeathOut, 403, 409))
def record_death(request: HttpRequest, trial_id: TrialId, body: DeathIn) -> Death:
    """Record (or change, with a reason and its version) the patient's death."""
    patient = visible_patient(request, trial_id)
    return apply_change(services.record_death, request, patient, body)


@router.put("/patients/{trial_id}/death", response=patient_responses(200, DeathOut, 403, 409))
def correct_death(request: HttpRequest, trial_id: TrialId, body: DeathCorrectionIn) -> Death:
    """Correct the death record, with a reason and the version it is based on."""
    patient = visible_patient(request, trial_id)
    death = _one(patient, Death, "death")
    return apply_change(services.change_death, request, death, body)
