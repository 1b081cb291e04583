"""The doses the planner reads: the patient's dose ledger from the stored dosimetry, the
administered cycles as `CycleDose`s, and dosimetry checked or computed from a study folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.ledger import DoseLedger, ledger_from_records
from startrt.dosimetry.ledger_of_result import ledger_cycle
from startrt.dosimetry.study import load_study
from startrt.protocol.cycle_planning import CycleDose
from startrt.protocol.records import parse_record
from startrt.validation import InvalidInputError
from startrt.web.treatment.models import Cycle
from startrt.web.trial.models import Patient

STUDY_DATE_TOLERANCE_DAYS = 1  # DICOM times are local, infusion times UTC
# CycleDose's names of the stored dosimetry values
PLANNER_NAMES = {
    "left_kidney_dose_gy": "left_kidney_gy",
    "right_kidney_dose_gy": "right_kidney_gy",
    "marrow_dose_gy": "marrow_gy",
    "kidney_effective_half_life_h": "kidney_effective_half_life_h",
}


def dose_ledger(patient: Patient) -> tuple[DoseLedger, list[Cycle]]:
    """The administered cycles, and the ledger of their dosimetry from cycle 1 up to the
    first cycle without."""
    cycles = list(
        Cycle.objects.filter(patient=patient, status=Cycle.Status.ADMINISTERED).order_by("number")
    )
    results = {result.cycle_id: result for result in patient.dosimetry_results.all()}
    records = []
    for cycle in cycles:
        result = results.get(cycle.pk)
        if result is None:
            break
        records.append(
            {
                "cycle": cycle.number,
                "activity_gbq": cycle.administered_activity_gbq,
                "left_kidney_gy": result.left_kidney_gy,
                "right_kidney_gy": result.right_kidney_gy,
                "kidney_effective_half_life_h": result.kidney_effective_half_life_h,
                "marrow_dose_gy": result.marrow_gy,
            }
        )
    return ledger_from_records(records), cycles


def planner_cycles(patient: Patient) -> tuple[CycleDose, ...]:
    """The administered cycles as the planner reads them; doses where dosimetry exists."""
    ledger, cycles = dose_ledger(patient)
    measured = [CycleDose(**row) for row in ledger.planner_cycles()]
    unmeasured = [
        CycleDose(activity_gbq=cycle.administered_activity_gbq) for cycle in cycles[len(measured) :]
    ]
    return (*measured, *unmeasured)


def checked_doses(cycle: Cycle, doses: dict[str, float | None]) -> dict[str, float | None]:
    """Both kidney doses required; every value within the planner's plausible ranges."""
    for field in ("left_kidney_gy", "right_kidney_gy"):
        if doses[field] is None:
            raise InvalidInputError(field, None, "required")
    planner = {name: doses[field] for name, field in PLANNER_NAMES.items()}
    try:
        parse_record(
            CycleDose, {"activity_gbq": cycle.administered_activity_gbq, **planner}, "dosimetry"
        )
    except InvalidInputError as error:
        field = PLANNER_NAMES.get(error.field, error.field)
        raise InvalidInputError(field, error.value, error.rule) from None
    return doses


def computed_doses(patient: Patient, cycle: Cycle, study_path: str) -> dict[str, float | None]:
    """Kidney (and marrow) doses of the study folder, by the organ S-value method."""
    root = (Path(settings.DATA_DIR) / "studies").resolve()
    folder = (root / study_path).resolve()
    if not folder.is_relative_to(root) or not folder.is_dir():
        raise InvalidInputError("study_path", study_path, f"must be a study folder under {root}")
    study = load_study(folder)
    if study.patient_sex is None:
        study = dataclasses.replace(study, patient_sex=patient.sex)
    elif study.patient_sex != patient.sex:
        raise InvalidInputError(
            "study_path",
            study_path,
            f"the study's patient is {study.patient_sex}, {patient.trial_id} is {patient.sex}",
        )
    injected, infused = study.injection_datetime.date(), timezone.localdate(cycle.infusion_start)
    if abs((injected - infused).days) > STUDY_DATE_TOLERANCE_DAYS:
        raise InvalidInputError(
            "study_path",
            study_path,
            f"injection on {injected} in the study, cycle {cycle.number} given on {infused}",
        )
    result = ledger_cycle(compute_dosimetry(study, method="organ"), cycle.number)
    return {
        "left_kidney_gy": result.left_kidney.dose_gy,
        "right_kidney_gy": result.right_kidney.dose_gy,
        "kidney_effective_half_life_h": result.kidney_effective_half_life_h,
        "marrow_gy": result.marrow_dose_gy,
    }
