"""Corrections after first entry: an administration (activity, lot, infusion times, days in
hospital) or a dosimetry result, with a reason and the version, audited old/new; and what
depends on them: the cumulative kidney dose, an undecided proposal (superseded) and a cycle
planned from the old values (re-planned by the planner's next proposal).

START-01 v1.0: 7.5 GBq cycles, cumulative mean-kidney absorbed dose <= 30 Gy, reduced activity
rounded down to 0.1 GBq."""

from __future__ import annotations

from datetime import date

import pytest

from startrt.validation import InvalidInputError
from startrt.web.treatment import services
from startrt.web.treatment.doses import plan_outdated
from startrt.web.treatment.models import Cycle, DosimetryResult, PlanProposal
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import AuditEntry, Patient
from web.test_treatment import (
    FIRST_CYCLE,
    Sites,
    Staff,
    at,
    give,
    labs_go,
    planned_cycle,
    randomized,
    release,
)


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    return randomized(team, sites, 1)


def correct(team: Staff, cycle: Cycle, reason: str, **changes: object) -> Cycle:
    recorded = {
        "activity_gbq": cycle.administered_activity_gbq,
        "lot": cycle.lot,
        "infusion_start": cycle.infusion_start,
        "infusion_end": cycle.infusion_end,
        "inpatient_days": cycle.inpatient_days,
    }
    return services.record_administration(
        team["nurse"],
        cycle,
        **{**recorded, **changes},  # type: ignore[arg-type]
        expected_version=cycle.version,
        reason=reason,
    )


def test_an_administration_is_corrected_with_a_reason_and_audited(
    team: Staff, patient: Patient
) -> None:
    given = give(team, planned_cycle(team, patient), 7.5)
    assert given.inpatient_days is None
    with pytest.raises(InvalidInputError, match="a correction of an administration needs a reason"):
        correct(team, given, " ", lot="LU-2025-18")
    with pytest.raises(InvalidInputError) as refused:
        correct(team, given, "stay entered", inpatient_days=60.5)
    assert (refused.value.field, refused.value.value) == ("inpatient_days", 60.5)
    corrected = correct(
        team,
        given,
        "lot and times from the pharmacy record",
        lot="LU-2025-18",
        infusion_start=at(FIRST_CYCLE, 10, 0),
        infusion_end=at(FIRST_CYCLE, 10, 40),
        inpatient_days=2.0,
    )
    assert (corrected.lot, corrected.inpatient_days, corrected.version) == ("LU-2025-18", 2.0, 4)
    entry = AuditEntry.objects.filter(table="treatment_cycle", action="update").last()
    assert entry is not None
    assert entry.reason == "lot and times from the pharmacy record"
    assert (entry.old["lot"], entry.new["lot"]) == ("LU-2025-17", "LU-2025-18")
    assert (entry.old["inpatient_days"], entry.new["inpatient_days"]) == (None, 2.0)
    assert entry.new["infusion_start"].startswith("2025-03-17T10:00")
    with pytest.raises(StaleVersionError, match="version 4"):
        services.record_administration(
            team["nurse"],
            corrected,
            activity_gbq=7.4,
            lot="LU-2025-18",
            infusion_start=at(FIRST_CYCLE, 10, 0),
            infusion_end=at(FIRST_CYCLE, 10, 40),
            expected_version=3,
            reason="stale",
        )
    # the limits themselves are accepted: 0 and 60 days
    assert correct(team, corrected, "day case", inpatient_days=0.0).inpatient_days == 0.0
    corrected.refresh_from_db()
    assert correct(team, corrected, "long stay", inpatient_days=60).inpatient_days == 60


def test_a_dosimetry_correction_rederives_the_kidney_dose_and_supersedes_the_proposal(
    team: Staff, patient: Patient
) -> None:
    physicist = team["physicist"]
    cycle = give(team, planned_cycle(team, patient), 7.5)
    result = services.record_dosimetry(
        physicist, cycle, left_kidney_dose_gy=4.0, right_kidney_dose_gy=5.0, imaging_sessions=4
    )
    assert result.imaging_sessions == 4
    proposal = services.propose_next_cycle(physicist, patient)
    # mean 4.5 Gy = 0.6 Gy/GBq: 4.5 + 0.6 x 7.5 = 9.0 Gy predicted
    assert proposal.plan["predicted_cumulative_kidney_gy"] == pytest.approx(9.0)
    assert services.cumulative_kidney_doses(patient) == [(1, pytest.approx(4.5))]
    with pytest.raises(StaleVersionError):
        services.record_dosimetry(
            physicist,
            cycle,
            left_kidney_dose_gy=8.0,
            right_kidney_dose_gy=10.0,
            reason="VOIs redrawn",
            expected_version=2,
        )
    corrected = services.record_dosimetry(
        physicist,
        cycle,
        left_kidney_dose_gy=8.0,
        right_kidney_dose_gy=10.0,
        imaging_sessions=3,
        reason="VOIs redrawn",
        expected_version=1,
    )
    assert (corrected.version, corrected.imaging_sessions) == (2, 3)
    # mean (8 + 10) / 2 = 9.0 Gy now
    assert services.cumulative_kidney_doses(patient) == [(1, pytest.approx(9.0))]
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by) == ("superseded", "physicist.lund")
    assert proposal.reason == "dosimetry of cycle 1 corrected: VOIs redrawn"
    entry = AuditEntry.objects.get(
        table="treatment_planproposal", row_id=str(proposal.pk), action="update"
    )
    assert (entry.old["status"], entry.new["status"]) == ("proposed", "superseded")
    # asked again: 9.0 Gy at 1.2 Gy/GBq; 9.0 + 1.2 x 7.5 = 18.0 Gy predicted
    again = services.propose_next_cycle(physicist, patient)
    assert again.plan["predicted_cumulative_kidney_gy"] == pytest.approx(18.0)


def test_a_cycle_planned_on_corrected_doses_is_re_planned_before_its_release(
    team: Staff, patient: Patient
) -> None:
    physicist = team["physicist"]
    first = give(team, planned_cycle(team, patient), 7.5)
    services.record_dosimetry(physicist, first, left_kidney_dose_gy=10.0, right_kidney_dose_gy=12.0)
    second = give(team, planned_cycle(team, patient), 7.5)
    dosimetry = services.record_dosimetry(
        physicist, second, left_kidney_dose_gy=10.0, right_kidney_dose_gy=12.0
    )
    # after cycle 2: 11 + 11 = 22 Gy at 11 / 7.5 Gy/GBq; 22 + 11 = 33 > 30 -> reduced:
    # (30 - 22) / (11 / 7.5) = 5.45 -> 5.4 GBq
    third = planned_cycle(team, patient)
    assert third.planned_activity_gbq == pytest.approx(5.4)
    labs_go(team, third)
    # cycle 2's kidneys were 13 and 15 Gy: 11 + 14 = 25 Gy at 14 / 7.5 Gy/GBq;
    # (30 - 25) / (14 / 7.5) = 2.68 -> 2.6 GBq; the planned 5.4 GBq would give 35.1 Gy
    services.record_dosimetry(
        physicist,
        second,
        left_kidney_dose_gy=13.0,
        right_kidney_dose_gy=15.0,
        reason="recovery coefficients applied",
        expected_version=dosimetry.version,
    )
    assert plan_outdated(third)
    with pytest.raises(InvalidInputError, match="ask the planner again"):
        release(team["investigator"], third)
    replan = services.propose_next_cycle(physicist, patient)
    assert (replan.for_cycle, replan.plan["activity_gbq"]) == (3, pytest.approx(2.6))
    services.accept_proposal(physicist, replan, expected_version=1)
    third = Cycle.objects.get(pk=third.pk)
    assert (third.planned_activity_gbq, third.planned_date, third.status) == (
        pytest.approx(2.6),
        date(2025, 8, 4),
        "planned",
    )
    assert not plan_outdated(third)
    entry = AuditEntry.objects.filter(table="treatment_cycle", row_id=str(third.pk)).last()
    assert entry is not None
    assert (entry.old["planned_activity_gbq"], entry.new["planned_activity_gbq"]) == (
        pytest.approx(5.4),
        pytest.approx(2.6),
    )
    assert entry.reason.startswith(f"re-planned by proposal {replan.pk}")
    assert release(team["investigator"], third).released_by == "investigator.lund"


def test_an_activity_correction_also_outdates_the_next_plan(team: Staff, patient: Patient) -> None:
    physicist = team["physicist"]
    first = give(team, planned_cycle(team, patient), 7.5)
    services.record_dosimetry(physicist, first, left_kidney_dose_gy=4.0, right_kidney_dose_gy=5.0)
    second = planned_cycle(team, patient)
    assert not plan_outdated(second)
    assert not PlanProposal.objects.filter(status="proposed").exists()
    correct(team, Cycle.objects.get(pk=first.pk), "residual activity measured", activity_gbq=7.2)
    assert plan_outdated(second)  # Gy/GBq of cycle 1 is now 4.5 / 7.2


def test_dosimetry_input_bounds_for_sessions(team: Staff, patient: Patient) -> None:
    cycle = give(team, planned_cycle(team, patient), 7.5)
    for sessions in (0, 11, 2.5, True):
        with pytest.raises(InvalidInputError) as refused:
            services.record_dosimetry(
                team["physicist"],
                cycle,
                left_kidney_dose_gy=4.0,
                right_kidney_dose_gy=5.0,
                imaging_sessions=sessions,  # type: ignore[arg-type]
            )
        assert refused.value.field == "imaging_sessions"
    assert not DosimetryResult.objects.exists()
    with pytest.raises(InvalidInputError, match="not both"):
        services.record_dosimetry(
            team["physicist"], cycle, imaging_sessions=4, study_path="S01-LUN-001/cycle-1"
        )
