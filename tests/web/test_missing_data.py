"""The missing-data report and the worklist's event forms, on a hand-built history.

Two dTOC patients at Lund randomized on 2025-03-03, cycle 1 given on 2025-03-17 (labs 'go' on
03-10). Dates by hand (START-01 v1.0, 14 grace days), looking from 2025-06-30:
- S01-LUN-001: dosimetry entered; lab checks drawn 03-31 and 04-28 (checks 1 and 3 of 03-31,
  04-14, 04-28); cycle 2 planned 10 weeks after cycle 1, on 2025-05-26. Missing: lab check 2
  (due 04-14, 77 days overdue), pre-cycle labs of cycle 2 (05-19, 42), tumour assessment 1
  (12 weeks after randomization: 05-26, 35), administration of cycle 2 (planned + 2 weeks:
  06-09, 21).
- S01-LUN-002: died on 2025-04-01, no dosimetry, no lab check. Missing: dosimetry of cycle 1
  (day 7: 03-24, 98), lab check 1 (03-31, 91), the end of treatment (on the date of death:
  04-01, 90); nothing due after the death.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from startrt.web.events import services as events
from startrt.web.pages.missing_data import missing_of, with_entries
from startrt.web.treatment import services
from startrt.web.trial.models import Patient
from startrt.web.trial.services import current_protocol
from web.test_treatment import GOOD_LABS, Sites, Staff, at, give, planned_cycle, randomized
from web.test_worklist import items_of, signed_in, tasks

TODAY = date(2025, 6, 30)
RANDOMIZED = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def randomized_on_march_3(team: Staff, sites: Sites, number: int) -> Patient:
    with time_machine.travel(RANDOMIZED, tick=False):
        return randomized(team, sites, number)


@pytest.fixture
def history(team: Staff, sites: Sites) -> list[Patient]:
    first = randomized_on_march_3(team, sites, 1)
    cycle = give(team, planned_cycle(team, first), 7.5)
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=4.2, right_kidney_dose_gy=3.9
    )
    for day in (date(2025, 3, 31), date(2025, 4, 28)):
        services.record_labs(team["nurse"], first, GOOD_LABS, drawn_at=at(day))
    assert planned_cycle(team, first).planned_date == date(2025, 5, 26)
    second = randomized_on_march_3(team, sites, 2)
    give(team, planned_cycle(team, second), 7.5)
    events.record_death(
        team["investigator"],
        second,
        {"date": "2025-04-01", "cause": "Myocardial infarction", "related_to_treatment": False},
    )
    return [first, second]


def missing_rows(patients: list[Patient], today: date = TODAY) -> list[tuple[str, str, str, int]]:
    queryset = with_entries(Patient.objects.filter(pk__in=[p.pk for p in patients]))
    return [
        (m.patient.trial_id, m.form.label, m.form.due.isoformat(), m.form.days_overdue)
        for m in missing_of(queryset, current_protocol(), today)
    ]


def test_exactly_these_forms_are_missing(history: list[Patient]) -> None:
    assert missing_rows(history) == [
        ("S01-LUN-001", "Laboratory check 2 after cycle 1", "2025-04-14", 77),
        ("S01-LUN-001", "Pre-cycle labs, cycle 2", "2025-05-19", 42),
        ("S01-LUN-001", "Tumour assessment 1", "2025-05-26", 35),
        ("S01-LUN-001", "Administration, cycle 2", "2025-06-09", 21),
        ("S01-LUN-002", "Dosimetry, cycle 1", "2025-03-24", 98),
        ("S01-LUN-002", "Laboratory check 1 after cycle 1", "2025-03-31", 91),
        ("S01-LUN-002", "End of treatment", "2025-04-01", 90),
    ]
    # the administration of cycle 2 is missing from 2025-06-24 (15 days past its due day)
    on_grace_end = [row[1] for row in missing_rows(history, date(2025, 6, 23))]
    assert "Administration, cycle 2" not in on_grace_end


def test_entering_a_form_removes_it(team: Staff, history: list[Patient]) -> None:
    first = history[0]
    cycle_2 = first.cycles.get(number=2)
    services.record_labs(
        team["nurse"], first, GOOD_LABS, drawn_at=at(date(2025, 5, 20)), cycle=cycle_2
    )
    services.record_labs(team["nurse"], first, GOOD_LABS, drawn_at=at(date(2025, 4, 15)))
    assert [row[1] for row in missing_rows([first])] == [
        "Tumour assessment 1",
        "Administration, cycle 2",
    ]


def test_links_lead_to_where_each_form_is_entered(history: list[Patient]) -> None:
    queryset = with_entries(Patient.objects.filter(pk__in=[p.pk for p in history]))
    urls = {m.form.label: m.url for m in missing_of(queryset, current_protocol(), TODAY)}
    assert urls["Pre-cycle labs, cycle 2"] == "/patients/S01-LUN-001/treatment/cycles/2/"
    assert urls["Laboratory check 2 after cycle 1"] == "/patients/S01-LUN-001/treatment/"
    assert urls["Tumour assessment 1"] == "/patients/S01-LUN-001/events/#tumour-assessment"
    assert urls["End of treatment"] == "/patients/S01-LUN-002/events/#end-of-treatment"


def test_worklists_list_assessments_and_the_end_of_treatment(
    team: Staff, history: list[Patient]
) -> None:
    expected = [
        ("S01-LUN-002", "Enter end of treatment", "2025-04-01", 90),
        ("S01-LUN-001", "Enter tumour assessment 1", "2025-05-26", 35),
    ]
    for role, title in (("nurse", "Research nurse"), ("investigator", "Investigator")):
        listed = tasks(items_of(team[role], TODAY, title))
        assert [t for t in listed if t[1].startswith("Enter ") and "labs" not in t[1]] == expected
    # due today: a task already, not yet missing in the report
    assert ("S01-LUN-001", "Enter tumour assessment 1", "2025-05-26", 0) in tasks(
        items_of(team["nurse"], date(2025, 5, 26), "Research nurse")
    )
    assert items_of(team["uppsala"], TODAY, "Investigator") == []
    overview = tasks(items_of(team["monitor"], TODAY, "Overdue at every site (read-only overview)"))
    assert [t for t in overview if t[1] == "Enter end of treatment"] == [expected[0]]  # once


def test_report_page_for_monitors_statisticians_and_the_site(
    team: Staff, history: list[Patient]
) -> None:
    for role in ("monitor", "statistician", "nurse"):
        page = signed_in(team[role]).get("/missing-data/")
        html = page.content.decode()
        assert page.status_code == 200
        assert "By site" in html
        assert (
            '<a href="/patients/S01-LUN-002/events/#end-of-treatment">End of treatment</a>' in html
        )
        assert "<td>2025-04-01</td>" in html
        assert "more than 14 days have passed since its due day" in html
    lund = signed_in(team["monitor"]).get("/missing-data/?site=LUN&kind=end_of_treatment")
    html = lund.content.decode()
    assert '<tr><th scope="row">Lund</th><td>1</td><td>1</td></tr>' in html
    assert "Tumour assessment 1" not in html
    assert "By patient (1 missing)" in html


def test_report_refusals(team: Staff, history: list[Patient]) -> None:
    other_site = signed_in(team["uppsala"]).get("/missing-data/").content.decode()
    assert "S01-LUN-001" not in other_site
    assert "No missing forms." in other_site
    nobody = User.objects.create_user("no.role", password="x")
    assert signed_in(nobody).get("/missing-data/").status_code == 403
    anonymous = Client().get("/missing-data/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")


def _report_queries(user: User) -> int:
    client = signed_in(user)
    client.get("/missing-data/")  # session and protocol caches warmed
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/missing-data/").status_code == 200
    return len(queries)


def test_report_queries_do_not_grow_with_patients(team: Staff, sites: Sites) -> None:
    for number in (1, 2):
        give(team, planned_cycle(team, randomized_on_march_3(team, sites, number)), 7.5)
    with_two = _report_queries(team["monitor"])
    for number in range(3, 21):
        give(team, planned_cycle(team, randomized_on_march_3(team, sites, number)), 7.5)
    assert _report_queries(team["monitor"]) == with_two
    assert with_two <= 15
