"""The treatment page: rendered for the site's users, 404 for another site's user, only the
physicist decides on the planner's proposal (a nurse gets 403), and the cumulative kidney dose
is drawn server-side as an SVG polyline with the protocol's limit line."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.web.pages.treatment_views import kidney_dose_svg
from startrt.web.treatment import services
from startrt.web.treatment.models import Cycle, PlanProposal
from startrt.web.trial.models import Patient
from web.test_treatment import Sites, Staff, give, planned_cycle, randomized, team

__all__ = ["team"]  # the fixture, used by name


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    return randomized(team, sites, 1)


def test_the_page_renders_for_the_sites_users(
    client: Client, team: Staff, patient: Patient
) -> None:
    for role in ("nurse", "investigator", "physicist", "monitor"):
        page = signed_in(Client(), team[role]).get("/patients/S01-LUN-001/treatment/")
        assert page.status_code == 200, role
        html = page.content.decode()
        assert 'id="schedule"' in html
        assert 'id="kidney-dose"' in html
    linked = signed_in(client, team["nurse"]).get("/patients/S01-LUN-001/")
    assert 'href="/patients/S01-LUN-001/treatment/"' in linked.content.decode()


def test_another_sites_user_gets_404(client: Client, staff: Staff, patient: Patient) -> None:
    other = signed_in(client, staff["uppsala"])
    assert other.get("/patients/S01-LUN-001/treatment/").status_code == 404
    assert other.post("/patients/S01-LUN-001/treatment/propose/").status_code == 404


def test_a_nurse_may_not_accept_a_plan_but_the_physicist_may(
    client: Client, team: Staff, patient: Patient
) -> None:
    proposal = services.propose_next_cycle(team["physicist"], patient)
    url = f"/patients/S01-LUN-001/treatment/proposals/{proposal.pk}/accept/"
    data = {"expected_version": str(proposal.version)}
    assert signed_in(client, team["nurse"]).post(url, data).status_code == 403
    assert PlanProposal.objects.get(pk=proposal.pk).status == PlanProposal.Status.PROPOSED
    assert not Cycle.objects.filter(patient=patient).exists()
    accepted = signed_in(Client(), team["physicist"]).post(url, data)
    assert (accepted.status_code, accepted["Location"]) == (302, "/patients/S01-LUN-001/treatment/")
    assert PlanProposal.objects.get(pk=proposal.pk).status == PlanProposal.Status.ACCEPTED
    assert Cycle.objects.get(patient=patient, number=1).status == Cycle.Status.PLANNED


def test_an_override_without_reason_is_refused_with_422(
    client: Client, team: Staff, patient: Patient
) -> None:
    proposal = services.propose_next_cycle(team["physicist"], patient)
    url = f"/patients/S01-LUN-001/treatment/proposals/{proposal.pk}/override/"
    data = {"expected_version": str(proposal.version), "activity_gbq": "20", "reason": "x"}
    refused = signed_in(client, team["physicist"]).post(url, data)
    assert refused.status_code == 422
    assert "activity_gbq" in refused.content.decode()
    assert PlanProposal.objects.get(pk=proposal.pk).status == PlanProposal.Status.PROPOSED


def test_the_kidney_dose_svg_has_the_polyline_and_the_limit_line(
    client: Client, team: Staff, patient: Patient
) -> None:
    cycle = give(team, planned_cycle(team, patient), 7.4)
    services.record_dosimetry(team["physicist"], cycle, left_kidney_gy=4.0, right_kidney_gy=5.0)
    html = signed_in(client, team["physicist"]).get("/patients/S01-LUN-001/treatment/")
    svg = re.search(r"<svg id=\"kidney-dose\".*?</svg>", html.content.decode(), re.S)
    assert svg is not None
    assert re.search(r'<polyline points="[\d., ]+"', svg.group())
    assert 'class="limit"' in svg.group()
    assert "limit 30.0 Gy" in svg.group()
    page = html.content.decode()
    assert "administered" in page
    assert "LU-2025-17" in page


def test_svg_coordinates() -> None:
    # limit 30 Gy, top of the scale 1.2 * 30 = 36 Gy over 200 - 2*30 = 140 px:
    # y(30) = 170 - 140 * 30 / 36 = 53.33; y(18) = 170 - 70 = 100; x(2) = 30 + 340 * 2 / 4 = 200
    chart = kidney_dose_svg([(1, 9.0), (2, 18.0)], 30.0)
    assert chart["limit_y"] == pytest.approx(53.333, abs=1e-3)
    assert chart["points"] == "30.0,170.0 115.0,135.0 200.0,100.0"
