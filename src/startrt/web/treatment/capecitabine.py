"""Capecitabine of the CAP-dTOC arm, one transaction per action: the library computes (BSA by the
protocol's formula, Cockcroft-Gault CrCl, the dose in whole 500/150 mg tablets with its renal
adjustment, the contraindications with their reasons); these functions check the arm, the cycle
and the role, show the assessment, store the prescription and the tablets dispensed, audited.

Roles (as decided for START-01's sites): a pharmacist or an investigator prescribes, only a
pharmacist dispenses. Contraindications are read from the CrCl computed here, the screening
record (DPD deficiency, pregnancy or lactation, another contraindication recorded by the
investigator) and the cycle's latest pre-cycle labs (neutrophils, platelets); any one refuses
the prescription, naming the field and the label's reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from startrt.clinical.bsa import dubois_bsa_m2, mosteller_bsa_m2
from startrt.clinical.capecitabine import (
    CapecitabineContraindicatedError,
    CapecitabineDose,
    capecitabine_dose,
    contraindications,
)
from startrt.clinical.egfr import cockcroft_gault_crcl_ml_min
from startrt.clinical.sex import Sex
from startrt.validation import InvalidInputError, InvalidRecordError
from startrt.web.treatment.changes import json_ready, treatment_arm
from startrt.web.treatment.models import CapecitabinePrescription, Cycle, Dispensing
from startrt.web.trial.changes import insert
from startrt.web.trial.models import Role, Screening
from startrt.web.trial.permissions import require_role
from startrt.web.trial.services import current_protocol

BSA_FORMULAS = {"dubois": dubois_bsa_m2, "mosteller": mosteller_bsa_m2}
PRESCRIBING_ROLES = (Role.PHARMACIST, Role.INVESTIGATOR)
OTHER_CONTRAINDICATION = "other label contraindication recorded by the investigator"
# library keyword -> where the value comes from: the screening record or the cycle's labs
SCREENING_FINDINGS = ("dpd_deficiency", "pregnant_or_lactating")
LAB_FINDINGS = ("neutrophils_10e9_l", "platelets_10e9_l")


@dataclass(frozen=True)
class Contraindication:
    """One reason capecitabine must not be started: the finding, its value, the label's rule."""

    field: str
    value: object
    reason: str


@dataclass(frozen=True)
class CapecitabineAssessment:
    """What the library computed for one cycle's course; `dose` is None when the renal function
    forbids computing one; `course_tablets` counts each strength (mg) for the whole course."""

    cycle: int
    inputs: dict[str, Any]
    bsa_m2: float
    crcl_ml_min: float
    dose: CapecitabineDose | None
    contraindications: tuple[Contraindication, ...]
    course_tablets: dict[int, int] | None

    @property
    def prescribable(self) -> bool:
        return self.dose is not None and not self.contraindications


def require_capecitabine_cycle(cycle: Cycle) -> None:
    """Capecitabine only for an arm that gives it, in its first cycles, never a cancelled one."""
    arm = treatment_arm(cycle.patient)
    if not arm.capecitabine:
        raise InvalidInputError(
            "patient", cycle.patient.trial_id, f"arm {arm.id} gives no capecitabine"
        )
    courses = current_protocol().schedule.capecitabine_prrt_cycles
    if cycle.number > courses:
        raise InvalidInputError("cycle", cycle.number, f"capecitabine in cycles 1-{courses} only")
    if cycle.status == Cycle.Status.CANCELLED:
        raise InvalidInputError("cycle", cycle.number, "is cancelled")


def assess_capecitabine(
    user: AbstractBaseUser,
    cycle: Cycle,
    *,
    weight_kg: float,
    height_cm: float,
    age_years: float,
    creatinine_umol_l: float,
    dose_level_percent: int = 100,
) -> CapecitabineAssessment:
    """The dose the library computes for the cycle's course and every contraindication found,
    without storing anything (the prescriber's preview)."""
    require_role(user, cycle.patient.site, *PRESCRIBING_ROLES)
    require_capecitabine_cycle(cycle)
    protocol = current_protocol()
    options = protocol.capecitabine
    patient = cycle.patient
    bsa_m2 = BSA_FORMULAS[options.bsa_formula](height_cm, weight_kg)
    crcl = cockcroft_gault_crcl_ml_min(Sex(patient.sex), age_years, weight_kg, creatinine_umol_l)
    try:
        dose: CapecitabineDose | None = capecitabine_dose(
            bsa_m2,
            options.dose_mg_per_m2,
            crcl_ml_min=crcl,
            reduce_for_moderate_renal_impairment=options.reduce_for_moderate_renal_impairment,
            dose_level_percent=dose_level_percent,
        )
    except CapecitabineContraindicatedError:
        dose = None  # the reason is among the contraindications below
    days = protocol.schedule.capecitabine_days
    inputs = {
        "weight_kg": weight_kg,
        "height_cm": height_cm,
        "age_years": age_years,
        "creatinine_umol_l": creatinine_umol_l,
        "crcl_ml_min": crcl,
        "bsa_formula": options.bsa_formula,
        "days": days,
        "protocol": protocol.label,
    }
    course = None
    if dose is not None:
        course = {
            strength: (count + dose.tablets_evening[strength]) * days
            for strength, count in dose.tablets_morning.items()
        }
    return CapecitabineAssessment(
        cycle=cycle.number,
        inputs=inputs,
        bsa_m2=bsa_m2,
        crcl_ml_min=crcl,
        dose=dose,
        contraindications=_contraindications(cycle, crcl),
        course_tablets=course,
    )


def _contraindications(cycle: Cycle, crcl_ml_min: float) -> tuple[Contraindication, ...]:
    """Each finding judged by the library's `contraindications`, one finding at a time so each
    reason keeps the field it came from."""
    screening = Screening.objects.filter(patient=cycle.patient).first()
    record = {} if screening is None else screening.record
    panel = cycle.lab_panels.order_by("drawn_at", "id").last()
    labs = {} if panel is None else panel.values
    findings: dict[str, object] = {
        "crcl_ml_min": crcl_ml_min,
        **{name: record.get(name) for name in SCREENING_FINDINGS},
        **{name: labs.get(name) for name in LAB_FINDINGS},
    }
    found = [
        Contraindication(name, value, reason)
        for name, value in findings.items()
        if value is not None
        for reason in contraindications(**{name: value})
    ]
    if record.get("capecitabine_other_contraindication"):
        found.append(
            Contraindication("capecitabine_other_contraindication", True, OTHER_CONTRAINDICATION)
        )
    return tuple(found)


@transaction.atomic
def prescribe_capecitabine(
    user: AbstractBaseUser,
    cycle: Cycle,
    **measurements: float,
) -> CapecitabinePrescription:
    """Store the course the library computed (`assess_capecitabine`, given the same keyword
    `measurements`) for one of the arm's first cycles; refused, naming each finding, when
    capecitabine is contraindicated."""
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
    assessment = assess_capecitabine(user, cycle, **measurements)
    if CapecitabinePrescription.objects.filter(cycle=cycle).exists():
        raise InvalidInputError("cycle", cycle.number, "already has a capecitabine prescription")
    if assessment.contraindications or assessment.dose is None:
        problems = [
            InvalidInputError(item.field, _shown(item.value), item.reason)
            for item in assessment.contraindications
        ]
        raise InvalidRecordError("capecitabine contraindicated", problems)
    prescription = CapecitabinePrescription(
        patient=cycle.patient,
        cycle=cycle,
        dose=json_ready({**dataclasses.asdict(assessment.dose), "inputs": assessment.inputs}),
        prescribed_by=user.get_username(),
    )
    insert(user, prescription, cycle.patient)
    return prescription


def _shown(value: object) -> object:
    return round(value, 1) if isinstance(value, float) else value


def prescribed_tablets(prescription: CapecitabinePrescription) -> dict[int, int]:
    """Tablets of each strength (mg) for the whole course: (morning + evening) x days."""
    dose = prescription.dose
    days: int = dose["inputs"]["days"]
    return {
        int(strength): (count + dose["tablets_evening"][strength]) * days
        for strength, count in dose["tablets_morning"].items()
    }


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
