"""The demo's SAE reports (`startrt.demo.safety`) on three serious adverse events of Lund
patients, entered at known times: by hand, the first two (by onset) are reported, the first on
time (20 h after entry) with one follow-up, the second late by 6 h; the third stays without a
case. Each report's e-mail is written (locmem outbox here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from django.core import mail

from startrt.demo.safety import report_saes
from startrt.demo.virtual_trial import SiteTeam
from startrt.web.events import services as events
from startrt.web.safety import services as safety
from startrt.web.safety.models import SeriousAdverseEvent
from web.test_events import adverse_event
from web.test_treatment import FIRST_CYCLE, Sites, Staff, give, planned_cycle, randomized

ENTERED = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@contextmanager
def at(moment: datetime) -> Iterator[None]:
    with time_machine.travel(moment, tick=False):
        yield


def test_two_serious_events_reported_one_on_time_with_a_follow_up_one_late(
    team: Staff, sites: Sites, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with at(ENTERED):
        patients = [randomized(team, sites, number) for number in (1, 2)]
        for onset, patient in (("2026-03-01", patients[1]), ("2026-02-27", patients[0])):
            serious = adverse_event(
                term="Febrile neutropenia",
                onset_date=onset,
                ctcae_grade=3,
                resolved_date=None,
                serious=True,
                seriousness_criteria=["hospitalisation"],
                outcome="recovering",
            )
            events.report_adverse_event(team["nurse"], patient, serious)
        third = {**serious, "onset_date": "2026-03-02"}
        events.report_adverse_event(team["nurse"], patients[0], third)
    lund = SiteTeam(team["nurse"], team["investigator"], team["physicist"], team["pharmacist"])
    with django_capture_on_commit_callbacks(execute=True):
        reports = report_saes({"Lund": lund}, at)
    assert reports == type(reports)(cases=2, on_time=1, late=1, follow_ups=1)
    first, second = SeriousAdverseEvent.objects.order_by("adverse_event__onset_date")
    assert first.patient.trial_id == "S01-LUN-001"
    assert first.aware_at == ENTERED
    with at(datetime(2026, 3, 20, tzinfo=UTC)):
        one, two = safety.case_status(first), safety.case_status(second)
    assert (one.initial.on_time, one.follow_ups) == (True, 1)
    assert (two.initial.on_time, two.initial.hours_late, two.follow_ups) == (False, 6, 0)
    assert len(mail.outbox) == 3  # two initial reports and one follow-up
    assert all(report.notified_at for case in (first, second) for report in case.reports.all())


def test_without_serious_events_the_demo_reports_a_febrile_neutropenia_after_cycle_1(
    team: Staff, sites: Sites
) -> None:
    patient = randomized(team, sites, 1)  # dTOC: no capecitabine
    give(team, planned_cycle(team, patient), 7.5)  # on FIRST_CYCLE, 2025-03-17
    lund = SiteTeam(team["nurse"], team["investigator"], team["physicist"], team["pharmacist"])
    reports = report_saes({"Lund": lund}, at)
    assert reports == type(reports)(cases=1, on_time=1, late=0, follow_ups=1)
    case = SeriousAdverseEvent.objects.select_related("adverse_event").get()
    event = case.adverse_event
    assert (event.term, event.onset_date, event.attribution_capecitabine) == (
        "Febrile neutropenia",
        FIRST_CYCLE + timedelta(days=10),
        "not_applicable",
    )
    assert case.aware_at == datetime(2025, 3, 27, 16, 0, tzinfo=UTC)
