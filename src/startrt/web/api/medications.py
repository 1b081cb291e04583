"""JSON API of concomitant medications and their prohibited-therapy deviations.

As in `api.events`: a patient outside the user's sites answers 404, the services check the role
(403), the records are validated (422), an edit of an older version is refused (409) and lists
are paginated. First entry is POST; a correction is PUT on the medication, with a reason and the
version it is based on. Each answer carries the protocol's finding (`protocol.concomitant_therapy`);
a deviation is acknowledged by the investigator with a reason."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from startrt.web.api.trial import (
    NO_NUL,
    CorrectionIn,
    RecordId,
    RecordIn,
    TrialId,
    WholeNumber,
    apply_change,
    paginated,
    patient_record,
    patient_responses,
    visible_patient,
)
from startrt.web.medications import services
from startrt.web.medications.models import ConcomitantMedication, MedicationDeviation

router = Router(tags=["medications"])

MEDICATION_FIELDS = (
    "drug_name, atc_code (WHO ATC code at any level, e.g. L01EG02), indication, start_date, "
    "stop_date (null: ongoing), dose (text), route (oral, intravenous, subcutaneous, "
    "intramuscular, transdermal, inhaled, rectal, topical, other; or null)"
)


class MedicationIn(RecordIn):
    record: dict[str, Any] = Field(description=MEDICATION_FIELDS)


class MedicationCorrectionIn(CorrectionIn):
    record: dict[str, Any] = Field(description=MEDICATION_FIELDS)


class AcknowledgementIn(Schema):
    reason: str = Field(pattern=NO_NUL, description="what was done about the deviation")
    expected_version: WholeNumber = Field(description="the deviation's version seen")


class MedicationOut(Schema):
    id: int
    drug_name: str
    atc_code: str
    indication: str
    start_date: date
    stop_date: date | None
    dose: str
    route: str
    finding: str = Field(
        description="allowed, prior_therapy, subsequent_therapy, pending, or a deviation: "
        "concomitant, washout"
    )
    finding_description: str
    version: int
    updated_at: datetime


class MedicationDeviationOut(Schema):
    id: int
    medication_id: int
    finding: str
    description: str
    decision: dict[str, Any]
    recorded_by: str
    recorded_at: datetime
    acknowledged_by: str
    acknowledged_at: datetime | None
    acknowledgement: str
    withdrawn_at: datetime | None
    withdrawn_reason: str
    version: int


@router.get(
    "/patients/{trial_id}/medications", response=patient_responses(200, list[MedicationOut])
)
@paginated
def list_medications(
    request: HttpRequest, trial_id: TrialId, response: HttpResponse
) -> QuerySet[ConcomitantMedication]:
    """The patient's concomitant medications in order of start."""
    patient = visible_patient(request, trial_id)
    return ConcomitantMedication.objects.filter(patient=patient).order_by("start_date", "id")


@router.post(
    "/patients/{trial_id}/medications", response=patient_responses(201, MedicationOut, 403)
)
def record_medication(
    request: HttpRequest, trial_id: TrialId, body: MedicationIn
) -> Status[ConcomitantMedication]:
    """Record a concomitant medication; a prohibited therapy records a deviation."""
    patient = visible_patient(request, trial_id)
    return Status(201, services.record_medication(request.user, patient, body.record))


@router.get(
    "/patients/{trial_id}/medications/{medication_id}",
    response=patient_responses(200, MedicationOut),
)
def get_medication(request: HttpRequest, trial_id: TrialId, medication_id: RecordId) -> Any:
    """One concomitant medication."""
    patient = visible_patient(request, trial_id)
    return patient_record(patient, ConcomitantMedication, medication_id, "medication")


@router.put(
    "/patients/{trial_id}/medications/{medication_id}",
    response=patient_responses(200, MedicationOut, 403, 409),
)
def correct_medication(
    request: HttpRequest, trial_id: TrialId, medication_id: RecordId, body: MedicationCorrectionIn
) -> ConcomitantMedication:
    """Change a medication (every field re-entered; a stop is a change of stop_date), with a
    reason and the version it is based on; checked again against the prohibited therapies."""
    patient = visible_patient(request, trial_id)
    medication = patient_record(patient, ConcomitantMedication, medication_id, "medication")
    return apply_change(services.change_medication, request, medication, body)


@router.get(
    "/patients/{trial_id}/medication-deviations",
    response=patient_responses(200, list[MedicationDeviationOut]),
)
@paginated
def list_medication_deviations(
    request: HttpRequest, trial_id: TrialId, response: HttpResponse
) -> QuerySet[MedicationDeviation]:
    """The patient's prohibited-therapy deviations (withdrawn ones included), oldest first."""
    patient = visible_patient(request, trial_id)
    return MedicationDeviation.objects.filter(patient=patient).order_by("recorded_at", "id")


@router.post(
    "/patients/{trial_id}/medication-deviations/{deviation_id}/acknowledge",
    response=patient_responses(200, MedicationDeviationOut, 403, 409),
)
def acknowledge_medication_deviation(
    request: HttpRequest, trial_id: TrialId, deviation_id: RecordId, body: AcknowledgementIn
) -> MedicationDeviation:
    """The investigator acknowledges a standing deviation, saying what was done about it."""
    patient = visible_patient(request, trial_id)
    deviation = patient_record(patient, MedicationDeviation, deviation_id, "deviation")
    return services.acknowledge_deviation(
        request.user, deviation, reason=body.reason, expected_version=body.expected_version
    )
