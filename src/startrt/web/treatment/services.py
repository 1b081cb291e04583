"""The treatment course, one transaction per action: the library decides (schedule, lab grades
and go/delay/stop, capecitabine dose, dosimetry, next-cycle plan); these functions check the
user's role at the patient's site, persist, store the decision and audit every change.

Edits name the version they were based on (`expected_version`) and are refused when the row
moved on since (StaleVersionError); refused input leaves nothing behind.

Course: the physicist accepts (or overrides) the planner's proposal, which creates the next
cycle as planned; pre-cycle labs give go/delay/stop; the investigator releases a cycle on a
'go'; the nurse records its administration; the physicist records its dosimetry, from which
the next proposal follows. A cancelled cycle ends the course.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from startrt.clinical.bsa import dubois_bsa_m2, mosteller_bsa_m2
from startrt.clinical.capecitabine import CapecitabineContraindicatedError, capecitabine_dose
from startrt.clinical.egfr import cockcroft_gault_crcl_ml_min
from startrt.clinical.sex import Sex
from startrt.dosimetry.ledger import DoseLedger
from startrt.protocol.cycle_labs import check_pre_cycle_labs
from startrt.protocol.cycle_planning import plan_next_cycle
from startrt.protocol.records import parse_record
from startrt.protocol.schedule import Schedule, build_schedule
from startrt.protocol.screening import PatientLabs
from startrt.validation import InvalidInputError
from startrt.web.treatment.changes import (
    require_activity_gbq,
    require_date,
    require_past_instant,
    treatment_arm,
)
from startrt.web.treatment.doses import checked_doses, computed_doses, dose_ledger, planner_cycles
from startrt.web.treatment.lab_grades import grade_labs, split_lab_values
from startrt.web.treatment.models import (
    CapecitabinePrescription,
    Cycle,
    Dispensing,
    DosimetryResult,
    LabPanel,
    PlanProposal,
)
from startrt.web.trial.changes import insert, locked, update
from startrt.web.trial.models import Patient, Role, Screening
from startrt.web.trial.permissions import require_role
from startrt.web.trial.services import ENTRY_ROLES, _protocol, _store_decision

BSA_FORMULAS = {"dubois": dubois_bsa_m2, "mosteller": mosteller_bsa_m2}


def _json_ready(data: Mapping[str, Any]) -> dict[str, Any]:
    """The data as the JSON column will return it (e.g. integer keys become strings)."""
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


def _require_planned(cycle: Cycle) -> None:
    if cycle.status != Cycle.Status.PLANNED:
        raise InvalidInputError("cycle", cycle.number, f"is {cycle.status}, not planned")


# --- schedule ------------------------------------------------------------------------------


def _administered_dates(patient: Patient) -> dict[int, date]:
    cycles = Cycle.objects.filter(patient=patient, status=Cycle.Status.ADMINISTERED)
    return {cycle.number: timezone.localdate(cycle.infusion_start) for cycle in cycles}


def _first_cycle_date(patient: Patient) -> date | None:
    """Cycle 1's planned date, else the screening record's planned start."""
    first = Cycle.objects.filter(patient=patient, number=1).first()
    if first is not None:
        return first.planned_date
    screening = Screening.objects.filter(patient=patient).first()
    start = None if screening is None else screening.record.get("planned_start_date")
    return None if start is None else date.fromisoformat(start)


def _schedule(
    patient: Patient, planned_cycles: int, first_cycle_date: date, administered: dict[int, date]
) -> Schedule:
    return build_schedule(
        _protocol().schedule,
        first_cycle_date=first_cycle_date,
        planned_cycles=planned_cycles,
        administered=administered,
        with_capecitabine=treatment_arm(patient).capecitabine,
    )


def schedule_for(patient: Patient) -> Schedule | None:
    """The visit calendar (library `build_schedule`) following the cycles given so far: the
    arm's fixed number of cycles, else the cycles planned so far; None before a first date."""
    first = _first_cycle_date(patient)
    if first is None:
        return None
    recorded = Cycle.objects.filter(patient=patient).exclude(status=Cycle.Status.CANCELLED)
    planned = treatment_arm(patient).fixed_cycles or max(recorded.count(), 1)
    return _schedule(patient, planned, first, _administered_dates(patient))


def target_date(patient: Patient, number: int) -> date:
    """The schedule's target date of cycle `number` (cycle 1: its planned date)."""
    first = _first_cycle_date(patient)
    if first is None:
        raise InvalidInputError(
            "planned_date", None, "cycle 1 needs a planned date (none in the screening record)"
        )
    schedule = _schedule(patient, number, first, _administered_dates(patient))
    return schedule.cycle(number).target_date


# --- cycles --------------------------------------------------------------------------------


@transaction.atomic
def reschedule_cycle(
    user: AbstractBaseUser, cycle: Cycle, *, planned_date: date, reason: str, expected_version: int
) -> Cycle:
    """Move a planned cycle (e.g. delayed on its labs); the delay counts against the protocol's
    maximum at the next lab check."""
    require_role(user, cycle.patient.site, Role.INVESTIGATOR)
    day = require_date("planned_date", planned_date)
    cycle = locked(cycle, expected_version, "cycle")
    _require_planned(cycle)
    _require_after_previous(cycle, "planned_date", day)
    update(user, cycle, cycle.patient, {"planned_date": day}, reason)
    return cycle


@transaction.atomic
def cancel_cycle(
    user: AbstractBaseUser, cycle: Cycle, *, reason: str, expected_version: int
) -> Cycle:
    """Cancel a planned cycle; the course ends with it (no further proposals)."""
    require_role(user, cycle.patient.site, Role.INVESTIGATOR)
    cycle = locked(cycle, expected_version, "cycle")
    _require_planned(cycle)
    update(user, cycle, cycle.patient, {"status": Cycle.Status.CANCELLED}, reason)
    return cycle


@transaction.atomic
def release_cycle(user: AbstractBaseUser, cycle: Cycle, *, expected_version: int) -> Cycle:
    """Release a planned cycle for administration on a 'go' of its latest pre-cycle labs."""
    require_role(user, cycle.patient.site, Role.INVESTIGATOR)
    cycle = locked(cycle, expected_version, "cycle")
    _require_planned(cycle)
    if cycle.released_by:
        raise InvalidInputError("cycle", cycle.number, f"was released by {cycle.released_by}")
    panel = cycle.lab_panels.order_by("drawn_at", "id").last()
    if panel is None or panel.decision["action"] != "go":
        action = None if panel is None else panel.decision["action"]
        raise InvalidInputError(
            "labs", action, f"cycle {cycle.number} is released only on a 'go' of its labs"
        )
    changes = {"released_by": user.get_username(), "released_at": timezone.now()}
    reason = f"release of cycle {cycle.number} on the 'go' of lab panel {panel.pk}"
    update(user, cycle, cycle.patient, changes, reason)
    return cycle


@transaction.atomic
def record_administration(
    user: AbstractBaseUser,
    cycle: Cycle,
    *,
    activity_gbq: float,
    lot: str,
    infusion_start: datetime,
    infusion_end: datetime,
    expected_version: int,
    reason: str = "",
) -> Cycle:
    """Record the administration of a released cycle (activity 0-15 GBq, lot, infusion start
    and end), or correct a recorded one with a reason."""
    require_role(user, cycle.patient.site, *ENTRY_ROLES)
    activity = require_activity_gbq("activity_gbq", activity_gbq)
    lot = lot.strip() if isinstance(lot, str) else ""
    if not 0 < len(lot) <= Cycle._meta.get_field("lot").max_length:
        raise InvalidInputError("lot", lot, "must be given, at most 64 characters")
    start = require_past_instant("infusion_start", infusion_start)
    end = require_past_instant("infusion_end", infusion_end)
    if end <= start:
        raise InvalidInputError("infusion_end", end.isoformat(), "must be after infusion_start")
    cycle = locked(cycle, expected_version, "cycle")
    if cycle.status != Cycle.Status.ADMINISTERED:  # a first entry, not a correction
        _require_planned(cycle)
        if not cycle.released_by:
            raise InvalidInputError("cycle", cycle.number, "is not released for administration")
        reason = f"administration of cycle {cycle.number}"
    _require_in_sequence(cycle, timezone.localdate(start))
    changes = {
        "status": Cycle.Status.ADMINISTERED,
        "administered_activity_gbq": activity,
        "lot": lot,
        "infusion_start": start,
        "infusion_end": end,
    }
    update(user, cycle, cycle.patient, changes, reason)
    return cycle


def _require_after_previous(cycle: Cycle, field: str, day: date) -> None:
    previous = _administered_dates(cycle.patient).get(cycle.number - 1)
    if previous is not None and day <= previous:
        raise InvalidInputError(
            field, day.isoformat(), f"must be after cycle {cycle.number - 1} (given {previous})"
        )


def _require_in_sequence(cycle: Cycle, day: date) -> None:
    """The administered dates with this one stay in cycle order (library schedule rules)."""
    given = {**_administered_dates(cycle.patient), cycle.number: day}
    try:
        _schedule(cycle.patient, max(given), min(given.values()), given)
    except InvalidInputError as error:
        raise InvalidInputError("infusion_start", day.isoformat(), error.rule) from None


# --- pre-cycle labs ------------------------------------------------------------------------


def _weeks_delayed(cycle: Cycle | None) -> float:
    """How far the cycle was moved past its schedule target, in weeks (never negative)."""
    if cycle is None:
        return 0.0
    days = (cycle.planned_date - target_date(cycle.patient, cycle.number)).days
    return max(days, 0) / 7


@transaction.atomic
def record_labs(
    user: AbstractBaseUser,
    patient: Patient,
    values: dict[str, Any],
    *,
    drawn_at: datetime,
    cycle: Cycle | None = None,
) -> LabPanel:
    """Store a lab panel (PatientLabs fields; LLN/ULN as `<field>_lln` / `<field>_uln`) with its
    CTCAE grades and the pre-cycle decision go/delay/stop/incomplete, for a planned cycle with
    the weeks it was delayed."""
    require_role(user, patient.site, *ENTRY_ROLES)
    drawn = require_past_instant("drawn_at", drawn_at)
    if cycle is not None:
        if cycle.patient_id != patient.pk:
            raise InvalidInputError("cycle", cycle.pk, f"is not a cycle of {patient.trial_id}")
        _require_planned(cycle)
    lab_values, limits = split_lab_values(values)
    labs = parse_record(PatientLabs, {**lab_values, "sex": patient.sex}, "labs")
    screening = Screening.objects.filter(patient=patient).first()
    grades = grade_labs(labs, limits, {} if screening is None else screening.record)
    decision = check_pre_cycle_labs(labs, _protocol(), weeks_delayed=_weeks_delayed(cycle))
    panel = LabPanel(
        patient=patient,
        cycle=cycle,
        drawn_at=drawn,
        values={**labs.model_dump(mode="json", exclude_none=True), **limits},
        grades=_json_ready(grades),
        decision=decision.model_dump(mode="json"),
        entered_by=user.get_username(),
    )
    insert(user, panel, patient)
    _store_decision(user, patient, decision)
    return panel


# --- capecitabine --------------------------------------------------------------------------


@transaction.atomic
def prescribe_capecitabine(
    user: AbstractBaseUser,
    cycle: Cycle,
    *,
    weight_kg: float,
    height_cm: float,
    age_years: float,
    creatinine_umol_l: float,
    dose_level_percent: int = 100,
) -> CapecitabinePrescription:
    """Capecitabine with one of the first cycles of an arm that gives it: BSA by the protocol's
    formula, Cockcroft-Gault CrCl, dose in whole tablets (library `capecitabine_dose`)."""
    patient = cycle.patient
    require_role(user, patient.site, Role.PHARMACIST, Role.INVESTIGATOR)
    protocol = _protocol()
    arm = treatment_arm(patient)
    if not arm.capecitabine:
        raise InvalidInputError("patient", patient.trial_id, f"arm {arm.id} gives no capecitabine")
    courses = protocol.schedule.capecitabine_prrt_cycles
    if cycle.number > courses:
        raise InvalidInputError("cycle", cycle.number, f"capecitabine in cycles 1-{courses} only")
    if cycle.status == Cycle.Status.CANCELLED:
        raise InvalidInputError("cycle", cycle.number, "is cancelled")
    if CapecitabinePrescription.objects.filter(cycle=cycle).exists():
        raise InvalidInputError("cycle", cycle.number, "already has a capecitabine prescription")
    options = protocol.capecitabine
    bsa_m2 = BSA_FORMULAS[options.bsa_formula](height_cm, weight_kg)
    crcl = cockcroft_gault_crcl_ml_min(Sex(patient.sex), age_years, weight_kg, creatinine_umol_l)
    try:
        dose = capecitabine_dose(
            bsa_m2,
            options.dose_mg_per_m2,
            crcl_ml_min=crcl,
            reduce_for_moderate_renal_impairment=options.reduce_for_moderate_renal_impairment,
            dose_level_percent=dose_level_percent,
        )
    except CapecitabineContraindicatedError as error:
        raise InvalidInputError("crcl_ml_min", round(crcl, 1), error.reason) from None
    inputs = {
        "weight_kg": weight_kg,
        "height_cm": height_cm,
        "age_years": age_years,
        "creatinine_umol_l": creatinine_umol_l,
        "crcl_ml_min": crcl,
        "bsa_formula": options.bsa_formula,
        "days": protocol.schedule.capecitabine_days,
        "protocol": protocol.label,
    }
    prescription = CapecitabinePrescription(
        patient=patient,
        cycle=cycle,
        dose=_json_ready({**dataclasses.asdict(dose), "inputs": inputs}),
        prescribed_by=user.get_username(),
    )
    insert(user, prescription, patient)
    return prescription


def prescribed_tablets(prescription: CapecitabinePrescription) -> dict[int, int]:
    """Tablets of each strength (mg) for the whole course: (morning + evening) x days."""
    dose = prescription.dose
    days: int = dose["inputs"]["days"]
    return {
        int(strength): (count + dose["tablets_evening"][strength]) * days
        for strength, count in dose["tablets_morning"].items()
    }


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
    for strength, count in counts.items():
        given = sum(row[f"tablets_{strength}"] for row in prescription.dispensings.values())
        if given + count > prescribed[strength]:
            raise InvalidInputError(
                f"tablets_{strength}",
                count,
                f"the course prescribes {prescribed[strength]} x {strength} mg, "
                f"{given} already dispensed",
            )
    dispensing = Dispensing(
        prescription=prescription,
        tablets_500=tablets_500,
        tablets_150=tablets_150,
        dispensed_by=user.get_username(),
    )
    insert(user, dispensing, patient)
    return dispensing


# --- dosimetry -----------------------------------------------------------------------------


def cumulative_kidney_doses(patient: Patient) -> list[tuple[int, float]]:
    """(cycle, cumulative absorbed dose in Gy of the kidney the protocol's limit names), for
    the cycles with dosimetry; the limit is `protocol.renal_limit.limit_gy`."""
    ledger, _ = dose_ledger(patient)
    kidney = _protocol().renal_limit.kidney
    return [
        (cycle.cycle, DoseLedger(ledger.cycles[: index + 1]).cumulative_gy(kidney))
        for index, cycle in enumerate(ledger.cycles)
    ]


def _require_administered(cycle: Cycle) -> None:
    if cycle.status != Cycle.Status.ADMINISTERED:
        raise InvalidInputError("cycle", cycle.number, "dosimetry follows an administered cycle")


@transaction.atomic
def record_dosimetry(
    user: AbstractBaseUser,
    cycle: Cycle,
    *,
    left_kidney_gy: float | None = None,
    right_kidney_gy: float | None = None,
    kidney_effective_half_life_h: float | None = None,
    marrow_gy: float | None = None,
    study_path: str = "",
    reason: str = "",
    expected_version: int | None = None,
) -> DosimetryResult:
    """The doses of an administered cycle, entered or computed from a study folder under
    DATA_DIR/studies (load_study + compute_dosimetry, organ method); replacing earlier ones
    needs their version and a reason."""
    patient = cycle.patient
    require_role(user, patient.site, Role.PHYSICIST)
    _require_administered(cycle)
    entered = {
        "left_kidney_gy": left_kidney_gy,
        "right_kidney_gy": right_kidney_gy,
        "kidney_effective_half_life_h": kidney_effective_half_life_h,
        "marrow_gy": marrow_gy,
    }
    if study_path and any(value is not None for value in entered.values()):
        raise InvalidInputError("study_path", study_path, "give the doses or a study, not both")
    doses = computed_doses(patient, cycle, study_path) if study_path else entered
    values = {
        **checked_doses(cycle, doses),
        "source": DosimetryResult.Source.COMPUTED if study_path else DosimetryResult.Source.ENTERED,
        "study_path": study_path,
        "entered_by": user.get_username(),
    }
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)  # after the computation
    _require_administered(cycle)
    existing = DosimetryResult.objects.filter(cycle=cycle).first()
    if existing is None:
        result = DosimetryResult(patient=patient, cycle=cycle, **values)
        insert(user, result, patient)
        return result
    if expected_version is None:
        raise InvalidInputError("expected_version", None, "replacing dosimetry names its version")
    result = locked(existing, expected_version, "dosimetry result")
    update(user, result, patient, values, reason)
    return result


# --- next-cycle plan -----------------------------------------------------------------------


def _require_course_open(patient: Patient) -> None:
    """Every cycle so far administered: none waiting, none cancelled (which ends the course)."""
    pending = Cycle.objects.filter(patient=patient).exclude(status=Cycle.Status.ADMINISTERED)
    cycle = pending.order_by("number").first()
    if cycle is not None:
        rule = (
            "the course ended with it"
            if cycle.status == Cycle.Status.CANCELLED
            else "give or cancel it before planning the next"
        )
        raise InvalidInputError("cycle", cycle.number, f"is {cycle.status}: {rule}")


@transaction.atomic
def propose_next_cycle(user: AbstractBaseUser, patient: Patient) -> PlanProposal:
    """The planner's proposal for the next cycle from the dose ledger (library
    `plan_next_cycle` with the patient's arm), stored with its decision."""
    require_role(user, patient.site, Role.PHYSICIST, Role.INVESTIGATOR)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    arm = treatment_arm(patient)
    _require_course_open(patient)
    plan = plan_next_cycle(arm.id, planner_cycles(patient), _protocol())
    proposal = PlanProposal(
        patient=patient,
        for_cycle=plan.next_cycle,
        plan=plan.model_dump(mode="json"),
        proposed_by=user.get_username(),
    )
    insert(user, proposal, patient)
    _store_decision(user, patient, plan)
    return proposal


def _open_proposal(proposal: PlanProposal, expected_version: int) -> PlanProposal:
    """The proposal, locked, if it may still be decided: undecided, the patient's latest, and
    made on the cycles and doses recorded now."""
    patient = Patient.objects.select_for_update().get(pk=proposal.patient_id)
    proposal = locked(proposal, expected_version, "proposal")
    if proposal.status != PlanProposal.Status.PROPOSED:
        raise InvalidInputError(
            "proposal", proposal.pk, f"was {proposal.status} by {proposal.decided_by}"
        )
    if patient.plan_proposals.latest("id").pk != proposal.pk:
        raise InvalidInputError("proposal", proposal.pk, "a newer proposal exists: decide on it")
    _require_course_open(patient)
    cycles = [cycle.model_dump(mode="json") for cycle in planner_cycles(patient)]
    if _json_ready({"cycles": cycles}) != {"cycles": proposal.plan["inputs"]["cycles"]}:
        raise InvalidInputError(
            "proposal", proposal.pk, "the cycles or doses changed since: propose again"
        )
    return proposal


def _plan_cycle(
    user: AbstractBaseUser, proposal: PlanProposal, activity_gbq: float, planned_date: date | None
) -> Cycle:
    """The decided cycle, planned on `planned_date` or else its schedule target."""
    patient = proposal.patient
    if planned_date is None:
        day = target_date(patient, proposal.for_cycle)
    else:
        day = require_date("planned_date", planned_date)
    cycle = Cycle(
        patient=patient,
        number=proposal.for_cycle,
        planned_date=day,
        planned_activity_gbq=activity_gbq,
    )
    _require_after_previous(cycle, "planned_date", day)
    insert(user, cycle, patient)
    return cycle


@transaction.atomic
def accept_proposal(
    user: AbstractBaseUser,
    proposal: PlanProposal,
    *,
    expected_version: int,
    planned_date: date | None = None,
) -> PlanProposal:
    """The physicist accepts the plan: its cycle is planned with the proposed activity (on
    `planned_date`, default the schedule's target); a 'stop' plans none."""
    require_role(user, proposal.patient.site, Role.PHYSICIST)
    proposal = _open_proposal(proposal, expected_version)
    plan = proposal.plan
    changes = {
        "status": PlanProposal.Status.ACCEPTED,
        "decided_by": user.get_username(),
        "decided_at": timezone.now(),
    }
    reason = f"plan accepted: {plan['action']} {plan['activity_gbq']:g} GBq"
    update(user, proposal, proposal.patient, changes, reason)
    if plan["action"] != "stop":
        _plan_cycle(user, proposal, plan["activity_gbq"], planned_date)
    return proposal


@transaction.atomic
def override_proposal(
    user: AbstractBaseUser,
    proposal: PlanProposal,
    *,
    reason: str,
    activity_gbq: float,
    expected_version: int,
    planned_date: date | None = None,
) -> PlanProposal:
    """The physicist overrides the plan with another activity (0-15 GBq) and a reason; the
    cycle is planned with that activity."""
    require_role(user, proposal.patient.site, Role.PHYSICIST)
    activity = require_activity_gbq("activity_gbq", activity_gbq)
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("reason", reason, "an override needs a reason")
    proposal = _open_proposal(proposal, expected_version)
    changes = {
        "status": PlanProposal.Status.OVERRIDDEN,
        "decided_by": user.get_username(),
        "decided_at": timezone.now(),
        "reason": reason.strip(),
        "override_activity_gbq": activity,
    }
    update(user, proposal, proposal.patient, changes, reason.strip())
    _plan_cycle(user, proposal, activity, planned_date)
    return proposal
