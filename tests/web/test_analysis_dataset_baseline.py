"""The trial database's analysis dataset, issue 16 columns (web/exports/analysis_dataset.py):
baseline from the screening record, screen failures per failing criterion, the limit that held
a cycle's activity, capecitabine dose level and full dose, AE attribution and outcome, a death's
relation to treatment; rows of patients not yet screened at the cut-off left out; queries
constant in the number of patients."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from startrt.web.events import services as events
from startrt.web.exports.analysis_dataset import trial_dataset
from startrt.web.treatment import capecitabine, services
from startrt.web.trial import services as trial_services
from startrt.web.trial.models import Patient
from support.records import SCREENING, eligible_screening
from web.test_capecitabine import BODY, MODERATE
from web.test_events import adverse_event
from web.test_treatment import Sites, Staff, give, planned_cycle, randomized

# BODY: 78 kg, 178 cm, 64 y, creatinine 85 umol/L (male): DuBois BSA 1.9591 m2, CrCl
# (140 - 64) x 78 x 1.23 / 85 = 85.8 ml/min: no renal reduction. MODERATE: 60 kg, 170 cm,
# 70 y, creatinine 150: CrCl (140 - 70) x 60 x 1.23 / 150 = 34.4 ml/min: 75 %.
LATER = SCREENING + timedelta(days=7)  # the not-eligible patient's screening date


def not_eligible(team: Staff, sites: Sites, trial_id: str, screened_on: date) -> Patient:
    """A female patient, 64 y, ECOG 3 and Krenning 2 (fails IN03 and IN06), no measured GFR:
    creatinine 85 umol/L and cystatin C 1.0 mg/L."""
    patient = trial_services.register_patient(team["nurse"], sites["Lund"], trial_id, "female")
    record = eligible_screening(
        screening_date=screened_on.isoformat(),
        progression_imaging_date=(screened_on - timedelta(days=120)).isoformat(),
        ecog=3,
        krenning_score=2,
        measured_gfr_ml_min_173=None,
        cystatin_c_mg_l=1.0,
        primary_site="lung",
        ki67_percent=4.0,
    )
    trial_services.record_screening(team["nurse"], patient, record)
    return patient


def cap_with_capecitabine(
    team: Staff, sites: Sites, number: int, body: dict[str, Any], level: int
) -> Patient:
    """A CAP-dTOC patient (FDG-PET positive) whose cycle 1 capecitabine was prescribed at dose
    level `level` and partly dispensed (28 x 500 mg, 14 x 150 mg)."""
    patient = randomized(team, sites, number, fdg_positive=True)
    cycle = planned_cycle(team, patient)
    prescription = capecitabine.prescribe_capecitabine(
        team["pharmacist"], cycle, **body, dose_level_percent=level
    )
    capecitabine.dispense(team["pharmacist"], prescription, tablets_500=28, tablets_150=14)
    return patient


@pytest.fixture
def trial(team: Staff, sites: Sites) -> dict[str, str]:
    """S01-LUN-001 dTOC (no primary site or Ki-67 recorded): cycle 1 full (7.5 GBq) with kidney
    doses 16 / 16 Gy, cycle 2 planned reduced; an AE (probable for PRRT, recovering) and a
    death related to treatment.
    S01-LUN-002 CAP-dTOC at 75 %, S01-LUN-003 CAP-dTOC in moderate renal impairment at 100 %.
    S01-LUN-004 not eligible, screened a week after the others."""
    dtoc = randomized(team, sites, 1)
    first = give(team, planned_cycle(team, dtoc), 7.5)
    services.record_dosimetry(
        team["physicist"], first, left_kidney_dose_gy=16.0, right_kidney_dose_gy=16.0
    )
    give(team, planned_cycle(team, dtoc), 6.5)
    events.report_adverse_event(
        team["nurse"],
        dtoc,
        adverse_event(attribution_prrt="probable", outcome="recovering", resolved_date=None),
    )
    events.record_death(
        team["investigator"],
        dtoc,
        {"date": timezone.localdate().isoformat(), "cause": "Sepsis"}
        | {"related_to_treatment": True},
    )
    cap_with_capecitabine(team, sites, 2, BODY, 75)
    cap_with_capecitabine(team, sites, 3, MODERATE, 100)
    not_eligible(team, sites, "S01-LUN-004", LATER)
    return {"dtoc": dtoc.trial_id, "failed": "S01-LUN-004"}


def test_baseline_is_the_screening_record(trial: dict[str, str]) -> None:
    baseline = trial_dataset(timezone.localdate()).baseline.set_index("trial_id")
    assert len(baseline) == 4  # every screened patient once
    dtoc = baseline.loc[trial["dtoc"]]
    assert dtoc["sex"] == "male"
    assert dtoc[["primary_site", "ki67_percent", "who_grade"]].isna().all()  # not recorded
    assert (dtoc["age_years"], dtoc["ecog"], dtoc["krenning_score"]) == (64.0, 1, 3)
    assert (dtoc["weight_kg"], dtoc["height_cm"]) == (78.0, 178.0)
    assert dtoc["gfr_ml_min_173"] == 72.0  # measured
    assert [bool(dtoc[c]) for c in ("fdg_pet_positive", "prior_non_ssa_therapy", "prior_prrt")] == [
        False,
        False,
        False,
    ]
    failed = baseline.loc[trial["failed"]]
    assert (failed["sex"], failed["ecog"], failed["krenning_score"]) == ("female", 3, 2)
    assert (failed["primary_site"], failed["ki67_percent"]) == ("lung", 4.0)
    assert failed["who_grade"] == "G2"  # Ki-67 4 %: 3-20 % is G2
    # no measured GFR: the mean of LMR and CAPA, to 0.1 ml/min/1.73 m2.
    # LMR (Bjork 2011), female, creatinine 85 < 150: X = 2.50 + 0.0121 x (150 - 85) = 3.2865;
    # exp(X - 0.0158 x 64 + 0.438 x ln 64) = exp(4.0969) = 60.15.
    lmr = math.exp(2.50 + 0.0121 * (150 - 85) - 0.0158 * 64 + 0.438 * math.log(64))
    # CAPA (Grubb 2014): 130 x 1.0^-1.069 x 64^-0.117 - 7 = 72.92.
    capa = 130 * 1.0**-1.069 * 64**-0.117 - 7
    assert failed["gfr_ml_min_173"] == pytest.approx(round((lmr + capa) / 2, 1), abs=0.05)
    # CAP-dTOC in moderate renal impairment: the screening record's own values, not the
    # prescription's
    assert baseline.loc["S01-LUN-003", "weight_kg"] == 78.0


def test_screen_failures_name_each_failing_criterion(trial: dict[str, str]) -> None:
    failures = trial_dataset(timezone.localdate()).screen_failures
    # START-01 v1.0: IN03 ecog <= 1, IN06 krenning_score >= 3; each reason is the field's label
    # and the kind with the rule, without the patient's value
    assert failures.to_dict("records") == [
        {"trial_id": trial["failed"], "criterion": "IN03", "reason": "ECOG (inclusion: ≤ 1)"},
        {
            "trial_id": trial["failed"],
            "criterion": "IN06",
            "reason": "Krenning score (inclusion: ≥ 3)",
        },
    ]


def test_a_cycle_reduced_by_the_kidney_limit_says_kidney(trial: dict[str, str]) -> None:
    cycles = trial_dataset(timezone.localdate()).cycles
    dtoc = cycles[cycles["trial_id"] == trial["dtoc"]]
    # cycle 1: no dosimetry yet, full 7.5 GBq (nothing limited it); after it 16 Gy (mean kidney)
    # = 2.133 Gy/GBq; a full cycle 2 would give 16 + 16 = 32 Gy > 30 Gy: reduced by the kidney
    assert dtoc["cycle"].tolist() == [1, 2]
    assert pd.isna(dtoc["activity_limited_by"].iloc[0])
    assert dtoc["activity_limited_by"].iloc[1] == "kidney"


def test_capecitabine_dose_level_and_full_dose(trial: dict[str, str]) -> None:
    frame = trial_dataset(timezone.localdate()).capecitabine.set_index("trial_id")
    assert frame["dose_level_percent"].to_dict() == {"S01-LUN-002": 75, "S01-LUN-003": 100}
    # The prescription's course: daily mg (morning + evening, whole tablets) x 14 days.
    # S01-LUN-002 at 100 %: 1.9591 m2 x 825 = 1616.3 mg per dose -> 1650 + 1650 = 3300 mg daily
    # (3 x 500 + 1 x 150 each); 3300 x 14 = 46 200 mg (as 84 x 500 + 28 x 150 tablets).
    # S01-LUN-003: DuBois 0.007184 x 60^0.425 x 170^0.725 = 1.6949 m2 x 825 x 0.75 (CrCl 34.4)
    # = 1048.7 mg per dose -> 1000 + 1150 = 2150 mg daily; 2150 x 14 = 30 100 mg.
    assert frame["full_dose_mg"].to_dict() == {"S01-LUN-002": 46200.0, "S01-LUN-003": 30100.0}
    assert (84 * 500 + 28 * 150, 56 * 500 + 14 * 150) == (46200, 30100)


def test_adverse_event_attribution_outcome_and_death_relation(trial: dict[str, str]) -> None:
    dataset = trial_dataset(timezone.localdate())
    ae = dataset.adverse_events.iloc[0]
    assert (ae["attribution_prrt"], ae["attribution_capecitabine"], ae["outcome"]) == (
        "probable",
        "not_applicable",
        "recovering",
    )
    death = dataset.deaths.iloc[0]
    assert (death["trial_id"], death["cause"], bool(death["related_to_treatment"])) == (
        trial["dtoc"],
        "Sepsis",
        True,
    )


def test_a_patient_screened_after_the_cut_off_has_no_baseline(trial: dict[str, str]) -> None:
    dataset = trial_dataset(LATER - timedelta(days=1))
    assert trial["failed"] not in set(dataset.patients["trial_id"])
    assert trial["failed"] not in set(dataset.baseline["trial_id"])
    assert dataset.screen_failures.empty
    assert len(dataset.baseline) == 3


def _queries() -> int:
    with CaptureQueriesContext(connection) as captured:
        trial_dataset(timezone.localdate())
    return len(captured)


def test_queries_do_not_grow_with_patients(
    trial: dict[str, str], team: Staff, sites: Sites
) -> None:
    before = _queries()
    for number in (5, 6):
        patient = cap_with_capecitabine(team, sites, number, BODY, 100)
        services.record_dosimetry(
            team["physicist"],
            give(team, patient.cycles.get(number=1), 7.5),
            left_kidney_dose_gy=4.0,
            right_kidney_dose_gy=5.0,
        )
    not_eligible(team, sites, "S01-LUN-007", LATER)
    not_eligible(team, sites, "S01-LUN-008", LATER)
    assert _queries() == before
