"""The demo's SAE reports after the simulated trial: the first two serious adverse events the
virtual trial entered (when it entered fewer, a febrile neutropenia with hospitalisation is
reported by the nurse 10 days after the first cycle of randomized patients alive, the usual
nadir) are reported to the safety desk through the services, at trial times:
the site is aware of each when its nurse entered the event; the first is reported on time (20 h
later) with a follow-up 6 days on, the second late (30 h later: late by 6 h). Each report's
e-mail is written to the data folder's `mail/` (the file backend). The SAE listing then shows
one report on time, one late, and the other serious events still without an SAE report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from startrt.demo.virtual_trial import Clock, SiteTeam
from startrt.protocol.definition import default_protocol
from startrt.web.events import services as events
from startrt.web.events.models import AdverseEvent
from startrt.web.safety import services
from startrt.web.treatment.models import Cycle
from startrt.web.trial.models import AuditEntry, Patient

ON_TIME_HOURS, LATE_HOURS, FOLLOW_UP_DAYS = 20, 30, 6
NADIR_DAYS = 10
CASES = 2
INITIAL_NARRATIVE = (
    "Admitted to the ward with the event the day it was entered; supportive care started. "
    "Relevant history: progressive NET under PRRT in the trial."
)
FOLLOW_UP_NARRATIVE = "Discharged; the event is resolving. Next follow-up when it has resolved."


@dataclass(frozen=True)
class SaeReports:
    """What the demo reported: SAE cases, reports on time and late, follow-ups."""

    cases: int
    on_time: int
    late: int
    follow_ups: int


def report_saes(teams: dict[str, SiteTeam], clock: Clock) -> SaeReports:
    """Report the first two serious adverse events (`teams` by site name; `clock(moment)` makes
    the services see `moment` as now)."""
    picks = _serious_events(teams, clock)
    follow_ups = 0
    for index, event in enumerate(picks):
        team = teams[event.patient.site.name]
        entered = AuditEntry.objects.get(
            table=AdverseEvent._meta.db_table, row_id=str(event.pk), action="insert"
        )
        aware = entered.at
        with clock(aware + timedelta(hours=1)):
            case = services.open_case(team.nurse, event, aware)
        hours = ON_TIME_HOURS if index == 0 else LATE_HOURS
        with clock(aware + timedelta(hours=hours)):
            services.submit_initial_report(team.investigator, case, INITIAL_NARRATIVE)
        if index == 0:
            with clock(aware + timedelta(days=FOLLOW_UP_DAYS)):
                services.submit_follow_up(team.investigator, case, FOLLOW_UP_NARRATIVE)
            follow_ups += 1
    return SaeReports(len(picks), min(len(picks), 1), max(len(picks) - 1, 0), follow_ups)


def _serious_events(teams: dict[str, SiteTeam], clock: Clock) -> list[AdverseEvent]:
    serious = AdverseEvent.objects.filter(serious=True).select_related("patient__site")
    picks = list(serious.order_by("onset_date", "pk")[:CASES])
    treated = (
        Patient.objects.filter(allocation__isnull=False, death__isnull=True)
        .filter(cycles__status=Cycle.Status.ADMINISTERED)
        .exclude(adverse_events__serious=True)
        .select_related("site", "allocation")
        .distinct()
        .order_by("pk")
    )
    for patient in treated[: CASES - len(picks)]:
        first = patient.cycles.filter(status=Cycle.Status.ADMINISTERED).order_by("number")[0]
        onset = first.infusion_start.date() + timedelta(days=NADIR_DAYS)
        capecitabine = default_protocol().arm(patient.allocation.treatment_arm).capecitabine
        data = {
            "term": "Febrile neutropenia",
            "ctcae_grade": 3,
            "onset_date": onset.isoformat(),
            "serious": True,
            "seriousness_criteria": ["hospitalisation"],
            "attribution_prrt": "possible",
            "attribution_capecitabine": "possible" if capecitabine else "not_applicable",
            "outcome": "recovering",
        }
        with clock(datetime.combine(onset, time(16), UTC)):
            nurse = teams[patient.site.name].nurse
            picks.append(events.report_adverse_event(nurse, patient, data))
    return picks
