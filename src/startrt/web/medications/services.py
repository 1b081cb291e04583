"""Concomitant medications: one transaction per action. Research nurses and investigators enter
at the patient's site (others get PermissionDenied); monitors and statisticians read through
`events.services.visible`. Each action locks the patient row. Every insert and change is
audited; a change (every field re-entered and checked again) needs a reason and the version it
was based on.
Refused input raises InvalidInputError naming field, value and rule; nothing is half-written.

After each entry or change the protocol's rule (`protocol.concomitant_therapy`) runs; its
finding is kept on the medication and stored as a decision (inputs, rule, protocol version).
A finding that is a protocol deviation (a prohibited therapy during the treatment or within the
washout) records a `MedicationDeviation` for the investigator to acknowledge with a reason; a
correction that ends the deviation or changes its finding (washout <-> during the treatment)
withdraws the standing one with the reason (and records the new one); a change keeping the
finding keeps the standing deviation (and its acknowledgement), the new decision stored.

Rules chosen here (stated, not hidden):
- Medications are recorded from registration on (screening included). A start or stop day is
  not after today (UTC, + 1 day for time zones) nor after the date of death, and not more than
  the oldest plausible age (120 years) before today: a patient may have been on a somatostatin
  analogue for years before the trial.
- The first cycle's day the rule reads: the infusion day of the first cycle not cancelled, its
  planned day before that, else the planned start of treatment from screening. A finding
  `pending` (no such day yet) is checked again by `reassess` (every medication of the patient),
  which runs whenever a cycle's day is set, moved or cancelled and whenever the end of
  treatment is recorded or corrected, and which the medication page offers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from startrt.protocol.concomitant_therapy import (
    ConcomitantMedicationRecord,
    ConcomitantTherapyCheck,
    check_concomitant_therapy,
    parse_medication,
    refuse_trial_treatment,
)
from startrt.protocol.vocabulary import TherapyFinding
from startrt.validation import AGE_YEARS, InvalidInputError, years_before
from startrt.web.events.models import Death, EndOfTreatment
from startrt.web.medications.models import ConcomitantMedication, MedicationDeviation
from startrt.web.signing.services import ensure_unlocked, kind_of
from startrt.web.treatment.models import Cycle
from startrt.web.trial import dates
from startrt.web.trial.changes import check_version, insert, require_reason, update
from startrt.web.trial.models import Patient, Role, Screening, Slot
from startrt.web.trial.permissions import require_role
from startrt.web.trial.services import current_protocol, locked_patient, store_decision

OLDEST_YEARS = int(AGE_YEARS.high)


@transaction.atomic
def record_medication(
    user: AbstractBaseUser, patient: Patient, data: dict[str, Any]
) -> ConcomitantMedication:
    """Record a concomitant medication and check it against the prohibited therapies."""
    patient = locked_patient(user, patient)
    record = _medication_record(patient, data)
    check = _check(patient, record)
    medication = ConcomitantMedication(patient=patient, **_values(record, check))
    insert(user, medication, patient)
    _keep_finding(user, patient, medication, check, "")
    return medication


@transaction.atomic
def change_medication(
    user: AbstractBaseUser,
    medication: ConcomitantMedication,
    data: dict[str, Any],
    *,
    reason: str,
    expected_version: int | None,
) -> ConcomitantMedication:
    """Change a medication (every field re-entered), with a reason and its version; checked
    again against the prohibited therapies."""
    patient = locked_patient(user, medication.patient)
    record = _medication_record(patient, data)
    return _change(user, patient, medication, record, reason, expected_version)


@transaction.atomic
def stop_medication(
    user: AbstractBaseUser,
    medication: ConcomitantMedication,
    stop_date: object,
    *,
    expected_version: int | None,
) -> ConcomitantMedication:
    """Record the stop of an ongoing medication (its other fields kept), audited as a change
    with the reason "stopped"."""
    patient = locked_patient(user, medication.patient)
    if medication.stop_date is not None:
        raise InvalidInputError(
            "stop_date",
            medication.stop_date.isoformat(),
            "the medication is already stopped: correct the stop date instead",
        )
    data = {**_record_data(medication), "stop_date": stop_date}
    record = _medication_record(patient, data)
    return _change(user, patient, medication, record, "stopped", expected_version)


@transaction.atomic
def reassess(user: AbstractBaseUser, patient: Patient) -> list[ConcomitantMedication]:
    """Check every medication of the patient again (after the first cycle got its day, or it
    or the end of treatment moved); the ones whose finding changed are returned."""
    patient = locked_patient(user, patient)
    changed = []
    for medication in ConcomitantMedication.objects.filter(patient=patient).order_by("pk"):
        record = parse_medication(_record_data(medication))
        check = _check(patient, record)
        if check.description == medication.finding_description:
            continue
        values = _values(record, check)
        reason = "checked again against the first cycle and the end of treatment"
        update(user, medication, patient, values, reason)
        _keep_finding(user, patient, medication, check, reason)
        changed.append(medication)
    return changed


@transaction.atomic
def acknowledge_deviation(
    user: AbstractBaseUser,
    deviation: MedicationDeviation,
    *,
    reason: object,
    expected_version: int | None,
) -> MedicationDeviation:
    """The investigator at the patient's site acknowledges a standing deviation, saying why
    (what was done about it), audited."""
    require_role(user, deviation.patient.site, Role.INVESTIGATOR)
    why = require_reason(reason, "acknowledging a deviation needs a reason")
    current = MedicationDeviation.objects.select_for_update().get(pk=deviation.pk)
    check_version(current, expected_version, "deviation")
    if current.withdrawn_at is not None:
        raise InvalidInputError("deviation", current.pk, "is withdrawn: nothing to acknowledge")
    if current.acknowledged_at is not None:
        raise InvalidInputError(
            "deviation", current.pk, f"is already acknowledged by {current.acknowledged_by}"
        )
    values = {
        "acknowledged_by": user.get_username(),
        "acknowledged_at": timezone.now(),
        "acknowledgement": why,
    }
    return update(user, current, current.patient, values, f"acknowledged: {why}")


def awaiting_acknowledgement(patients: QuerySet[Patient]) -> QuerySet[MedicationDeviation]:
    """The standing, unacknowledged deviations of `patients` (the investigator's worklist)."""
    return (
        MedicationDeviation.objects.awaiting_acknowledgement()
        .filter(patient__in=patients)
        .select_related("patient__site", "medication")
    )


def first_cycle_date(patient: Patient) -> dt.date | None:
    """The first cycle's day: its infusion, or its planned day, or the planned start from
    screening; None without any."""
    cycle = (
        Cycle.objects.filter(patient=patient)
        .exclude(status=Cycle.Status.CANCELLED)
        .order_by("number")
        .first()
    )
    if cycle is not None:
        if cycle.infusion_start is not None:
            return timezone.localdate(cycle.infusion_start)
        return cycle.planned_date
    screening = Screening.objects.filter(patient=patient).first()
    planned = None if screening is None else screening.record.get("planned_start_date")
    return None if planned is None else dt.date.fromisoformat(planned)


def _medication_record(patient: Patient, data: dict[str, Any]) -> ConcomitantMedicationRecord:
    record = parse_medication(data)
    death = Death.objects.filter(patient=patient).first()
    earliest = years_before(timezone.localdate(), OLDEST_YEARS)
    since = f"{OLDEST_YEARS} years (the oldest plausible age) before today"
    for field in ("start_date", "stop_date"):
        value = getattr(record, field)
        if value is not None:
            dates.require_happened(
                field,
                value,
                earliest=earliest,
                since=since,
                death=None if death is None else death.date,
            )
    slot = Slot.objects.filter(patient=patient).exclude(treatment_arm="").first()
    protocol = current_protocol()
    gives = slot is not None and protocol.arm(slot.treatment_arm).capecitabine
    settings = protocol.concomitant_therapy
    if settings is not None:
        refuse_trial_treatment(record, settings, arm_gives_capecitabine=gives)
    return record


def _check(patient: Patient, record: ConcomitantMedicationRecord) -> ConcomitantTherapyCheck:
    end = EndOfTreatment.objects.filter(patient=patient).first()
    return check_concomitant_therapy(
        record,
        current_protocol(),
        first_cycle_date=first_cycle_date(patient),
        end_of_treatment_date=None if end is None else end.date,
    )


def _values(record: ConcomitantMedicationRecord, check: ConcomitantTherapyCheck) -> dict[str, Any]:
    values = record.model_dump()
    values["route"] = values["route"] or ""
    return {**values, "finding": check.finding, "finding_description": check.description}


def _record_data(medication: ConcomitantMedication) -> dict[str, Any]:
    """The stored medication in the record's shape."""
    fields = ConcomitantMedicationRecord.model_fields
    data = {name: getattr(medication, name) for name in fields}
    return {**data, "route": medication.route or None}


def _change(
    user: AbstractBaseUser,
    patient: Patient,
    medication: ConcomitantMedication,
    record: ConcomitantMedicationRecord,
    reason: str,
    expected_version: int | None,
) -> ConcomitantMedication:
    current = ConcomitantMedication.objects.get(pk=medication.pk)
    ensure_unlocked(kind_of(current), current.pk)  # a signed record stays as signed
    check_version(current, expected_version)
    check = _check(patient, record)
    update(user, current, patient, _values(record, check), reason)
    _keep_finding(user, patient, current, check, reason)
    return current


def _keep_finding(
    user: AbstractBaseUser,
    patient: Patient,
    medication: ConcomitantMedication,
    check: ConcomitantTherapyCheck,
    reason: str,
) -> None:
    """Store the decision; record the deviation it finds (unless one of the same finding
    stands), withdrawing a standing one of another finding."""
    store_decision(user, patient, check)
    standing = medication.deviations.standing().select_for_update().first()
    if standing is not None and standing.finding == check.finding:
        return  # the same deviation, already recorded (and perhaps acknowledged)
    if standing is not None:
        why = reason or "checked again"
        withdrawn = {
            "withdrawn_at": timezone.now(),
            "withdrawn_reason": f"{why}: {check.finding.label.lower()} ({check.description})",
        }
        update(user, standing, patient, withdrawn, f"withdrawn: {why}")
    if check.deviation:
        deviation = MedicationDeviation(
            patient=patient,
            medication=medication,
            finding=TherapyFinding(check.finding),
            description=check.description,
            decision=check.model_dump(mode="json"),
            recorded_by=user.get_username(),
        )
        insert(user, deviation, patient)
