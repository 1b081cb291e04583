"""Each site's laboratory reference ranges, stored once instead of retyped on every panel: the
range of a test in force on a day, the panel limits they give (`<field>_lln` / `<field>_uln`,
prefilled into the lab form and still editable there), and setting them (an investigator or an
administrator of the site; each new range is a new, audited row; the same test and day again
replaces that day's row, audited as a change)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from startrt import fields
from startrt.clinical.ctcae import check_reference_limits
from startrt.validation import InvalidInputError
from startrt.web.treatment.changes import require_date
from startrt.web.treatment.lab_grades import GRADED_LABS
from startrt.web.treatment.models import SiteLabRange
from startrt.web.trial import audit
from startrt.web.trial.models import Role, Site
from startrt.web.trial.permissions import require_role

RANGE_SETTERS = (Role.INVESTIGATOR, Role.ADMINISTRATOR)


@dataclass(frozen=True)
class RangeEntry:
    """One test's reference range as entered (None: no limit on that side)."""

    test: str
    lower_limit: float | None
    upper_limit: float | None


def ranges_in_force(site: Site, day: date) -> dict[str, SiteLabRange]:
    """Each test's latest range of `site` valid on `day`, by test."""
    rows = SiteLabRange.objects.filter(site=site, valid_from__lte=day)
    return {row.test: row for row in rows.order_by("test", "valid_from", "id")}


def panel_limits(site: Site, day: date) -> dict[str, float]:
    """The limits a panel of `site` drawn on `day` is graded against, from the ranges in force:
    {"hemoglobin_g_l_lln": 134.0, "creatinine_umol_l_uln": 100.0, ...}."""
    limits = {}
    for test, row in ranges_in_force(site, day).items():
        side = GRADED_LABS[test][1]
        value = row.lower_limit if side == "lln" else row.upper_limit
        if value is not None:
            limits[f"{test}_{side}"] = value
    return limits


def _checked(entry: RangeEntry) -> RangeEntry:
    """The entry's limits as grading accepts them; the limit the test is graded against is
    required. Errors name `<test>_lln` / `<test>_uln`."""
    if entry.test not in GRADED_LABS:
        known = ", ".join(GRADED_LABS)
        raise InvalidInputError("test", entry.test, f"is not a graded laboratory test: {known}")
    term, side = GRADED_LABS[entry.test]
    try:
        lower, upper = check_reference_limits(term, lln=entry.lower_limit, uln=entry.upper_limit)
    except InvalidInputError as error:
        raise InvalidInputError(f"{entry.test}_{error.field}", error.value, error.rule) from None
    if (lower if side == "lln" else upper) is None:
        rule = f"required: {term.ctcae_term} is graded against it"
        raise InvalidInputError(f"{entry.test}_{side}", None, rule)
    return RangeEntry(entry.test, lower, upper)


@transaction.atomic
def set_lab_ranges(
    user: AbstractBaseUser, site: Site, entries: list[RangeEntry], *, valid_from: date
) -> list[SiteLabRange]:
    """Store the entries that differ from the site's ranges in force on `valid_from`, in force
    from that day; the rows written (each audited)."""
    require_role(user, site, *RANGE_SETTERS)
    day = require_date("valid_from", valid_from)
    in_force = ranges_in_force(site, day)
    written = []
    for entry in map(_checked, entries):
        current = in_force.get(entry.test)
        limits = (entry.lower_limit, entry.upper_limit)
        if current is not None and limits == (current.lower_limit, current.upper_limit):
            continue
        same_day = SiteLabRange.objects.select_for_update().filter(
            site=site, test=entry.test, valid_from=day
        )
        written.append(_write(user, site, entry, day, same_day.first()))
    return written


def _write(
    user: AbstractBaseUser, site: Site, entry: RangeEntry, day: date, same_day: SiteLabRange | None
) -> SiteLabRange:
    if same_day is None:
        row = SiteLabRange.objects.create(
            site=site,
            test=entry.test,
            lower_limit=entry.lower_limit,
            upper_limit=entry.upper_limit,
            unit=fields.meta(entry.test).unit,
            valid_from=day,
            set_by=user.get_username(),
        )
        audit.record(user, "insert", row, old=None, new=audit.snapshot(row))
        return row
    old = audit.snapshot(same_day)
    same_day.lower_limit, same_day.upper_limit = entry.lower_limit, entry.upper_limit
    same_day.set_by = user.get_username()
    same_day.save()
    label = fields.meta(entry.test).label
    reason = f"{label} range in force from {day.isoformat()} set again the same day"
    audit.record(user, "update", same_day, old=old, new=audit.snapshot(same_day), reason=reason)
    return same_day
