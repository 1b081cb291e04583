"""The windows a date entered in the web may lie in: one check per kind of date, used by the
services of `trial`, `treatment` and `events` (so the API, the pages and the demo get the same
refusals). The numbers are plausibility settings of `startrt.validation`; the trial start is
the effective date of the protocol's first version.

Rules (stated in the README's web section; each refusal names the field, the value and why):
- A date of something that happened (consent, screening, adverse event onset and resolution,
  tumour assessment, end of treatment, follow-up, progression, death) is not after today (UTC)
  + `FUTURE_TOLERANCE` (1 day: the date is "today" in some time zone), nor after the date of
  death where the death is recorded; an instant (a lab draw, an infusion) is not in the future.
- Nothing the trial records is before the trial start, except what screening reads from before
  it: the progression imaging and the SSTR PET at most `IMAGING_LOOKBACK_YEARS` (5) before the
  screening date (the protocol's windows are 1-24 months and 3 months: an older imaging is kept
  and fails its criterion), the end of earlier therapy at most the oldest plausible age (120
  years) before screening, a RECIST baseline at most `IMAGING_LOOKBACK_YEARS` before the trial
  start, and a lab panel at most the protocol's pre-cycle lab window (7 days) before it.
- Randomization first: follow-up is recorded only for randomized patients; a progression, the
  end of treatment and the death of a randomized patient are not before the randomization date.
- A planned start of treatment lies 0-`PLANNED_START_HORIZON_DAYS` (366) days after screening;
  a planned cycle date from the trial start to that many days after today.
- An infusion ends after it starts, at most `INFUSION_MAX_HOURS` (6 h) later.

Times are stored in UTC and shown to people in the time zone of the patient's site, from the
protocol's site list (`site_time`: "2026-03-01 15:05 CET"); a patient's pages run in that zone
(`pages.time_zones`), so "today" there is the site's day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from startrt.protocol.definition import default_protocol, protocol_versions
from startrt.protocol.screening import ScreeningRecord
from startrt.validation import (
    AGE_YEARS,
    FUTURE_TOLERANCE,
    IMAGING_LOOKBACK_YEARS,
    INFUSION_MAX_HOURS,
    PLANNED_START_HORIZON_DAYS,
    InvalidInputError,
    require_date_in,
    require_instant_in,
    years_before,
)
from startrt.web.trial.models import Patient, Site, Slot

TOLERANCE_DAYS = FUTURE_TOLERANCE.days


def trial_start() -> date:
    """The trial start: the effective date of the protocol's first version."""
    return protocol_versions().first.effective_date


def site_time_zone(site: Site) -> ZoneInfo:
    """The site's time zone, from the site list of the protocol version in force today."""
    return default_protocol().time_zone(site.name)


def site_time(moment: datetime | None, site: Site) -> str:
    """`moment` as the site's staff read it, with its zone's abbreviation: 2026-03-01 14:05 UTC
    -> "2026-03-01 15:05 CET" at a Swedish site (CEST in summer); None as a dash."""
    if moment is None:
        return "—"
    local = moment.astimezone(site_time_zone(site))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def latest_day() -> date:
    """The latest date of something that happened: today (UTC, or the site's day on a patient's
    page) + the time-zone tolerance."""
    return timezone.localdate() + FUTURE_TOLERANCE


def _until(death: date | None) -> tuple[date, str]:
    today = timezone.localdate()
    latest = latest_day()
    if death is not None and death < latest:
        return death, f"not after the date of death ({death})"
    return latest, f"not after today ({today}, + {TOLERANCE_DAYS} day for time zones)"


def require_happened(
    field: str,
    value: object,
    *,
    earliest: date | None = None,
    since: str = "",
    death: date | None = None,
) -> date:
    """A date of something that happened: from `earliest` (default the trial start; `since`
    says what it is) to today + the tolerance, and not after `death` when given."""
    if earliest is None:
        earliest, since = trial_start(), "the trial start"
    latest, until = _until(death)
    rule = f"not before {since} ({earliest}), {until}"
    return require_date_in(field, value, earliest, max(latest, earliest), rule)


def randomization_date(patient: Patient) -> date | None:
    """The day (UTC) the patient was randomized, None before randomization."""
    slot = Slot.objects.filter(patient=patient).exclude(allocated_at=None).first()
    return (
        None if slot is None or slot.allocated_at is None else timezone.localdate(slot.allocated_at)
    )


def require_randomized(patient: Patient, what: str) -> date:
    """The randomization date; refused (naming the patient) before randomization."""
    day = randomization_date(patient)
    if day is None:
        raise InvalidInputError("patient", patient.trial_id, f"is not randomized: no {what}")
    return day


def after_randomization(
    field: str, value: object, randomized_on: date, death: date | None = None
) -> date:
    """A date of something that happened on or after the randomization date."""
    return require_happened(
        field, value, earliest=randomized_on, since="the randomization date", death=death
    )


def check_screening_dates(record: ScreeningRecord) -> None:
    """The screening record's dates in their windows (the record itself orders them)."""
    screened = require_happened("screening_date", record.screening_date)
    oldest_age = int(AGE_YEARS.high)
    lookback = (
        ("progression_imaging_date", IMAGING_LOOKBACK_YEARS, "years of imaging read at screening"),
        ("sstr_pet_date", IMAGING_LOOKBACK_YEARS, "years of imaging read at screening"),
        ("prior_non_ssa_therapy_end_date", oldest_age, "years (the oldest plausible age)"),
    )
    for field, years, what in lookback:
        value = getattr(record, field)
        if value is not None:
            earliest = years_before(screened, years)
            rule = f"at most {years} {what} before the screening date, not after it"
            require_date_in(field, value, earliest, screened, rule)
    start = record.planned_start_date
    if start is not None:
        latest = screened + timedelta(days=PLANNED_START_HORIZON_DAYS)
        rule = f"0-{PLANNED_START_HORIZON_DAYS} days after the screening date"
        require_date_in("planned_start_date", start, screened, latest, rule)


def check_imaging_date(field: str, value: date, death: date | None) -> date:
    """A tumour assessment's time point: a baseline may precede the trial start by the imaging
    lookback; none is after today (+ tolerance) or the date of death."""
    earliest = years_before(trial_start(), IMAGING_LOOKBACK_YEARS)
    since = f"{IMAGING_LOOKBACK_YEARS} years before the trial start"
    return require_happened(field, value, earliest=earliest, since=since, death=death)


def _instant(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def check_lab_draw(value: object) -> datetime:
    """A lab panel's draw: not before the trial start minus the protocol's pre-cycle lab window,
    not in the future."""
    days = protocol_versions().first.schedule.pre_cycle_lab_days_before
    earliest = _instant(trial_start() - timedelta(days=days))
    rule = f"not before the trial start less the {days}-day pre-cycle lab window, not in the future"
    return require_instant_in("drawn_at", value, earliest, timezone.now(), rule)


def check_planned_date(field: str, value: object) -> date:
    """A planned date (a cycle): from the trial start to PLANNED_START_HORIZON_DAYS after today."""
    latest = timezone.localdate() + timedelta(days=PLANNED_START_HORIZON_DAYS)
    rule = f"not before the trial start, at most {PLANNED_START_HORIZON_DAYS} days after today"
    return require_date_in(field, value, trial_start(), latest, rule)


def check_infusion(start: object, end: object) -> tuple[datetime, datetime]:
    """An infusion: both instants from the trial start to now; the end after the start, at
    most INFUSION_MAX_HOURS later."""
    earliest, now = _instant(trial_start()), timezone.now()
    rule = f"not before the trial start ({trial_start()}), not in the future"
    begun = require_instant_in("infusion_start", start, earliest, now, rule)
    ended = require_instant_in("infusion_end", end, earliest, now, rule)
    longest = timedelta(hours=INFUSION_MAX_HOURS)
    if not begun < ended <= begun + longest:
        raise InvalidInputError(
            "infusion_end",
            ended.isoformat(),
            f"must be after infusion_start ({begun.isoformat()}) and at most "
            f"{INFUSION_MAX_HOURS:g} hours later (the longest plausible infusion)",
        )
    return begun, ended
