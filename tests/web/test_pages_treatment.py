"""The treatment page: rendered for the site's users, 404 for another site's user, only the
physicist decides on the planner's proposal (a nurse gets 403), the cumulative kidney dose
drawn server-side as an SVG polyline with the protocol's limit line; the signed release and its
lock, rescheduling against the window, corrections of administration and dosimetry."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.web.treatment import services
from startrt.web.treatment.models import Cycle, PlanProposal
from startrt.web.trial.models import Patient
from web.test_treatment import PASSWORD, Sites, Staff, give, labs_go, planned_cycle, randomized


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    return randomized(team, sites, 1)


def test_the_page_renders_for_the_sites_users(
    client: Client, team: Staff, patient: Patient
) -> None:
    for role in ("nurse", "investigator", "physicist", "pharmacist", "monitor"):
        page = signed_in(Client(), team[role]).get("/patients/S01-LUN-001/treatment/")
        assert page.status_code == 200, role
        html = page.content.decode()
        assert 'id="schedule"' in html
        assert 'id="kidney"' in html  # the kidney-dose panel (its chart once a dose is in)
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
    assert (accepted.status_code, accepted["Location"]) == (
        302,
        "/patients/S01-LUN-001/treatment/cycles/1/#plan",
    )
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
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=4.0, right_kidney_dose_gy=5.0
    )
    html = signed_in(client, team["physicist"]).get("/patients/S01-LUN-001/treatment/")
    svg = re.search(r"<svg id=\"kidney-dose\".*?</svg>", html.content.decode(), re.S)
    assert svg is not None
    assert re.search(r'<polyline points="[\d., ]+"', svg.group())
    assert 'class="limit"' in svg.group()
    page = html.content.decode()
    assert "Administered" in page
    cycle_page = signed_in(client, team["physicist"]).get(f"{PAGE}cycles/1/").content.decode()
    assert "lot LU-2025-17" in cycle_page


PAGE = "/patients/S01-LUN-001/treatment/"
CYCLE_PAGE = "/patients/S01-LUN-001/treatment/cycles/1"


def test_the_release_is_signed_with_the_password_and_locks_the_cycle(
    team: Staff, patient: Patient
) -> None:
    cycle = planned_cycle(team, patient)
    labs_go(team, cycle)
    investigator = signed_in(Client(), team["investigator"])
    wrong = investigator.post(
        f"{CYCLE_PAGE}/release/", {"expected_version": "1", "password": "guess"}
    )
    assert wrong.status_code == 422
    assert "is not the password of investigator.lund" in wrong.content.decode()
    assert Cycle.objects.get(pk=cycle.pk).released_by == ""
    right = investigator.post(
        f"{CYCLE_PAGE}/release/", {"expected_version": "1", "password": PASSWORD}
    )
    assert (right.status_code, right["Location"]) == (302, f"{CYCLE_PAGE}/#release")
    html = investigator.get(right["Location"]).content.decode()
    assert "Cycle 1 released, signed by you." in html
    assert "Release signed: the plan (date, activity, cancellation) is locked" in html
    # the labs' grades: platelets 210 >= LLN 145 -> grade 0
    assert re.search(
        r"<td>Platelets \(10⁹/L\)</td><td>210</td><td>LLN 145</td><td>Platelet count decreased</td>"
        r'<td class="grade">0</td>',
        html,
    )
    move = {"expected_version": "2", "planned_date": "2025-03-20", "reason": "scanner down"}
    locked = investigator.post(f"{CYCLE_PAGE}/reschedule/", move)
    assert locked.status_code == 409
    assert "unlock the signature" in locked.content.decode()
    unlocked = investigator.post(
        f"{CYCLE_PAGE}/release/unlock/", {"reason": "scanner down", "password": PASSWORD}
    )
    assert unlocked.status_code == 302
    assert investigator.post(f"{CYCLE_PAGE}/reschedule/", move).status_code == 302
    cycle.refresh_from_db()
    assert (cycle.planned_date.isoformat(), cycle.released_by) == ("2025-03-20", "")


def test_a_reschedule_outside_the_window_is_refused_unless_confirmed(
    team: Staff, patient: Patient
) -> None:
    planned_cycle(team, patient)
    investigator = signed_in(Client(), team["investigator"])
    move = {"expected_version": "1", "planned_date": "2025-04-07", "reason": "patient ill"}
    refused = investigator.post(f"{CYCLE_PAGE}/reschedule/", move)
    assert refused.status_code == 422
    assert "is 7 days after its window 2025-03-03 to 2025-03-31" in refused.content.decode()
    confirmed = investigator.post(f"{CYCLE_PAGE}/reschedule/", {**move, "accept_deviation": "on"})
    assert confirmed.status_code == 302
    html = investigator.get(f"{CYCLE_PAGE}/").content.decode()
    assert "Protocol deviation: Cycle 1 on 2025-04-07 is 7 days after its window" in html
    cancelled = investigator.post(f"{CYCLE_PAGE}/cancel/", {"expected_version": "1", "reason": "x"})
    assert cancelled.status_code == 409  # loaded before the reschedule
    assert "Reload the page" in cancelled.content.decode()


def test_corrections_of_administration_and_dosimetry_through_the_page(
    team: Staff, patient: Patient
) -> None:
    cycle = give(team, planned_cycle(team, patient), 7.4)
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=4.0, right_kidney_dose_gy=5.0
    )
    proposal = services.propose_next_cycle(team["physicist"], patient)
    nurse = signed_in(Client(), team["nurse"])
    html = nurse.get(f"{CYCLE_PAGE}/").content.decode()
    assert "Correct the administration" in html
    assert 'name="lot" value="LU-2025-17"' in html  # the form starts from the recorded values
    recorded = {
        "expected_version": str(cycle.version),
        "activity_gbq": "7.4",
        "lot": "LU-2025-17",
        "infusion_start": "2025-03-17T09:00",
        "infusion_end": "2025-03-17T09:30",
        "inpatient_days": "2",
    }
    url = f"{CYCLE_PAGE}/administration/"
    no_reason = nurse.post(url, recorded)
    assert no_reason.status_code == 422
    assert "A correction of an administration needs a reason" in no_reason.content.decode()
    assert nurse.post(url, {**recorded, "reason": "stay recorded"}).status_code == 302
    assert Cycle.objects.get(pk=cycle.pk).inpatient_days == 2.0

    physicist = signed_in(Client(), team["physicist"])
    corrected = {
        "left_kidney_dose_gy": "8",
        "right_kidney_dose_gy": "10",
        "imaging_sessions": "4",
        "expected_version": "1",
        "reason": "VOIs redrawn",
    }
    assert physicist.post(f"{CYCLE_PAGE}/dosimetry/", corrected).status_code == 302
    html = physicist.get(f"{CYCLE_PAGE}/").content.decode()
    assert "left kidney 8.00 Gy" in html
    assert "right kidney 10.00 Gy" in html
    assert "4 imaging sessions" in html
    html = physicist.get(f"{PAGE}cycles/2/").content.decode()
    assert "Superseded: the values it was computed from were corrected." in html
    proposal.refresh_from_db()
    assert proposal.status == PlanProposal.Status.SUPERSEDED
    stale = physicist.post(f"{CYCLE_PAGE}/dosimetry/", {**corrected, "left_kidney_dose_gy": "7"})
    assert stale.status_code == 409
