"""The trial database as an analysis dataset (web/exports/analysis_dataset.py): a dTOC patient
with two cycles, labs, dosimetry, an adverse event, a RECIST series and a follow-up, and a
screened patient who was not eligible."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from django.utils import timezone

from startrt.analysis.dataset import read_dataset, write_dataset
from startrt.clinical.egfr import lmr_egfr
from startrt.clinical.sex import Sex
from startrt.protocol.definition import default_protocol
from startrt.protocol.schedule import VisitKind
from startrt.web.events import services as events
from startrt.web.exports.analysis_dataset import trial_dataset
from startrt.web.treatment import services
from startrt.web.trial import services as trial_services
from support.records import SCREENING, eligible_screening
from web.test_events import PR_AT_MINUS_30, adverse_event, series_data
from web.test_treatment import FIRST_CYCLE, Sites, Staff, give, planned_cycle, randomized


@pytest.fixture
def course(team: Staff, sites: Sites) -> str:
    """S01-LUN-001 (dTOC): cycle 1 (7.5 GBq, doses 4.0 / 5.0 Gy, 3 sessions, 2 in-patient
    days), cycle 2 (7.4 GBq, doses 4.4 / 5.2 Gy entered without sessions), a grade 3 serious
    AE, PR on 2025-04-14 and an alive follow-up. S01-LUN-002: screened, ECOG 3: not eligible."""
    patient = randomized(team, sites, 1)
    physicist = team["physicist"]
    first = give(team, planned_cycle(team, patient), 7.5)
    services.record_administration(
        team["nurse"],
        first,
        activity_gbq=7.5,
        lot=first.lot,
        infusion_start=first.infusion_start,
        infusion_end=first.infusion_end,
        inpatient_days=2,
        reason="in-patient stay recorded",
        expected_version=first.version,
    )
    services.record_dosimetry(
        physicist, first, left_kidney_dose_gy=4.0, right_kidney_dose_gy=5.0, imaging_sessions=3
    )
    second = give(team, planned_cycle(team, patient), 7.4)
    services.record_dosimetry(physicist, second, left_kidney_dose_gy=4.4, right_kidney_dose_gy=5.2)
    events.report_adverse_event(
        team["nurse"],
        patient,
        adverse_event(
            term="Platelet count decreased",
            ctcae_grade=3,
            serious=True,
            seriousness_criteria=["hospitalisation"],
        ),
    )
    events.record_tumour_assessment(team["nurse"], patient, series_data(PR_AT_MINUS_30))
    events.record_follow_up(
        team["nurse"], patient, {"date": "2025-08-01", "status": "alive", "progression": False}
    )
    other = trial_services.register_patient(team["nurse"], sites["Lund"], "S01-LUN-002", "female")
    trial_services.record_screening(
        team["nurse"], other, eligible_screening(ecog=3, measured_gfr_ml_min_173=None)
    )
    return patient.trial_id


def test_the_database_as_dataset(course: str, tmp_path: object) -> None:
    today = timezone.localdate()
    dataset = trial_dataset(today)
    patients = dataset.patients.set_index("trial_id")
    assert patients.loc[course, ["arm", "treatment_arm"]].tolist() == ["personalized", "dTOC"]
    assert patients.loc[course, "randomized_on"].date() == today  # allocated in this test
    assert bool(patients.loc[course, "eligible"]) is True  # bool(NA) would raise
    assert bool(patients.loc["S01-LUN-002", "eligible"]) is False
    assert pd.isna(patients.loc["S01-LUN-002", "randomized_on"])
    assert patients.loc[course, "screened_on"].date() == SCREENING

    cycles = dataset.cycles
    assert cycles["cycle"].tolist() == [1, 2]
    assert cycles["activity_gbq"].tolist() == [7.5, 7.4]
    # the protocol limits the mean kidney: (4.0 + 5.0) / 2 = 4.5, (4.4 + 5.2) / 2 = 4.8
    assert cycles["kidney_dose_gy"].tolist() == pytest.approx([4.5, 4.8])
    # 3 sessions as recorded; none recorded -> the protocol's 4 imaging time points
    assert cycles["dosimetry_sessions"].tolist() == [3, 4]
    assert cycles["inpatient_days"].tolist() == [2.0, 0.0]
    assert cycles["administered_on"].iloc[0].date() == FIRST_CYCLE

    ae = dataset.adverse_events.iloc[0]
    assert (ae["term"], ae["grade"], bool(ae["serious"])) == ("Platelet count decreased", 3, True)
    assessment = dataset.assessments.iloc[0]
    assert (assessment["assessed_on"].date(), assessment["response"]) == (date(2025, 4, 14), "PR")
    assert dataset.follow_up["status"].tolist() == ["alive"]

    labs = dataset.labs[dataset.labs["trial_id"] == course]
    anaemia = labs[labs["term"] == "Anemia"]
    # Hb 128 g/L with LLN 134: grade 1 (LLN - 100 g/L) on each of the two pre-cycle panels
    assert anaemia["grade"].tolist() == [1, 1]
    egfr = labs[labs["term"] == "egfr"]
    # the measured GFR (72) at screening and on both pre-cycle panels
    assert egfr["drawn_on"].iloc[0].date() == SCREENING
    assert egfr["value"].tolist() == [72, 72, 72]
    # no measured GFR: LMR from creatinine 85 umol/L, female, 64 y
    other = dataset.labs[dataset.labs["trial_id"] == "S01-LUN-002"]
    assert other["value"].tolist() == [pytest.approx(lmr_egfr(Sex.FEMALE, 64, 85), abs=0.01)]

    visits = dataset.visits[dataset.visits["trial_id"] == course]
    assert visits["visit_on"].is_monotonic_increasing
    assert visits["visit_on"].is_unique
    # screening, 2 lab draws, 2 administrations, 1 assessment, 1 follow-up and the
    # randomization (today, in this test): 8 distinct dates
    assert len(visits) == 8

    folder = tmp_path / "dataset"  # type: ignore[operator]
    write_dataset(dataset, folder)
    assert read_dataset(folder).cycles["kidney_dose_gy"].tolist() == pytest.approx([4.5, 4.8])


def test_a_cut_off_keeps_what_was_known_then(course: str) -> None:
    cut_off = FIRST_CYCLE + timedelta(days=1)
    dataset = trial_dataset(cut_off)
    patients = dataset.patients.set_index("trial_id")
    # randomized today, after the cut-off: not yet randomized at the cut-off
    assert pd.isna(patients.loc[course, "randomized_on"])
    assert pd.isna(patients.loc[course, "arm"])
    assert dataset.cycles["cycle"].tolist() == [1]
    assert dataset.adverse_events.empty  # onset 2025-06-02
    assert dataset.assessments.empty  # 2025-04-14
    assert (dataset.visits["visit_on"] <= pd.Timestamp(cut_off)).all()


@pytest.mark.parametrize(
    ("kidney", "doses"),
    [
        ("mean", [4.5, 4.8]),
        ("left", [4.0, 4.4]),
        # the worse kidney is the right (5.0 + 5.2 = 10.2 Gy > 8.4 Gy): its dose in every cycle
        ("worse", [5.0, 5.2]),
    ],
)
def test_cycle_doses_add_up_to_the_course_models_cumulative(
    course: str, kidney: str, doses: list[float]
) -> None:
    limit = default_protocol().renal_limit.model_copy(update={"kidney": kidney})
    protocol = default_protocol().model_copy(update={"renal_limit": limit})
    cycles = trial_dataset(timezone.localdate(), protocol).cycles
    assert cycles["kidney_dose_gy"].tolist() == pytest.approx(doses)


def test_visits_use_the_schedules_vocabulary(course: str) -> None:
    """Visit kinds are `VisitKind` values, as the simulation writes them: the randomization,
    the pre-cycle panels (drawn for a cycle), the cycles, the assessment and the follow-up."""
    visits = trial_dataset(timezone.localdate()).visits
    kinds = set(visits[visits["trial_id"] == course]["kind"])
    assert kinds <= set(VisitKind)
    assert {
        VisitKind.RANDOMIZATION,
        VisitKind.PRE_CYCLE_LAB,
        VisitKind.CYCLE,
        VisitKind.ASSESSMENT,
        VisitKind.FOLLOW_UP,
    } <= kinds
