"""The audit trail for people (issue 14, item 9): each entry names its record as people know it,
its fields by their labels, old -> new formatted, the reason, who (name and role) and when in
the site's time zone (Europe/Stockholm for START-01); filters by record, field, user and days;
signatures name the record they sign. Expected strings written by hand."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone

from startrt.web.pages.time_zones import SiteTimeZoneMiddleware
from startrt.web.treatment.models import Cycle
from startrt.web.trial.audit import Change, for_people
from startrt.web.trial.dates import site_time
from startrt.web.trial.models import AuditEntry, Patient, Site
from web.test_treatment import (
    Sites,
    Staff,
    give,
    labs_go,
    planned_cycle,
    randomized,
    release,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
WINTER = datetime(2025, 3, 12, 8, 0, tzinfo=UTC)  # 09:00 CET
SUMMER_LATE = datetime(2025, 6, 15, 23, 30, tzinfo=UTC)  # 2025-06-16 01:30 CEST


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


@pytest.fixture
def released(team: Staff, sites: Sites) -> Patient:
    """A dTOC patient registered in winter whose first cycle is released late on a summer
    evening (UTC), already the next day in Stockholm."""
    with time_machine.travel(WINTER, tick=False):
        patient = randomized(team, sites, 1)
        cycle = planned_cycle(team, patient)
        labs_go(team, cycle)
    with time_machine.travel(SUMMER_LATE, tick=False):
        release(team["investigator"], cycle)
    return patient


def trail(client: Client, query: str = "") -> str:
    response = client.get(f"/patients/S01-LUN-001/audit/{query}")
    assert response.status_code == 200
    return visible(response.content.decode())


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (datetime(2026, 1, 15, 13, 5, tzinfo=UTC), "2026-01-15 14:05 CET"),  # UTC+1
        (datetime(2026, 7, 1, 13, 5, tzinfo=UTC), "2026-07-01 15:05 CEST"),  # UTC+2
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "2026-03-29 01:59 CET"),  # the hour before
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29 03:00 CEST"),  # summer time
        (None, "—"),
    ],
)
def test_times_are_shown_in_the_sites_time_zone(moment: datetime | None, shown: str) -> None:
    assert site_time(moment, Site(name="Lund")) == shown


def test_an_entry_names_its_record_fields_who_and_local_time(
    client: Client, team: Staff, released: Patient
) -> None:
    client.force_login(team["monitor"])
    text = trail(client, "?table=treatment_cycle")
    # the release: late on 15 June in UTC, 16 June in Stockholm
    assert "2025-06-16 01:30 CEST investigator.lund (Investigator) Cycle 1 Changed" in text
    assert "Released at: — → 2025-06-16 01:30 CEST" in text
    assert "Released by: — → investigator.lund" in text
    team["nurse"].first_name, team["nurse"].last_name = "Anna", "Berg"
    team["nurse"].save()
    everything = trail(client)
    assert "2025-03-12 09:00 CET Anna Berg (Research nurse) Patient Entered" in everything
    assert "Lab panel of cycle 1" in everything
    assert "Haemoglobin (g/L): 128" in everything
    for raw in ("treatment_cycle", "trial_patient", "{'", "#", "UTC", "None", "True"):
        assert raw not in everything, raw


def test_the_trail_filters_by_record_field_user_and_local_days(
    client: Client, team: Staff, released: Patient
) -> None:
    client.force_login(team["monitor"])
    records = {row.record for row, _ in client.get("/patients/S01-LUN-001/audit/").context["rows"]}
    assert {"Patient", "Screening", "Cycle 1", "Lab panel of cycle 1"} <= records

    def shown(query: str) -> list[tuple[str, str]]:
        rows = client.get(f"/patients/S01-LUN-001/audit/?{query}").context["rows"]
        return [(row.record, row.action) for row, _ in rows]

    assert shown("field=platelets_10e9_l") == [
        ("Screening", "Entered"),
        ("Lab panel of cycle 1", "Entered"),
    ]
    assert ("Cycle 1", "Changed") in shown("username=investigator.lund")
    assert all(
        row.entry.username == "investigator.lund"
        for row, _ in client.get("/patients/S01-LUN-001/audit/?username=investigator.lund").context[
            "rows"
        ]
    )
    # the release is on 16 June in Stockholm (15 June 23:30 UTC)
    release = {("Cycle 1", "Changed"), ("Signature of cycle 1", "Entered")}
    assert set(shown("since=2025-06-16")) == release
    assert set(shown("since=2025-06-16&until=2025-06-16")) == release
    assert release.isdisjoint(shown("until=2025-06-15"))
    assert shown("since=2025-06-17") == []
    page = client.get("/patients/S01-LUN-001/audit/").content.decode()
    assert '<option value="treatment_labpanel">Lab panel</option>' in page
    assert '<option value="platelets_10e9_l">Platelets (10⁹/L)</option>' in page


def test_signatures_name_the_record_they_sign(
    client: Client, team: Staff, released: Patient
) -> None:
    client.force_login(team["investigator"])
    page = client.get("/patients/S01-LUN-001/").content.decode()
    signatures = visible(page[page.index('id="signatures"') :])
    assert "Cycle 1 responsibility" in signatures
    assert "treatment.cycle" not in signatures
    assert "2025-06-16 01:30 CEST" in signatures


def test_an_entry_for_people_from_its_stored_values(db: None) -> None:
    entry = AuditEntry(
        username="nurse.lund",
        action="update",
        table="trial_screening",
        row_id="1",
        old={"id": 1, "patient": 1, "record": {"ecog": 0, "weight_kg": 78.0}, "version": 1},
        new={"id": 1, "patient": 1, "record": {"ecog": 1, "weight_kg": 78.0}, "version": 2},
        reason="ECOG re-assessed",
    )
    shown = for_people(entry, STOCKHOLM)
    assert (shown.record, shown.action) == ("Screening", "Changed")
    assert shown.changes == (Change("ECOG", "0", "1"), Change("Version", "1", "2"))


def test_stored_times_lists_and_choices_read_as_text(db: None) -> None:
    entry = AuditEntry(
        username="physicist.lund",
        action="insert",
        table="treatment_planproposal",
        row_id="",
        old=None,
        new={
            "status": "proposed",
            "proposed_at": "2025-07-01T10:00:00Z",
            "plan": {
                "predicted_cumulative_kidney_gy_interval": [19.20851, 21.0049],
                "probability_over_limit": 0.00671,
                "action": "full_cycle",
            },
        },
    )
    changes = {change.label: change.new for change in for_people(entry, STOCKHOLM).changes}
    assert changes == {
        "Status": "Proposed",
        "Proposed at": "2025-07-01 12:00 CEST",
        "Predicted cumulative kidney dose, 90 % interval (Gy)": "19.21; 21.00",
        "Probability over the limit": "0.007",
        "Action": "Full cycle",
    }


def test_a_patients_pages_run_in_the_sites_time_zone(team: Staff, sites: Sites) -> None:
    randomized(team, sites, 1)
    seen: list[str] = []

    def page(request: HttpRequest) -> HttpResponse:
        middleware.process_view(request, page, (), request.resolver_kwargs)  # type: ignore[attr-defined]
        seen.append(timezone.get_current_timezone_name())
        return HttpResponse()

    middleware = SiteTimeZoneMiddleware(page)
    for path, kwargs in [
        ("/patients/S01-LUN-001/", {"trial_id": "S01-LUN-001"}),
        ("/", {}),
        ("/api/patients/S01-LUN-001", {"trial_id": "S01-LUN-001"}),
        ("/patients/S01-XXX-999/", {"trial_id": "S01-XXX-999"}),
    ]:
        request = RequestFactory().get(path)
        request.resolver_kwargs = kwargs  # type: ignore[attr-defined]
        middleware(request)
        assert timezone.get_current_timezone_name() == "UTC"  # deactivated after the page
    assert seen == ["Europe/Stockholm", "UTC", "UTC", "UTC"]


def test_a_time_typed_on_a_patients_page_is_the_sites_local_time(
    client: Client, team: Staff, sites: Sites
) -> None:
    cycle = give(team, planned_cycle(team, randomized(team, sites, 1)), 7.4)
    assert cycle.infusion_start == datetime(2025, 3, 17, 9, 0, tzinfo=UTC)
    client.force_login(team["nurse"])
    page = "/patients/S01-LUN-001/treatment/cycles/1/"
    html = client.get(page).content.decode()
    assert 'name="infusion_start" value="2025-03-17 10:00"' in html  # 09:00 UTC, in CET
    corrected = {
        "expected_version": str(cycle.version),
        "activity_gbq": "7.4",
        "lot": "LU-2025-17",
        "infusion_start": "2025-03-17 10:30",  # Stockholm time
        "infusion_end": "2025-03-17 11:00",
        "reason": "infusion started later",
    }
    assert client.post(f"{page}administration/", corrected).status_code == 302
    cycle = Cycle.objects.get(pk=cycle.pk)
    assert cycle.infusion_start == datetime(2025, 3, 17, 9, 30, tzinfo=UTC)
    assert cycle.infusion_end == datetime(2025, 3, 17, 10, 0, tzinfo=UTC)
