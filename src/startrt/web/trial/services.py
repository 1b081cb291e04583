"""What users do, one transaction per action: the library decides, these functions check the
user's role at the patient's site, persist, record the decision and audit every change.

Concurrency: randomization takes the next free slot of the patient's stratum under a row lock
(SELECT ... FOR UPDATE on PostgreSQL; SQLite serialises writers), so two users randomizing at
once never get the same slot; records carry a version, and an edit based on an older version is
refused instead of silently overwriting the newer one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from pydantic import StringConstraints

from startrt.clinical.sex import Sex
from startrt.protocol.arm_assignment import assign_treatment_arm
from startrt.protocol.decision import Decision as DecisionRecord
from startrt.protocol.definition import Protocol, protocol_in_force
from startrt.protocol.eligibility import assess_eligibility
from startrt.protocol.randomization import RandomizationList as BlockList
from startrt.protocol.randomization import stratum_label
from startrt.protocol.records import Record, parse_record
from startrt.protocol.screening import ScreeningRecord
from startrt.protocol.stratification import patient_stratum
from startrt.validation import CleanText, InvalidInputError
from startrt.web.signing.services import ensure_unlocked, kind_of
from startrt.web.trial import audit, concealment, dates
from startrt.web.trial.changes import check_version, insert, update
from startrt.web.trial.models import (
    Consent,
    Decision,
    Patient,
    RandomizationList,
    Role,
    Screening,
    Site,
    Slot,
)
from startrt.web.trial.permissions import require_role

TRIAL_ID = re.compile(r"S01-[A-Z]{3}-[0-9]{3}")
ENTRY_ROLES = (Role.RESEARCH_NURSE, Role.INVESTIGATOR)
PatientRow = TypeVar("PatientRow", bound=models.Model)
FormVersion = Annotated[
    CleanText, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)
]


class ConsentRecord(Record):
    """A signed informed consent as entered: the form's version and the date of signing."""

    form_version: FormVersion
    signed_on: dt.date


def current_protocol() -> Protocol:
    """The protocol version a decision made now applies: the version in force today (the
    services' clock), so each stored decision names the version in force on its date."""
    return protocol_in_force(timezone.localdate())


def store_decision(user: AbstractBaseUser, patient: Patient, decision: DecisionRecord) -> Decision:
    """Keep a decision as made (kind, inputs, rule, protocol version), audited; the stored row."""
    stored = Decision(
        patient=patient,
        kind=decision.kind,
        protocol=decision.protocol,
        rule=decision.rule,
        record=decision.model_dump(mode="json"),
        made_by=user.get_username(),
    )
    return insert(user, stored, patient)


@transaction.atomic
def register_patient(user: AbstractBaseUser, site: Site, trial_id: str, sex: str) -> Patient:
    """A new participant under a pseudonymous trial ID of the form S01-LUN-001."""
    require_role(user, site, *ENTRY_ROLES)
    if not TRIAL_ID.fullmatch(trial_id):
        raise InvalidInputError("trial_id", trial_id, "must read S01-<site code>-<3 digits>")
    if trial_id[4:7] != site.code:
        raise InvalidInputError("trial_id", trial_id, f"must carry the site code {site.code}")
    if sex not in set(Sex):
        raise InvalidInputError("sex", sex, "must be female or male")
    patient = Patient(trial_id=trial_id, site=site, sex=sex)
    try:
        with transaction.atomic():
            return insert(user, patient, patient)
    except IntegrityError:
        raise InvalidInputError("trial_id", trial_id, "is already registered") from None


@transaction.atomic
def record_screening(
    user: AbstractBaseUser,
    patient: Patient,
    data: dict[str, Any],
    *,
    reason: str = "",
    expected_version: int | None = None,
) -> Screening:
    """Store the screening record (validated) and the eligibility decision per criterion.

    A first entry needs no reason; a change does, and must name the version it was based on."""
    require_role(user, patient.site, *ENTRY_ROLES)
    record = parse_record(ScreeningRecord, {**data, "sex": patient.sex}, "screening record")
    protocol = current_protocol()  # refused first on a day no protocol version is in force
    dates.check_screening_dates(record)
    decision = assess_eligibility(record, protocol)
    existing = Screening.objects.select_for_update().filter(patient=patient).first()
    if existing is not None:
        ensure_unlocked(kind_of(existing), existing.pk)  # a signed record stays as signed
    if existing is not None and hasattr(patient, "allocation"):
        raise InvalidInputError("patient", patient.trial_id, "is randomized: screening is closed")
    values = {
        "record": record.model_dump(mode="json"),
        "eligible": decision.eligible,
        "protocol": protocol.label,
    }
    if existing is None:
        screening = insert(user, Screening(patient=patient, **values), patient)
    else:
        check_version(existing, expected_version, "screening record")
        screening = update(user, existing, patient, values, reason)
    store_decision(user, patient, decision)
    return screening


@transaction.atomic
def record_consent(user: AbstractBaseUser, patient: Patient, data: dict[str, Any]) -> Consent:
    """Record a signed informed consent (a new form version after an amendment is a new row)."""
    patient = locked_patient(user, patient)
    values = _consent_values(patient, data, None)
    return insert(user, Consent(patient=patient, **values), patient)


@transaction.atomic
def change_consent(
    user: AbstractBaseUser,
    consent: Consent,
    data: dict[str, Any],
    *,
    reason: str,
    expected_version: int | None,
) -> Consent:
    """Correct a consent (every field re-entered), with a reason and the version it is based on."""

    def values(patient: Patient) -> dict[str, Any]:
        return _consent_values(patient, data, consent.pk)

    return change_record(user, consent, values, reason=reason, expected_version=expected_version)


def locked_patient(user: AbstractBaseUser, patient: Patient) -> Patient:
    """The patient row locked for this action, once the user's entry role is checked."""
    require_role(user, patient.site, *ENTRY_ROLES)
    return Patient.objects.select_for_update().get(pk=patient.pk)


def change_record(
    user: AbstractBaseUser,
    row: PatientRow,
    values: Callable[[Patient], dict[str, Any]],
    *,
    reason: str,
    expected_version: int | None,
) -> PatientRow:
    """Correct a patient's record: the patient locked (`locked_patient`), the new values
    validated by `values(patient)`, then the row, if still at `expected_version`
    (StaleVersionError otherwise), updated and audited with `reason`."""
    patient = locked_patient(user, row.patient)  # type: ignore[attr-defined]
    new_values = values(patient)
    current = type(row)._default_manager.get(pk=row.pk)
    check_version(current, expected_version)
    return update(user, current, patient, new_values, reason)


def _consent_values(
    patient: Patient, data: dict[str, Any], consent_id: int | None
) -> dict[str, Any]:
    """Validated values: signed between the trial start (the first protocol version's
    effective date) and today (UTC, + 1 day for time zones), one consent per form version."""
    record = parse_record(ConsentRecord, data, "consent")
    dates.require_happened("signed_on", record.signed_on)
    same_form = Consent.objects.filter(patient=patient, form_version=record.form_version)
    if same_form.exclude(pk=consent_id).exists():
        raise InvalidInputError(
            "form_version", record.form_version, "a consent to this form version is recorded"
        )
    return record.model_dump()


@transaction.atomic
def load_randomization_list(
    user: AbstractBaseUser, site: Site, name: str, listing: BlockList
) -> RandomizationList:
    """Store a concealed list (generated from a secret seed or imported) with its SHA-256."""
    require_role(user, site, Role.ADMINISTRATOR, Role.STATISTICIAN)
    stored = RandomizationList.objects.create(
        name=name, protocol=current_protocol().label, sha256=listing.sha256, csv=listing.to_csv()
    )
    Slot.objects.bulk_create(
        Slot(
            listing=stored,
            stratum=stratum_label(slot.stratum),
            sequence=slot.sequence,
            block=slot.block_number,
            block_size=slot.block_size,
            arm=slot.arm,
        )
        for slot in listing.entries
    )
    snapshot = {"name": name, "sha256": listing.sha256, "slots": len(listing.entries)}
    audit.record(user, "insert", stored, old=None, new=snapshot)
    return stored


@transaction.atomic
def randomize(user: AbstractBaseUser, patient: Patient) -> Slot:
    """Allocate the next free slot of the patient's stratum (row-locked); final and audited
    as the allocation, without the slot's place in the list (`concealment.allocation`)."""
    require_role(user, patient.site, Role.INVESTIGATOR)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if Slot.objects.filter(patient=patient).exists():
        raise InvalidInputError("patient", patient.trial_id, "is already randomized")
    screening = Screening.objects.filter(patient=patient).first()
    if screening is None or screening.eligible is not True:
        raise InvalidInputError("patient", patient.trial_id, "is not (yet) eligible")
    protocol = current_protocol()
    fdg_positive = screening.record.get("fdg_pet_positive")
    stratum = stratum_label(
        patient_stratum(protocol, site=patient.site.name, fdg_pet_positive=fdg_positive)
    )
    active = list(RandomizationList.objects.filter(active=True).values_list("id", flat=True))
    # lock only the slot row (no joined table), waiting for a concurrent allocation to commit;
    # PostgreSQL then re-checks "patient IS NULL" and moves on to the next free slot
    slot = (
        Slot.objects.select_for_update(of=("self",))
        .filter(listing_id__in=active, stratum=stratum, patient__isnull=True)
        .order_by("listing_id", "sequence")
        .first()
    )
    if slot is None:
        raise InvalidInputError("stratum", stratum, "the active list has no free slot left")
    assignment = assign_treatment_arm(slot.arm, fdg_positive, protocol)
    old = concealment.allocation(slot)
    slot.patient = patient
    slot.treatment_arm = assignment.arm
    slot.allocated_at = timezone.now()
    slot.allocated_by = user.get_username()
    slot.save()
    audit.record(
        user,
        "update",
        slot,
        old=old,
        new=concealment.allocation(slot),
        reason="randomization (allocation of the next slot)",
        patient_trial_id=patient.trial_id,
    )
    store_decision(user, patient, assignment)
    return slot
