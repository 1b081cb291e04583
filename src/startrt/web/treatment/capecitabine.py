"""Capecitabine of the CAP-dTOC arm, one transaction per action: the protocol decides
(`capecitabine_decision`: the arm and cycle, BSA by the protocol's formula, Cockcroft-Gault CrCl,
the dose in whole 500/150 mg tablets with its renal adjustment, the contraindications with their
reasons); these functions check the role and the cycle, gather the findings, show the decision,
store it as the prescription and record the tablets dispensed, audited.

Roles (as decided for START-01's sites): a pharmacist or an investigator prescribes, only a
pharmacist dispenses. Contraindications are read from the CrCl, the screening record (DPD
deficiency, pregnancy or lactation, another contraindication recorded by the investigator) and
the cycle's latest pre-cycle labs (neutrophils, platelets); any one refuses the prescription,
naming the field and the label's reason.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from startrt.clinical.sex import Sex
from startrt.protocol.capecitabine import (
    CapecitabineDecision,
    CapecitabineFindings,
    capecitabine_decision,
)
from startrt.validation import InvalidInputError, InvalidRecordError
from startrt.web.treatment.changes import treatment_arm
from startrt.web.treatment.models import CapecitabinePrescription, Cycle, Dispensing
from startrt.web.trial.changes import insert
from startrt.web.trial.models import Role, Screening
from startrt.web.trial.permissions import require_role
from startrt.web.trial.services import current_protocol

PRESCRIBING_ROLES = (Role.PHARMACIST, Role.INVESTIGATOR)


def assess_capecitabine(
    user: AbstractBaseUser,
    cycle: Cycle,
    *,
    weight_kg: float,
    height_cm: float,
    age_years: float,
    creatinine_umol_l: float,
    dose_level_percent: int = 100,
) -> CapecitabineDecision:
    """The protocol's capecitabine decision for the cycle's course, without storing anything
    (the prescriber's preview); refused for another arm, a later or a cancelled cycle."""
    require_role(user, cycle.patient.site, *PRESCRIBING_ROLES)
    if cycle.status == Cycle.Status.CANCELLED:
        raise InvalidInputError("cycle", cycle.number, "is cancelled")
    patient = cycle.patient
    return capecitabine_decision(
        treatment_arm(patient).id,
        cycle.number,
        height_cm=height_cm,
        weight_kg=weight_kg,
        sex=Sex(patient.sex),
        age_years=age_years,
        creatinine_umol_l=creatinine_umol_l,
        dose_level_percent=dose_level_percent,
        findings=_findings(cycle),
        protocol=current_protocol(),
    )


def _findings(cycle: Cycle) -> CapecitabineFindings:
    """The screening record's findings and the cycle's latest pre-cycle blood counts."""
    screening = Screening.objects.filter(patient=cycle.patient).first()
    record = {} if screening is None else screening.record
    panel = cycle.lab_panels.order_by("drawn_at", "id").last()
    labs = {} if panel is None else panel.values
    return CapecitabineFindings(
        dpd_deficiency=record.get("dpd_deficiency"),
        pregnant_or_lactating=record.get("pregnant_or_lactating"),
        other_contraindication=record.get("capecitabine_other_contraindication"),
        neutrophils_10e9_l=labs.get("neutrophils_10e9_l"),
        platelets_10e9_l=labs.get("platelets_10e9_l"),
    )


@transaction.atomic
def prescribe_capecitabine(
    user: AbstractBaseUser,
    cycle: Cycle,
    **measurements: float,
) -> CapecitabinePrescription:
    """Store the protocol's decision (`assess_capecitabine`, given the same keyword
    `measurements`) as the prescription of one of the arm's first cycles; refused, naming each
    finding, when capecitabine is contraindicated."""
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
    decision = assess_capecitabine(user, cycle, **measurements)
    if CapecitabinePrescription.objects.filter(cycle=cycle).exists():
        raise InvalidInputError("cycle", cycle.number, "already has a capecitabine prescription")
    if not decision.prescribable:
        problems = [
            InvalidInputError(item.field, _shown(item.value), item.reason)
            for item in decision.contraindications
        ]
        raise InvalidRecordError("capecitabine contraindicated", problems)
    prescription = CapecitabinePrescription(
        patient=cycle.patient,
        cycle=cycle,
        dose=decision.model_dump(mode="json"),
        prescribed_by=user.get_username(),
    )
    insert(user, prescription, cycle.patient)
    return prescription


def _shown(value: object) -> object:
    return round(value, 1) if isinstance(value, float) else value


def prescribed_tablets(prescription: CapecitabinePrescription) -> dict[int, int]:
    """Tablets of each strength (mg) for the whole course, as the stored decision says."""
    course: dict[str, int] = prescription.dose["course_tablets"]
    return {int(strength): count for strength, count in course.items()}


def dispensed_tablets(prescription: CapecitabinePrescription) -> dict[int, int]:
    """Tablets of each strength (mg) handed out so far against the prescription."""
    rows = list(prescription.dispensings.values("tablets_500", "tablets_150"))
    return {strength: sum(row[f"tablets_{strength}"] for row in rows) for strength in (500, 150)}


@transaction.atomic
def dispense(
    user: AbstractBaseUser,
    prescription: CapecitabinePrescription,
    *,
    tablets_500: int,
    tablets_150: int,
) -> Dispensing:
    """Hand out tablets against a prescription, never more than the course prescribes."""
    patient = prescription.patient
    require_role(user, patient.site, Role.PHARMACIST)
    prescription = CapecitabinePrescription.objects.select_for_update().get(pk=prescription.pk)
    counts = {500: tablets_500, 150: tablets_150}
    for strength, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInputError(f"tablets_{strength}", count, "must be a whole number >= 0")
    if not any(counts.values()):
        raise InvalidInputError("tablets_500", tablets_500, "nothing to dispense")
    prescribed = prescribed_tablets(prescription)
    given = dispensed_tablets(prescription)
    for strength, count in counts.items():
        if given[strength] + count > prescribed[strength]:
            raise InvalidInputError(
                f"tablets_{strength}",
                count,
                f"the course prescribes {prescribed[strength]} x {strength} mg, "
                f"{given[strength]} already dispensed",
            )
    dispensing = Dispensing(
        prescription=prescription,
        tablets_500=tablets_500,
        tablets_150=tablets_150,
        dispensed_by=user.get_username(),
    )
    insert(user, dispensing, patient)
    return dispensing
