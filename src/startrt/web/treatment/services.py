"""The treatment course, one transaction per action: the library decides (schedule and windows,
lab grades and go/delay/stop, dosimetry, next-cycle plan); these functions check the user's
role at the patient's site, persist, store the decision and audit every change (capecitabine:
`treatment.capecitabine`; a study upload: `treatment.study_upload`).

Edits name the version they were based on (`expected_version`) and are refused when the row
moved on since (StaleVersionError); refused input leaves nothing behind.

Course: the physicist accepts (or overrides) the planner's proposal, which creates the next
cycle as planned; pre-cycle labs give go/delay/stop; the investigator releases a cycle on a
'go', signing the release with the password; the nurse records its administration; the
physicist records its dosimetry, from which the next proposal follows. A cancelled cycle ends
the course.

- A signed release locks the cycle's plan (date, activity, cancellation, re-planning) until the
  signature is unlocked with a reason; the administration the release authorizes is recorded
  (and corrected) on the locked cycle. A change of plan after the unlock withdraws the release:
  the cycle is released again, signed again.
- Rescheduling needs a reason and is checked against the cycle's protocol window (library
  `cycle_window_check`; cycle 1's window is around the screening record's planned start): a
  date outside is refused unless confirmed as a deviation (`accept_deviation`), recorded with
  the library's message and the audited reason.
- A physicist's override is checked by the library (`check_planned_activity`): an activity
  above the proposal, past a dose limit or unchecked for want of dosimetry is a protocol
  deviation, which the investigator signs with the password (`sign_deviation`) before the
  cycle is released or given. Deviations (`models.Deviation`, one per cycle and cause) are
  withdrawn with a reason when they no longer apply (moved back into the window, re-planned,
  cancelled), never deleted.
- Corrections (administration after first entry, dosimetry) need a reason and the version.
  What depends on the corrected values is re-derived: the cumulative kidney dose is computed
  from the stored rows; an undecided proposal made from the old values is marked superseded
  (ask the planner again); a planned cycle whose accepted plan read the old values is neither
  released nor given until the planner is asked again, and that proposal's decision re-plans it.
- The concomitant medications are checked again (`medications.services.reassess`) whenever a
  cycle's day is set, moved or cancelled: the prohibited-therapy rule reads the first cycle's
  day.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from startrt.protocol.course import Course
from startrt.protocol.cycle_labs import check_pre_cycle_labs
from startrt.protocol.cycle_planning import CyclePlan, plan_next_cycle
from startrt.protocol.overrides import DeviationKind, check_planned_activity
from startrt.protocol.records import parse_record
from startrt.protocol.schedule import Schedule, WindowCheck, build_schedule, cycle_window_check
from startrt.protocol.screening import PatientLabs
from startrt.validation import InvalidInputError, clean_text
from startrt.web.medications.services import reassess as reassess_medications
from startrt.web.signing import services as signing
from startrt.web.signing.models import Meaning
from startrt.web.treatment.changes import (
    json_ready,
    optional_imaging_sessions,
    optional_inpatient_days,
    require_activity_gbq,
    require_date,
    treatment_arm,
)
from startrt.web.treatment.doses import (
    checked_doses,
    computed_doses,
    course_of,
    made_on,
    plan_outdated,
    planner_cycles,
    planner_inputs,
    record_patient_confirmation,
)
from startrt.web.treatment.lab_grades import grade_labs, patient_values, split_lab_values
from startrt.web.treatment.models import (
    Cycle,
    Deviation,
    DosimetryResult,
    LabPanel,
    PlanProposal,
)
from startrt.web.trial import dates
from startrt.web.trial.changes import insert, locked, require_reason, update
from startrt.web.trial.models import Patient, Role, Screening
from startrt.web.trial.permissions import require_role
from startrt.web.trial.services import ENTRY_ROLES, current_protocol, store_decision

PLANNING_HORIZON_DAYS = 366  # software setting: a planned date further from the target is a typo


def _require_planned(cycle: Cycle) -> None:
    if cycle.status != Cycle.Status.PLANNED:
        raise InvalidInputError("cycle", cycle.number, f"is {cycle.status}, not planned")


def _require_unlocked(cycle: Cycle) -> None:
    """Refuse a change of plan of a cycle whose release is signed (RecordLockedError)."""
    signing.ensure_unlocked(signing.kind_of(cycle), cycle.pk)


def release_locked(cycle: Cycle) -> bool:
    """Whether the cycle carries an active release signature."""
    return signing.is_locked(signing.kind_of(cycle), cycle.pk)


def _withdrawn_release(cycle: Cycle) -> dict[str, Any]:
    """The changes that withdraw a release (none if the cycle was not released)."""
    return {"released_by": "", "released_at": None} if cycle.released_by else {}


def _require_plan_current(cycle: Cycle) -> None:
    if plan_outdated(cycle):
        raise InvalidInputError(
            "cycle",
            cycle.number,
            "was planned on doses or activities corrected since: ask the planner again "
            "(the decision on its proposal re-plans this cycle)",
        )


# --- schedule ------------------------------------------------------------------------------


def _administered_dates(patient: Patient) -> dict[int, date]:
    cycles = Cycle.objects.filter(patient=patient, status=Cycle.Status.ADMINISTERED)
    return {cycle.number: timezone.localdate(cycle.infusion_start) for cycle in cycles}


def _screening_start(patient: Patient) -> date | None:
    """The screening record's planned start of treatment, if recorded."""
    screening = Screening.objects.filter(patient=patient).first()
    start = None if screening is None else screening.record.get("planned_start_date")
    return None if start is None else date.fromisoformat(start)


def _first_cycle_date(patient: Patient) -> date | None:
    """Cycle 1's planned date, else the screening record's planned start."""
    first = Cycle.objects.filter(patient=patient, number=1).first()
    return _screening_start(patient) if first is None else first.planned_date


def _schedule(
    patient: Patient, planned_cycles: int, first_cycle_date: date, administered: dict[int, date]
) -> Schedule:
    return build_schedule(
        current_protocol().schedule,
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


def window_check(cycle: Cycle, day: date) -> WindowCheck | None:
    """`day` against the cycle's protocol window (library `cycle_window_check`): cycle n > 1
    around cycle n-1's administration + the interval; cycle 1 around the screening record's
    planned start (None, no window, when the record has none)."""
    patient = cycle.patient
    first = _screening_start(patient) if cycle.number == 1 else _first_cycle_date(patient)
    if first is None:
        return None
    schedule = _schedule(patient, cycle.number, first, _administered_dates(patient))
    return cycle_window_check(schedule, cycle.number, day)


# --- cycles --------------------------------------------------------------------------------


@transaction.atomic
def reschedule_cycle(
    user: AbstractBaseUser,
    cycle: Cycle,
    *,
    planned_date: date,
    reason: str,
    expected_version: int,
    accept_deviation: bool = False,
) -> Cycle:
    """Move a planned cycle (e.g. delayed on its labs), with a reason; outside the protocol
    window only as a confirmed deviation. The delay counts against the protocol's maximum at
    the next lab check; a released cycle (once unlocked) is released again."""
    require_role(user, cycle.patient.site, Role.INVESTIGATOR)
    day = require_date("planned_date", planned_date)
    reason = require_reason(reason, "a reschedule needs a reason")
    if not isinstance(accept_deviation, bool):
        raise InvalidInputError("accept_deviation", accept_deviation, "must be true or false")
    cycle = locked(cycle, expected_version, "cycle")
    _require_planned(cycle)
    _require_unlocked(cycle)
    _require_plannable(cycle, day)
    check = window_check(cycle, day)
    outside = None if check is None or check.within else check.message
    if outside is not None and not accept_deviation:
        raise InvalidInputError(
            "planned_date",
            day.isoformat(),
            f"{outside} Outside the protocol window: choose a date in the window "
            "or confirm a protocol deviation (accept_deviation) with its reason",
        )
    changes = {"planned_date": day, **_withdrawn_release(cycle)}
    update(user, cycle, cycle.patient, changes, reason)
    moved = f"cycle {cycle.number} moved to {day.isoformat()}: {reason}"
    withdraw_deviations(user, cycle, moved, DeviationKind.WINDOW)
    if outside is not None:
        record_deviation(user, cycle, DeviationKind.WINDOW, outside, reason)
    reassess_medications(user, cycle.patient)
    return cycle


@transaction.atomic
def cancel_cycle(
    user: AbstractBaseUser, cycle: Cycle, *, reason: str, expected_version: int
) -> Cycle:
    """Cancel a planned cycle, with a reason; the course ends with it (no further proposals)."""
    require_role(user, cycle.patient.site, Role.INVESTIGATOR)
    reason = require_reason(reason, "a cancellation needs a reason")
    cycle = locked(cycle, expected_version, "cycle")
    _require_planned(cycle)
    _require_unlocked(cycle)
    update(user, cycle, cycle.patient, {"status": Cycle.Status.CANCELLED}, reason)
    withdraw_deviations(user, cycle, f"cycle {cycle.number} cancelled: {reason}")
    reassess_medications(user, cycle.patient)
    return cycle


def release_cycle(
    request: HttpRequest,
    cycle: Cycle,
    *,
    password: str,
    expected_version: int,
    signing_token: str = "",
) -> Cycle:
    """Release a planned cycle for administration on a 'go' of its latest pre-cycle labs,
    signed by the investigator's password (meaning: responsibility); the signature locks the
    cycle's plan. Runs outside a transaction (a wrong password is counted even so)."""
    signing.sign_action(
        request,
        password,
        Meaning.RESPONSIBILITY,
        lambda: _release(request.user, cycle, expected_version),
        signing_token=signing_token,
    )
    return Cycle.objects.get(pk=cycle.pk)


@transaction.atomic
def _release(user: AbstractBaseUser, cycle: Cycle, expected_version: int) -> Cycle:
    require_role(user, cycle.patient.site, Role.INVESTIGATOR)
    cycle = locked(cycle, expected_version, "cycle")
    _require_planned(cycle)
    if cycle.released_by:
        raise InvalidInputError("cycle", cycle.number, f"was released by {cycle.released_by}")
    _require_plan_current(cycle)
    _require_deviations_signed(cycle)
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


def unlock_release(
    request: HttpRequest, cycle: Cycle, *, password: str, reason: str, signing_token: str = ""
) -> Cycle:
    """End the release signature's lock on the cycle (the signer or an investigator at the
    site; password and reason; audited), so its plan may change."""
    signing.unlock_record(
        request, password, signing.kind_of(cycle), cycle.pk, reason, signing_token=signing_token
    )
    return Cycle.objects.get(pk=cycle.pk)


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
    inpatient_days: float | None = None,
    reason: str = "",
) -> Cycle:
    """Record the administration of a released cycle (activity 0-15 GBq, lot, infusion start
    and end, days in hospital 0-60), or correct a recorded one with a reason."""
    require_role(user, cycle.patient.site, *ENTRY_ROLES)
    activity = require_activity_gbq("activity_gbq", activity_gbq)
    lot = clean_text("lot", lot, max_length=Cycle._meta.get_field("lot").max_length or 64)
    start, end = dates.check_infusion(infusion_start, infusion_end)
    days = optional_inpatient_days(inpatient_days)
    cycle = locked(cycle, expected_version, "cycle")
    correction = cycle.status == Cycle.Status.ADMINISTERED
    if correction:
        reason = require_reason(reason, "a correction of an administration needs a reason")
    else:
        _require_planned(cycle)
        if not cycle.released_by:
            raise InvalidInputError("cycle", cycle.number, "is not released for administration")
        _require_plan_current(cycle)
        _require_deviations_signed(cycle)
        reason = f"administration of cycle {cycle.number}"
    _require_in_sequence(cycle, timezone.localdate(start))
    changes = {
        "status": Cycle.Status.ADMINISTERED,
        "administered_activity_gbq": activity,
        "lot": lot,
        "infusion_start": start,
        "infusion_end": end,
        "inpatient_days": days,
    }
    update(user, cycle, cycle.patient, changes, reason)
    if correction:
        _supersede_stale_proposals(
            user, cycle.patient, f"administration of cycle {cycle.number} corrected: {reason}"
        )
    reassess_medications(user, cycle.patient)
    return cycle


def _require_after_previous(cycle: Cycle, field: str, day: date) -> None:
    previous = _administered_dates(cycle.patient).get(cycle.number - 1)
    if previous is not None and day <= previous:
        raise InvalidInputError(
            field, day.isoformat(), f"must be after cycle {cycle.number - 1} (given {previous})"
        )


def _require_plannable(cycle: Cycle, day: date) -> None:
    """A planned date after the previous cycle and within PLANNING_HORIZON_DAYS of the
    schedule's target (a plausibility limit: a typing error in the year is refused), and in
    the window of `trial.dates.check_planned_date` even without a target."""
    dates.check_planned_date("planned_date", day)
    _require_after_previous(cycle, "planned_date", day)
    if _first_cycle_date(cycle.patient) is None:
        return
    target = target_date(cycle.patient, cycle.number)
    if abs((day - target).days) > PLANNING_HORIZON_DAYS:
        raise InvalidInputError(
            "planned_date",
            day.isoformat(),
            f"must lie within {PLANNING_HORIZON_DAYS} days of the target {target.isoformat()}",
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
    the weeks it was delayed. The patient's sex and age on the draw date are added for the
    eGFR; the decision's inputs hold the GFR it used and how it was obtained."""
    require_role(user, patient.site, *ENTRY_ROLES)
    drawn = dates.check_lab_draw(drawn_at)
    if cycle is not None:
        if cycle.patient_id != patient.pk:
            raise InvalidInputError("cycle", cycle.pk, f"is not a cycle of {patient.trial_id}")
        _require_planned(cycle)
    lab_values, limits = split_lab_values(values)
    screening = Screening.objects.filter(patient=patient).first()
    record = {} if screening is None else screening.record
    own = patient_values(patient.sex, record, drawn.date())
    labs = parse_record(PatientLabs, {**lab_values, **own}, "labs")
    grades = grade_labs(labs, limits, record)
    decision = check_pre_cycle_labs(labs, current_protocol(), weeks_delayed=_weeks_delayed(cycle))
    panel = LabPanel(
        patient=patient,
        cycle=cycle,
        drawn_at=drawn,
        values={**labs.model_dump(mode="json", exclude_none=True), **limits},
        grades=json_ready(grades),
        decision=decision.model_dump(mode="json"),
        entered_by=user.get_username(),
    )
    insert(user, panel, patient)
    store_decision(user, patient, decision)
    return panel


# --- dosimetry -----------------------------------------------------------------------------


def cumulative_kidney_doses(patient: Patient) -> list[tuple[int, float]]:
    """(cycle, cumulative absorbed dose in Gy of the kidney the protocol's limit names), for
    the cycles with dosimetry; the limit is `protocol.renal_limit.limit_gy`."""
    course, _ = course_of(patient)
    kidney = current_protocol().renal_limit.kidney
    totals = [
        Course(course.cycles[:number]).cumulative_gy(kidney) for number in range(1, len(course) + 1)
    ]
    return [(number, total) for number, total in enumerate(totals, start=1) if total is not None]


def require_administered(cycle: Cycle) -> None:
    if cycle.status != Cycle.Status.ADMINISTERED:
        raise InvalidInputError("cycle", cycle.number, "dosimetry follows an administered cycle")


def record_dosimetry(
    user: AbstractBaseUser,
    cycle: Cycle,
    *,
    left_kidney_dose_gy: float | None = None,
    right_kidney_dose_gy: float | None = None,
    kidney_effective_half_life_h: float | None = None,
    marrow_dose_gy: float | None = None,
    left_kidney_dose_sd_gy: float | None = None,
    right_kidney_dose_sd_gy: float | None = None,
    kidney_dose_sd_systematic_share: float | None = None,
    imaging_sessions: int | None = None,
    study_path: str = "",
    reason: str = "",
    expected_version: int | None = None,
    study_patient_confirmed: bool = False,
) -> DosimetryResult:
    """The doses of an administered cycle (with their standard uncertainties if known),
    entered (with the number of SPECT/CT sessions) or computed from a study folder under
    DATA_DIR/studies (load_study + compute_dosimetry, organ method; its time points are the
    sessions; a study whose PatientID is not the pseudonym needs `study_patient_confirmed`,
    audited); replacing earlier ones needs their version and a reason. Undecided proposals
    made from other doses are superseded. A study is computed before the transaction opens (it
    takes seconds; no lock is held meanwhile)."""
    patient = cycle.patient
    require_role(user, patient.site, Role.PHYSICIST)
    require_administered(cycle)
    entered = {
        "left_kidney_dose_gy": left_kidney_dose_gy,
        "right_kidney_dose_gy": right_kidney_dose_gy,
        "kidney_effective_half_life_h": kidney_effective_half_life_h,
        "marrow_dose_gy": marrow_dose_gy,
        "left_kidney_dose_sd_gy": left_kidney_dose_sd_gy,
        "right_kidney_dose_sd_gy": right_kidney_dose_sd_gy,
        "kidney_dose_sd_systematic_share": kidney_dose_sd_systematic_share,
        "imaging_sessions": imaging_sessions,
    }
    if study_path and any(value is not None for value in entered.values()):
        raise InvalidInputError("study_path", study_path, "give the doses or a study, not both")
    if study_path:
        doses = computed_doses(
            patient, cycle, study_path, patient_confirmed=study_patient_confirmed
        )
    else:
        doses = {**entered, "imaging_sessions": optional_imaging_sessions(imaging_sessions)}
    values = {
        **checked_doses(cycle, doses),
        "source": DosimetryResult.Source.COMPUTED if study_path else DosimetryResult.Source.ENTERED,
        "study_path": study_path,
        "entered_by": user.get_username(),
    }
    with transaction.atomic():
        result = _store_dosimetry(user, cycle, values, reason, expected_version)
        if study_path and study_patient_confirmed:
            record_patient_confirmation(user, result)
        return result


def _store_dosimetry(
    user: AbstractBaseUser,
    cycle: Cycle,
    values: dict[str, Any],
    reason: str,
    expected_version: int | None,
) -> DosimetryResult:
    """Insert the cycle's dosimetry, or replace it at `expected_version` with a reason."""
    patient = cycle.patient
    cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
    require_administered(cycle)
    existing = DosimetryResult.objects.filter(cycle=cycle).first()
    if existing is None:
        result = insert(user, DosimetryResult(patient=patient, cycle=cycle, **values), patient)
        change = f"dosimetry of cycle {cycle.number} entered"
    else:
        if expected_version is None:
            raise InvalidInputError(
                "expected_version", None, "replacing dosimetry names its version"
            )
        reason = require_reason(reason, "a correction of dosimetry needs a reason")
        result = locked(existing, expected_version, "dosimetry result")
        update(user, result, patient, values, reason)
        change = f"dosimetry of cycle {cycle.number} corrected: {reason}"
    _supersede_stale_proposals(user, patient, change)
    return result


# --- next-cycle plan -----------------------------------------------------------------------


def _supersede_stale_proposals(user: AbstractBaseUser, patient: Patient, reason: str) -> None:
    """Mark superseded every undecided proposal computed from other doses or activities than
    those recorded now (audited, with what changed)."""
    inputs = planner_inputs(patient)
    open_proposals = PlanProposal.objects.select_for_update().filter(
        patient=patient, status=PlanProposal.Status.PROPOSED
    )
    for proposal in open_proposals:
        if not made_on(proposal, inputs):
            changes = {
                "status": PlanProposal.Status.SUPERSEDED,
                "decided_by": user.get_username(),
                "decided_at": timezone.now(),
                "reason": reason,
            }
            update(user, proposal, patient, changes, reason)


def _first_not_given(patient: Patient) -> Cycle | None:
    return (
        Cycle.objects.filter(patient=patient)
        .exclude(status=Cycle.Status.ADMINISTERED)
        .order_by("number")
        .first()
    )


def plannable_cycle_number(patient: Patient) -> int | None:
    """The cycle `propose_next_cycle` plans now: the one after the last when every cycle was
    given, a planned cycle whose plan read corrected values; None when a cycle waits or the
    course ended (where `propose_next_cycle` refuses)."""
    cycle = _first_not_given(patient)
    if cycle is None:
        last = patient.cycles.order_by("-number").values_list("number", flat=True).first()
        return (last or 0) + 1
    return cycle.number if plan_outdated(cycle) else None


def _replannable_cycle(patient: Patient) -> Cycle | None:
    """None when every cycle so far was administered; the one planned cycle if its plan read
    corrected values (to be re-planned); refused otherwise (a cycle waits, or the course
    ended with a cancelled one)."""
    cycle = _first_not_given(patient)
    if cycle is None or plan_outdated(cycle):
        return cycle
    rule = (
        "the course ended with it"
        if cycle.status == Cycle.Status.CANCELLED
        else "give or cancel it before planning the next"
    )
    raise InvalidInputError("cycle", cycle.number, f"is {cycle.status}: {rule}")


@transaction.atomic
def propose_next_cycle(user: AbstractBaseUser, patient: Patient) -> PlanProposal:
    """The planner's proposal for the next cycle from the dose ledger (library
    `plan_next_cycle` with the patient's arm), stored with its decision; also for a planned
    cycle whose plan read corrected values."""
    require_role(user, patient.site, Role.PHYSICIST, Role.INVESTIGATOR)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    arm = treatment_arm(patient)
    _replannable_cycle(patient)
    plan = plan_next_cycle(arm.id, planner_cycles(patient), current_protocol())
    proposal = PlanProposal(
        patient=patient,
        for_cycle=plan.next_cycle,
        plan=plan.model_dump(mode="json"),
        proposed_by=user.get_username(),
    )
    insert(user, proposal, patient)
    store_decision(user, patient, plan)
    return proposal


def _open_proposal(
    proposal: PlanProposal, expected_version: int
) -> tuple[PlanProposal, Cycle | None]:
    """The proposal, locked, if it may still be decided (undecided, the patient's latest, made
    on the cycles and doses recorded now), and the planned cycle it re-plans, if any."""
    patient = Patient.objects.select_for_update().get(pk=proposal.patient_id)
    proposal = locked(proposal, expected_version, "proposal")
    if proposal.status != PlanProposal.Status.PROPOSED:
        raise InvalidInputError(
            "proposal", proposal.pk, f"was {proposal.status} by {proposal.decided_by}"
        )
    if patient.plan_proposals.latest("id").pk != proposal.pk:
        raise InvalidInputError("proposal", proposal.pk, "a newer proposal exists: decide on it")
    replanned = _replannable_cycle(patient)
    if not made_on(proposal, planner_inputs(patient)):
        raise InvalidInputError(
            "proposal", proposal.pk, "the cycles or doses changed since: propose again"
        )
    if replanned is not None:
        replanned = Cycle.objects.select_for_update().get(pk=replanned.pk)
    return proposal, replanned


def _plan_cycle(
    user: AbstractBaseUser,
    proposal: PlanProposal,
    activity_gbq: float,
    planned_date: date | None,
    replanned: Cycle | None,
) -> Cycle:
    """The decided cycle, planned on `planned_date` or else its schedule target; or the
    re-planned cycle with the new activity (and date, if given), its release withdrawn."""
    patient = proposal.patient
    day = None if planned_date is None else require_date("planned_date", planned_date)
    if replanned is not None:
        _require_unlocked(replanned)
        changes: dict[str, Any] = {
            "planned_activity_gbq": activity_gbq,
            **_withdrawn_release(replanned),
        }
        if day is not None:
            _require_plannable(replanned, day)
            changes["planned_date"] = day
        reason = f"re-planned by proposal {proposal.pk} on corrected values: {activity_gbq:g} GBq"
        withdraw_deviations(user, replanned, reason, DeviationKind.ACTIVITY)
        return update(user, replanned, patient, changes, reason)
    cycle = Cycle(
        patient=patient,
        number=proposal.for_cycle,
        planned_date=target_date(patient, proposal.for_cycle) if day is None else day,
        planned_activity_gbq=activity_gbq,
    )
    _require_plannable(cycle, cycle.planned_date)
    return insert(user, cycle, patient)


@transaction.atomic
def accept_proposal(
    user: AbstractBaseUser,
    proposal: PlanProposal,
    *,
    expected_version: int,
    planned_date: date | None = None,
) -> PlanProposal:
    """The physicist accepts the plan: its cycle is planned with the proposed activity (on
    `planned_date`, default the schedule's target); a 'stop' plans none (and cancels a cycle
    it re-plans)."""
    require_role(user, proposal.patient.site, Role.PHYSICIST)
    proposal, replanned = _open_proposal(proposal, expected_version)
    plan = proposal.plan
    if plan["action"] == "dosimetry needed":
        raise InvalidInputError("proposal", proposal.pk, f"cannot be accepted: {plan['reason']}")
    changes = {
        "status": PlanProposal.Status.ACCEPTED,
        "decided_by": user.get_username(),
        "decided_at": timezone.now(),
    }
    reason = f"plan accepted: {plan['action']} {plan['activity_gbq']:g} GBq"
    update(user, proposal, proposal.patient, changes, reason)
    if plan["action"] != "stop":
        _plan_cycle(user, proposal, plan["activity_gbq"], planned_date, replanned)
    elif replanned is not None:
        _require_unlocked(replanned)
        cancelled = {"status": Cycle.Status.CANCELLED}
        stopped = f"{reason} (proposal {proposal.pk})"
        update(user, replanned, proposal.patient, cancelled, stopped)
        withdraw_deviations(user, replanned, stopped)
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
    cycle is planned (or re-planned) with that activity. The library's check of the activity
    is stored; a deviation (above the proposal, past a limit, or unchecked) is recorded with
    the reason, and the cycle waits for the investigator's signature of it."""
    require_role(user, proposal.patient.site, Role.PHYSICIST)
    activity = require_activity_gbq("activity_gbq", activity_gbq)
    reason = require_reason(reason, "an override needs a reason")
    proposal, replanned = _open_proposal(proposal, expected_version)
    patient = proposal.patient
    protocol = current_protocol()
    check = check_planned_activity(CyclePlan.model_validate(proposal.plan), activity, protocol)
    changes = {
        "status": PlanProposal.Status.OVERRIDDEN,
        "decided_by": user.get_username(),
        "decided_at": timezone.now(),
        "reason": reason,
        "override_activity_gbq": activity,
    }
    update(user, proposal, patient, changes, reason)
    cycle = _plan_cycle(user, proposal, activity, planned_date, replanned)
    store_decision(user, patient, check)
    if check.deviation:
        record_deviation(
            user,
            cycle,
            DeviationKind.ACTIVITY,
            check.message,
            reason,
            proposal=proposal,
            planned_activity_gbq=activity,
            predicted_cumulative_kidney_gy=check.predicted_cumulative_kidney_gy,
            decision=check.model_dump(mode="json"),
        )
    return proposal


# --- protocol deviations -------------------------------------------------------------------


def record_deviation(
    user: AbstractBaseUser,
    cycle: Cycle,
    kind: DeviationKind,
    description: str,
    reason: str,
    **details: Any,
) -> Deviation:
    """Record a protocol deviation of the cycle (audited), by the user who made it."""
    deviation = Deviation(
        patient=cycle.patient,
        cycle=cycle,
        kind=kind,
        description=description,
        reason=reason,
        recorded_by=user.get_username(),
        **details,
    )
    return insert(user, deviation, cycle.patient)


def withdraw_deviations(
    user: AbstractBaseUser, cycle: Cycle, reason: str, kind: DeviationKind | None = None
) -> None:
    """Withdraw the cycle's standing deviations (of `kind`, else all) with a reason: they no
    longer apply. Audited; a signed one keeps its signature (it covers what was signed)."""
    standing = Deviation.objects.standing().select_for_update().filter(cycle=cycle)
    if kind is not None:
        standing = standing.filter(kind=kind)
    for deviation in standing:
        changes = {"withdrawn_at": timezone.now(), "withdrawn_reason": reason}
        update(user, deviation, cycle.patient, changes, reason)


def _require_deviations_signed(cycle: Cycle) -> None:
    """Refuse to release or give a cycle whose planned activity is an unsigned deviation."""
    waiting = cycle.deviations.awaiting_signature().first()
    if waiting is not None:
        raise InvalidInputError(
            "cycle",
            cycle.number,
            f"its planned activity is a protocol deviation ({waiting.description}) awaiting "
            f"the investigator's signature: sign deviation {waiting.pk} first",
        )


def sign_deviation(
    request: HttpRequest,
    deviation: Deviation,
    *,
    password: str,
    expected_version: int,
    signing_token: str = "",
) -> Deviation:
    """The investigator signs a planned activity's deviation with the password (meaning:
    approval); the cycle may then be released. The signature locks the deviation. Runs
    outside a transaction (a wrong password is counted even so)."""
    signing.sign_action(
        request,
        password,
        Meaning.APPROVAL,
        lambda: _sign_deviation(request.user, deviation, expected_version),
        signing_token=signing_token,
    )
    return Deviation.objects.get(pk=deviation.pk)


@transaction.atomic
def _sign_deviation(
    user: AbstractBaseUser, deviation: Deviation, expected_version: int
) -> Deviation:
    require_role(user, deviation.patient.site, Role.INVESTIGATOR)
    deviation = locked(deviation, expected_version, "deviation")
    if deviation.kind != DeviationKind.ACTIVITY or deviation.withdrawn_at is not None:
        rule = "was withdrawn" if deviation.withdrawn_at else "is confirmed by its rescheduling"
        raise InvalidInputError("deviation", deviation.pk, f"{rule}: nothing to sign")
    if deviation.signed_at is not None:
        raise InvalidInputError("deviation", deviation.pk, f"was signed by {deviation.signed_by}")
    changes = {"signed_by": user.get_username(), "signed_at": timezone.now()}
    reason = f"protocol deviation of cycle {deviation.cycle.number} signed: {deviation.reason}"
    return update(user, deviation, deviation.patient, changes, reason)
