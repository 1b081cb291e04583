"""The doses the planner reads: the patient's course (`protocol.course`) from the stored
dosimetry, the administered cycles as `CycleDose`s, and dosimetry checked or computed from a
study folder."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.study import load_study
from startrt.protocol.course import Course, CycleDose
from startrt.protocol.course_dosimetry import cycle_dose
from startrt.protocol.records import parse_record
from startrt.validation import InvalidInputError
from startrt.web.treatment.changes import json_ready
from startrt.web.treatment.models import Cycle, DosimetryResult, PlanProposal
from startrt.web.trial import audit
from startrt.web.trial.models import Patient

logger = logging.getLogger(__name__)
# the course model's fields a DosimetryResult stores under the same names
DOSE_FIELDS = (
    "left_kidney_dose_gy",
    "right_kidney_dose_gy",
    "kidney_effective_half_life_h",
    "marrow_dose_gy",
    "left_kidney_dose_sd_gy",
    "right_kidney_dose_sd_gy",
    "kidney_dose_sd_systematic_share",
)
STUDY_DATE_TOLERANCE_DAYS = 1  # DICOM times are local, infusion times UTC


def course_of(patient: Patient) -> tuple[Course, list[Cycle]]:
    """The administered cycles, and the course of their doses from cycle 1 up to the first
    cycle without dosimetry."""
    cycles = list(
        Cycle.objects.filter(patient=patient, status=Cycle.Status.ADMINISTERED).order_by("number")
    )
    results = {result.cycle_id: result for result in patient.dosimetry_results.all()}
    return measured_course(cycles, results), cycles


def measured_course(cycles: list[Cycle], results: Mapping[int, DosimetryResult]) -> Course:
    """The course of the administered `cycles` (in cycle order) from cycle 1 up to the first
    without a result in `results` (by cycle id)."""
    measured = []
    for cycle in cycles:
        result = results.get(cycle.pk)
        if result is None:
            break
        measured.append(cycle_doses(cycle, result))
    return Course(tuple(measured))


def cycle_doses(cycle: Cycle, result: DosimetryResult) -> CycleDose:
    """An administered cycle's doses as the course model holds them."""
    return CycleDose(
        activity_gbq=cycle.administered_activity_gbq,
        **{name: getattr(result, name) for name in DOSE_FIELDS},
    )


def planner_cycles(patient: Patient) -> tuple[CycleDose, ...]:
    """The administered cycles as the planner reads them; doses where dosimetry exists."""
    course, cycles = course_of(patient)
    unmeasured = [
        CycleDose(activity_gbq=cycle.administered_activity_gbq) for cycle in cycles[len(course) :]
    ]
    return (*course.cycles, *unmeasured)


def planner_inputs(patient: Patient) -> dict[str, Any]:
    """The cycles the planner would read now, as a proposal stores them (`plan.inputs`)."""
    cycles = [cycle.model_dump(mode="json") for cycle in planner_cycles(patient)]
    return json_ready({"cycles": cycles})


def made_on(proposal: PlanProposal, inputs: dict[str, Any]) -> bool:
    """Whether the proposal was computed from these planner inputs (`planner_inputs`)."""
    return inputs == {"cycles": proposal.plan["inputs"]["cycles"]}


def deciding_proposal(cycle: Cycle) -> PlanProposal | None:
    """The accepted or overridden proposal that planned the cycle (None for a cycle made
    another way)."""
    proposals = cycle.patient.plan_proposals.filter(
        for_cycle=cycle.number, status__in=PlanProposal.DECIDED
    )
    return proposals.order_by("-id").first()


def plan_outdated(cycle: Cycle) -> bool:
    """A planned cycle whose plan read doses or activities that were corrected since."""
    if cycle.status != Cycle.Status.PLANNED:
        return False
    proposal = deciding_proposal(cycle)
    return proposal is not None and not made_on(proposal, planner_inputs(cycle.patient))


def checked_doses(cycle: Cycle, doses: dict[str, float | None]) -> dict[str, float | None]:
    """Both kidney doses required; every value within the planner's plausible ranges."""
    for field in ("left_kidney_dose_gy", "right_kidney_dose_gy"):
        if doses[field] is None:
            raise InvalidInputError(field, None, "required")
    planner = {name: doses[name] for name in DOSE_FIELDS}
    parse_record(
        CycleDose, {"activity_gbq": cycle.administered_activity_gbq, **planner}, "dosimetry"
    )
    return doses


def studies_root() -> Path:
    """The folder holding the dosimetry studies: DATA_DIR/studies."""
    return (Path(settings.DATA_DIR) / "studies").resolve()


def computed_doses(
    patient: Patient, cycle: Cycle, study_path: str, *, patient_confirmed: bool = False
) -> dict[str, float | None]:
    """Kidney (and marrow) doses of the study folder, by the organ S-value method, and its
    number of imaging sessions (time points). The study is the patient's if its PatientID is
    the trial pseudonym (as an uploaded study is once de-identified), or if the user confirmed
    it (`patient_confirmed`, recorded by `record_patient_confirmation`); its sex and injection
    day must agree with the patient's and the cycle's either way."""
    root = studies_root()
    folder = root / study_path
    if "\x00" in study_path or not folder.resolve().is_relative_to(root) or not folder.is_dir():
        raise InvalidInputError("study_path", study_path, "must be a study folder under studies/")
    with _reading(study_path, root):
        study = load_study(folder.resolve())
    if study.patient_id != patient.trial_id and not patient_confirmed:
        raise InvalidInputError(
            "study_path",
            study_path,
            f"the study's PatientID is not {patient.trial_id}: confirm that this study belongs "
            f"to {patient.trial_id}",
        )
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
    with _reading(study_path, root):
        doses = cycle_dose(compute_dosimetry(study, method="organ"))
    return {
        **{name: getattr(doses, name) for name in DOSE_FIELDS},
        "imaging_sessions": len(study.time_points),
    }


def record_patient_confirmation(user: AbstractBaseUser, result: DosimetryResult) -> None:
    """Audit that `user` confirmed the computed study belongs to the patient (call inside the
    transaction that stored `result`)."""
    trial_id = result.patient.trial_id
    audit.record(
        user,
        "update",
        result,
        old={"study_path": result.study_path, "study_patient_confirmed": False},
        new={"study_path": result.study_path, "study_patient_confirmed": True},
        reason=f"the uploader confirmed that this study belongs to {trial_id}",
        patient_trial_id=trial_id,
    )


def reading_study(study_path: str) -> AbstractContextManager[None]:
    """Errors reading the study folder `study_path` as refusals of it (see `_reading`)."""
    return _reading(study_path, studies_root())


@contextmanager
def _reading(study_path: str, root: Path) -> Iterator[None]:
    """Refusals of the study's files as refusals of `study_path`, naming the file relative to
    the studies folder. The files come from users: any other error reading them is logged and
    refused the same way rather than answered as a server error."""
    try:
        yield
    except InvalidInputError as error:
        rule = f"{error.field}={error.value!r}: {error.rule}"
        raise InvalidInputError("study_path", study_path, rule.replace(f"{root}/", "")) from None
    except Exception as error:
        logger.exception("study %s could not be read", study_path)
        rule = f"could not be read as a study ({type(error).__name__}: {error})"
        raise InvalidInputError("study_path", study_path, rule.replace(f"{root}/", "")) from None
