"""The forms a randomized patient should have by a given day, from the protocol's schedule,
against what is entered: which are missing and by how many days they are overdue.

Expected forms (START-01 v1.0 values from the protocol file; `Schedule` in `schedule.py`):
- per cycle not cancelled: the pre-cycle lab panel, due `pre_cycle_lab_days_before` days before
  the planned date (`pre_cycle_lab_day`); the administration record, due on the planned date +
  `window_weeks` (the last day of the cycle's window);
- after the last cycle, when it was given and the course is neither complete nor ended, the
  administration of the next one, due `interval_weeks` + `window_weeks` after it (whether or
  not it is planned yet);
- per cycle given: on a dosimetry-guided arm its dosimetry, due on the day of the last imaging
  session (`dosimetry_due_day`, from `dosimetry_imaging_hours`); the laboratory checks
  `lab_check_days_after_cycle` days after the infusion;
- tumour assessments (RECIST 1.1) every `[assessments] interval_weeks` from randomization, the
  last expected one the first due on or after the progression date (no imaging is scheduled
  after progression; Eisenhauer et al., Eur J Cancer 2009;45:228);
- the end-of-treatment form, when the course is complete (the fixed cycles of the arm given, or
  the planner's decided plan stopped the course), `eot_weeks_after_last_cycle` after the last
  cycle given (after randomization when none was); when the patient died first, on the date of
  death (the form records death as the reason);
- follow-up contacts every `[expected_forms] follow_up_interval_weeks` after the recorded end of
  treatment (a software setting: PROTOCOL.md states no interval).

Choices:
- nothing is expected with a due day after the date of death or after the end of treatment by
  withdrawal of consent or loss to follow-up (`participation.ENDS_PARTICIPATION`); nor any form
  of a cycle not given that was planned after a recorded end of treatment;
- a pre-cycle panel counts when complete and, for a cycle not yet given, drawn on or after its
  lab day (an older panel says nothing of the blood before this cycle); a given cycle was
  released on a 'go' panel, so any complete panel of it counts;
- repeated forms (lab checks, assessments, follow-ups) have no window in the protocol: an entry
  counts for the scheduled day nearest to it (ties go to the earlier day); lab checks count only
  panels tied to no cycle, drawn after the infusion and before the next cycle is given;
- a form is missing when nothing is entered and more than `[expected_forms] grace_days` days
  passed since its due day: due today, or within the grace, is not missing; days overdue count
  from the due day.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from startrt.protocol.participation import ENDS_PARTICIPATION
from startrt.protocol.schedule import ScheduleSettings, imaging_day_after_cycle
from startrt.protocol.vocabulary import EndOfTreatmentReason
from startrt.validation import InvalidInputError

if TYPE_CHECKING:
    from startrt.protocol.definition import Protocol


class ExpectedFormSettings(BaseModel):
    """[expected_forms]: the follow-up interval after the end of treatment and the grace days
    before a form past its due day counts as missing (software settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    follow_up_interval_weeks: int = Field(strict=True, ge=1, le=104)
    grace_days: int = Field(strict=True, ge=0, le=90)


class FormKind(StrEnum):
    """A kind of expected form, in the order a report lists them."""

    PRE_CYCLE_LABS = "pre_cycle_labs"
    ADMINISTRATION = "administration"
    DOSIMETRY = "dosimetry"
    LAB_CHECK = "lab_check"
    TUMOUR_ASSESSMENT = "tumour_assessment"
    END_OF_TREATMENT = "end_of_treatment"
    FOLLOW_UP = "follow_up"

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]


_KIND_LABELS = {
    FormKind.PRE_CYCLE_LABS: "Pre-cycle labs",
    FormKind.ADMINISTRATION: "Administration",
    FormKind.DOSIMETRY: "Dosimetry",
    FormKind.LAB_CHECK: "Laboratory check after a cycle",
    FormKind.TUMOUR_ASSESSMENT: "Tumour assessment",
    FormKind.END_OF_TREATMENT: "End of treatment",
    FormKind.FOLLOW_UP: "Follow-up contact",
}


@dataclass(frozen=True)
class CycleFacts:
    """A cycle as entered: planned day, day given (None: not given), whether cancelled, the
    days its complete pre-cycle panels were drawn, whether its dosimetry is entered."""

    number: int
    planned_on: date
    given_on: date | None = None
    cancelled: bool = False
    pre_cycle_panel_days: tuple[date, ...] = ()
    dosimetry_entered: bool = False


@dataclass(frozen=True)
class PatientFacts:
    """What is entered for one randomized patient (dates are calendar days at the site).
    `lab_check_days`: draw days of panels tied to no cycle; `course_stopped`: the planner's
    decided plan stopped the course; `fixed_cycles`: the arm's number of cycles (None: a
    dosimetry-guided arm, which gives cycles up to its dose limit)."""

    randomized_on: date
    dosimetry_guided: bool
    fixed_cycles: int | None
    cycles: tuple[CycleFacts, ...] = ()
    course_stopped: bool = False
    lab_check_days: tuple[date, ...] = ()
    assessment_days: tuple[date, ...] = ()
    end_of_treatment_on: date | None = None
    end_of_treatment_reason: EndOfTreatmentReason | None = None
    follow_up_days: tuple[date, ...] = ()
    progression_on: date | None = None
    died_on: date | None = None


@dataclass(frozen=True)
class ExpectedForm:
    """One form expected by `today`: its kind, its cycle (per-cycle forms), its number among
    repeated forms (the k-th lab check of the cycle, assessment, follow-up), its due day,
    whether it is entered, the days since the due day and whether it counts as missing."""

    kind: FormKind
    cycle_number: int | None
    number: int | None
    due: date
    entered: bool
    days_overdue: int
    missing: bool

    @property
    def label(self) -> str:
        """ "Pre-cycle labs, cycle 2", "Tumour assessment 3", "End of treatment"."""
        if self.kind is FormKind.LAB_CHECK:
            return f"Laboratory check {self.number} after cycle {self.cycle_number}"
        if self.cycle_number is not None:
            return f"{self.kind.label}, cycle {self.cycle_number}"
        if self.number is not None:
            return f"{self.kind.label} {self.number}"
        return self.kind.label


def pre_cycle_lab_day(planned_on: date, schedule: ScheduleSettings) -> date:
    """The day a cycle's pre-cycle labs are due: `pre_cycle_lab_days_before` its planned day."""
    return planned_on - timedelta(days=schedule.pre_cycle_lab_days_before)


def dosimetry_due_day(given_on: date, schedule: ScheduleSettings) -> date:
    """The day a cycle's dosimetry is due: the day of the protocol's last imaging session after
    the infusion on `given_on` (the infusion day itself when the protocol images none)."""
    last_hours = max(schedule.dosimetry_imaging_hours, default=0)
    return given_on + timedelta(days=imaging_day_after_cycle(last_hours))


def participation_ends(facts: PatientFacts) -> date | None:
    """The last day forms can be due: the date of death, or of an end of treatment by
    withdrawal of consent or loss to follow-up, whichever is first (None: neither)."""
    ends = [facts.died_on] if facts.died_on else []
    if facts.end_of_treatment_reason in ENDS_PARTICIPATION and facts.end_of_treatment_on:
        ends.append(facts.end_of_treatment_on)
    return min(ends, default=None)


def expected_forms(
    facts: PatientFacts, protocol: Protocol, today: date
) -> tuple[ExpectedForm, ...]:
    """Every form due on or before `today` (module docstring), by due day then kind; none
    before randomization."""
    _check(facts)
    if today < facts.randomized_on:
        return ()
    last_day = min(today, participation_ends(facts) or today)
    grace = protocol.expected_forms.grace_days
    due = [
        *_cycle_forms(facts, protocol.schedule),
        *_assessments(facts, 7 * protocol.assessments.interval_weeks, last_day),
        *_end_and_follow_up(facts, protocol, last_day),
    ]
    forms = [
        ExpectedForm(kind, cycle, number, day, entered, (today - day).days, False)
        for kind, cycle, number, day, entered in due
        if day <= last_day
    ]
    forms = [replace(f, missing=not f.entered and f.days_overdue > grace) for f in forms]
    order = list(FormKind)
    return tuple(
        sorted(
            forms, key=lambda f: (f.due, order.index(f.kind), f.cycle_number or 0, f.number or 0)
        )
    )


def missing_forms(facts: PatientFacts, protocol: Protocol, today: date) -> tuple[ExpectedForm, ...]:
    """The expected forms that are missing on `today`."""
    return tuple(form for form in expected_forms(facts, protocol, today) if form.missing)


_Due = tuple[FormKind, int | None, int | None, date, bool]


def _check(facts: PatientFacts) -> None:
    numbers = [cycle.number for cycle in facts.cycles]
    if numbers != list(range(1, len(numbers) + 1)):
        raise InvalidInputError("cycles", numbers, "must be numbered 1, 2, ... in order")
    given = [cycle.given_on for cycle in facts.cycles if cycle.given_on is not None]
    if any(later <= earlier for earlier, later in itertools.pairwise(given)):
        raise InvalidInputError("cycles", given, "cycles must be given on increasing days")
    if facts.died_on is not None and facts.died_on < facts.randomized_on:
        raise InvalidInputError("died_on", facts.died_on, "must not be before randomization")
    if (facts.end_of_treatment_on is None) != (facts.end_of_treatment_reason is None):
        raise InvalidInputError(
            "end_of_treatment_reason", facts.end_of_treatment_reason, "goes with its date"
        )


def _cycle_forms(facts: PatientFacts, schedule: ScheduleSettings) -> Iterable[_Due]:
    window = timedelta(weeks=schedule.window_weeks)
    given = [cycle for cycle in facts.cycles if cycle.given_on is not None]
    for cycle in facts.cycles:
        ended = facts.end_of_treatment_on
        if cycle.cancelled or (
            cycle.given_on is None and ended is not None and cycle.planned_on > ended
        ):
            continue
        lab_day = pre_cycle_lab_day(cycle.planned_on, schedule)
        labs = (
            bool(cycle.pre_cycle_panel_days)
            if cycle.given_on
            else any(day >= lab_day for day in cycle.pre_cycle_panel_days)
        )
        yield FormKind.PRE_CYCLE_LABS, cycle.number, None, lab_day, labs
        yield (
            FormKind.ADMINISTRATION,
            cycle.number,
            None,
            cycle.planned_on + window,
            cycle.given_on is not None,
        )
        if cycle.given_on is None:
            continue
        if facts.dosimetry_guided:
            due = dosimetry_due_day(cycle.given_on, schedule)
            yield FormKind.DOSIMETRY, cycle.number, None, due, cycle.dosimetry_entered
        later = [c.given_on for c in given if c.given_on and c.given_on > cycle.given_on]
        drawn = [
            day
            for day in facts.lab_check_days
            if cycle.given_on < day and (not later or day < later[0])
        ]
        checks = [cycle.given_on + timedelta(days=d) for d in schedule.lab_check_days_after_cycle]
        done = _entered_slots(checks, drawn)
        for index, day in enumerate(checks):
            yield FormKind.LAB_CHECK, cycle.number, index + 1, day, index in done
    last = facts.cycles[-1] if facts.cycles else None
    if last and last.given_on and facts.end_of_treatment_on is None and not _complete(facts):
        next_due = last.given_on + timedelta(weeks=schedule.interval_weeks) + window
        yield FormKind.ADMINISTRATION, last.number + 1, None, next_due, False


def _assessments(facts: PatientFacts, interval_days: int, last_day: date) -> Iterable[_Due]:
    """Assessment k due k intervals after randomization, up to the first on or after the
    progression date."""
    step = timedelta(days=interval_days)
    return _repeated(
        FormKind.TUMOUR_ASSESSMENT,
        facts.randomized_on,
        step,
        facts.assessment_days,
        last_day,
        until=facts.progression_on,
    )


def _repeated(
    kind: FormKind,
    anchor: date,
    step: timedelta,
    entries: Sequence[date],
    last_day: date,
    until: date | None = None,
) -> Iterable[_Due]:
    """A form due every `step` after `anchor`, the last one the first on or after `until`;
    the days are laid out a step past `last_day` and the latest entry, so that each entry
    finds the day it was made for."""
    horizon = max([last_day, *entries]) + step
    slots, day = [], anchor + step
    while day <= horizon:
        slots.append(day)
        if until is not None and day >= until:
            break
        day += step
    done = _entered_slots(slots, [entry for entry in entries if entry > anchor])
    for index, day in enumerate(slots):
        yield kind, None, index + 1, day, index in done


def _end_and_follow_up(facts: PatientFacts, protocol: Protocol, last_day: date) -> Iterable[_Due]:
    ended = facts.end_of_treatment_on
    due = _end_of_treatment_due(facts, protocol.schedule)
    if ended is None:
        if due is not None:
            yield FormKind.END_OF_TREATMENT, None, None, due, False
        return
    yield FormKind.END_OF_TREATMENT, None, None, ended if due is None else due, True
    step = timedelta(weeks=protocol.expected_forms.follow_up_interval_weeks)
    yield from _repeated(FormKind.FOLLOW_UP, ended, step, facts.follow_up_days, last_day)


def _end_of_treatment_due(facts: PatientFacts, schedule: ScheduleSettings) -> date | None:
    """When the end-of-treatment form is due: after a complete course, or on the date of death
    before it (None: the course goes on)."""
    given = [cycle.given_on for cycle in facts.cycles if cycle.given_on is not None]
    after_course = None
    if _complete(facts):
        after_course = max(given, default=facts.randomized_on) + timedelta(
            weeks=schedule.eot_weeks_after_last_cycle
        )
    candidates = [day for day in (after_course, facts.died_on) if day is not None]
    return min(candidates, default=None)


def _complete(facts: PatientFacts) -> bool:
    """Whether the course is complete: stopped by the planner, or the arm's fixed cycles given."""
    given = sum(cycle.given_on is not None for cycle in facts.cycles)
    return facts.course_stopped or (facts.fixed_cycles is not None and given >= facts.fixed_cycles)


def _entered_slots(slots: Sequence[date], entries: Iterable[date]) -> set[int]:
    """Indices of the scheduled `slots` that an entry counts for: each entry the nearest slot
    (ties: the earlier)."""
    done = set()
    for entry in entries:
        if slots:
            done.add(min(range(len(slots)), key=lambda i: (abs((entry - slots[i]).days), i)))
    return done
