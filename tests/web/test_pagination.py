"""Pagination: API lists take limit/offset and keep their bare-list body (total in X-Total-Count,
neighbours in a Link header); the patient list and audit trail pages come in pages of
settings.PAGE_SIZE rows with their filters kept in the page links."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.web.trial import services
from startrt.web.trial.audit import Change
from startrt.web.trial.models import AuditEntry, Patient, Site
from support.records import eligible_screening

Staff = dict[str, User]


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def five_lund_patients(staff: Staff, sites: dict[str, Site]) -> list[Patient]:
    """S01-LUN-001..005; 001 screened, then re-screened with a reason."""
    patients = [
        services.register_patient(staff["nurse"], sites["Lund"], f"S01-LUN-{n:03d}", "male")
        for n in range(1, 6)
    ]
    services.record_screening(staff["nurse"], patients[0], eligible_screening(ecog=0))
    services.record_screening(
        staff["nurse"], patients[0], eligible_screening(), reason="ECOG 1", expected_version=1
    )
    return patients


def ids(response: Any) -> list[str]:
    return [patient["trial_id"] for patient in response.json()]


# --- API ---------------------------------------------------------------------------------------


def test_api_lists_come_in_pages_with_the_total_in_a_header(
    staff: Staff, five_lund_patients: list[Patient]
) -> None:
    nurse = signed_in(staff["nurse"])
    everything = nurse.get("/api/patients")  # as before pagination: the bare list, all of it
    assert ids(everything) == [f"S01-LUN-00{n}" for n in range(1, 6)]
    assert everything["X-Total-Count"] == "5"
    assert "Link" not in everything

    first = nurse.get("/api/patients?limit=2")
    assert ids(first) == ["S01-LUN-001", "S01-LUN-002"]
    assert first["X-Total-Count"] == "5"
    assert first["Link"] == '</api/patients?limit=2&offset=2>; rel="next"'
    middle = nurse.get("/api/patients?limit=2&offset=2")
    assert ids(middle) == ["S01-LUN-003", "S01-LUN-004"]
    assert middle["Link"] == (
        '</api/patients?limit=2&offset=0>; rel="prev", </api/patients?limit=2&offset=4>; rel="next"'
    )
    last = nurse.get("/api/patients?limit=2&offset=4")
    assert (ids(last), last["Link"]) == (
        ["S01-LUN-005"],
        '</api/patients?limit=2&offset=2>; rel="prev"',
    )
    beyond = nurse.get("/api/patients?offset=10")
    assert (beyond.json(), beyond["X-Total-Count"]) == ([], "5")
    # another site's user: nothing, and no count that would reveal Lund's patients
    uppsala = signed_in(staff["uppsala"]).get("/api/patients")
    assert (uppsala.json(), uppsala["X-Total-Count"]) == ([], "0")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),  # NINJA_PAGINATION_MAX_LIMIT
        ("offset=-1", "offset"),
        ("offset=1000000000000000000000", "offset"),
        ("limit=two", "limit"),
    ],
)
def test_out_of_range_pages_are_refused_naming_the_parameter(
    staff: Staff, five_lund_patients: list[Patient], query: str, field: str
) -> None:
    response = signed_in(staff["nurse"]).get(f"/api/patients?{query}")
    assert (response.status_code, response.json()["field"]) == (422, field)


def test_a_patients_audit_trail_and_decisions_are_paginated(
    staff: Staff, five_lund_patients: list[Patient]
) -> None:
    nurse = signed_in(staff["nurse"])
    url = "/api/patients/S01-LUN-001/audit"
    entries = AuditEntry.objects.filter(patient_trial_id="S01-LUN-001").order_by("at", "id")
    # patient, screening + decision, screening update + decision
    assert entries.count() == 5
    page = nurse.get(f"{url}?limit=2&offset=3")
    assert [(e["action"], e["table"]) for e in page.json()] == [
        ("update", "trial_screening"),
        ("insert", "trial_decision"),
    ]
    assert (page["X-Total-Count"], page["Link"]) == (
        "5",
        f'<{url}?limit=2&offset=1>; rel="prev"',
    )
    decisions = nurse.get("/api/patients/S01-LUN-001/decisions?limit=1")
    assert (len(decisions.json()), decisions["X-Total-Count"]) == (1, "2")
    assert signed_in(staff["uppsala"]).get(f"{url}?limit=1").status_code == 404


# --- pages -------------------------------------------------------------------------------------


def test_the_patient_list_comes_in_pages_and_keeps_its_filters(
    settings: Any, staff: Staff, sites: dict[str, Site], five_lund_patients: list[Patient]
) -> None:
    settings.PAGE_SIZE = 2
    services.register_patient(staff["uppsala"], sites["Uppsala"], "S01-UPP-001", "female")
    monitor = signed_in(staff["monitor"])
    first = monitor.get("/")
    assert [p.trial_id for p in first.context["page"]] == ["S01-LUN-001", "S01-LUN-002"]
    html = first.content.decode()
    assert "page 1 of 3 · 6 rows" in html
    assert 'href="?page=2"' in html
    last = monitor.get("/?page=3")
    assert [p.trial_id for p in last.context["page"]] == ["S01-LUN-005", "S01-UPP-001"]
    assert [p.trial_id for p in monitor.get("/?page=99").context["page"]] == [
        "S01-LUN-005",
        "S01-UPP-001",
    ]  # past the end: the last page
    assert monitor.get("/?page=x").context["page"].number == 1

    lund = monitor.get("/?site=LUN&q=lun-00")
    assert lund.context["page"].paginator.count == 5
    assert 'href="?site=LUN&amp;q=lun-00&amp;page=2"' in lund.content.decode()
    second = monitor.get("/?site=LUN&q=lun-00&page=2")
    assert [p.trial_id for p in second.context["page"]] == ["S01-LUN-003", "S01-LUN-004"]
    assert monitor.get("/?q=UPP").context["page"].paginator.count == 1
    nothing = monitor.get("/?q=S01-GOT")
    assert "No patient matches the filter." in nothing.content.decode()
    # a site the user does not see is no filter choice: the whole (visible) list, flagged
    nurse = signed_in(staff["nurse"])
    foreign = nurse.get("/?site=UPP")
    assert foreign.context["filters"].errors["site"]
    assert foreign.context["page"].paginator.count == 5
    assert "S01-UPP-001" not in foreign.content.decode()


def test_the_audit_trail_page_comes_in_pages_and_keeps_its_filters(
    settings: Any, staff: Staff, five_lund_patients: list[Patient]
) -> None:
    settings.PAGE_SIZE = 2
    nurse = signed_in(staff["nurse"])
    url = "/patients/S01-LUN-001/audit/"
    first = nurse.get(url)
    assert first.context["page"].paginator.count == 5
    assert [row.record for row, _ in first.context["rows"]] == ["Patient", "Screening"]
    third = nurse.get(f"{url}?page=3")
    assert [row.record for row, _ in third.context["rows"]] == ["Eligibility decision"]

    decisions = nurse.get(f"{url}?table=trial_decision")
    assert decisions.context["page"].paginator.count == 2
    updates = nurse.get(f"{url}?table=trial_screening&action=update")
    ((row, _),) = updates.context["rows"]
    assert (row.entry.reason, Change("ECOG", "0", "1") in row.changes) == ("ECOG 1", True)
    inserts = nurse.get(f"{url}?action=insert")
    assert inserts.context["page"].paginator.count == 4
    assert 'href="?action=insert&amp;page=2"' in inserts.content.decode()
    assert nurse.get(f"{url}?action=insert&page=2").context["page"].number == 2
