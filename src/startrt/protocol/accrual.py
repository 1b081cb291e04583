"""The accrual plan (the protocol file's `[accrual]`) and accrual against it.

The plan: `target_patients` randomized over `months` from `start_date`. The planned rate is
constant, or rises linearly from 0 over the first `ramp_up_months` (sites opening one by one)
and is constant after; with T the accrual period and R the ramp-up (days), N the target and t
the days since the start, the planned cumulative accrual is

    N(t) = r t² / (2R)         for 0 <= t < R
    N(t) = r (t - R/2)         for R <= t <= T,   r = N / (T - R/2) per day
    N(t) = N                   after T            (R = 0: N t / T, uniform accrual)

as the piecewise-linear recruitment curves of Carter (2004, Control Clin Trials 25:429) and
the uniform accrual of sample-size formulas (Lachin & Foulkes 1986, Biometrics 42:507; the
simulation's `trial.accrual_months`). A site's plan is the same curve scaled to the site's
target: `site_targets` when the file states them, else an equal share of N.

The projected completion date assumes the mean rate observed since the start goes on
(a homogeneous Poisson process, Carter 2004): with n randomized by day t (t > 0, 0 < n < N),
rate = n / t per day and completion = as_of + ceil((N - n) / rate) days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from startrt.protocol.screening import DAYS_PER_MONTH
from startrt.validation import InvalidInputError


class AccrualPlan(BaseModel):
    """The `[accrual]` section: how many patients are randomized by when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_patients: int = Field(strict=True, ge=1, le=100_000)
    start_date: date = Field(strict=True)
    months: float = Field(gt=0, le=240)
    ramp_up_months: float = Field(default=0.0, ge=0)
    # patients per site; absent: an equal share of target_patients for every site
    site_targets: dict[str, int] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AccrualPlan:
        if self.ramp_up_months >= self.months:
            raise ValueError("ramp_up_months must be shorter than months")
        if self.site_targets is not None:
            if min(self.site_targets.values(), default=0) < 0:
                raise ValueError("site_targets must not be negative")
            if sum(self.site_targets.values()) != self.target_patients:
                raise ValueError("site_targets must add up to target_patients")
        return self

    def check_sites(self, sites: Sequence[str]) -> None:
        """Refuse (ValueError, for the protocol's validation) site targets that do not name
        exactly the protocol's sites."""
        if self.site_targets is not None and set(self.site_targets) != set(sites):
            raise ValueError(f"accrual.site_targets must name each of the sites {list(sites)}")

    @property
    def period_days(self) -> float:
        return self.months * DAYS_PER_MONTH

    @property
    def end_date(self) -> date:
        """The planned last day of accrual (the start + `months` of 365.25 / 12 days)."""
        return self.start_date + timedelta(days=round(self.period_days))

    def site_target(self, site: str, sites: Sequence[str]) -> float:
        """Patients planned at `site`, one of the protocol's `sites`."""
        if site not in sites:
            raise InvalidInputError("site", site, f"not one of the sites {list(sites)}")
        if self.site_targets is None:
            return self.target_patients / len(sites)
        return float(self.site_targets[site])

    def planned(self, day: date, target: float | None = None) -> float:
        """Planned cumulative accrual on `day` (the formula above), for the whole trial or
        scaled to `target` patients (a site's or a group of sites' share)."""
        total = self.target_patients if target is None else target
        t = (day - self.start_date).days
        period, ramp = self.period_days, self.ramp_up_months * DAYS_PER_MONTH
        if t <= 0:
            return 0.0
        if t >= period:
            return float(total)
        rate = total / (period - ramp / 2)
        return rate * t * t / (2 * ramp) if t < ramp else rate * (t - ramp / 2)

    def curve(self, target: float | None = None) -> tuple[tuple[date, float], ...]:
        """The planned cumulative accrual to draw: the start, every 30 days of a ramp-up (a
        curve), and the end (straight between)."""
        ramp_days = math.ceil(self.ramp_up_months * DAYS_PER_MONTH)
        days = [*range(0, ramp_days, 30), ramp_days] if ramp_days else [0]
        moments = [self.start_date + timedelta(days=d) for d in days] + [self.end_date]
        return tuple((moment, self.planned(moment, target)) for moment in sorted(set(moments)))


@dataclass(frozen=True)
class AccrualStatus:
    """Accrual on `as_of` against the plan for `target_patients` (the trial's or a site's).

    `rate_per_month` is the mean since the start; `projected_completion` the date the target
    is reached at that rate (None with no patient yet), or the day it was reached."""

    as_of: date
    target_patients: float
    randomized: int
    planned: float
    rate_per_month: float | None
    projected_completion: date | None
    reached: bool

    @property
    def percent_of_plan(self) -> float | None:
        return None if self.planned == 0 else 100 * self.randomized / self.planned


def accrual_status(
    plan: AccrualPlan,
    randomized_on: Iterable[date],
    as_of: date,
    target: float | None = None,
) -> AccrualStatus:
    """Accrual by `as_of` from the randomization dates (those after it are not counted)
    against `plan` (scaled to `target` patients if given), with the projection of the module
    docstring. A day before the plan's start, or a randomization before it, is refused."""
    if as_of < plan.start_date:
        raise InvalidInputError("as_of", as_of.isoformat(), f"before {plan.start_date}")
    days = sorted(day for day in randomized_on if day <= as_of)
    if days and days[0] < plan.start_date:
        raise InvalidInputError(
            "randomized_on", days[0].isoformat(), f"before the accrual start {plan.start_date}"
        )
    total = float(plan.target_patients if target is None else target)
    n = len(days)
    elapsed = (as_of - plan.start_date).days
    rate = n / elapsed if elapsed > 0 and n > 0 else None
    reached = n >= total > 0
    projected: date | None = None
    if reached:
        projected = days[math.ceil(total) - 1]
    elif rate is not None and total > 0:
        projected = as_of + timedelta(days=math.ceil((total - n) / rate))
    return AccrualStatus(
        as_of=as_of,
        target_patients=total,
        randomized=n,
        planned=plan.planned(as_of, total),
        rate_per_month=None if rate is None else rate * DAYS_PER_MONTH,
        projected_completion=projected,
        reached=reached,
    )
