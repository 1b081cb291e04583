"""JSON API of the trial core: patients, screening with the eligibility per criterion,
randomization, the patient's audit trail and the decisions stored as made.

Every operation needs a logged-in session (and the CSRF token for writes). A patient that does
not exist or lies outside the user's sites answers 404 alike; the services check the role (403),
the library validates (422) and an edit of an older version is refused (409)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from ninja import Field, Path, Router, Schema, Status
from pydantic import ConfigDict

from startrt.protocol.criteria import Value
from startrt.protocol.eligibility import EligibilityCriterion, EligibilityDecision
from startrt.validation import InvalidInputError
from startrt.web.api.errors import ERROR_RESPONSES
from startrt.web.trial import services
from startrt.web.trial.models import AuditEntry, Decision, Patient, Screening, Site
from startrt.web.trial.permissions import visible_patients

router = Router(tags=["trial"])

TRIAL_ID_PATTERN = f"^{services.TRIAL_ID.pattern}$"
EXAMPLE_TRIAL_ID = "S01-LUN-001"
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL characters

TrialId = Annotated[str, Path(pattern=TRIAL_ID_PATTERN, example=EXAMPLE_TRIAL_ID)]


class PatientIn(Schema):
    site_code: str = Field(pattern=r"^[A-Z]{3}$", examples=["LUN"])
    trial_id: str = Field(pattern=TRIAL_ID_PATTERN, examples=["S01-LUN-002"])
    sex: Literal["female", "male"]


class PatientOut(Schema):
    trial_id: str
    site: str
    site_code: str
    sex: str
    registered_at: datetime
    screened: bool
    eligible: bool | None
    treatment_arm: str | None


class ScreeningIn(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record": {"screening_date": "2025-03-03", "hemoglobin_g_l": 128},
                    "reason": "Hb re-entered from the lab report",
                    "expected_version": 1,
                }
            ]
        }
    )

    record: dict[str, Any] = Field(
        description="START-01 screening record (startrt.protocol.screening.ScreeningRecord; "
        "sex is the patient's)"
    )
    reason: str = Field(
        default="", pattern=NO_NUL, description="required for a change after first entry"
    )
    expected_version: int | None = Field(
        default=None, description="the version the change is based on (required for a change)"
    )


class ScreeningOut(Schema):
    trial_id: str
    version: int
    protocol: str
    eligible: bool | None
    record: dict[str, Any]
    criteria: list[EligibilityCriterion]
    derived: dict[str, Value]
    warnings: list[str]
    updated_at: datetime


class AllocationOut(Schema):
    trial_id: str
    treatment_arm: str
    stratum: str
    sequence: int
    allocated_at: datetime
    allocated_by: str


class AuditEntryOut(Schema):
    at: datetime
    username: str
    action: str
    table: str
    row_id: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    reason: str


class DecisionOut(Schema):
    kind: str
    protocol: str
    rule: str
    record: dict[str, Any]
    made_at: datetime
    made_by: str


def _responses(ok: int, schema: Any, *errors: int) -> dict[int, Any]:
    """The success response and the error bodies the operation can answer (401 for all)."""
    return {ok: schema, **{code: ERROR_RESPONSES[code] for code in (401, *errors)}}


def _patient_responses(ok: int, schema: Any, *errors: int) -> dict[int, Any]:
    """Operations on one patient also answer 404 (not visible) and 422 (malformed trial ID)."""
    return _responses(ok, schema, 404, 422, *errors)


def _visible_patient(request: HttpRequest, trial_id: str) -> Patient:
    """The patient if the user may see it, else 404 whether or not it exists."""
    patient = visible_patients(request.user).select_related("site").filter(trial_id=trial_id)
    found: Patient | None = patient.first()
    if found is None:
        raise Http404(f"no patient {trial_id}")
    return found


def _patient_out(patient: Patient) -> PatientOut:
    screening: Screening | None = getattr(patient, "screening", None)
    allocation = getattr(patient, "allocation", None)
    return PatientOut(
        trial_id=patient.trial_id,
        site=patient.site.name,
        site_code=patient.site.code,
        sex=patient.sex,
        registered_at=patient.registered_at,
        screened=screening is not None,
        eligible=None if screening is None else screening.eligible,
        treatment_arm=None if allocation is None else allocation.treatment_arm,
    )


def _screening_out(patient: Patient, screening: Screening) -> ScreeningOut:
    stored = Decision.objects.filter(patient=patient, kind="eligibility").latest("id")
    decision = EligibilityDecision.model_validate(stored.record)
    return ScreeningOut(
        trial_id=patient.trial_id,
        version=screening.version,
        protocol=screening.protocol,
        eligible=screening.eligible,
        record=screening.record,
        criteria=list(decision.criteria),
        derived=decision.derived,
        warnings=list(decision.warnings),
        updated_at=screening.updated_at,
    )


@router.get("/patients", response=_responses(200, list[PatientOut]))
def list_patients(request: HttpRequest) -> list[PatientOut]:
    """The patients of the user's sites (every site for monitors and statisticians)."""
    patients = visible_patients(request.user).select_related("site", "screening", "allocation")
    return [_patient_out(patient) for patient in patients.order_by("trial_id")]


@router.post("/patients", response=_responses(201, PatientOut, 403, 422))
def register_patient(request: HttpRequest, body: PatientIn) -> Status[PatientOut]:
    """Register a participant at a site under a pseudonymous trial ID."""
    site: Site | None = Site.objects.filter(code=body.site_code).first()
    if site is None:
        raise InvalidInputError("site_code", body.site_code, "is not a site of the trial")
    patient = services.register_patient(request.user, site, body.trial_id, body.sex)
    return Status(201, _patient_out(patient))


@router.get("/patients/{trial_id}", response=_patient_responses(200, PatientOut))
def get_patient(request: HttpRequest, trial_id: TrialId) -> PatientOut:
    """One patient with eligibility and treatment arm."""
    return _patient_out(_visible_patient(request, trial_id))


@router.get("/patients/{trial_id}/screening", response=_patient_responses(200, ScreeningOut))
def get_screening(request: HttpRequest, trial_id: TrialId) -> ScreeningOut:
    """The screening record and the stored eligibility decision per criterion (404 if none)."""
    patient = _visible_patient(request, trial_id)
    screening: Screening | None = Screening.objects.filter(patient=patient).first()
    if screening is None:
        raise Http404(f"patient {trial_id} has no screening record yet")
    return _screening_out(patient, screening)


@router.put(
    "/patients/{trial_id}/screening",
    response=_patient_responses(200, ScreeningOut, 403, 409),
)
def put_screening(request: HttpRequest, trial_id: TrialId, body: ScreeningIn) -> ScreeningOut:
    """Enter or change the screening record; eligibility is assessed and stored as decided.

    A change needs a reason and the version it is based on (409 if the record moved on)."""
    patient = _visible_patient(request, trial_id)
    screening = services.record_screening(
        request.user,
        patient,
        body.record,
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return _screening_out(patient, screening)


@router.post("/patients/{trial_id}/randomize", response=_patient_responses(200, AllocationOut, 403))
def randomize(request: HttpRequest, trial_id: TrialId) -> AllocationOut:
    """Allocate the next slot of the patient's stratum (investigators; final)."""
    slot = services.randomize(request.user, _visible_patient(request, trial_id))
    return AllocationOut(
        trial_id=trial_id,
        treatment_arm=slot.treatment_arm,
        stratum=slot.stratum,
        sequence=slot.sequence,
        allocated_at=slot.allocated_at,
        allocated_by=slot.allocated_by,
    )


@router.get("/patients/{trial_id}/audit", response=_patient_responses(200, list[AuditEntryOut]))
def patient_audit(request: HttpRequest, trial_id: TrialId) -> QuerySet[AuditEntry]:
    """The patient's audit entries, oldest first."""
    patient = _visible_patient(request, trial_id)
    return AuditEntry.objects.filter(patient_trial_id=patient.trial_id).order_by("at", "id")


@router.get("/patients/{trial_id}/decisions", response=_patient_responses(200, list[DecisionOut]))
def patient_decisions(request: HttpRequest, trial_id: TrialId) -> QuerySet[Decision]:
    """The decisions made for the patient (eligibility, arm assignment, ...), oldest first."""
    return Decision.objects.filter(patient=_visible_patient(request, trial_id)).order_by("id")
