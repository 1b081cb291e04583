"""JSON API of the trial core: patients, consents, screening with the eligibility per criterion,
randomization, the patient's audit trail and the decisions stored as made.

Every operation needs a logged-in session (and the CSRF token for writes). A patient that does
not exist or lies outside the user's sites answers 404 alike; the services check the role (403),
the library validates (422) and an edit of an older version, or of a signed record, is refused
(409). A correction (PUT) names the version it is based on and gives a reason.

Lists are paginated (`Pages`): `limit` and `offset` in the query, the body still the bare list,
the total in the X-Total-Count header and the neighbouring pages in a Link header."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, Path, Router, Schema, Status
from ninja.conf import settings as ninja_settings
from ninja.pagination import PaginationBase, paginate
from pydantic import ConfigDict, field_validator

from startrt.protocol.criteria import Value
from startrt.protocol.eligibility import EligibilityCriterion, EligibilityDecision
from startrt.validation import InvalidInputError
from startrt.web.api.errors import ERROR_RESPONSES
from startrt.web.signing import services as signing
from startrt.web.signing.models import Meaning
from startrt.web.trial import concealment, services
from startrt.web.trial.models import (
    AuditEntry,
    Consent,
    Decision,
    Patient,
    Screening,
    Site,
    Slot,
)
from startrt.web.trial.permissions import visible_patients

router = Router(tags=["trial"])

TRIAL_ID_PATTERN = f"^{services.TRIAL_ID.pattern}$"
EXAMPLE_TRIAL_ID = "S01-LUN-001"
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL characters
# Numbers in request bodies: JSON numbers only (strict), so true/false is refused instead of
# being read as 1 / 0 (a float field still takes an integer such as 7).
Number = Annotated[float, Field(strict=True)]
WholeNumber = Annotated[int, Field(strict=True)]

TrialId = Annotated[str, Path(pattern=TRIAL_ID_PATTERN, example=EXAMPLE_TRIAL_ID)]
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, example=1)]
MAX_OFFSET = 10**9
Owned = TypeVar("Owned", bound=Model)
Changed = TypeVar("Changed")


class Pages(PaginationBase):
    """limit/offset pagination that keeps the body a bare JSON list, as it was before lists were
    paginated: the total count goes into the X-Total-Count header and the neighbouring pages into
    a Link header (RFC 8288, rel="prev" / rel="next", relative to the request).

    A paginated operation declares `response: HttpResponse` (django-ninja's temporal response)
    so that the headers reach the answer; without more than `limit` items nothing changes for
    a client that ignores them."""

    class Input(Schema):
        limit: int = Field(
            ninja_settings.PAGINATION_PER_PAGE,
            ge=1,
            le=ninja_settings.PAGINATION_MAX_LIMIT,
            description="items per page (X-Total-Count tells how many there are)",
        )
        offset: int = Field(0, ge=0, le=MAX_OFFSET, description="items skipped")

    Output = None  # type: ignore[assignment]  # the body stays the list

    def paginate_queryset(
        self,
        queryset: QuerySet[Any],
        pagination: Input,
        request: HttpRequest,
        response: HttpResponse | None = None,
        **params: Any,
    ) -> list[Any]:
        offset, limit = pagination.offset, pagination.limit
        count = self._items_count(queryset)
        if response is not None:
            response["X-Total-Count"] = str(count)
            links = [
                f'<{_page_url(request, limit, start)}>; rel="{rel}"'
                for rel, start, shown in (
                    ("prev", max(offset - limit, 0), offset > 0),
                    ("next", offset + limit, offset + limit < count),
                )
                if shown
            ]
            if links:
                response["Link"] = ", ".join(links)
        return list(queryset[offset : offset + limit])


def paginated(view: Callable[..., Any]) -> Callable[..., Any]:
    """django-ninja's `paginate(Pages)`, the view's annotations resolved in the view's own
    module (ninja would look them up in its own: this code postpones annotations)."""
    paged = paginate(Pages)(view)
    paged.__signature__ = inspect.signature(view, eval_str=True)
    return paged


class ReadableAudit:
    """Audit entries as `user` may read them (`concealment.readable`), paginated by `Pages`:
    counted in the database, and only the page asked for is read."""

    def __init__(self, entries: QuerySet[AuditEntry], user: AbstractBaseUser | AnonymousUser):
        self.entries, self.user = entries, user

    def __len__(self) -> int:
        return self.entries.count()

    def __getitem__(self, page: slice) -> list[AuditEntry]:
        return list(concealment.readable(self.entries[page], self.user))


def _page_url(request: HttpRequest, limit: int, offset: int) -> str:
    query = request.GET.copy()
    query["limit"], query["offset"] = str(limit), str(offset)
    return f"{request.path}?{urlencode(sorted(query.items()))}"


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
    """A record as first entered."""

    record: dict[str, Any]

    @field_validator("record")
    @classmethod
    def _no_nul(cls, record: dict[str, Any]) -> dict[str, Any]:
        if _has_nul(record):
            raise ValueError("must not contain NUL characters")
        return record


class ChangeIn(RecordIn):
    """First entry, or (with a reason and the version it is based on) a change."""

    reason: str = Field(
        default="", pattern=NO_NUL, description="required for a change after first entry"
    )
    expected_version: WholeNumber | None = Field(
        default=None, description="the version the change is based on (required for a change)"
    )


class CorrectionIn(RecordIn):
    """A correction after first entry: every field re-entered, why, and the version it is based
    on (409 when the record has moved on since)."""

    reason: str = Field(pattern=NO_NUL, description="why the record is corrected")
    expected_version: WholeNumber = Field(description="the version the correction is based on")


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

    @staticmethod
    def resolve_site(patient: Patient) -> str:
        return patient.site.name

    @staticmethod
    def resolve_site_code(patient: Patient) -> str:
        return patient.site.code

    @staticmethod
    def resolve_screened(patient: Patient) -> bool:
        return hasattr(patient, "screening")

    @staticmethod
    def resolve_eligible(patient: Patient) -> bool | None:
        screening: Screening | None = getattr(patient, "screening", None)
        return None if screening is None else screening.eligible

    @staticmethod
    def resolve_treatment_arm(patient: Patient) -> str | None:
        allocation = getattr(patient, "allocation", None)
        return None if allocation is None else str(allocation.treatment_arm)


class ConsentIn(RecordIn):
    record: dict[str, Any] = Field(
        description="form_version (the consent form's version), signed_on (date)",
        examples=[{"form_version": "1.0", "signed_on": "2025-02-20"}],
    )


class ConsentCorrectionIn(CorrectionIn):
    record: dict[str, Any] = Field(description="form_version, signed_on")


class ConsentOut(Schema):
    id: int
    form_version: str
    signed_on: date
    version: int
    updated_at: datetime


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
    expected_version: WholeNumber | None = Field(
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
    """The allocation as site staff may know it: never the slot's place in the list."""

    trial_id: str
    treatment_arm: str
    stratum: str
    list_sha256: str = Field(
        description="SHA-256 fingerprint of the randomization list (published before the "
        "first allocation)"
    )
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


def patient_responses(ok: int, schema: Any, *errors: int) -> dict[int, Any]:
    """Operations on one patient also answer 404 (not visible) and 422 (malformed trial ID)."""
    return _responses(ok, schema, 404, 422, *errors)


def visible_patient(request: HttpRequest, trial_id: str) -> Patient:
    """The patient if the user may see it, else 404 whether or not it exists."""
    patient = visible_patients(request.user).select_related("site").filter(trial_id=trial_id)
    found: Patient | None = patient.first()
    if found is None:
        raise Http404(f"no patient {trial_id}")
    return found


def patient_record(patient: Patient, model: type[Owned], record_id: int, what: str) -> Owned:
    """The patient's `model` row `record_id`; 404 if the patient has no such row."""
    found: Owned | None = model._default_manager.filter(patient=patient, pk=record_id).first()
    if found is None:
        raise Http404(f"patient {patient.trial_id} has no {what} {record_id}")
    return found


def apply_change(
    change: Callable[..., Changed],
    request: HttpRequest,
    target: Any,
    body: ChangeIn | CorrectionIn | ScreeningIn,
) -> Changed:
    """The service `change(user, target, record, reason=..., expected_version=...)` applied
    to a first entry, change or correction as sent in `body`."""
    return change(
        request.user,
        target,
        body.record,
        reason=body.reason,
        expected_version=body.expected_version,
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


@router.get("/patients", response=_responses(200, list[PatientOut], 422))
@paginated
def list_patients(request: HttpRequest, response: HttpResponse) -> QuerySet[Patient]:
    """The patients of the user's sites (every site for monitors and statisticians)."""
    patients = visible_patients(request.user).select_related("site", "screening", "allocation")
    return patients.order_by("trial_id")


@router.post("/patients", response=_responses(201, PatientOut, 403, 422))
def register_patient(request: HttpRequest, body: PatientIn) -> Status[Patient]:
    """Register a participant at a site under a pseudonymous trial ID."""
    site: Site | None = Site.objects.filter(code=body.site_code).first()
    if site is None:
        raise InvalidInputError("site_code", body.site_code, "is not a site of the trial")
    patient = services.register_patient(request.user, site, body.trial_id, body.sex)
    return Status(201, patient)


@router.get("/patients/{trial_id}", response=patient_responses(200, PatientOut))
def get_patient(request: HttpRequest, trial_id: TrialId) -> Patient:
    """One patient with eligibility and treatment arm."""
    return visible_patient(request, trial_id)


@router.get("/patients/{trial_id}/screening", response=patient_responses(200, ScreeningOut))
def get_screening(request: HttpRequest, trial_id: TrialId) -> ScreeningOut:
    """The screening record and the stored eligibility decision per criterion (404 if none)."""
    patient = visible_patient(request, trial_id)
    screening: Screening | None = Screening.objects.filter(patient=patient).first()
    if screening is None:
        raise Http404(f"patient {trial_id} has no screening record yet")
    return _screening_out(patient, screening)


@router.put(
    "/patients/{trial_id}/screening",
    response=patient_responses(200, ScreeningOut, 403, 409),
)
def put_screening(request: HttpRequest, trial_id: TrialId, body: ScreeningIn) -> ScreeningOut:
    """Enter or change the screening record; eligibility is assessed and stored as decided.

    A change needs a reason and the version it is based on (409 if the record moved on)."""
    patient = visible_patient(request, trial_id)
    return _screening_out(patient, apply_change(services.record_screening, request, patient, body))


SIGNING_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{0,128}$"


class SigningSessionIn(Schema):
    """The password (and code) that open a signing session (never logged or echoed)."""

    password: str = Field(pattern=NO_NUL, max_length=4096, description="your password")
    otp_token: str = Field(
        "",
        pattern=r"^[0-9 ]{0,12}$",
        description="a current code of your authenticator app, needed when this session was "
        "not verified by one at login",
    )


class SigningSessionOut(Schema):
    id: int
    signing_token: str
    expires_at: datetime


@router.post("/signing-session", response=_responses(200, SigningSessionOut, 422))
def signing_session(request: HttpRequest, body: SigningSessionIn) -> SigningSessionOut:
    """A signing token for this signed-in session (21 CFR 11.200(a)(1)(i): the first signing of
    a session uses every component, later ones one): after the password (and `otp_token` when
    the session was not verified by a code), checked and counted as a signature's, a random
    token that signs instead of them (`signing_token` in the body of a signed action) for this
    user in this session only, until `expires_at` (STARTRT_SIGNING_TOKEN_MINUTES, 10) or
    logout. Shown once; only its SHA-256 is stored."""
    token, row = signing.issue_signing_token(request, body.password, body.otp_token)
    return SigningSessionOut(id=row.pk, signing_token=token, expires_at=row.expires_at)


class RandomizeIn(Schema):
    """The investigator's electronic signature of the randomization (never logged or echoed):
    the password (and code), or a signing token of this session."""

    password: str = Field(
        "",
        pattern=NO_NUL,
        max_length=4096,
        description="the investigator's password: signed (or signing_token)",
    )
    signing_token: str = Field(
        "",
        pattern=SIGNING_TOKEN_PATTERN,
        description="a signing token (POST /api/signing-session) of this session, instead of "
        "the password and code",
    )
    otp_token: str = Field(
        "",
        pattern=r"^[0-9 ]{0,12}$",
        description="a current code of the investigator's authenticator app, needed when this "
        "session was not verified by one at login",
    )


@router.post("/patients/{trial_id}/randomize", response=patient_responses(200, AllocationOut, 403))
def randomize(request: HttpRequest, trial_id: TrialId, body: RandomizeIn) -> AllocationOut:
    """Allocate the next slot of the patient's stratum (investigators; final), signed by the
    investigator's password (and second factor) as on the page: a wrong or missing one is 422
    and allocates nothing; the allocation carries the signature (meaning: responsibility)."""
    patient = visible_patient(request, trial_id)
    signature = signing.sign_action(
        request,
        body.password,
        Meaning.RESPONSIBILITY,
        lambda: services.randomize(request.user, patient),
        otp_token=body.otp_token,
        signing_token=body.signing_token,
    )
    slot = Slot.objects.get(pk=signature.record_id)
    return AllocationOut(
        trial_id=trial_id,
        treatment_arm=slot.treatment_arm,
        stratum=slot.stratum,
        list_sha256=slot.listing.sha256,
        allocated_at=slot.allocated_at,
        allocated_by=slot.allocated_by,
    )


@router.get("/patients/{trial_id}/audit", response=patient_responses(200, list[AuditEntryOut]))
@paginated
def patient_audit(request: HttpRequest, trial_id: TrialId, response: HttpResponse) -> ReadableAudit:
    """The patient's audit entries, oldest first, as the user may read them (a slot's place in
    the randomization list only for the statistician)."""
    patient = visible_patient(request, trial_id)
    entries = AuditEntry.objects.filter(patient_trial_id=patient.trial_id).order_by("at", "id")
    return ReadableAudit(entries, request.user)


@router.get("/patients/{trial_id}/decisions", response=patient_responses(200, list[DecisionOut]))
@paginated
def patient_decisions(
    request: HttpRequest, trial_id: TrialId, response: HttpResponse
) -> QuerySet[Decision]:
    """The decisions made for the patient (eligibility, arm assignment, ...), oldest first."""
    return Decision.objects.filter(patient=visible_patient(request, trial_id)).order_by("id")


@router.get("/patients/{trial_id}/consents", response=patient_responses(200, list[ConsentOut]))
@paginated
def list_consents(
    request: HttpRequest, trial_id: TrialId, response: HttpResponse
) -> QuerySet[Consent]:
    """The patient's signed consents, in order of signing."""
    patient = visible_patient(request, trial_id)
    return Consent.objects.filter(patient=patient).order_by("signed_on", "id")


@router.post("/patients/{trial_id}/consents", response=patient_responses(201, ConsentOut, 403))
def record_consent(request: HttpRequest, trial_id: TrialId, body: ConsentIn) -> Status[Consent]:
    """Record a signed consent (a new form version is a new consent)."""
    patient = visible_patient(request, trial_id)
    return Status(201, services.record_consent(request.user, patient, body.record))


@router.put(
    "/patients/{trial_id}/consents/{consent_id}",
    response=patient_responses(200, ConsentOut, 403, 409),
)
def correct_consent(
    request: HttpRequest, trial_id: TrialId, consent_id: RecordId, body: ConsentCorrectionIn
) -> Consent:
    """Correct a consent, with a reason and the version the correction is based on."""
    consent = patient_record(visible_patient(request, trial_id), Consent, consent_id, "consent")
    return apply_change(services.change_consent, request, consent, body)
