"""Adverse events, tumour assessments, end of treatment, follow-up and deaths: one transaction
per action. Research nurses and investigators enter at the patient's site (others get
PermissionDenied); monitors and statisticians read through `visible`. Each action locks the
patient row, so checks across records (a fatal event needs the death record; nothing is dated
after death) see a stable state. Every insert and change is audited; a change (`change_*`: every
field re-entered and checked again by the rules of first entry) needs a reason and the version
it was based on (StaleVersionError otherwise). Refused input raises InvalidInputError naming
field, value and rule.

Rules chosen here (stated, not hidden):
- Dates lie in the windows of `trial.dates` (not before the trial start, not after today (UTC)
  + 1 day for time zones, nor after the date of death) and end dates not before their start.
- Follow-up is recorded for randomized patients only; a progression, the end of treatment and
  the death of a randomized patient are not dated before the randomization date.
- Adverse events are coded with CTCAE v5.0 (`startrt.clinical.ctcae_terms`): the term as the
  table spells it, a grade the table defines for it, the event named exactly for an "Other,
  specify" term; the term's MedDRA code and SOC are stored with it, never typed.
- Adverse events are recorded for randomized patients: the arm tells whether capecitabine is
  given, so attribution to capecitabine is `not_applicable` exactly when it is not; every arm
  gives PRRT, so attribution to PRRT is always assessed.
- Grade 5 <=> outcome fatal <=> seriousness criterion "death"; a grade 5 event needs the death
  record entered first (it is never created from the event). Outcome recovered (with or without
  sequelae) needs the resolution date; recovering, not recovered and fatal have none.
- Tumour assessments: one row per time point holding the series so far and the responses
  computed by `startrt.clinical.recist`. Without `expected_version` a new row is added, which
  must extend the latest series by exactly one follow-up and leave the earlier time points
  unchanged; with it (or through `change_tumour_assessment`) the latest row is corrected (same
  number of time points, with a reason) and its responses computed again. Only the latest row
  can be corrected; earlier rows keep the series as it was known at their time point.
- End of treatment needs randomization and is not dated before it; reason death needs the death
  record, reason other needs details. A follow-up "dead" needs the death record and is not dated
  before the death; nothing else is dated after it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from pydantic import Field, StringConstraints

from startrt.clinical.ctcae_terms import code_adverse_event
from startrt.clinical.recist import Series, evaluate_series, parse_series
from startrt.output import plain
from startrt.protocol.decision import Decision as DecisionRecord
from startrt.protocol.records import Record, parse_record
from startrt.protocol.vocabulary import (
    AdverseEventOutcome,
    Attribution,
    EndOfTreatmentReason,
    SeriousnessCriterion,
    VitalStatus,
)
from startrt.validation import CleanLines, CleanText, InvalidInputError
from startrt.web.events.models import (
    AdverseEvent,
    Death,
    EndOfTreatment,
    FollowUp,
    TumourAssessment,
    Versioned,
)
from startrt.web.medications.services import reassess as reassess_medications
from startrt.web.trial import dates
from startrt.web.trial.changes import check_version, insert, update
from startrt.web.trial.models import Patient, Slot
from startrt.web.trial.permissions import visible_patients
from startrt.web.trial.services import (
    change_record,
    current_protocol,
    locked_patient,
    store_decision,
)

VersionedT = TypeVar("VersionedT", bound=Versioned)
Text = Annotated[CleanText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Details = Annotated[CleanLines, StringConstraints(strip_whitespace=True, max_length=2000)]
OptionalText = Annotated[CleanText, StringConstraints(strip_whitespace=True, max_length=200)]

RECIST_RULE = (
    "RECIST 1.1 (Eisenhauer, Eur J Cancer 2009): time-point responses and unconfirmed best "
    "overall response, computed by startrt from the recorded lesion measurements"
)
RESOLVED_OUTCOMES = (AdverseEventOutcome.RECOVERED, AdverseEventOutcome.RECOVERED_WITH_SEQUELAE)
UNRESOLVED_OUTCOMES = (
    AdverseEventOutcome.RECOVERING,
    AdverseEventOutcome.NOT_RECOVERED,
    AdverseEventOutcome.FATAL,
)


class AdverseEventRecord(Record):
    """An adverse event as entered: CTCAE v5.0 term (with the event's name for an "Other,
    specify" term) and grade, seriousness, attribution."""

    term: Text
    other_specify: OptionalText = ""
    ctcae_grade: int = Field(ge=1, le=5)
    onset_date: dt.date
    resolved_date: dt.date | None = None
    serious: bool
    seriousness_criteria: list[SeriousnessCriterion] = Field(default_factory=list)
    attribution_prrt: Attribution
    attribution_capecitabine: Attribution
    outcome: AdverseEventOutcome


class EndOfTreatmentRecord(Record):
    date: dt.date
    reason: EndOfTreatmentReason
    details: Details = ""


class FollowUpRecord(Record):
    date: dt.date
    status: VitalStatus
    progression: bool
    progression_date: dt.date | None = None


class DeathRecord(Record):
    date: dt.date
    cause: Text
    related_to_treatment: bool


class TumourResponseDecision(DecisionRecord):
    """The RECIST 1.1 responses of a series as computed (per time point and best overall)."""

    assessment_date: dt.date
    response: dict[str, Any]


def visible(user: AbstractBaseUser, model: type[VersionedT]) -> QuerySet[VersionedT]:
    """The rows of `model` the user may read: their sites' patients (all for all-site roles)."""
    return model.objects.filter(patient__in=visible_patients(user))


@transaction.atomic
def report_adverse_event(
    user: AbstractBaseUser, patient: Patient, data: dict[str, Any]
) -> AdverseEvent:
    """Record a new adverse event of a randomized patient."""
    patient = locked_patient(user, patient)
    values = _adverse_event_values(patient, data)
    return _insert(user, patient, AdverseEvent(patient=patient, **values))


@transaction.atomic
def change_adverse_event(
    user: AbstractBaseUser,
    event: AdverseEvent,
    data: dict[str, Any],
    *,
    reason: str,
    expected_version: int | None,
) -> AdverseEvent:
    """Change an adverse event (every field re-entered), with a reason and its version."""

    def values(patient: Patient) -> dict[str, Any]:
        return _adverse_event_values(patient, data)

    return change_record(user, event, values, reason=reason, expected_version=expected_version)


@transaction.atomic
def record_tumour_assessment(
    user: AbstractBaseUser,
    patient: Patient,
    series_data: dict[str, Any],
    *,
    reason: str = "",
    expected_version: int | None = None,
) -> TumourAssessment:
    """Add the next time point of the RECIST series (or correct the latest one, with a reason
    and its version) with the responses computed by the library and their decision record."""
    patient = locked_patient(user, patient)
    stored = list(TumourAssessment.objects.filter(patient=patient).order_by("assessment_date"))
    if expected_version is not None:
        if not stored:
            raise InvalidInputError(
                "expected_version", expected_version, "nothing to correct: no assessment yet"
            )
        return _correct_latest(user, patient, stored, series_data, reason, expected_version)
    _, values = _assessment_values(patient, series_data)
    if stored:
        _check_extends(stored[-1].series, values["series"])
    assessment = _insert(user, patient, TumourAssessment(patient=patient, **values))
    _store_response(user, patient, values)
    return assessment


@transaction.atomic
def change_tumour_assessment(
    user: AbstractBaseUser,
    assessment: TumourAssessment,
    series_data: dict[str, Any],
    *,
    reason: str,
    expected_version: int | None,
) -> TumourAssessment:
    """Correct an assessment (the latest only: later ones were computed from it) with a reason
    and its version; the responses are computed again and stored as a new decision."""
    patient = locked_patient(user, assessment.patient)
    stored = list(TumourAssessment.objects.filter(patient=patient).order_by("assessment_date"))
    if stored[-1].pk != assessment.pk:
        raise InvalidInputError(
            "assessment_date",
            assessment.assessment_date.isoformat(),
            f"only the latest assessment ({stored[-1].assessment_date}) can be corrected",
        )
    return _correct_latest(user, patient, stored, series_data, reason, expected_version)


def _correct_latest(
    user: AbstractBaseUser,
    patient: Patient,
    stored: list[TumourAssessment],
    series_data: dict[str, Any],
    reason: str,
    expected_version: int | None,
) -> TumourAssessment:
    field, values = _assessment_values(patient, series_data)
    _check_correction(stored, values["series"], field, values["assessment_date"])
    assessment = _update(user, patient, stored[-1], values, reason, expected_version)
    _store_response(user, patient, values)
    return assessment


def _assessment_values(patient: Patient, series_data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(field naming the latest time point, the row's values): the series as validated by the
    library and the responses it computes."""
    series = parse_series(series_data)
    for point, day in _time_points(series):
        dates.check_imaging_date(point, day, None)
    field, assessment_date = _latest_time_point(series)
    death = _death(patient)
    if death is not None:
        _not_after(field, assessment_date, death.date, "the date of death")
    normalized: dict[str, Any] = plain(series)
    response: dict[str, Any] = plain(evaluate_series(series))
    return field, {"assessment_date": assessment_date, "series": normalized, "response": response}


def _store_response(user: AbstractBaseUser, patient: Patient, values: dict[str, Any]) -> None:
    decision = TumourResponseDecision(
        kind="tumour_response",
        protocol=current_protocol().label,
        rule=RECIST_RULE,
        inputs={"series": values["series"]},
        assessment_date=values["assessment_date"],
        response=values["response"],
    )
    store_decision(user, patient, decision)


@transaction.atomic
def record_end_of_treatment(
    user: AbstractBaseUser,
    patient: Patient,
    data: dict[str, Any],
    *,
    reason: str = "",
    expected_version: int | None = None,
) -> EndOfTreatment:
    """Record (or change, with a reason and its version) the end of protocol treatment."""
    patient = locked_patient(user, patient)
    values = _end_of_treatment_values(patient, data)
    end = _upsert(user, patient, EndOfTreatment, values, reason, expected_version)
    reassess_medications(user, patient)  # the rule reads the end of treatment
    return end


@transaction.atomic
def change_end_of_treatment(
    user: AbstractBaseUser,
    end: EndOfTreatment,
    data: dict[str, Any],
    *,
    reason: str,
    expected_version: int | None,
) -> EndOfTreatment:
    """Correct the end of treatment (every field re-entered), with a reason and its version."""

    def values(patient: Patient) -> dict[str, Any]:
        return _end_of_treatment_values(patient, data)

    changed = change_record(user, end, values, reason=reason, expected_version=expected_version)
    reassess_medications(user, end.patient)  # the rule reads the end of treatment
    return changed


@transaction.atomic
def record_follow_up(user: AbstractBaseUser, patient: Patient, data: dict[str, Any]) -> FollowUp:
    """Record a follow-up contact: vital status and progression."""
    patient = locked_patient(user, patient)
    values = _follow_up_values(patient, data, None)
    return _insert(user, patient, FollowUp(patient=patient, **values))


@transaction.atomic
def change_follow_up(
    user: AbstractBaseUser,
    follow_up: FollowUp,
    data: dict[str, Any],
    *,
    reason: str,
    expected_version: int | None,
) -> FollowUp:
    """Change a follow-up contact (every field re-entered), with a reason and its version."""

    def values(patient: Patient) -> dict[str, Any]:
        return _follow_up_values(patient, data, follow_up.pk)

    return change_record(user, follow_up, values, reason=reason, expected_version=expected_version)


@transaction.atomic
def record_death(
    user: AbstractBaseUser,
    patient: Patient,
    data: dict[str, Any],
    *,
    reason: str = "",
    expected_version: int | None = None,
) -> Death:
    """Record (or change, with a reason and its version) the patient's death."""
    patient = locked_patient(user, patient)
    values = _death_values(patient, data)
    return _upsert(user, patient, Death, values, reason, expected_version)


@transaction.atomic
def change_death(
    user: AbstractBaseUser,
    death: Death,
    data: dict[str, Any],
    *,
    reason: str,
    expected_version: int | None,
) -> Death:
    """Correct the death record (every field re-entered), with a reason and its version."""

    def values(patient: Patient) -> dict[str, Any]:
        return _death_values(patient, data)

    return change_record(user, death, values, reason=reason, expected_version=expected_version)


def _insert(user: AbstractBaseUser, patient: Patient, instance: VersionedT) -> VersionedT:
    return insert(user, instance, patient)


def _update(
    user: AbstractBaseUser,
    patient: Patient,
    instance: VersionedT,
    values: dict[str, Any],
    reason: str,
    expected_version: int | None,
) -> VersionedT:
    check_version(instance, expected_version)
    return update(user, instance, patient, values, reason)


def _upsert(
    user: AbstractBaseUser,
    patient: Patient,
    model: type[VersionedT],
    values: dict[str, Any],
    reason: str,
    expected_version: int | None,
) -> VersionedT:
    existing = model.objects.filter(patient=patient).first()
    if existing is None:
        return _insert(user, patient, model(patient=patient, **values))
    return _update(user, patient, existing, values, reason, expected_version)


def _death(patient: Patient) -> Death | None:
    return Death.objects.filter(patient=patient).first()


def _allocation(patient: Patient, what: str) -> Slot:
    slot = Slot.objects.filter(patient=patient).first()
    if slot is None:
        raise InvalidInputError("patient", patient.trial_id, f"is not randomized: no {what}")
    return slot


def _check_date(
    field: str, value: dt.date | None, death: Death | None, randomized_on: dt.date | None = None
) -> None:
    """In the window of `trial.dates`: from the trial start (or `randomized_on`, when given)
    to today (UTC, + 1 day for time zones) and, when `death` is given, not after the date of
    death."""
    if value is None:
        return
    if randomized_on is None:
        dates.require_happened(field, value)
    else:
        dates.after_randomization(field, value, randomized_on)
    if death is not None:
        _not_after(field, value, death.date, "the date of death")


def _not_after(field: str, value: dt.date, limit: dt.date, what: str) -> None:
    if value > limit:
        raise InvalidInputError(field, value.isoformat(), f"must not be after {what} ({limit})")


def _not_before(field: str, value: dt.date, limit: dt.date, what: str) -> None:
    if value < limit:
        raise InvalidInputError(field, value.isoformat(), f"must not be before {what} ({limit})")


def _end_of_treatment_values(patient: Patient, data: dict[str, Any]) -> dict[str, Any]:
    record = parse_record(EndOfTreatmentRecord, data, "end of treatment")
    slot = _allocation(patient, "end of treatment")
    death = _death(patient)
    allocated_on = timezone.localdate(slot.allocated_at)
    _not_before("date", record.date, allocated_on, "the randomization date")
    _check_date("date", record.date, death)
    if record.reason == EndOfTreatmentReason.DEATH and death is None:
        raise InvalidInputError("reason", record.reason.value, "needs the death record first")
    if record.reason == EndOfTreatmentReason.OTHER and not record.details.strip():
        raise InvalidInputError("details", record.details, "required when the reason is other")
    return record.model_dump()


def _death_values(patient: Patient, data: dict[str, Any]) -> dict[str, Any]:
    record = parse_record(DeathRecord, data, "death")
    _check_date("date", record.date, None)
    _check_nothing_after_death(patient, record.date)
    randomized_on = dates.randomization_date(patient)
    if randomized_on is not None:
        _not_before("date", record.date, randomized_on, "the randomization date")
    return record.model_dump()


def _adverse_event_values(patient: Patient, data: dict[str, Any]) -> dict[str, Any]:
    record = parse_record(AdverseEventRecord, data, "adverse event")
    coded = code_adverse_event(record.term, record.ctcae_grade, record.other_specify)
    slot = _allocation(patient, "adverse events")
    death = _death(patient)
    _check_date("onset_date", record.onset_date, death)
    _check_date("resolved_date", record.resolved_date, death)
    if record.resolved_date is not None:
        _not_before("resolved_date", record.resolved_date, record.onset_date, "onset_date")
    _check_seriousness(record)
    _check_outcome(record, death)
    _check_attribution(record, slot)
    return {**record.model_dump(), "meddra_code": coded.term.meddra_code, "soc": coded.term.soc}


def _check_seriousness(record: AdverseEventRecord) -> None:
    criteria = [criterion.value for criterion in record.seriousness_criteria]
    if len(set(criteria)) != len(criteria):
        raise InvalidInputError("seriousness_criteria", criteria, "lists a criterion twice")
    if record.serious and not criteria:
        raise InvalidInputError(
            "seriousness_criteria", criteria, "a serious adverse event needs at least one"
        )
    if not record.serious and criteria:
        raise InvalidInputError(
            "seriousness_criteria", criteria, "only a serious adverse event has criteria"
        )
    fatal = record.ctcae_grade == 5
    if fatal and not record.serious:
        raise InvalidInputError("serious", record.serious, "a grade 5 (fatal) event is serious")
    if fatal != (SeriousnessCriterion.DEATH in criteria):
        raise InvalidInputError(
            "seriousness_criteria", criteria, "'death' is the criterion of grade 5 events only"
        )


def _check_outcome(record: AdverseEventRecord, death: Death | None) -> None:
    fatal = record.ctcae_grade == 5
    if fatal != (record.outcome == AdverseEventOutcome.FATAL):
        raise InvalidInputError(
            "outcome", record.outcome.value, "is fatal exactly when the CTCAE grade is 5"
        )
    if fatal and death is None:
        raise InvalidInputError(
            "ctcae_grade", record.ctcae_grade, "a grade 5 event needs the death record first"
        )
    resolved = record.resolved_date
    if record.outcome in RESOLVED_OUTCOMES and resolved is None:
        raise InvalidInputError(
            "resolved_date", None, f"required when the outcome is {record.outcome.value}"
        )
    if record.outcome in UNRESOLVED_OUTCOMES and resolved is not None:
        raise InvalidInputError(
            "resolved_date",
            resolved.isoformat(),
            f"must be empty when the outcome is {record.outcome.value}",
        )


def _check_attribution(record: AdverseEventRecord, slot: Slot) -> None:
    if record.attribution_prrt == Attribution.NOT_APPLICABLE:
        raise InvalidInputError(
            "attribution_prrt", record.attribution_prrt.value, "every arm gives PRRT: assess it"
        )
    arm = current_protocol().arm(slot.treatment_arm)
    assessed = record.attribution_capecitabine != Attribution.NOT_APPLICABLE
    if assessed != arm.capecitabine:
        rule = (
            f"the {arm.id} arm gives capecitabine: assess it"
            if arm.capecitabine
            else f"the {arm.id} arm gives no capecitabine: must be not_applicable"
        )
        raise InvalidInputError(
            "attribution_capecitabine", record.attribution_capecitabine.value, rule
        )


def _follow_up_values(
    patient: Patient, data: dict[str, Any], follow_up_id: int | None
) -> dict[str, Any]:
    record = parse_record(FollowUpRecord, data, "follow-up")
    randomized_on = dates.require_randomized(patient, "follow-up")
    death = _death(patient)
    dead = record.status == VitalStatus.DEAD
    _check_date("date", record.date, None if dead else death)
    _check_date("progression_date", record.progression_date, death, randomized_on)
    if record.progression != (record.progression_date is not None):
        raise InvalidInputError(
            "progression_date", record.progression_date, "is given exactly when progression is true"
        )
    if record.progression_date is not None:
        _not_after("progression_date", record.progression_date, record.date, "the follow-up")
    if dead:
        if death is None:
            raise InvalidInputError("status", record.status.value, "needs the death record first")
        _not_before("date", record.date, death.date, "the date of death")
    same_day = FollowUp.objects.filter(patient=patient, date=record.date)
    if same_day.exclude(pk=follow_up_id).exists():
        raise InvalidInputError("date", record.date.isoformat(), "a follow-up on this date exists")
    return record.model_dump()


# (model, date field, which rows) that a date of death must not precede
_NOT_AFTER_DEATH = (
    (AdverseEvent, "onset_date", Q()),
    (AdverseEvent, "resolved_date", Q()),
    (TumourAssessment, "assessment_date", Q()),
    (EndOfTreatment, "date", Q()),
    (FollowUp, "date", ~Q(status=VitalStatus.DEAD)),
    (FollowUp, "progression_date", Q()),
)


def _check_nothing_after_death(patient: Patient, death_date: dt.date) -> None:
    for model, field, rows in _NOT_AFTER_DEATH:
        later = (
            model.objects.filter(rows, patient=patient, **{f"{field}__gt": death_date})
            .order_by(field)
            .values_list(field, flat=True)
            .last()
        )
        if later is not None:
            raise InvalidInputError(
                "date",
                death_date.isoformat(),
                f"is before the {model._meta.verbose_name} {field} {later} already recorded",
            )
    dead_before = FollowUp.objects.filter(
        patient=patient, status=VitalStatus.DEAD, date__lt=death_date
    ).first()
    if dead_before is not None:
        raise InvalidInputError(
            "date", death_date.isoformat(), f"is after the follow-up of {dead_before.date} (dead)"
        )


def _time_points(series: Series) -> list[tuple[str, dt.date]]:
    """(field, date) of every time point of the series, the baseline first."""
    follow_ups = [(f"follow_up[{i}].date", point.date) for i, point in enumerate(series.follow_up)]
    return [("baseline.date", series.baseline.date), *follow_ups]


def _latest_time_point(series: Series) -> tuple[str, dt.date]:
    if series.follow_up:
        return f"follow_up[{len(series.follow_up) - 1}].date", series.follow_up[-1].date
    return "baseline.date", series.baseline.date


def _check_extends(previous: dict[str, Any], series: dict[str, Any]) -> None:
    recorded = len(previous["follow_up"])
    given = len(series["follow_up"])
    if given != recorded + 1:
        raise InvalidInputError(
            "follow_up",
            f"{given} follow-ups",
            f"a new assessment adds one follow-up to the {recorded} recorded "
            "(to correct the latest, give its expected_version)",
        )
    if (
        series["baseline"] != previous["baseline"]
        or series["follow_up"][:-1] != previous["follow_up"]
    ):
        raise InvalidInputError(
            "series",
            "earlier time points changed",
            "correct the latest assessment (reason and expected_version) before adding one",
        )


def _check_correction(
    stored: list[TumourAssessment], series: dict[str, Any], field: str, date: dt.date
) -> None:
    recorded = len(stored[-1].series["follow_up"])
    if len(series["follow_up"]) != recorded:
        raise InvalidInputError(
            "follow_up",
            f"{len(series['follow_up'])} follow-ups",
            f"a correction keeps the {recorded} follow-ups of the latest assessment",
        )
    if len(stored) > 1:
        previous = stored[-2].assessment_date
        if date <= previous:
            raise InvalidInputError(
                field, date.isoformat(), f"must be after the previous assessment ({previous})"
            )
