"""Impossible dates, booleans as numbers, invisible characters and huge echoes (issue 11, points
3 and 12): each refused through the JSON API (422 naming the field) and the services, nothing
stored; the report reads a database holding the extreme dates the windows allow, and refuses a
year-1 date stored before these checks by naming it instead of crashing. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from startrt.analysis.report import build_report
from startrt.analysis.report_files import write_report
from startrt.validation import INFUSION_MAX_HOURS, InvalidInputError
from startrt.web.events import services as events
from startrt.web.events.models import AdverseEvent, Death, EndOfTreatment, FollowUp
from startrt.web.exports.analysis_dataset import trial_dataset
from startrt.web.treatment import services as treatment
from startrt.web.treatment.models import Cycle, LabPanel
from startrt.web.trial import services as trial
from startrt.web.trial.dates import trial_start
from startrt.web.trial.models import AuditEntry, Decision, Patient, Screening
from support.records import SCREENING, eligible_screening
from web.test_events import adverse_event, series_data
from web.test_treatment import (
    FIRST_CYCLE,
    GOOD_LABS,
    Sites,
    Staff,
    at,
    give,
    labs_go,
    planned_cycle,
    randomized,
    release,
)

API = "/api/patients/S01-LUN-001"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def send(client: Client, method: str, path: str, body: Any) -> Any:
    call = getattr(client, method)
    return call(f"{API}/{path}", body, content_type="application/json")


def refused(response: Any, field: str) -> dict[str, Any]:
    """The 422 body, asserted to name `field` first."""
    assert response.status_code == 422, response.content[:500]
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    return body


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    """S01-LUN-001 randomized today (dTOC), planned to start on 2025-03-17."""
    return randomized(team, sites, 1)


def ongoing(**changes: Any) -> dict[str, Any]:
    return adverse_event(resolved_date=None, outcome="recovering", **changes)


# --- dates -----------------------------------------------------------------------------------


def test_an_adverse_event_onset_in_year_1_is_refused(team: Staff, patient: Patient) -> None:
    nurse = client_for(team["nurse"])
    body = refused(
        send(nurse, "post", "adverse-events", {"record": ongoing(onset_date="0001-01-01")}),
        "onset_date",
    )
    assert body["value"] == "0001-01-01"
    assert "not before the trial start (2022-11-01)" in body["rule"]
    day_before = (trial_start() - timedelta(days=1)).isoformat()
    with pytest.raises(InvalidInputError) as error:
        events.report_adverse_event(team["nurse"], patient, ongoing(onset_date=day_before))
    assert (error.value.field, error.value.value) == ("onset_date", day_before)
    with pytest.raises(InvalidInputError) as error:  # resolution in the year 9999
        events.report_adverse_event(
            team["nurse"], patient, adverse_event(resolved_date="9999-12-31")
        )
    assert error.value.field == "resolved_date"
    assert not AdverseEvent.objects.exists()
    # the edges: the trial start, and today (UTC) + 1 day for time zones
    first = events.report_adverse_event(
        team["nurse"], patient, ongoing(onset_date=trial_start().isoformat())
    )
    tomorrow = timezone.localdate() + timedelta(days=1)
    latest = events.report_adverse_event(
        team["nurse"], patient, ongoing(onset_date=tomorrow.isoformat())
    )
    assert (first.onset_date, latest.onset_date) == (trial_start(), tomorrow)


def test_follow_up_and_progression_in_year_1_are_refused(team: Staff, patient: Patient) -> None:
    nurse = client_for(team["nurse"])
    today = timezone.localdate().isoformat()
    contact = {"date": today, "status": "alive", "progression": False}
    refused(
        send(nurse, "post", "follow-ups", {"record": {**contact, "date": "0001-01-01"}}), "date"
    )
    progressed = {**contact, "progression": True, "progression_date": "0001-01-01"}
    refused(send(nurse, "post", "follow-ups", {"record": progressed}), "progression_date")
    # randomized today: a progression yesterday is before the randomization date
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    with pytest.raises(InvalidInputError, match="randomization date") as error:
        events.record_follow_up(
            team["nurse"], patient, {**progressed, "progression_date": yesterday}
        )
    assert error.value.field == "progression_date"
    assert not FollowUp.objects.exists()
    accepted = send(
        nurse, "post", "follow-ups", {"record": {**progressed, "progression_date": today}}
    )
    assert accepted.status_code == 201


def test_follow_up_only_for_randomized_patients(team: Staff, sites: Sites) -> None:
    patient = trial.register_patient(team["nurse"], sites["Lund"], "S01-LUN-001", "male")
    trial.record_screening(team["nurse"], patient, eligible_screening())
    contact = {"date": timezone.localdate().isoformat(), "status": "alive", "progression": False}
    body = refused(
        send(client_for(team["nurse"]), "post", "follow-ups", {"record": contact}), "patient"
    )
    assert "is not randomized" in body["rule"]
    with pytest.raises(InvalidInputError, match="is not randomized"):
        events.record_follow_up(team["nurse"], patient, contact)
    assert not FollowUp.objects.exists()


def test_death_and_end_of_treatment_not_before_randomization(team: Staff, patient: Patient) -> None:
    investigator = client_for(team["investigator"])
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    death = {"date": yesterday, "cause": "NET progression", "related_to_treatment": False}
    body = refused(send(investigator, "post", "death", {"record": death}), "date")
    assert "randomization date" in body["rule"]
    refused(
        send(investigator, "post", "death", {"record": {**death, "date": "0001-01-01"}}), "date"
    )
    end = {"date": "9999-12-31", "reason": "toxicity", "details": ""}
    refused(send(investigator, "post", "end-of-treatment", {"record": end}), "date")
    assert not Death.objects.exists()
    assert not EndOfTreatment.objects.exists()


def test_a_lab_draw_in_year_1_is_refused(team: Staff, patient: Patient) -> None:
    nurse = client_for(team["nurse"])
    labs = {"values": GOOD_LABS, "drawn_at": "0001-01-01T09:00:00Z"}
    body = refused(send(nurse, "post", "labs", labs), "drawn_at")
    assert body["value"] == "0001-01-01T09:00:00+00:00"
    with pytest.raises(InvalidInputError) as error:
        treatment.record_labs(
            team["nurse"], patient, GOOD_LABS, drawn_at=datetime(1970, 1, 1, tzinfo=UTC)
        )
    assert error.value.field == "drawn_at"
    assert not LabPanel.objects.exists()


def test_an_infusion_corrected_to_1970_is_refused(team: Staff, patient: Patient) -> None:
    cycle = give(team, planned_cycle(team, patient), 7.5)
    nurse = client_for(team["nurse"])
    correction = {
        "activity_gbq": 7.5,
        "lot": "LU-2025-17",
        "infusion_start": "1970-01-01T09:00:00Z",  # 56 years long
        "infusion_end": "2025-03-17T09:30:00Z",
        "expected_version": cycle.version,
        "reason": "start time re-typed",
    }
    refused(send(nurse, "post", "cycles/1/administration", correction), "infusion_start")
    seven_hours = {**correction, "infusion_start": "2025-03-17T09:00:00Z"}
    seven_hours["infusion_end"] = "2025-03-17T16:00:00Z"
    body = refused(send(nurse, "post", "cycles/1/administration", seven_hours), "infusion_end")
    assert f"at most {INFUSION_MAX_HOURS:g} hours later" in body["rule"]
    stored = Cycle.objects.get(pk=cycle.pk)
    assert (stored.infusion_start, stored.infusion_end, stored.version) == (
        at(FIRST_CYCLE),
        at(FIRST_CYCLE, 9, 30),
        cycle.version,
    )
    longest = treatment.record_administration(  # exactly the maximum is accepted
        team["nurse"],
        stored,
        activity_gbq=7.5,
        lot="LU-2025-17",
        infusion_start=at(FIRST_CYCLE),
        infusion_end=at(FIRST_CYCLE) + timedelta(hours=INFUSION_MAX_HOURS),
        reason="end time per infusion record",
        expected_version=stored.version,
    )
    assert longest.infusion_end - longest.infusion_start == timedelta(hours=INFUSION_MAX_HOURS)


def test_a_screening_on_9999_12_31_is_refused(team: Staff, sites: Sites) -> None:
    trial.register_patient(team["nurse"], sites["Lund"], "S01-LUN-001", "male")
    nurse = client_for(team["nurse"])
    record = eligible_screening(screening_date="9999-12-31")
    body = refused(send(nurse, "put", "screening", {"record": record}), "screening_date")
    assert "for time zones" in body["rule"]
    six_years = (SCREENING - timedelta(days=6 * 366)).isoformat()
    refused(
        send(nurse, "put", "screening", {"record": eligible_screening(sstr_pet_date=six_years)}),
        "sstr_pet_date",
    )
    refused(
        send(
            nurse,
            "put",
            "screening",
            {"record": eligible_screening(progression_imaging_date="0001-01-01")},
        ),
        "progression_imaging_date",
    )
    late_start = (SCREENING + timedelta(days=367)).isoformat()
    refused(
        send(
            nurse, "put", "screening", {"record": eligible_screening(planned_start_date=late_start)}
        ),
        "planned_start_date",
    )
    assert not Screening.objects.exists()
    assert not Decision.objects.exists()
    # an imaging older than the protocol's 24 months is kept: the criterion is not met
    old = (SCREENING - timedelta(days=4 * 365)).isoformat()
    kept = send(
        nurse, "put", "screening", {"record": eligible_screening(progression_imaging_date=old)}
    )
    assert (kept.status_code, kept.json()["eligible"]) == (200, False)


# --- numbers ---------------------------------------------------------------------------------


def test_booleans_are_refused_where_numbers_are_expected(team: Staff, patient: Patient) -> None:
    nurse = client_for(team["nurse"])
    refused(
        send(nurse, "post", "adverse-events", {"record": adverse_event(ctcae_grade=True)}),
        "ctcae_grade",
    )
    labs = {"values": {**GOOD_LABS, "hemoglobin_g_l": True}, "drawn_at": "2025-03-10T09:00:00Z"}
    refused(send(nurse, "post", "labs", labs), "hemoglobin_g_l")
    cycle = planned_cycle(team, patient)
    labs_go(team, cycle)
    cycle = release(team["investigator"], cycle)
    administration = {
        "activity_gbq": True,
        "lot": "LU-2025-17",
        "infusion_start": "2025-03-17T09:00:00Z",
        "infusion_end": "2025-03-17T09:30:00Z",
        "expected_version": cycle.version,
    }
    refused(send(nurse, "post", "cycles/1/administration", administration), "activity_gbq")
    given = {**administration, "activity_gbq": 7.5}
    refused(
        send(nurse, "post", "cycles/1/administration", {**given, "expected_version": True}),
        "expected_version",
    )
    refused(
        send(nurse, "post", "cycles/1/administration", {**given, "inpatient_days": False}),
        "inpatient_days",
    )
    with pytest.raises(InvalidInputError, match="must be a number") as error:
        treatment.record_administration(
            team["nurse"],
            cycle,
            activity_gbq=True,
            lot="LU-2025-17",
            infusion_start=at(FIRST_CYCLE),
            infusion_end=at(FIRST_CYCLE, 9, 30),
            expected_version=cycle.version,
        )
    assert error.value.field == "activity_gbq"
    assert not AdverseEvent.objects.exists()
    assert LabPanel.objects.count() == 1  # the 'go' panel only
    assert Cycle.objects.get(pk=cycle.pk).status == Cycle.Status.PLANNED
    assert send(nurse, "post", "cycles/1/administration", given).status_code == 200


def test_an_absurdly_small_activity_is_refused(team: Staff, patient: Patient) -> None:
    cycle = planned_cycle(team, patient)
    labs_go(team, cycle)
    cycle = release(team["investigator"], cycle)
    administration = {
        "activity_gbq": 1e-320,
        "lot": "LU-2025-17",
        "infusion_start": "2025-03-17T09:00:00Z",
        "infusion_end": "2025-03-17T09:30:00Z",
        "expected_version": cycle.version,
    }
    nurse = client_for(team["nurse"])
    body = refused(send(nurse, "post", "cycles/1/administration", administration), "activity_gbq")
    assert body["rule"].startswith("must be >= 0.01 GBq")
    refused(
        send(nurse, "post", "cycles/1/administration", {**administration, "activity_gbq": 0.0099}),
        "activity_gbq",
    )
    assert Cycle.objects.get(pk=cycle.pk).status == Cycle.Status.PLANNED
    smallest = send(
        nurse, "post", "cycles/1/administration", {**administration, "activity_gbq": 0.01}
    )
    assert (smallest.status_code, smallest.json()["administered_activity_gbq"]) == (200, 0.01)


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066"])
def test_invisible_characters_are_refused_in_free_text(
    team: Staff, patient: Patient, character: str
) -> None:
    nurse, investigator = client_for(team["nurse"]), client_for(team["investigator"])
    body = refused(
        send(nurse, "post", "adverse-events", {"record": adverse_event(term=f"Nau{character}sea")}),
        "term",
    )
    assert f"U+{ord(character):04X}" in body["rule"]
    death = {"date": timezone.localdate().isoformat(), "related_to_treatment": False}
    refused(
        send(investigator, "post", "death", {"record": {**death, "cause": f"NET{character}"}}),
        "cause",
    )
    end = {"date": timezone.localdate().isoformat(), "reason": "other"}
    refused(
        send(
            investigator,
            "post",
            "end-of-treatment",
            {"record": {**end, "details": f"a{character}b"}},
        ),
        "details",
    )
    event = events.report_adverse_event(team["nurse"], patient, adverse_event())
    correction = {"record": adverse_event(ctcae_grade=3), "expected_version": 1}
    refused(
        send(nurse, "put", f"adverse-events/{event.pk}", {**correction, "reason": f"x{character}"}),
        "reason",
    )
    cycle = give(team, planned_cycle(team, patient), 7.5)
    administration = {
        "activity_gbq": 7.5,
        "lot": f"LU-2025{character}-17",
        "infusion_start": "2025-03-17T09:00:00Z",
        "infusion_end": "2025-03-17T09:30:00Z",
        "expected_version": cycle.version,
        "reason": "lot re-typed",
    }
    refused(send(nurse, "post", "cycles/1/administration", administration), "lot")
    with pytest.raises(InvalidInputError) as error:
        treatment.record_administration(
            team["nurse"],
            cycle,
            activity_gbq=7.5,
            lot="LU-2025-17",
            infusion_start=at(FIRST_CYCLE),
            infusion_end=at(FIRST_CYCLE, 9, 30),
            reason=f"re{character}typed",
            expected_version=cycle.version,
        )
    assert error.value.field == "reason"
    assert [e.term for e in AdverseEvent.objects.all()] == ["Nausea"]
    assert AdverseEvent.objects.get().version == 1
    assert not Death.objects.exists()
    assert not EndOfTreatment.objects.exists()
    assert Cycle.objects.get(pk=cycle.pk).lot == "LU-2025-17"


def test_a_refused_value_is_echoed_cut_at_100_characters(team: Staff, patient: Patient) -> None:
    huge = "A" * 1_000_000
    response = send(
        client_for(team["nurse"]), "post", "adverse-events", {"record": adverse_event(term=huge)}
    )
    body = refused(response, "term")
    assert body["value"] == "A" * 100 + "…"
    assert len(response.content) < 2_000
    assert not AdverseEvent.objects.exists()
    assert not AuditEntry.objects.filter(table="events_adverseevent").exists()


# --- the report ------------------------------------------------------------------------------


def test_the_report_reads_the_extreme_dates_the_windows_allow(
    team: Staff, sites: Sites, patient: Patient, tmp_path: Path
) -> None:
    today = timezone.localdate()
    tomorrow = today + timedelta(days=1)
    start = trial_start()
    events.report_adverse_event(team["nurse"], patient, ongoing(onset_date=start.isoformat()))
    events.report_adverse_event(team["nurse"], patient, ongoing(onset_date=tomorrow.isoformat()))
    baseline = series_data()
    baseline["baseline"]["date"] = date(start.year - 5, start.month, start.day).isoformat()
    events.record_tumour_assessment(team["nurse"], patient, baseline)
    events.record_follow_up(
        team["nurse"],
        patient,
        {
            "date": tomorrow.isoformat(),
            "status": "alive",
            "progression": True,
            "progression_date": today.isoformat(),
        },
    )
    events.record_end_of_treatment(
        team["investigator"], patient, {"date": tomorrow.isoformat(), "reason": "progression"}
    )
    other = trial.register_patient(team["nurse"], sites["Lund"], "S01-LUN-002", "female")
    oldest = eligible_screening(
        screening_date=start.isoformat(),
        progression_imaging_date=date(start.year - 5, start.month, start.day).isoformat(),
        prior_non_ssa_therapy=True,
        prior_non_ssa_therapy_end_date=date(start.year - 120, start.month, start.day).isoformat(),
    )
    trial.record_screening(team["nurse"], other, oldest)
    newest = eligible_screening(screening_date=tomorrow.isoformat())
    newest.pop("progression_imaging_date")
    third = trial.register_patient(team["nurse"], sites["Lund"], "S01-LUN-003", "female")
    trial.record_screening(team["nurse"], third, newest)

    dataset = trial_dataset(tomorrow)
    assert len(dataset.patients) == 3
    assert len(dataset.adverse_events) == 2
    built = build_report(dataset)
    write_report(built, tmp_path / "report", pdf=False)
    assert (tmp_path / "report" / "report.html").stat().st_size > 0


def test_a_year_1_date_stored_before_these_checks_is_named_not_a_crash(
    team: Staff, patient: Patient
) -> None:
    event = events.report_adverse_event(team["nurse"], patient, ongoing())
    AdverseEvent.objects.filter(pk=event.pk).update(onset_date=date(1, 1, 1))  # an old database
    with pytest.raises(InvalidInputError) as error:
        trial_dataset(timezone.localdate())
    assert (error.value.field, error.value.value) == ("adverse_events[1].onset_on", "0001-01-01")
    assert "the dates an analysis holds" in error.value.rule
