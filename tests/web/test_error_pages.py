"""403, 404 and 500 pages inside the site's layout (header, stylesheet, a way back), saying what
happened, never Django's bare "403 Forbidden" (issue 14, item 5)."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from startrt.web.treatment import services
from startrt.web.trial.models import Patient
from web.test_pages_treatment import signed_in
from web.test_treatment import Sites, Staff, randomized

LAYOUT = ("startrt · START-01", "pages/startrt.css")


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    return randomized(team, sites, 1)


def test_a_role_that_may_not_act_gets_the_403_page(team: Staff, patient: Patient) -> None:
    proposal = services.propose_next_cycle(team["physicist"], patient)
    url = f"/patients/S01-LUN-001/treatment/proposals/{proposal.pk}/accept/"
    response = signed_in(Client(), team["nurse"]).post(url, {"expected_version": "1"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "Not allowed" in html
    assert "Nothing was changed" in html
    assert all(part in html for part in LAYOUT)
    assert "Back to the patient list" in html


def test_another_sites_patient_gets_the_404_page(staff: Staff, patient: Patient) -> None:
    response = signed_in(Client(), staff["uppsala"]).get("/patients/S01-LUN-001/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Not found" in html
    assert "another site" in html
    assert "S01-LUN-001" not in html  # nothing of the other site's patient
    assert all(part in html for part in LAYOUT)


def test_the_500_page_renders_in_the_layout_without_a_request_context() -> None:
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert all(part in html for part in LAYOUT)
