"""The page per cycle: each role sees only the actions it may take at the cycle's step (and the
services refuse every other one with 403); a POST redirects to the changed section with a
success message in the page's status region; the overview is a summary linking each cycle.

Steps of cycle 1 (dTOC, 7.5 GBq planned 2025-03-17), the buttons each role is given, by hand:
no proposal: propose for physicist and investigator; proposed: accept (and override, folded)
for the physicist; planned: labs for nurse and investigator, reschedule and cancel (folded)
for the investigator; labs 'go': the release too; released: the administration for nurse and
investigator, the unlock (folded) for the investigator; administered: dosimetry and study
upload for the physicist; with dosimetry: the next plan for physicist and investigator.
Pharmacist, monitor and statistician: no button at any step."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.web.pages.treatment_views import ACTION_ROLES, allowed_actions
from startrt.web.treatment import services
from startrt.web.treatment.models import Cycle, PlanProposal
from startrt.web.trial.models import Patient
from startrt.web.trial.permissions import roles_at
from web.test_treatment import (
    GOOD_LABS,
    PASSWORD,
    Sites,
    Staff,
    accepted,
    at,
    labs_go,
    randomized,
    release,
)

PAGE = "/patients/S01-LUN-001/treatment/"
CYCLE_1 = f"{PAGE}cycles/1/"
ROLES = ("nurse", "investigator", "physicist", "pharmacist", "monitor", "statistician")
NONE: set[str] = set()


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def buttons(html: str) -> set[str]:
    """The names of the submit buttons in the page's main content (not the header's sign-out)."""
    main = re.split(r"<main[^>]*>", html, maxsplit=1)[1]
    return set(re.findall(r'<button type="submit" name="(\w+)"', main))


def buttons_by_role(team: Staff, url: str) -> dict[str, set[str]]:
    pages = {role: signed_in(team[role]).get(url) for role in ROLES}
    assert {role: page.status_code for role, page in pages.items()} == dict.fromkeys(ROLES, 200)
    return {role: buttons(page.content.decode()) for role, page in pages.items()}


def expected(**by_role: set[str]) -> dict[str, set[str]]:
    return {role: by_role.get(role, NONE) for role in ROLES}


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    return randomized(team, sites, 1)


def test_each_role_sees_only_its_actions_at_each_step(team: Staff, patient: Patient) -> None:
    assert buttons_by_role(team, CYCLE_1) == expected(
        physicist={"propose"}, investigator={"propose"}
    )
    proposal = services.propose_next_cycle(team["physicist"], patient)
    assert buttons_by_role(team, CYCLE_1) == expected(physicist={"accept", "override"})

    cycle = accepted(team, proposal)
    planned = {"reschedule", "cancel"}
    assert buttons_by_role(team, CYCLE_1) == expected(
        nurse={"labs"}, investigator={"labs", *planned}
    )
    labs_go(team, cycle)
    assert buttons_by_role(team, CYCLE_1) == expected(
        nurse={"labs"}, investigator={"labs", "release", *planned}
    )
    cycle = release(team["investigator"], cycle)
    assert buttons_by_role(team, CYCLE_1) == expected(
        nurse={"administer"}, investigator={"administer", "unlock_release", *planned}
    )
    cycle = services.record_administration(
        team["nurse"],
        cycle,
        activity_gbq=7.4,
        lot="LU-2025-17",
        infusion_start=at(cycle.planned_date),
        infusion_end=at(cycle.planned_date, 9, 30),
        expected_version=cycle.version,
    )
    assert buttons_by_role(team, CYCLE_1) == expected(
        nurse={"administer"},
        investigator={"administer"},
        physicist={"dosimetry", "upload_study"},
    )
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=4.0, right_kidney_dose_gy=5.0
    )
    assert buttons_by_role(team, CYCLE_1) == expected(
        nurse={"administer"},
        investigator={"administer", "propose"},
        physicist={"dosimetry", "upload_study", "propose"},
    )


def test_the_next_step_names_who_takes_it(team: Staff, patient: Patient) -> None:
    cycle = accepted(team, services.propose_next_cycle(team["physicist"], patient))
    nurse = signed_in(team["nurse"]).get(CYCLE_1).content.decode()
    assert "Next step: <strong>Enter the pre-cycle labs.</strong>" in nurse
    assert "(you: Research nurse or Investigator)" in nurse
    monitor = signed_in(team["monitor"]).get(CYCLE_1).content.decode()
    assert "(Research nurse or Investigator)" in monitor
    labs_go(team, cycle)
    investigator = signed_in(team["investigator"]).get(CYCLE_1).content.decode()
    assert "Release the cycle, signed with your password." in investigator
    assert "(you: Investigator)" in investigator
    nurse = signed_in(team["nurse"]).get(CYCLE_1).content.decode()
    assert '<details class="correction"><summary>Repeat the pre-cycle labs' in nurse  # folded
    assert '<details class="correction reschedule-cycle">' in investigator
    assert " open>" not in investigator


@pytest.mark.parametrize("role", ROLES)
def test_the_services_refuse_exactly_the_actions_a_role_is_not_shown(
    team: Staff, patient: Patient, role: str
) -> None:
    """Every cycle action posted with valid fields (at a stale version where it has one): 403
    for a role without it in ACTION_ROLES; otherwise the service's own refusal (409 or 422),
    or for labs and an adverse event (no version) the saved record."""
    cycle = accepted(team, services.propose_next_cycle(team["physicist"], patient))
    proposal = PlanProposal.objects.get(patient=patient)
    stale = {"expected_version": "99"}
    posts = {
        "labs": (f"{CYCLE_1}labs/", {**GOOD_LABS, "drawn_at": "2025-03-10T09:00"}),
        "release": (f"{CYCLE_1}release/", {**stale, "password": PASSWORD}),
        "reschedule": (
            f"{CYCLE_1}reschedule/",
            {**stale, "planned_date": "2025-03-18", "reason": "r"},
        ),
        "cancel": (f"{CYCLE_1}cancel/", {**stale, "reason": "r"}),
        "administration": (
            f"{CYCLE_1}administration/",
            {
                **stale,
                "activity_gbq": "7.4",
                "lot": "L",
                "infusion_start": "2025-03-17T09:00",
                "infusion_end": "2025-03-17T09:30",
            },
        ),
        "dosimetry": (
            f"{CYCLE_1}dosimetry/",
            {**stale, "left_kidney_dose_gy": "4", "right_kidney_dose_gy": "5"},
        ),
        "decide_plan": (
            f"{PAGE}proposals/{proposal.pk}/override/",
            {**stale, "activity_gbq": "7", "reason": "r"},
        ),
        "propose": (f"{PAGE}propose/", {}),
        "adverse_event": (
            f"{PAGE}adverse-events/",
            {
                "term": "Nausea",
                "ctcae_grade": "1",
                "onset_date": "2025-03-18",
                "attribution_prrt": "possible",
                "attribution_capecitabine": "not_applicable",
                "outcome": "recovering",
            },
        ),
    }
    client = signed_in(team[role])
    may = allowed_actions(roles_at(team[role], patient.site))
    for action, (url, data) in posts.items():
        status = client.post(url, data).status_code
        if action in may:
            saved = action in ("labs", "adverse_event")  # no version: saved
            assert status in ((302,) if saved else (409, 422)), (role, action, status)
        else:
            assert status == 403, (role, action, status)
    assert Cycle.objects.get(pk=cycle.pk).version == cycle.version
    assert set(posts) <= set(ACTION_ROLES)


def test_a_post_lands_on_the_changed_section_with_a_message(team: Staff, patient: Patient) -> None:
    accepted(team, services.propose_next_cycle(team["physicist"], patient))
    nurse = signed_in(team["nurse"])
    saved = nurse.post(f"{CYCLE_1}labs/", {**GOOD_LABS, "drawn_at": "2025-03-10T09:00"})
    assert (saved.status_code, saved["Location"]) == (302, f"{CYCLE_1}#labs")
    html = nurse.get(saved["Location"]).content.decode()
    status = re.search(r'<div id="messages" role="status">(.*?)</div>', html, re.S)
    assert status is not None
    assert "Cycle 1: pre-cycle labs saved." in status.group(1)
    assert "Cycle 1: pre-cycle labs saved." not in nurse.get(CYCLE_1).content.decode()  # once
    refused = nurse.post(f"{CYCLE_1}labs/", {"drawn_at": "not a time"})
    assert refused.status_code == 422
    assert "Enter a valid date/time." in refused.content.decode()

    refused = signed_in(team["physicist"]).post(f"{PAGE}propose/", {"cycle": "1"})
    assert refused.status_code == 422  # the error shows on the page the button was on
    html = refused.content.decode()
    assert "<h1>S01-LUN-001 · Cycle 1" in html
    assert "is planned: give or cancel it before planning the next" in html


def test_the_next_plan_is_asked_from_the_last_cycle_and_lands_on_the_new_cycle(
    team: Staff, patient: Patient
) -> None:
    cycle = accepted(team, services.propose_next_cycle(team["physicist"], patient))
    labs_go(team, cycle)
    cycle = release(team["investigator"], cycle)
    cycle = services.record_administration(
        team["nurse"],
        cycle,
        activity_gbq=7.5,
        lot="L1",
        infusion_start=at(cycle.planned_date),
        infusion_end=at(cycle.planned_date, 9, 30),
        expected_version=cycle.version,
    )
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=4.0, right_kidney_dose_gy=5.0
    )
    physicist = signed_in(team["physicist"])
    html = physicist.get(CYCLE_1).content.decode()
    assert 'id="next-cycle"' in html
    assert "Ask the planner for cycle 2" in html
    asked = physicist.post(f"{PAGE}propose/", {"cycle": "1"})
    assert (asked.status_code, asked["Location"]) == (302, f"{PAGE}cycles/2/#plan")
    html = physicist.get(asked["Location"]).content.decode()
    assert "Cycle 2: the planner&#x27;s proposal is below." in html
    # after cycle 1: 4.5 Gy at 0.6 Gy/GBq; 4.5 + 0.6 x 7.5 = 9.0 <= 30 Gy: full 7.5 GBq
    assert re.search(r'id="proposal-action">full</strong>\s*7.5 GBq', html)
    assert 'name="accept"' in html
    assert signed_in(team["physicist"]).get(f"{PAGE}cycles/3/").status_code == 404


def test_the_overview_is_a_summary_linking_each_cycle(team: Staff, patient: Patient) -> None:
    cycle = accepted(team, services.propose_next_cycle(team["physicist"], patient))
    labs_go(team, cycle)
    cycle = release(team["investigator"], cycle)
    cycle = services.record_administration(
        team["nurse"],
        cycle,
        activity_gbq=7.4,
        lot="L1",
        infusion_start=at(cycle.planned_date),
        infusion_end=at(cycle.planned_date, 9, 30),
        expected_version=cycle.version,
    )
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=3.861330716659756, right_kidney_dose_gy=5.0
    )
    html = signed_in(team["nurse"]).get(PAGE).content.decode()
    row = re.search(r'<tr id="cycle-1">(.*?)</tr>', html, re.S)
    assert row is not None
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in row.group(1).split("</td>")[:-1]]
    assert cells == ["Cycle 1", "Administered", "2025-03-17", "7.4", "3.86", "5.00"]
    assert f'href="{CYCLE_1}"' in row.group(1)
    assert 'href="/patients/S01-LUN-001/treatment/cycles/2/">Plan cycle 2</a>' in html
    assert html.count("<form") == 1  # sign-out: the adverse event report is a link away
    assert 'href="?report=adverse-event#adverse-events"' in html
    assert " open>" not in html
    report = signed_in(team["nurse"]).get(PAGE, {"report": "adverse-event"}).content.decode()
    assert 'name="report_adverse_event"' in report
    assert 'id="kidney-dose"' in html
    monitor = signed_in(team["monitor"]).get(PAGE).content.decode()
    assert "report-adverse-event" not in monitor


def test_cycle_pages_that_do_not_exist_are_404(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    nurse = signed_in(team["nurse"])
    assert nurse.get(CYCLE_1).status_code == 200  # the next cycle to plan
    assert nurse.get(f"{PAGE}cycles/2/").status_code == 404
    accepted(team, services.propose_next_cycle(team["physicist"], patient))
    assert nurse.get(f"{PAGE}cycles/2/").status_code == 404  # cycle 1 waits
    assert signed_in(team["uppsala"]).get(CYCLE_1).status_code == 404
