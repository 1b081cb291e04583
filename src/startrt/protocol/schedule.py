"""Visit calendar of one patient: PRRT cycles with windows, dosimetry imaging, labs, capecitabine.

Rules (START-01 protocol, NCT05387603; values come from the protocol file's [schedule] table):
- cycle 1 is due on its administered date if known, else on `first_cycle_date`; cycle n+1 is due
  `interval_weeks` after cycle n (its administered date if known, else its target date);
- a cycle's window is target +/- `window_weeks`; cycle 1 gets the same window around its date;
- every other visit is fixed to one day derived from its cycle's administered or target date
  (earliest == latest == target), because the protocol gives no tolerance for those visits;
- dates are calendar days; day 1 of a capecitabine course is the day of the PRRT cycle.
Recomputing with a moved cycle therefore moves every later visit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from startrt.validation import InvalidInputError

DAYS_PER_WEEK = 7
HOURS_PER_DAY = 24

ImagingHours = Annotated[float, Field(ge=0, allow_inf_nan=False)]
DaysAfterCycle = Annotated[int, Field(strict=True, ge=1)]


class ScheduleSettings(BaseModel):
    """Visit-calendar parameters of one protocol version (weeks, days and hours as named)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval_weeks: int = Field(strict=True, ge=1)
    window_weeks: int = Field(strict=True, ge=0)
    dosimetry_imaging_hours: tuple[ImagingHours, ...]
    pre_cycle_lab_days_before: int = Field(strict=True, ge=0)
    lab_check_days_after_cycle: tuple[DaysAfterCycle, ...]
    capecitabine_days: int = Field(strict=True, ge=1)
    capecitabine_cycle_days: int = Field(strict=True, ge=1)
    capecitabine_prrt_cycles: int = Field(strict=True, ge=1)
    eot_weeks_after_last_cycle: int = Field(strict=True, ge=1)

    @field_validator("dosimetry_imaging_hours", "lab_check_days_after_cycle")
    @classmethod
    def _strictly_increasing(cls, offsets: tuple[float, ...]) -> tuple[float, ...]:
        if any(later <= earlier for earlier, later in itertools.pairwise(offsets)):
            raise ValueError("must be strictly increasing")
        return offsets

    @model_validator(mode="after")
    def _fits_between_cycles(self) -> Self:
        """Refuse settings where a cycle's own visits could reach into the next cycle's window."""
        if self.window_weeks >= self.interval_weeks:
            raise InvalidInputError("window_weeks", self.window_weeks, "must be < interval_weeks")
        if self.capecitabine_days > self.capecitabine_cycle_days:
            raise InvalidInputError(
                "capecitabine_days", self.capecitabine_days, "must be <= capecitabine_cycle_days"
            )
        shortest_gap_days = (self.interval_weeks - self.window_weeks) * DAYS_PER_WEEK
        rule = f"must end before the earliest next cycle ({shortest_gap_days} days after a cycle)"
        imaging_hours = self.dosimetry_imaging_hours
        if imaging_hours and imaging_day_after_cycle(imaging_hours[-1]) >= shortest_gap_days:
            raise InvalidInputError("dosimetry_imaging_hours", imaging_hours, rule)
        if self.pre_cycle_lab_days_before >= shortest_gap_days:
            raise InvalidInputError(
                "pre_cycle_lab_days_before", self.pre_cycle_lab_days_before, rule
            )
        if self.capecitabine_cycle_days > shortest_gap_days:
            raise InvalidInputError("capecitabine_cycle_days", self.capecitabine_cycle_days, rule)
        return self


def imaging_day_after_cycle(hours_after_infusion: float) -> int:
    """Calendar day after the infusion (0 = infusion day) of an image taken at that many hours."""
    return math.floor(hours_after_infusion / HOURS_PER_DAY)


class VisitKind(StrEnum):
    """What happens at a visit; members are listed in the order visits on one day take place.
    The schedule plans the treatment visits; screening, randomization, tumour assessments and
    follow-up contacts are visits of the analysis dataset too (one vocabulary for both)."""

    SCREENING = "screening"
    RANDOMIZATION = "randomization"
    PRE_CYCLE_LAB = "pre_cycle_lab"
    LAB_CHECK = "lab_check"
    CYCLE = "cycle"
    CAPECITABINE_START = "capecitabine_start"
    DOSIMETRY_IMAGING = "dosimetry_imaging"
    CAPECITABINE_END = "capecitabine_end"
    END_OF_TREATMENT = "end_of_treatment"
    ASSESSMENT = "assessment"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True)
class Visit:
    """One visit; `done` and `administered_date` are set only for administered cycles."""

    kind: VisitKind
    cycle_number: int | None
    target_date: date
    earliest: date
    latest: date
    done: bool
    label: str
    administered_date: date | None = None

    @property
    def visit_date(self) -> date:
        """The day the visit took place (administered cycle) or is due (everything else)."""
        return self.administered_date or self.target_date


@dataclass(frozen=True)
class Schedule:
    """All visits of one patient, sorted by visit date, then same-day order of kind, then cycle."""

    visits: tuple[Visit, ...]

    def cycles(self) -> tuple[Visit, ...]:
        """The cycle visits, in cycle order."""
        return tuple(visit for visit in self.visits if visit.kind is VisitKind.CYCLE)

    def cycle(self, cycle_number: int) -> Visit:
        """The visit of cycle `cycle_number` (1-based)."""
        cycles = self.cycles()
        if isinstance(cycle_number, bool) or cycle_number not in range(1, len(cycles) + 1):
            raise InvalidInputError("cycle_number", cycle_number, f"must lie in 1..{len(cycles)}")
        return cycles[cycle_number - 1]

    def next_cycle(self) -> Visit | None:
        """The first cycle not yet administered, or None when all were."""
        return next((visit for visit in self.cycles() if not visit.done), None)


@dataclass(frozen=True)
class WindowCheck:
    """Whether a proposed date for a cycle lies in its window; days outside it (0 when inside)."""

    cycle_number: int
    proposed_date: date
    target_date: date
    earliest: date
    latest: date
    within: bool
    days_early: int
    days_late: int
    message: str


def build_schedule(
    settings: ScheduleSettings,
    *,
    first_cycle_date: date,
    planned_cycles: int,
    administered: Mapping[int, date] | None = None,
    with_capecitabine: bool,
) -> Schedule:
    """Visit calendar for `planned_cycles` cycles, following the administered dates known so far."""
    _require_date("first_cycle_date", first_cycle_date)
    if isinstance(planned_cycles, bool) or not isinstance(planned_cycles, int):
        raise InvalidInputError("planned_cycles", planned_cycles, "must be an integer")
    if planned_cycles < 1:
        raise InvalidInputError("planned_cycles", planned_cycles, "must be >= 1")
    if not isinstance(with_capecitabine, bool):
        raise InvalidInputError("with_capecitabine", with_capecitabine, "must be True or False")
    given = _validated_administered(administered or {}, planned_cycles)
    try:
        cycles = _cycle_visits(settings, first_cycle_date, planned_cycles, given)
        visits = [*cycles, _end_of_treatment(settings, cycles[-1])]
        for cycle in cycles:
            visits.extend(_cycle_follow_ups(settings, cycle, with_capecitabine))
    except OverflowError as error:
        raise InvalidInputError(
            "first_cycle_date", first_cycle_date, "the schedule runs outside years 1..9999"
        ) from error
    return Schedule(tuple(sorted(visits, key=_chronological_key)))


def cycle_window_check(schedule: Schedule, cycle_number: int, proposed: date) -> WindowCheck:
    """Check a proposed date for a cycle against the cycle's window (target +/- window)."""
    _require_date("proposed", proposed)
    cycle = schedule.cycle(cycle_number)
    days_early = max((cycle.earliest - proposed).days, 0)
    days_late = max((proposed - cycle.latest).days, 0)
    if days_early:
        position = f"is {_days(days_early)} before"
    elif days_late:
        position = f"is {_days(days_late)} after"
    else:
        position = "is within"
    message = (
        f"Cycle {cycle_number} on {proposed.isoformat()} {position} its window "
        f"{cycle.earliest.isoformat()} to {cycle.latest.isoformat()} "
        f"(target {cycle.target_date.isoformat()})."
    )
    return WindowCheck(
        cycle_number=cycle_number,
        proposed_date=proposed,
        target_date=cycle.target_date,
        earliest=cycle.earliest,
        latest=cycle.latest,
        within=not (days_early or days_late),
        days_early=days_early,
        days_late=days_late,
        message=message,
    )


def _require_date(field: str, value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInputError(field, value, "must be a calendar date (datetime.date)")
    return value


def _validated_administered(
    administered: Mapping[int, date], planned_cycles: int
) -> dict[int, date]:
    """Administered dates keyed by cycle: cycles 1..k without gaps, dates strictly increasing."""
    for number in administered:
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidInputError("administered", number, "keys must be cycle numbers (int)")
        if not 1 <= number <= planned_cycles:
            raise InvalidInputError(
                f"administered[{number}]", number, f"cycle must lie in 1..{planned_cycles}"
            )
    given: dict[int, date] = {}
    for number in sorted(administered):
        field = f"administered[{number}]"
        day = _require_date(field, administered[number])
        if number > 1 and number - 1 not in given:
            raise InvalidInputError(field, day, f"cycle {number - 1} has no administered date")
        if number > 1 and day <= given[number - 1]:
            raise InvalidInputError(
                field, day, f"must be after administered[{number - 1}] = {given[number - 1]}"
            )
        given[number] = day
    return given


def _cycle_visits(
    settings: ScheduleSettings,
    first_cycle_date: date,
    planned_cycles: int,
    administered: Mapping[int, date],
) -> list[Visit]:
    interval = timedelta(weeks=settings.interval_weeks)
    window = timedelta(weeks=settings.window_weeks)
    cycles: list[Visit] = []
    for number in range(1, planned_cycles + 1):
        if cycles:
            target = cycles[-1].visit_date + interval
        else:
            target = administered.get(1, first_cycle_date)
        actual = administered.get(number)
        cycles.append(
            Visit(
                kind=VisitKind.CYCLE,
                cycle_number=number,
                target_date=target,
                earliest=target - window,
                latest=target + window,
                done=actual is not None,
                label=f"Cycle {number}",
                administered_date=actual,
            )
        )
    return cycles


def _cycle_follow_ups(
    settings: ScheduleSettings, cycle: Visit, with_capecitabine: bool
) -> Iterator[Visit]:
    """Visits tied to one cycle, each a fixed number of days from its administered/target date."""
    number, anchor = cycle.cycle_number, cycle.visit_date
    yield _day_visit(
        VisitKind.PRE_CYCLE_LAB,
        number,
        anchor - timedelta(days=settings.pre_cycle_lab_days_before),
        f"Pre-cycle laboratory check for cycle {number}",
    )
    for hours in settings.dosimetry_imaging_hours:
        yield _day_visit(
            VisitKind.DOSIMETRY_IMAGING,
            number,
            anchor + timedelta(days=imaging_day_after_cycle(hours)),
            f"Dosimetry imaging {hours:g} h after cycle {number}",
        )
    for days in settings.lab_check_days_after_cycle:
        yield _day_visit(
            VisitKind.LAB_CHECK,
            number,
            anchor + timedelta(days=days),
            f"Laboratory check {days} days after cycle {number}",
        )
    if with_capecitabine and number is not None and number <= settings.capecitabine_prrt_cycles:
        last_day = settings.capecitabine_days
        yield _day_visit(
            VisitKind.CAPECITABINE_START, number, anchor, f"Capecitabine day 1 (cycle {number})"
        )
        yield _day_visit(
            VisitKind.CAPECITABINE_END,
            number,
            anchor + timedelta(days=last_day - 1),
            f"Capecitabine day {last_day}, last dose (cycle {number})",
        )


def _end_of_treatment(settings: ScheduleSettings, last_cycle: Visit) -> Visit:
    day = last_cycle.visit_date + timedelta(weeks=settings.eot_weeks_after_last_cycle)
    return _day_visit(VisitKind.END_OF_TREATMENT, None, day, "End of treatment")


def _day_visit(kind: VisitKind, cycle_number: int | None, day: date, label: str) -> Visit:
    """A visit fixed to one day: no window (earliest == latest == target)."""
    return Visit(kind, cycle_number, day, day, day, done=False, label=label)


def _chronological_key(visit: Visit) -> tuple[date, int, int]:
    return visit.visit_date, list(VisitKind).index(visit.kind), visit.cycle_number or 0


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"
