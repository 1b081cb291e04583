"""JSON API of clinical events: adverse events, tumour assessments (RECIST 1.1 responses
computed), end of treatment and death.

As in `api.trial`: a patient outside the user's sites answers 404, the services check the role
(403), the records are validated (422) and an edit of an older version is refused (409)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import field_validator

from startrt.web.api.trial import NO_NUL, TrialId, _patient_responses, _visible_patient
from startrt.web.events import services
from startrt.web.events.models import AdverseEvent, Death, EndOfTreatment, TumourAssessment

router = Router(tags=["events"])


def _has_nul(value: object) -> bool:
    """Whether a NUL character lies anywhere in the JSON data (PostgreSQL text cannot hold it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class RecordIn(Schema):
    record: dict[str, Any]

    @field_validator("record")
    @classmethod
    def _no_nul(cls, record: dict[str, Any]) -> dict[str, Any]:
        if _has_nul(record):
            raise ValueError("must not contain NUL characters")
        return record


class ChangeIn(RecordIn):
    reason: str = Field(
        default="", pattern=NO_NUL, description="required for a change after first entry"
    )
    expected_version: int | None = Field(
        default=None, description="the version the change is based on (required for a change)"
    )


class AdverseEventIn(RecordIn):
    record: dict[str, Any] = Field(
        description="term, ctcae_grade (1-5), onset_date, resolved_date, serious, "
        "seriousness_criteria, attribution_prrt, attribution_capecitabine, outcome"
    )


class TumourAssessmentIn(ChangeIn):
    record: dict[str, Any] = Field(
        description="the RECIST 1.1 series so far (startrt.clinical.recist.parse_series); with "
        "expected_version the latest time point is corrected"
    )


class EndOfTreatmentIn(ChangeIn):
    record: dict[str, Any] = Field(description="date, reason, details")


class DeathIn(ChangeIn):
    record: dict[str, Any] = Field(description="date, cause, related_to_treatment")


class AdverseEventOut(Schema):
    id: int
    term: str
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


class DeathOut(Schema):
    date: date
    cause: str
    related_to_treatment: bool
    version: int
    updated_at: datetime


@router.get(
    "/patients/{trial_id}/adverse-events", response=_patient_responses(200, list[AdverseEventOut])
)
def list_adverse_events(request: HttpRequest, trial_id: TrialId) -> QuerySet[AdverseEvent]:
    """The patient's adverse events in order of onset."""
    patient = _visible_patient(request, trial_id)
    return AdverseEvent.objects.filter(patient=patient).order_by("onset_date", "id")


@router.post(
    "/patients/{trial_id}/adverse-events", response=_patient_responses(201, AdverseEventOut, 403)
)
def report_adverse_event(
    request: HttpRequest, trial_id: TrialId, body: AdverseEventIn
) -> Status[AdverseEvent]:
    """Report a new adverse event of a randomized patient."""
    patient = _visible_patient(request, trial_id)
    return Status(201, services.report_adverse_event(request.user, patient, body.record))


@router.post(
    "/patients/{trial_id}/tumour-assessments",
    response=_patient_responses(201, TumourAssessmentOut, 403, 409),
)
def record_tumour_assessment(
    request: HttpRequest, trial_id: TrialId, body: TumourAssessmentIn
) -> Status[TumourAssessment]:
    """Add the next time point of the series (or correct the latest) with its responses."""
    patient = _visible_patient(request, trial_id)
    assessment = services.record_tumour_assessment(
        request.user,
        patient,
        body.record,
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return Status(201, assessment)


@router.post(
    "/patients/{trial_id}/end-of-treatment",
    response=_patient_responses(200, EndOfTreatmentOut, 403, 409),
)
def record_end_of_treatment(
    request: HttpRequest, trial_id: TrialId, body: EndOfTreatmentIn
) -> EndOfTreatment:
    """Record (or change, with a reason and its version) the end of protocol treatment."""
    patient = _visible_patient(request, trial_id)
    ended: EndOfTreatment = services.record_end_of_treatment(
        request.user,
        patient,
        body.record,
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return ended


@router.post("/patients/{trial_id}/death", response=_patient_responses(200, DeathOut, 403, 409))
def record_death(request: HttpRequest, trial_id: TrialId, body: DeathIn) -> Death:
    """Record (or change, with a reason and its version) the patient's death."""
    patient = _visible_patient(request, trial_id)
    death: Death = services.record_death(
        request.user,
        patient,
        body.record,
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return death
