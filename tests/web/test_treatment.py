"""Treatment course services on the configured database (SQLite by default; PostgreSQL with
STARTRT_DATABASE_URL): cycles, pre-cycle labs, capecitabine, dosimetry and the next-cycle plan.

START-01 v1.0 numbers used below: 7.5 GBq cycles, 10-week interval, cumulative mean-kidney
absorbed dose <= 30 Gy, reduced activity rounded down to 0.1 GBq (minimum 1.0 GBq), a cycle
delayed 8 weeks or more stops, capecitabine 825 mg/m2 b.i.d. (DuBois BSA) for 14 days in
cycles 1-4, pre-cycle platelets > 100 x10^9/L."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.test import RequestFactory

from startrt.imaging.phantom_study import make_phantom_study
from startrt.validation import InvalidInputError
from startrt.web.treatment import services
from startrt.web.treatment.models import Cycle, LabPanel, PlanProposal
from startrt.web.trial import services as trial_services
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import (
    AuditEntry,
    Decision,
    Patient,
    RandomizationList,
    Site,
    Slot,
)
from support.records import eligible_screening

Staff = dict[str, User]
Sites = dict[str, Site]
PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
FIRST_CYCLE = date(2025, 3, 17)  # the screening record's planned start
GOOD_LABS: dict[str, Any] = {
    "hemoglobin_g_l": 128,
    "hemoglobin_g_l_lln": 134,
    "platelets_10e9_l": 210,
    "platelets_10e9_l_lln": 145,
    "leukocytes_10e9_l": 5.9,
    "leukocytes_10e9_l_lln": 3.5,
    "neutrophils_10e9_l": 3.4,
    "neutrophils_10e9_l_lln": 1.6,
    "creatinine_umol_l": 85,
    "creatinine_umol_l_uln": 100,
    "measured_gfr_ml_min_173": 72,
}


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def randomized(
    team: Staff, sites: Sites, number: int, *, fdg_positive: bool = False, arm: str = "personalized"
) -> Patient:
    """A Lund patient screened eligible and randomized to `arm` (personalized: dTOC when
    FDG-negative, CAP-dTOC when positive), through a one-slot list of the stratum."""
    trial_id = f"S01-LUN-{number:03d}"
    patient = trial_services.register_patient(team["nurse"], sites["Lund"], trial_id, "male")
    record = eligible_screening(
        fdg_pet_positive=fdg_positive, planned_start_date=FIRST_CYCLE.isoformat()
    )
    trial_services.record_screening(team["nurse"], patient, record)
    listing = RandomizationList.objects.create(
        name=trial_id,
        protocol="START-01 v1.0",
        sha256=hashlib.sha256(trial_id.encode()).hexdigest(),
        csv="",
    )
    fdg = "positive" if fdg_positive else "negative"
    Slot.objects.create(
        listing=listing,
        stratum=f"site=Lund;fdg={fdg}",
        sequence=1,
        block=1,
        block_size=2,
        arm=arm,
    )
    trial_services.randomize(team["investigator"], patient)
    return patient


def accepted(team: Staff, proposal: PlanProposal, **accept: Any) -> Cycle:
    """The cycle the physicist's acceptance of `proposal` planned."""
    services.accept_proposal(
        team["physicist"], proposal, expected_version=proposal.version, **accept
    )
    return Cycle.objects.get(patient=proposal.patient, number=proposal.for_cycle)


def planned_cycle(team: Staff, patient: Patient, **accept: Any) -> Cycle:
    return accepted(team, services.propose_next_cycle(team["physicist"], patient), **accept)


def request_by(user: User) -> HttpRequest:
    """A request signed in as `user`, as the signing services read it (axes needs the address)."""
    request = RequestFactory().post("/", REMOTE_ADDR="10.0.0.7")
    request.user = user
    return request


def release(user: User, cycle: Cycle, password: str = PASSWORD) -> Cycle:
    """The cycle released by `user`, signed with `password`, at its current version."""
    return services.release_cycle(
        request_by(user), cycle, password=password, expected_version=cycle.version
    )


def labs_go(team: Staff, cycle: Cycle) -> LabPanel:
    """Good labs a week before the planned date: 'go'."""
    return services.record_labs(
        team["nurse"],
        cycle.patient,
        GOOD_LABS,
        drawn_at=at(cycle.planned_date - timedelta(7)),
        cycle=cycle,
    )


def give(team: Staff, cycle: Cycle, activity_gbq: float) -> Cycle:
    """Labs 'go' a week before, signed release, and administration on the planned date."""
    labs_go(team, cycle)
    cycle = release(team["investigator"], cycle)
    return services.record_administration(
        team["nurse"],
        cycle,
        activity_gbq=activity_gbq,
        lot="LU-2025-17",
        infusion_start=at(cycle.planned_date),
        infusion_end=at(cycle.planned_date, 9, 30),
        expected_version=cycle.version,
    )


def test_dtoc_course_full_cycles_then_reduced_near_the_30_gy_limit(
    team: Staff, sites: Sites
) -> None:
    patient = randomized(team, sites, 1)
    assert services.treatment_arm(patient).id == "dTOC"
    physicist = team["physicist"]
    # cycle 1: no dosimetry yet -> full 7.5 GBq, on the screening's planned start
    first = services.propose_next_cycle(physicist, patient)
    assert (first.for_cycle, first.plan["action"], first.plan["activity_gbq"]) == (1, "full", 7.5)
    cycle = accepted(team, first)
    assert (cycle.planned_date, cycle.planned_activity_gbq) == (FIRST_CYCLE, 7.5)
    given = give(team, cycle, 7.5)
    services.record_dosimetry(physicist, given, left_kidney_dose_gy=4.0, right_kidney_dose_gy=5.0)
    # after cycle 1: mean 4.5 Gy = 0.6 Gy/GBq; 4.5 + 0.6 x 7.5 = 9.0 <= 30 -> full
    proposal = services.propose_next_cycle(physicist, patient)
    assert (proposal.plan["action"], proposal.plan["activity_gbq"]) == ("full", 7.5)
    assert proposal.plan["predicted_cumulative_kidney_gy"] == pytest.approx(9.0)
    cycle = accepted(team, proposal)
    assert cycle.planned_date == date(2025, 5, 26)  # 17 March + 10 weeks
    services.record_dosimetry(
        physicist, give(team, cycle, 7.5), left_kidney_dose_gy=10.0, right_kidney_dose_gy=12.0
    )
    # after cycle 2: 4.5 + 11.0 = 15.5 Gy; 11.0 / 7.5 Gy/GBq; 15.5 + 11.0 = 26.5 <= 30 -> full
    proposal = services.propose_next_cycle(physicist, patient)
    assert (proposal.plan["action"], proposal.plan["activity_gbq"]) == ("full", 7.5)
    assert proposal.plan["predicted_cumulative_kidney_gy"] == pytest.approx(26.5)
    cycle = accepted(team, proposal)
    assert cycle.planned_date == date(2025, 8, 4)  # 26 May + 10 weeks
    services.record_dosimetry(
        physicist, give(team, cycle, 7.5), left_kidney_dose_gy=11.5, right_kidney_dose_gy=12.5
    )
    # after cycle 3: 15.5 + 12.0 = 27.5 Gy at 12.0 / 7.5 = 1.6 Gy/GBq; a full cycle gives
    # 27.5 + 12.0 = 39.5 > 30; (30 - 27.5) / 1.6 = 1.5625 -> 1.5 GBq (0.1 step, >= 1.0):
    # 27.5 + 1.6 x 1.5 = 29.9 Gy; right kidney 5 + 12 + 12.5 = 29.5 > left 4 + 10 + 11.5 = 25.5
    assert services.cumulative_kidney_doses(patient) == [
        (1, pytest.approx(4.5)),
        (2, pytest.approx(15.5)),
        (3, pytest.approx(27.5)),
    ]
    proposal = services.propose_next_cycle(physicist, patient)
    plan = proposal.plan
    assert (proposal.for_cycle, plan["action"], plan["limiting"]) == (4, "reduced", "kidney")
    assert plan["activity_gbq"] == pytest.approx(1.5)
    assert plan["predicted_cumulative_kidney_gy"] == pytest.approx(29.9)
    assert plan["predicted_cumulative_kidney_gy_full_cycle"] == pytest.approx(39.5)
    assert (plan["worse_kidney"], plan["worse_kidney_cumulative_gy"]) == ("right", 29.5)
    stored = Decision.objects.filter(patient=patient, kind="cycle_plan").order_by("id").last()
    assert stored is not None
    assert stored.record == plan
    # the physicist overrides with a reason; the cycle is planned with that activity
    services.override_proposal(
        physicist,
        proposal,
        reason="platelets recovering slowly: 1.4 GBq",
        activity_gbq=1.4,
        expected_version=1,
    )
    fourth = Cycle.objects.get(patient=patient, number=4)
    assert (fourth.planned_activity_gbq, fourth.planned_date) == (1.4, date(2025, 10, 13))
    entry = AuditEntry.objects.get(
        table="treatment_planproposal", row_id=str(proposal.pk), action="update"
    )
    assert entry.reason == "platelets recovering slowly: 1.4 GBq"
    assert (entry.old["status"], entry.new["status"]) == ("proposed", "overridden")
    assert (entry.new["override_activity_gbq"], entry.username) == (1.4, "physicist.lund")
    acceptances = AuditEntry.objects.filter(
        table="treatment_planproposal", action="update", new__status="accepted"
    )
    assert acceptances.count() == 3
    schedule = services.schedule_for(patient)
    assert schedule is not None
    assert [visit.done for visit in schedule.cycles()] == [True, True, True, False]


def test_only_the_physicist_decides_on_a_plan(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    proposal = services.propose_next_cycle(team["investigator"], patient)
    for role in ("nurse", "investigator", "pharmacist", "monitor", "uppsala"):
        with pytest.raises(PermissionDenied):
            services.accept_proposal(team[role], proposal, expected_version=1)
        with pytest.raises(PermissionDenied):
            services.override_proposal(
                team[role], proposal, reason="r", activity_gbq=7.0, expected_version=1
            )
    with pytest.raises(PermissionDenied):  # nurses do not propose either
        services.propose_next_cycle(team["nurse"], patient)
    proposal.refresh_from_db()
    assert (proposal.status, proposal.version) == ("proposed", 1)
    assert not Cycle.objects.filter(patient=patient).exists()


def test_a_decision_needs_the_latest_proposal_on_unchanged_doses(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    physicist = team["physicist"]
    cycle = give(team, planned_cycle(team, patient), 7.5)
    dosimetry = services.record_dosimetry(
        physicist, cycle, left_kidney_dose_gy=4, right_kidney_dose_gy=5
    )
    proposal = services.propose_next_cycle(physicist, patient)
    services.record_dosimetry(
        physicist,
        cycle,
        left_kidney_dose_gy=8,
        right_kidney_dose_gy=10,
        reason="VOIs redrawn",
        expected_version=dosimetry.version,
    )
    # the correction superseded the proposal made from the old doses
    with pytest.raises(StaleVersionError, match="version 2"):
        services.accept_proposal(physicist, proposal, expected_version=1)
    with pytest.raises(InvalidInputError, match=r"was superseded by physicist\.lund"):
        services.accept_proposal(physicist, proposal, expected_version=2)
    older = services.propose_next_cycle(physicist, patient)
    newer = services.propose_next_cycle(physicist, patient)
    with pytest.raises(InvalidInputError, match="a newer proposal exists"):
        services.accept_proposal(physicist, older, expected_version=1)
    with pytest.raises(InvalidInputError, match="reason"):
        services.override_proposal(
            physicist, newer, reason=" ", activity_gbq=7.0, expected_version=1
        )
    services.accept_proposal(physicist, newer, expected_version=1)
    with pytest.raises(StaleVersionError, match="version 2"):
        services.accept_proposal(physicist, newer, expected_version=1)
    with pytest.raises(InvalidInputError, match=r"was accepted by physicist\.lund"):
        services.accept_proposal(physicist, newer, expected_version=2)
    with pytest.raises(InvalidInputError, match="cycle=2: is planned"):
        services.propose_next_cycle(physicist, patient)


def test_dosimetry_input_is_checked_and_corrections_need_version_and_reason(
    team: Staff, sites: Sites
) -> None:
    patient = randomized(team, sites, 1)
    physicist = team["physicist"]
    cycle = planned_cycle(team, patient)
    with pytest.raises(InvalidInputError, match="dosimetry follows an administered cycle"):
        services.record_dosimetry(physicist, cycle, left_kidney_dose_gy=4, right_kidney_dose_gy=5)
    cycle = give(team, cycle, 7.5)
    with pytest.raises(PermissionDenied):
        services.record_dosimetry(
            team["investigator"], cycle, left_kidney_dose_gy=4, right_kidney_dose_gy=5
        )
    bad: list[tuple[dict[str, float], str]] = [
        ({"left_kidney_dose_gy": -0.1, "right_kidney_dose_gy": 5}, "left_kidney_dose_gy"),
        ({"left_kidney_dose_gy": 4, "right_kidney_dose_gy": 100.5}, "right_kidney_dose_gy"),
        ({"left_kidney_dose_gy": 4}, "right_kidney_dose_gy"),
        (
            {"left_kidney_dose_gy": 4, "right_kidney_dose_gy": 5, "marrow_dose_gy": 21},
            "marrow_dose_gy",
        ),
        (
            {
                "left_kidney_dose_gy": 4,
                "right_kidney_dose_gy": 5,
                "kidney_effective_half_life_h": 161,
            },
            "kidney_effective_half_life_h",
        ),
    ]
    for doses, field in bad:
        with pytest.raises(InvalidInputError) as refused:
            services.record_dosimetry(physicist, cycle, **doses)
        assert refused.value.field == field
    result = services.record_dosimetry(
        physicist,
        cycle,
        left_kidney_dose_gy=4,
        right_kidney_dose_gy=5,
        kidney_effective_half_life_h=50,
    )
    with pytest.raises(InvalidInputError, match="expected_version"):
        services.record_dosimetry(physicist, cycle, left_kidney_dose_gy=4.2, right_kidney_dose_gy=5)
    with pytest.raises(InvalidInputError, match="reason"):
        services.record_dosimetry(
            physicist, cycle, left_kidney_dose_gy=4.2, right_kidney_dose_gy=5, expected_version=1
        )
    with pytest.raises(InvalidInputError, match="study_path"):
        services.record_dosimetry(physicist, cycle, study_path="../../etc", reason="x")
    result = services.record_dosimetry(
        physicist,
        cycle,
        left_kidney_dose_gy=4.2,
        right_kidney_dose_gy=5,
        reason="left VOI corrected",
        expected_version=1,
    )
    assert (result.version, result.left_kidney_dose_gy, result.source) == (2, 4.2, "entered")
    update = AuditEntry.objects.get(table="treatment_dosimetryresult", action="update")
    assert (update.old["left_kidney_dose_gy"], update.new["left_kidney_dose_gy"]) == (4, 4.2)


@pytest.mark.slow
def test_dosimetry_computed_from_a_study_folder(
    team: Staff, sites: Sites, tmp_path: Path, settings: Any
) -> None:
    settings.DATA_DIR = tmp_path
    folder = tmp_path / "studies" / "S01-LUN-001" / "cycle-1"
    written = make_phantom_study(
        folder, seed=2, grid_size=64, ct_subdivision=2, patient_id="S01-LUN-001"
    )
    truth = json.loads(written.truth_file.read_text(encoding="utf-8"))["vois"]
    patient = randomized(team, sites, 1)
    # the phantom was injected with 7.4 GBq on 3 March 2025
    cycle = give(team, planned_cycle(team, patient, planned_date=date(2025, 3, 3)), 7.4)
    result = services.record_dosimetry(team["physicist"], cycle, study_path="S01-LUN-001/cycle-1")
    assert result.source == "computed"
    # the organ method finds the phantom's known kidney doses within 5 % (left and right
    # differ by 10 %, so a swap would fail)
    assert result.left_kidney_dose_gy == pytest.approx(truth["left_kidney"]["dose_gy"], rel=0.05)
    assert result.right_kidney_dose_gy == pytest.approx(truth["right_kidney"]["dose_gy"], rel=0.05)
    assert result.kidney_effective_half_life_h is not None


def test_labs_are_graded_and_low_platelets_delay_the_cycle(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    cycle = planned_cycle(team, patient)
    drawn = at(FIRST_CYCLE - timedelta(7))
    low = {**GOOD_LABS, "platelets_10e9_l": 80}
    with pytest.raises(PermissionDenied):  # physicists do not enter labs
        services.record_labs(team["physicist"], patient, low, drawn_at=drawn, cycle=cycle)
    panel = services.record_labs(team["nurse"], patient, low, drawn_at=drawn, cycle=cycle)
    assert panel.decision["action"] == "delay"
    assert "Platelets > 100" in panel.decision["reason"]
    # CTCAE v5.0: platelets 75 <= 80 < LLN 145 -> grade 1; Hb 100 <= 128 < LLN 134 -> grade 1;
    # neutrophils 3.4 >= LLN 1.6 -> 0; creatinine 85 <= ULN 100 -> 0
    grades = {field: grade["grade"] for field, grade in panel.grades.items()}
    assert grades == {
        "platelets_10e9_l": 1,
        "hemoglobin_g_l": 1,
        "neutrophils_10e9_l": 0,
        "leukocytes_10e9_l": 0,
        "creatinine_umol_l": 0,
    }
    assert panel.grades["platelets_10e9_l"]["ctcae_term"] == "Platelet count decreased"
    assert Decision.objects.filter(patient=patient, kind="cycle_labs").count() == 1
    with pytest.raises(InvalidInputError, match="only on a 'go'"):
        release(team["investigator"], cycle)
    # platelets 101 > 100 a week later: go, and the cycle is released
    better = {**GOOD_LABS, "platelets_10e9_l": 101}
    services.record_labs(team["nurse"], patient, better, drawn_at=drawn + timedelta(7), cycle=cycle)
    released = release(team["investigator"], cycle)
    assert (released.released_by, released.version) == ("investigator.lund", 2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"platelets_10e9_l_lln": None}, "platelets_10e9_l_lln"),  # a value needs its LLN
        ({"platelets_10e9_l": 3000}, "platelets_10e9_l"),  # implausible
        ({"hemoglobin_g_l": 12.8}, "hemoglobin_g_l"),  # g/dL entered as g/L
        ({"platelet_count": 80}, "platelet_count"),  # unknown field
        ({"creatinine_umol_l_uln": "high"}, "creatinine_umol_l_uln"),
    ],
)
def test_implausible_labs_are_refused(
    team: Staff, sites: Sites, change: dict[str, Any], field: str
) -> None:
    patient = randomized(team, sites, 1)
    values = {key: value for key, value in {**GOOD_LABS, **change}.items() if value is not None}
    with pytest.raises(InvalidInputError) as refused:
        services.record_labs(team["nurse"], patient, values, drawn_at=at(FIRST_CYCLE))
    assert refused.value.field == field
    assert not LabPanel.objects.exists()


def test_a_cycle_delayed_8_weeks_stops_on_failing_labs(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    services.record_dosimetry(
        team["physicist"],
        give(team, planned_cycle(team, patient), 7.5),
        left_kidney_dose_gy=4,
        right_kidney_dose_gy=5,
    )
    cycle = planned_cycle(team, patient)  # target 26 May 2025
    low = {**GOOD_LABS, "platelets_10e9_l": 80}
    # 20 July is 55 days = 7.86 weeks late: still a delay; 21 July is 56 days = 8 weeks: stop.
    # Both lie past the window (26 May + 2 weeks = 9 June): confirmed deviations
    for day, action in ((date(2025, 7, 20), "delay"), (date(2025, 7, 21), "stop")):
        cycle = services.reschedule_cycle(
            team["investigator"],
            cycle,
            planned_date=day,
            reason="platelets low",
            expected_version=cycle.version,
            accept_deviation=True,
        )
        assert cycle.window_deviation.startswith(f"Cycle 2 on {day.isoformat()} is")
        panel = services.record_labs(
            team["nurse"], patient, low, drawn_at=at(day - timedelta(7)), cycle=cycle
        )
        assert panel.decision["action"] == action
    cancelled = services.cancel_cycle(
        team["investigator"], cycle, reason="labs: stop", expected_version=cycle.version
    )
    assert cancelled.status == "cancelled"
    with pytest.raises(InvalidInputError, match="the course ended"):
        services.propose_next_cycle(team["physicist"], patient)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"activity_gbq": -1.0}, "activity_gbq"),
        ({"activity_gbq": 0.0}, "activity_gbq"),
        ({"activity_gbq": 15.01}, "activity_gbq"),
        ({"infusion_end": at(FIRST_CYCLE, 8, 59)}, "infusion_end"),  # before the start
        ({"infusion_end": at(FIRST_CYCLE, 9, 0)}, "infusion_end"),  # at the start
        ({"lot": "  "}, "lot"),
        ({"infusion_start": datetime(2025, 3, 17, 9)}, "infusion_start"),  # no time zone
        ({"infusion_end": datetime.now(UTC) + timedelta(hours=1)}, "infusion_end"),  # future
    ],
)
def test_administration_refuses_bad_input_and_writes_nothing(
    team: Staff, sites: Sites, change: dict[str, Any], field: str
) -> None:
    patient = randomized(team, sites, 1)
    cycle = planned_cycle(team, patient)
    services.record_labs(team["nurse"], patient, GOOD_LABS, drawn_at=at(FIRST_CYCLE), cycle=cycle)
    cycle = release(team["investigator"], cycle)
    entries = AuditEntry.objects.count()
    given: dict[str, Any] = {
        "activity_gbq": 7.5,
        "lot": "LU-1",
        "infusion_start": at(FIRST_CYCLE, 9, 0),
        "infusion_end": at(FIRST_CYCLE, 9, 30),
    }
    with pytest.raises(InvalidInputError) as refused:
        services.record_administration(
            team["nurse"], cycle, **{**given, **change}, expected_version=2
        )
    assert refused.value.field == field
    cycle.refresh_from_db()
    assert (cycle.status, cycle.version, cycle.administered_activity_gbq) == ("planned", 2, None)
    assert AuditEntry.objects.count() == entries
    # the limit itself is accepted: 15 GBq
    done = services.record_administration(
        team["nurse"], cycle, **{**given, "activity_gbq": 15.0}, expected_version=2
    )
    assert (done.status, done.administered_activity_gbq, done.version) == ("administered", 15, 3)


def test_administration_needs_release_and_a_current_version(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    cycle = planned_cycle(team, patient)
    given: dict[str, Any] = {
        "activity_gbq": 7.5,
        "lot": "LU-1",
        "infusion_start": at(FIRST_CYCLE, 9, 0),
        "infusion_end": at(FIRST_CYCLE, 9, 30),
    }
    with pytest.raises(InvalidInputError, match="not released"):
        services.record_administration(team["nurse"], cycle, **given, expected_version=1)
    services.record_labs(team["nurse"], patient, GOOD_LABS, drawn_at=at(FIRST_CYCLE), cycle=cycle)
    with pytest.raises(PermissionDenied):  # nurses do not release
        release(team["nurse"], cycle)
    release(team["investigator"], cycle)
    with pytest.raises(StaleVersionError, match="version 2"):  # loaded before the release
        services.record_administration(team["nurse"], cycle, **given, expected_version=1)
    done = services.record_administration(team["nurse"], cycle, **given, expected_version=2)
    with pytest.raises(InvalidInputError, match="reason"):  # a correction needs a reason
        services.record_administration(
            team["nurse"], done, **{**given, "activity_gbq": 7.4}, expected_version=3
        )
    corrected = services.record_administration(
        team["nurse"],
        done,
        **{**given, "activity_gbq": 7.4},
        expected_version=3,
        reason="residual activity measured",
    )
    assert corrected.administered_activity_gbq == 7.4
    entry = AuditEntry.objects.filter(table="treatment_cycle", action="update").last()
    assert entry is not None
    assert (entry.reason, entry.old["administered_activity_gbq"]) == (
        "residual activity measured",
        7.5,
    )


def test_schedule_follows_the_administered_cycles(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1, fdg_positive=True)
    assert services.schedule_for(patient) is not None
    cycle = planned_cycle(team, patient)
    give(team, cycle, 7.5)
    schedule = services.schedule_for(patient)
    assert schedule is not None
    (first,) = schedule.cycles()
    assert (first.done, first.administered_date) == (True, FIRST_CYCLE)
    kinds = {visit.kind.value for visit in schedule.visits}
    assert {"capecitabine_start", "capecitabine_end", "dosimetry_imaging"} <= kinds
    # the next cycle is due 10 weeks after the administration, window +/- 2 weeks
    assert services.target_date(patient, 2) == date(2025, 5, 26)
    unrandomized = trial_services.register_patient(
        team["nurse"], sites["Lund"], "S01-LUN-099", "female"
    )
    with pytest.raises(InvalidInputError, match="not randomized"):
        services.propose_next_cycle(team["physicist"], unrandomized)


def test_no_plan_is_accepted_from_an_implausible_dose(team: Staff, sites: Sites) -> None:
    """0 Gy in both kidneys (0 Gy/GBq) once made the allowed activity infinite: the planner
    now asks for dosimetry, and such a proposal cannot be accepted."""
    patient = randomized(team, sites, 1)
    physicist = team["physicist"]
    cycle = give(team, planned_cycle(team, patient), 7.5)
    services.record_dosimetry(physicist, cycle, left_kidney_dose_gy=0, right_kidney_dose_gy=0)
    proposal = services.propose_next_cycle(physicist, patient)
    assert (proposal.plan["action"], proposal.plan["activity_gbq"]) == ("dosimetry needed", 0.0)
    with pytest.raises(InvalidInputError, match="cannot be accepted: no plan until the kidney"):
        services.accept_proposal(physicist, proposal, expected_version=1)
    assert not Cycle.objects.filter(patient=patient, number=2).exists()
