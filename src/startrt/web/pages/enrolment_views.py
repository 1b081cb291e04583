"""The enrolment dashboard (/enrolment/): accrual over time by site and in total against the
protocol's accrual plan (`protocol.accrual`), screened / eligible / randomized per site, screen
failures by failing criterion, and randomized patients per stratum (`protocol.enrolment`);
each figure drawn server-side as SVG with a table of the same numbers beside it.

Who sees what (as the README's "Enrolment dashboard" states):
- every trial role may open the page; all-site roles (monitors, statisticians, all-site
  administrators) see every site, a site's staff (investigators, research nurses, physicists,
  pharmacists, a site's administrator) their own site(s) and the plan scaled to their sites'
  targets, as `permissions.visible_patients` scopes every other page; a user without a role
  is refused (403);
- no arm is shown to anyone, the statistician included: with permuted blocks the arms already
  allocated in a stratum tell the next allocation (`trial.concealment`), and a dashboard is
  read in meetings and copied into reports. Randomizations are counted per stratum only; the
  unblinded statistician reads arms per stratum from the list itself.

Dates: a randomization counts on its day in the site's time zone; "as of" is today at the
sites (the latest of their local dates).
Queries: a fixed number, whatever the number of patients (memberships, sites, screenings
grouped by site and verdict, randomized slots, the latest not-eligible decisions).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from startrt import fields
from startrt.protocol.accrual import AccrualPlan, AccrualStatus, accrual_status
from startrt.protocol.definition import Protocol
from startrt.protocol.enrolment import randomized_by_stratum, screen_failures
from startrt.web.pages.charts import (
    BarChart,
    BarRow,
    PlotFrame,
    Tick,
    bar_chart,
    month_ticks,
    nice_axis,
    value_ticks,
)
from startrt.web.trial.models import Membership, Patient, Screening, Site, Slot
from startrt.web.trial.screen_failures import latest_failing_decisions
from startrt.web.trial.services import current_protocol

# the accrual chart's view box and plot area (px); the legend sits under the x axis' title
WIDTH = 720
LEFT, RIGHT, TOP, BOTTOM = 58, 690, 34, 274
LEGEND_TOP, LEGEND_ROW, LEGEND_COLUMN, LEGEND_PER_ROW = BOTTOM + 62, 22, 220, 3
# Okabe & Ito (2008) colours, told apart by colour-blind readers; dashes tell them apart in grey
SITE_STYLES = (
    ("#0072B2", ""),
    ("#D55E00", "8 3"),
    ("#009E73", "2 3"),
    ("#CC79A7", "10 3 2 3"),
    ("#E69F00", "4 4"),
    ("#56B4E9", "12 4"),
)
TOTAL_COLOR, PLAN_COLOR = "#1d2733", "#8c98a4"
COUNT = "randomized_patients"
Scale = Callable[[float], float]


@dataclass(frozen=True)
class Line:
    """One line of the accrual chart: a step line of randomizations, or a plan (wide, pale)."""

    name: str
    color: str
    dash: str
    width: float
    points: str
    title: str
    opacity: float = 1.0


@dataclass(frozen=True)
class LegendItem:
    x: float
    y: float
    line: Line


@dataclass(frozen=True)
class AccrualChart(PlotFrame):
    lines: tuple[Line, ...]  # plans first (under), then the randomizations
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    as_of_x: float
    as_of_text: str
    as_of_anchor: str
    legend: tuple[LegendItem, ...]
    aria_label: str
    height: float
    width: int = WIDTH
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM


@dataclass(frozen=True)
class SiteRow:
    """A site (or the total) on the dashboard: its counts and its accrual against its plan."""

    name: str
    screened: int
    eligible: int
    ineligible: int
    undecided: int
    randomized_on: tuple[date, ...]
    status: AccrualStatus | None

    @property
    def randomized(self) -> int:
        return len(self.randomized_on)


@dataclass(frozen=True)
class Scope:
    """The sites the user reads; `all_sites` for the all-site roles."""

    sites: tuple[Site, ...]
    all_sites: bool


def _scope(request: HttpRequest, protocol: Protocol) -> Scope:
    sites = list(Membership.objects.filter(user_id=request.user.pk).values_list("site", flat=True))
    if not sites:
        raise PermissionDenied("the enrolment dashboard needs a role in the trial")
    all_sites = None in sites
    rows = Site.objects.all() if all_sites else Site.objects.filter(pk__in=sites)
    order = {name: index for index, name in enumerate(protocol.sites)}
    ordered = sorted(rows, key=lambda site: (order.get(site.name, len(order)), site.name))
    return Scope(tuple(ordered), all_sites)


def _zone(protocol: Protocol, site: Site) -> ZoneInfo:
    return protocol.time_zone(site.name) if site.name in protocol.sites else ZoneInfo("UTC")


def _target(plan: AccrualPlan, protocol: Protocol, sites: Sequence[Site]) -> float:
    return sum(
        plan.site_target(site.name, protocol.sites) for site in sites if site.name in protocol.sites
    )


def _site_rows(
    protocol: Protocol, scope: Scope, as_of: date
) -> tuple[list[SiteRow], SiteRow, list[str]]:
    """Each site's row, the total's row, and the stratum label of every randomized patient."""
    verdicts: dict[int, Counter[bool | None]] = defaultdict(Counter)
    for row in (
        Screening.objects.filter(patient__site__in=scope.sites)
        .values("patient__site", "eligible")
        .annotate(n=Count("id"))
    ):
        verdicts[row["patient__site"]][row["eligible"]] += row["n"]
    days: dict[int, list[date]] = defaultdict(list)
    strata = []
    zones = {site.pk: _zone(protocol, site) for site in scope.sites}
    for site_id, stratum, allocated_at in Slot.objects.filter(
        patient__site__in=scope.sites, allocated_at__isnull=False
    ).values_list("patient__site", "stratum", "allocated_at"):
        days[site_id].append(allocated_at.astimezone(zones[site_id]).date())
        strata.append(stratum)
    plan = protocol.accrual

    def row(name: str, sites: Sequence[Site]) -> SiteRow:
        counted: Counter[bool | None] = sum((verdicts[s.pk] for s in sites), Counter())
        on = tuple(sorted(day for s in sites for day in days[s.pk]))
        status = (
            None
            if plan is None
            else accrual_status(plan, on, as_of, _target(plan, protocol, sites))
        )
        return SiteRow(
            name, counted.total(), counted[True], counted[False], counted[None], on, status
        )

    rows = [row(site.name, (site,)) for site in scope.sites]
    name = "All sites" if scope.all_sites else rows[0].name if len(rows) == 1 else "Your sites"
    total = row(name, scope.sites)
    return rows, total, strata


# --- the accrual chart ------------------------------------------------------------------------


def _styles(n: int) -> list[tuple[str, str]]:
    return [SITE_STYLES[index % len(SITE_STYLES)] for index in range(n)]


def _count(value: float) -> str:
    return fields.format_value(COUNT, value)


def _steps(
    days: Sequence[date], first: date, as_of: date, x: Callable[[date], float], y: Scale
) -> str:
    """A step line: 0 from `first`, up by one at each randomization day, flat to `as_of`."""
    points = [(x(first), y(0))]
    for index, day in enumerate(days, 1):
        if index == len(days) or days[index] != day:
            points += [(x(day), points[-1][1]), (x(day), y(index))]
    points.append((x(as_of), points[-1][1]))
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in points)


@dataclass(frozen=True)
class Planned:
    """A plan line to draw: its name, the patients it plans, its colour and dash."""

    name: str
    target: float
    color: str = PLAN_COLOR
    dash: str = ""


@dataclass(frozen=True)
class Drawn:
    """A step line to draw: whose randomizations, in which colour, dash and width."""

    row: SiteRow
    color: str
    dash: str
    width: float


def accrual_chart(
    plan: AccrualPlan, as_of: date, plans: Sequence[Planned], series: Sequence[Drawn]
) -> AccrualChart:
    """Cumulative randomizations (step lines) against plan lines, from the plan's start to its
    end or `as_of` if later; the y axis covers the highest target and count."""
    first, last = plan.start_date, max(plan.end_date, as_of)
    span = (last - first).days
    highest = max([*(p.target for p in plans), *(d.row.randomized for d in series)])
    top, step = nice_axis(highest)

    def x(day: date) -> float:
        return LEFT + (RIGHT - LEFT) * (max(day, first) - first).days / span

    def y(patients: float) -> float:
        return BOTTOM - (BOTTOM - TOP) * patients / top

    def plan_line(planned: Planned) -> Line:
        curve = [*plan.curve(planned.target), (last, float(planned.target))]
        points = " ".join(f"{x(day):.1f},{y(n):.1f}" for day, n in curve)
        title = f"{planned.name}: {_count(planned.target)} patients by {plan.end_date}"
        width, opacity = (
            (3, 1.0) if planned.dash else (5, 1.0 if planned.color == PLAN_COLOR else 0.35)
        )
        return Line(planned.name, planned.color, planned.dash, width, points, title, opacity)

    def step_line(drawn: Drawn) -> Line:
        row = drawn.row
        points = _steps(row.randomized_on, first, as_of, x, y)
        title = f"{row.name}: {row.randomized} randomized by {as_of}"
        return Line(row.name, drawn.color, drawn.dash, drawn.width, points, title)

    lines = (*map(plan_line, plans), *map(step_line, series))
    legend = tuple(
        LegendItem(
            LEFT + LEGEND_COLUMN * (index % LEGEND_PER_ROW),
            LEGEND_TOP + LEGEND_ROW * (index // LEGEND_PER_ROW),
            line,
        )
        for index, line in enumerate(lines)
    )
    as_of_x = x(as_of)
    summary = "; ".join(
        f"{d.row.name} {d.row.randomized} (planned {_count(d.row.status.planned)} of "
        f"{_count(d.row.status.target_patients)})"
        for d in series
        if d.row.status
    )
    return AccrualChart(
        lines=lines,
        x_ticks=tuple(Tick(x(day), f"{day:%Y-%m}") for day in month_ticks(first, last)),
        y_ticks=value_ticks(top, step, y),
        as_of_x=as_of_x,
        as_of_text=f"As of {as_of}",
        as_of_anchor="end" if as_of_x > RIGHT - 60 else "middle",
        legend=legend,
        aria_label=(
            f"Cumulative randomized patients from {first} to {as_of} against the plan "
            f"(to {plan.end_date}): {summary}. The table beside the figure gives the numbers."
        ),
        height=LEGEND_TOP + LEGEND_ROW * -(-len(lines) // LEGEND_PER_ROW),
    )


def total_chart(plan: AccrualPlan, total: SiteRow, as_of: date) -> AccrualChart:
    """The total against its plan (the trial's 300, or the user's sites' share)."""
    target = total.status.target_patients if total.status else plan.target_patients
    planned = Planned(f"Plan, {total.name}", target)
    return accrual_chart(plan, as_of, [planned], [Drawn(total, TOTAL_COLOR, "", 2.5)])


def sites_chart(plan: AccrualPlan, rows: Sequence[SiteRow], as_of: date) -> AccrualChart:
    """Each site against its plan: one line when every site has the same target, else each
    site's plan pale in the site's colour."""
    styles = _styles(len(rows))
    targets = {row.status.target_patients for row in rows if row.status}
    if len(targets) == 1:
        (share,) = targets
        plans = [Planned(f"Plan per site ({_count(share)} patients)", share, dash="7 4")]
    else:
        plans = [
            Planned(f"Plan, {row.name}", row.status.target_patients, color)
            for row, (color, _) in zip(rows, styles, strict=True)
            if row.status
        ]
    series = [Drawn(row, color, dash, 2) for row, (color, dash) in zip(rows, styles, strict=True)]
    return accrual_chart(plan, as_of, plans, series)


def over_time(
    plan: AccrualPlan, rows: Sequence[SiteRow], target: float | None, as_of: date
) -> list[tuple[date, str, tuple[int, ...]]]:
    """A figure's numbers at each of its date ticks before `as_of`, and at `as_of`: the date,
    the plan for `target` patients ("" for none), and each row's randomized patients."""
    ticks = month_ticks(plan.start_date, max(plan.end_date, as_of))
    return [
        (
            day,
            "" if target is None else _count(plan.planned(day, target)),
            tuple(sum(on <= day for on in row.randomized_on) for row in rows),
        )
        for day in (*(tick for tick in ticks if tick < as_of), as_of)
    ]


# --- the page ---------------------------------------------------------------------------------


def _funnel_chart(rows: Sequence[SiteRow]) -> BarChart:
    groups = [
        (
            row.name,
            [
                BarRow("Screened", row.screened),
                BarRow("Eligible", row.eligible),
                BarRow("Randomized", row.randomized),
            ],
        )
        for row in rows
    ]
    text = "; ".join(
        f"{row.name}: {row.screened} screened, {row.eligible} eligible, {row.randomized} randomized"
        for row in rows
    )
    return bar_chart(
        groups, "Patients", f"Patients screened, eligible and randomized by site. {text}."
    )


@require_http_methods(["GET"])
@login_required
def enrolment(request: HttpRequest) -> HttpResponse:
    protocol = current_protocol()
    scope = _scope(request, protocol)
    now = timezone.now()
    as_of = max(
        (now.astimezone(_zone(protocol, site)).date() for site in scope.sites), default=now.date()
    )
    rows, total, strata_labels = _site_rows(protocol, scope, as_of)
    plan = protocol.accrual
    scoped = Patient.objects.filter(site__in=scope.sites)
    failures = screen_failures(latest_failing_decisions(scoped).values())
    strata = randomized_by_stratum(protocol, [site.name for site in scope.sites], strata_labels)
    by_site: dict[str | None, list[BarRow]] = defaultdict(list)
    for stratum in strata:
        by_site[stratum.site].append(BarRow(stratum.within_site, stratum.randomized))
    targets = {row.status.target_patients for row in rows if row.status}
    total_target = None if total.status is None else total.status.target_patients
    site_share = next(iter(targets)) if len(targets) == 1 else None
    context = {
        "protocol": protocol,
        "plan": plan,
        "as_of": as_of,
        "rows": rows,
        "total": total,
        "several": len(rows) > 1,
        "chart": None if plan is None else total_chart(plan, total, as_of),
        "sites_chart": None if plan is None or len(rows) < 2 else sites_chart(plan, rows, as_of),
        "total_numbers": [] if plan is None else over_time(plan, [total], total_target, as_of),
        "sites_numbers": [] if plan is None else over_time(plan, rows, site_share, as_of),
        "funnel": _funnel_chart([*rows, total] if len(rows) > 1 else rows),
        "failures": failures,
        "reason_total": sum(reason.patients for reason in failures.reasons),
        "failure_chart": bar_chart(
            [("", [BarRow(r.reason, r.patients) for r in failures.reasons])],
            "Patients failing the criterion",
            "Screen failures by failing criterion: "
            + "; ".join(f"{r.reason} {r.patients}" for r in failures.reasons),
        )
        if failures.reasons
        else None,
        "strata": strata,
        "strata_chart": bar_chart(
            [(site or "", bars) for site, bars in by_site.items()],
            "Randomized patients",
            "Randomized patients per stratum: "
            + "; ".join(f"{s.text} {s.randomized}" for s in strata),
        ),
    }
    return render(request, "pages/enrolment.html", context)
