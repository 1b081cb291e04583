"""The JSON API of the treatment course and clinical events through Django's test client: a
dTOC cycle from proposal to dosimetry and the next proposal, the physicist's decision (403 for a
nurse), site scoping (404), adverse events, and refused input naming its field (422).

START-01 v1.0 numbers: 7.5 GBq cycles, 10-week interval, cumulative mean-kidney absorbed dose
<= 30 Gy."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.web.treatment.models import Cycle, PlanProposal
from startrt.web.trial.models import Patient, Role, Site
from web.conftest import make_user
from web.test_treatment import GOOD_LABS, PASSWORD, randomized

Staff = dict[str, User]
Sites = dict[str, Site]

PATIENT_URL = "/api/patients/S01-LUN-001"


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, path: str, body: Any = None) -> Any:
    return client.post(f"{PATIENT_URL}/{path}", body, content_type="application/json")


@pytest.fixture
def team(staff: Staff, sites: Sites) -> Staff:
    """The conftest staff plus a physicist at Lund."""
    return {**staff, "physicist": make_user("physicist.lund", Role.PHYSICIST, sites["Lund"])}


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    """S01-LUN-001, personalized arm and FDG-PET negative: dTOC, no capecitabine."""
    return randomized(team, sites, 1)


def adverse_event(**changes: Any) -> dict[str, Any]:
    """A non-serious grade 2 nausea of a patient without capecitabine, resolved after a week."""
    return {
        "term": "Nausea",
        "ctcae_grade": 2,
        "onset_date": "2025-03-20",
        "resolved_date": "2025-03-27",
        "serious": False,
        "seriousness_criteria": [],
        "attribution_prrt": "possible",
        "attribution_capecitabine": "not_applicable",
        "outcome": "recovered",
        **changes,
    }


def test_a_dtoc_cycle_from_proposal_to_dosimetry(team: Staff, patient: Patient) -> None:
    physicist, nurse = client_for(team["physicist"]), client_for(team["nurse"])
    investigator = client_for(team["investigator"])
    # cycle 1: no dosimetry yet -> full 7.5 GBq
    proposed = post(physicist, "plan")
    assert proposed.status_code == 201
    first = proposed.json()
    assert (first["for_cycle"], first["status"], first["version"]) == (1, "proposed", 1)
    assert (first["plan"]["action"], first["plan"]["activity_gbq"]) == ("full", 7.5)
    accepted = post(physicist, f"plan/{first['id']}/accept", {"expected_version": 1})
    assert accepted.status_code == 200
    assert (accepted.json()["status"], accepted.json()["decided_by"]) == (
        "accepted",
        "physicist.lund",
    )
    [cycle] = nurse.get(f"{PATIENT_URL}/cycles").json()
    # planned on the screening record's planned start, 17 March 2025
    assert (cycle["number"], cycle["status"], cycle["planned_date"]) == (1, "planned", "2025-03-17")
    assert cycle["planned_activity_gbq"] == 7.5

    labs = post(
        nurse, "labs", {"values": GOOD_LABS, "drawn_at": "2025-03-10T09:00:00Z", "cycle": 1}
    )
    assert labs.status_code == 201
    assert (labs.json()["cycle"], labs.json()["decision"]["action"]) == (1, "go")
    refused = post(investigator, "cycles/1/release", {"expected_version": 1, "password": "guess"})
    assert (refused.status_code, refused.json()["field"]) == (422, "password")
    released = post(investigator, "cycles/1/release", {"expected_version": 1, "password": PASSWORD})
    assert (released.status_code, released.json()["released_by"]) == (200, "investigator.lund")
    assert released.json()["release_locked"] is True
    administration = {
        "activity_gbq": 7.4,
        "lot": "LU-2025-17",
        "infusion_start": "2025-03-17T09:00:00Z",
        "infusion_end": "2025-03-17T09:30:00Z",
        "expected_version": released.json()["version"],
    }
    given = post(nurse, "cycles/1/administration", administration)
    assert given.status_code == 200
    assert (given.json()["status"], given.json()["administered_activity_gbq"]) == (
        "administered",
        7.4,
    )
    doses = post(
        physicist, "cycles/1/dosimetry", {"left_kidney_dose_gy": 4.0, "right_kidney_dose_gy": 5.0}
    )
    assert doses.status_code == 200
    assert (doses.json()["source"], doses.json()["version"]) == ("entered", 1)
    kidney = nurse.get(f"{PATIENT_URL}/kidney-dose").json()
    # mean kidney (4.0 + 5.0) / 2 = 4.5 Gy against the protocol's 30 Gy
    assert kidney == {
        "kidney": "mean",
        "limit_gy": 30.0,
        "cumulative": [{"cycle": 1, "cumulative_gy": 4.5}],
    }

    # after cycle 1: 4.5 Gy / 7.4 GBq; 4.5 + 4.5 / 7.4 x 7.5 = 9.06 Gy <= 30 -> full 7.5 GBq
    second = post(physicist, "plan").json()
    assert (second["for_cycle"], second["plan"]["action"]) == (2, "full")
    assert second["plan"]["activity_gbq"] == 7.5
    assert second["plan"]["predicted_cumulative_kidney_gy"] == pytest.approx(
        4.5 + 4.5 / 7.4 * 7.5, abs=1e-4
    )
    accepted = post(physicist, f"plan/{second['id']}/accept", {"expected_version": 1})
    assert accepted.status_code == 200
    cycles = nurse.get(f"{PATIENT_URL}/cycles").json()
    # 17 March + 10 weeks = 26 May 2025
    assert [(c["number"], c["status"], c["planned_date"]) for c in cycles] == [
        (1, "administered", "2025-03-17"),
        (2, "planned", "2025-05-26"),
    ]
    schedule = nurse.get(f"{PATIENT_URL}/schedule").json()
    visits = [v for v in schedule if v["kind"] == "cycle"]
    assert [(v["cycle_number"], v["done"], v["target_date"]) for v in visits] == [
        (1, True, "2025-03-17"),
        (2, False, "2025-05-26"),
    ]


def test_a_nurse_may_not_accept_a_plan(team: Staff, patient: Patient) -> None:
    proposal = post(client_for(team["physicist"]), "plan").json()
    refused = post(
        client_for(team["nurse"]), f"plan/{proposal['id']}/accept", {"expected_version": 1}
    )
    assert refused.status_code == 403
    assert PlanProposal.objects.get(pk=proposal["id"]).status == "proposed"
    assert not Cycle.objects.filter(patient=patient).exists()


OPERATIONS = [
    ("get", "cycles", None),
    ("get", "schedule", None),
    ("get", "kidney-dose", None),
    ("post", "labs", {"values": GOOD_LABS, "drawn_at": "2025-03-10T09:00:00Z"}),
    ("post", "cycles/1/release", {"expected_version": 1, "password": "correct horse battery"}),
    ("post", "cycles/1/release/unlock", {"password": "correct horse battery", "reason": "r"}),
    (
        "post",
        "cycles/1/reschedule",
        {"planned_date": "2025-03-20", "reason": "r", "expected_version": 1},
    ),
    ("post", "cycles/1/cancel", {"reason": "r", "expected_version": 1}),
    ("get", "dosimetry", None),
    ("get", "plan", None),
    ("get", "capecitabine", None),
    (
        "post",
        "cycles/1/capecitabine/assessment",
        {"weight_kg": 78, "height_cm": 178, "age_years": 64, "creatinine_umol_l": 85},
    ),
    ("post", "cycles/1/dosimetry", {"left_kidney_dose_gy": 4.0, "right_kidney_dose_gy": 5.0}),
    ("post", "plan", None),
    ("post", "plan/1/accept", {"expected_version": 1}),
    ("post", "plan/1/override", {"expected_version": 1, "reason": "r", "activity_gbq": 5}),
    ("get", "adverse-events", None),
    ("post", "adverse-events", {"record": adverse_event()}),
    ("post", "end-of-treatment", {"record": {"date": "2025-06-01", "reason": "completed"}}),
    ("post", "death", {"record": {"date": "2025-06-01", "cause": "x", "related_to_treatment": 0}}),
]


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_another_sites_patient_is_not_found(
    team: Staff, patient: Patient, method: str, path: str, body: Any
) -> None:
    uppsala = client_for(team["uppsala"])
    url = f"{PATIENT_URL}/{path}"
    hidden = getattr(uppsala, method)(url, body, content_type="application/json")
    missing = getattr(uppsala, method)(
        url.replace("001", "999"), body, content_type="application/json"
    )
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["detail"].replace("001", "999") == missing.json()["detail"]
    assert not PlanProposal.objects.exists()


def test_an_adverse_event_is_reported_and_listed(team: Staff, patient: Patient) -> None:
    nurse = client_for(team["nurse"])
    assert nurse.get(f"{PATIENT_URL}/adverse-events").json() == []
    reported = post(nurse, "adverse-events", {"record": adverse_event()})
    assert reported.status_code == 201
    listed = client_for(team["monitor"]).get(f"{PATIENT_URL}/adverse-events").json()
    assert listed == [reported.json()]
    event = listed[0]
    assert (event["term"], event["ctcae_grade"], event["outcome"]) == ("Nausea", 2, "recovered")
    assert (event["onset_date"], event["resolved_date"], event["version"]) == (
        "2025-03-20",
        "2025-03-27",
        1,
    )


def test_an_invalid_adverse_event_is_refused_naming_the_field(
    team: Staff, patient: Patient
) -> None:
    refused = post(
        client_for(team["nurse"]), "adverse-events", {"record": adverse_event(ctcae_grade=6)}
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "ctcae_grade")


def test_a_negative_activity_is_refused_naming_the_field(team: Staff, patient: Patient) -> None:
    physicist = client_for(team["physicist"])
    proposal = post(physicist, "plan").json()
    override = {"expected_version": 1, "reason": "low platelets", "activity_gbq": -1.5}
    refused = post(physicist, f"plan/{proposal['id']}/override", override)
    assert refused.status_code == 422
    assert (refused.json()["field"], refused.json()["value"]) == ("activity_gbq", -1.5)
    assert PlanProposal.objects.get(pk=proposal["id"]).status == "proposed"
    assert not Cycle.objects.exists()


def test_a_nul_character_in_a_record_is_refused(team: Staff, patient: Patient) -> None:
    death = {"date": "2025-06-01", "cause": "sepsis\x00", "related_to_treatment": False}
    refused = post(client_for(team["investigator"]), "death", {"record": death})
    assert (refused.status_code, refused.json()["field"]) == (422, "record")
    assert "NUL" in refused.json()["rule"]


def released_cycle(team: Staff) -> dict[str, Any]:
    """Cycle 1 of S01-LUN-001 planned (17 March 2025), labs 'go', released (signed)."""
    physicist, investigator = client_for(team["physicist"]), client_for(team["investigator"])
    proposal = post(physicist, "plan").json()
    post(physicist, f"plan/{proposal['id']}/accept", {"expected_version": 1})
    post(
        client_for(team["nurse"]),
        "labs",
        {"values": GOOD_LABS, "drawn_at": "2025-03-10T09:00:00Z", "cycle": 1},
    )
    released = post(investigator, "cycles/1/release", {"expected_version": 1, "password": PASSWORD})
    assert released.status_code == 200
    body: dict[str, Any] = released.json()
    return body


def test_a_signed_release_locks_rescheduling_until_unlocked(team: Staff, patient: Patient) -> None:
    investigator = client_for(team["investigator"])
    cycle = released_cycle(team)
    move = {"planned_date": "2025-03-24", "reason": "scanner down", "expected_version": 2}
    locked = post(investigator, "cycles/1/reschedule", move)
    assert (locked.status_code, locked.json()["field"]) == (409, "record")
    assert "unlock the signature" in locked.json()["rule"]
    cancel = post(investigator, "cycles/1/cancel", {"reason": "r", "expected_version": 2})
    assert cancel.status_code == 409
    unlock = {"password": PASSWORD, "reason": "scanner down: the date moves"}
    unlocked = post(investigator, "cycles/1/release/unlock", unlock)
    assert (unlocked.status_code, unlocked.json()["release_locked"]) == (200, False)
    assert cycle["version"] == unlocked.json()["version"] == 2  # the cycle itself is unchanged
    moved = post(investigator, "cycles/1/reschedule", move)
    assert moved.status_code == 200
    assert (moved.json()["planned_date"], moved.json()["released_by"]) == ("2025-03-24", "")


def test_a_reschedule_outside_the_window_needs_a_confirmed_deviation(
    team: Staff, patient: Patient
) -> None:
    physicist, investigator = client_for(team["physicist"]), client_for(team["investigator"])
    proposal = post(physicist, "plan").json()
    post(physicist, f"plan/{proposal['id']}/accept", {"expected_version": 1})
    # cycle 1's window: the screening's planned start 17 March 2025 +/- 2 weeks
    move = {"planned_date": "2025-04-07", "reason": "patient ill", "expected_version": 1}
    refused = post(investigator, "cycles/1/reschedule", move)
    assert refused.status_code == 422
    assert (refused.json()["field"], refused.json()["value"]) == ("planned_date", "2025-04-07")
    assert "7 days after its window 2025-03-03 to 2025-03-31" in refused.json()["rule"]
    nurse = post(client_for(team["nurse"]), "cycles/1/reschedule", move)
    assert nurse.status_code == 403
    moved = post(investigator, "cycles/1/reschedule", {**move, "accept_deviation": True})
    assert moved.status_code == 200
    assert moved.json()["window_deviation"].startswith("Cycle 1 on 2025-04-07 is 7 days after")
    stale = post(investigator, "cycles/1/cancel", {"reason": "withdrew", "expected_version": 1})
    assert stale.status_code == 409
    cancelled = post(investigator, "cycles/1/cancel", {"reason": "withdrew", "expected_version": 2})
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")


def test_corrections_need_a_reason_and_the_current_version(team: Staff, patient: Patient) -> None:
    nurse, physicist = client_for(team["nurse"]), client_for(team["physicist"])
    released_cycle(team)
    given = {
        "activity_gbq": 7.4,
        "lot": "LU-2025-17",
        "infusion_start": "2025-03-17T09:00:00Z",
        "infusion_end": "2025-03-17T09:30:00Z",
        "inpatient_days": 1.5,
        "expected_version": 2,
    }
    first = post(nurse, "cycles/1/administration", given)
    assert (first.status_code, first.json()["inpatient_days"]) == (200, 1.5)
    correction = {**given, "lot": "LU-2025-18", "expected_version": 3}
    no_reason = post(nurse, "cycles/1/administration", correction)
    assert (no_reason.status_code, no_reason.json()["field"]) == (422, "reason")
    stale = post(
        nurse, "cycles/1/administration", {**correction, "expected_version": 2, "reason": "x"}
    )
    assert stale.status_code == 409
    too_long = post(
        nurse, "cycles/1/administration", {**correction, "inpatient_days": 61, "reason": "x"}
    )
    assert (too_long.status_code, too_long.json()["field"]) == (422, "inpatient_days")
    fixed = post(nurse, "cycles/1/administration", {**correction, "reason": "lot misread"})
    assert (fixed.status_code, fixed.json()["lot"], fixed.json()["version"]) == (
        200,
        "LU-2025-18",
        4,
    )

    doses = {"left_kidney_dose_gy": 4.0, "right_kidney_dose_gy": 5.0, "imaging_sessions": 4}
    assert post(physicist, "cycles/1/dosimetry", doses).status_code == 200
    proposal = post(physicist, "plan").json()
    corrected = {**doses, "left_kidney_dose_gy": 8.0, "reason": "VOI redrawn"}
    stale = post(physicist, "cycles/1/dosimetry", {**corrected, "expected_version": 2})
    assert stale.status_code == 409
    answer = post(physicist, "cycles/1/dosimetry", {**corrected, "expected_version": 1})
    assert (answer.status_code, answer.json()["version"]) == (200, 2)
    [result] = nurse.get(f"{PATIENT_URL}/dosimetry").json()
    assert (result["left_kidney_dose_gy"], result["imaging_sessions"], result["source"]) == (
        8.0,
        4,
        "entered",
    )
    # mean (8 + 5) / 2 = 6.5 Gy: the cumulative dose follows the correction
    kidney = nurse.get(f"{PATIENT_URL}/kidney-dose").json()
    assert kidney["cumulative"] == [{"cycle": 1, "cumulative_gy": 6.5}]
    proposals = nurse.get(f"{PATIENT_URL}/plan").json()
    assert [(p["id"], p["status"]) for p in proposals][-1] == (proposal["id"], "superseded")
    late = post(physicist, f"plan/{proposal['id']}/accept", {"expected_version": 2})
    assert late.status_code == 422
    assert "was superseded" in late.json()["rule"]
