"""The simulated trial's dataset fills the baseline, the screen failures, the limit that held a
cycle's activity and the capecitabine dose level and full dose; each checked against the
candidates' simulated values, the protocol file and the label's dosing, not the producer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

import startrt.protocol
from startrt.clinical.bsa import dubois_bsa_m2
from startrt.clinical.capecitabine import capecitabine_dose
from startrt.protocol.definition import Protocol
from startrt.simulation.parameters import Parameters
from startrt.simulation.population import screening_record
from startrt.simulation.trial import TrialRun, simulate_trial

PROTOCOL_FILE = Path(startrt.protocol.__file__).parent / "files" / "START-01_v1.0.toml"


@pytest.fixture(scope="module")
def run(small: Parameters, protocol: Protocol) -> TrialRun:
    return simulate_trial(small, 5, protocol)


def candidate(trial_id: str) -> int:
    """SIM-0007 is candidate 6."""
    return int(trial_id.removeprefix("SIM-")) - 1


def threshold(criterion: str) -> float:
    """The criterion's threshold as the protocol file writes it."""
    data = tomllib.loads(PROTOCOL_FILE.read_text(encoding="utf-8"))
    listed = data["eligibility"]["inclusion"] + data["eligibility"]["exclusion"]
    return float(next(entry for entry in listed if entry["id"] == criterion)["threshold"])


def test_every_not_eligible_candidate_and_only_those_have_screen_failures(run: TrialRun) -> None:
    patients, failures = run.dataset.patients, run.dataset.screen_failures
    not_eligible = set(patients.loc[~patients["eligible"].astype(bool), "trial_id"])
    assert not_eligible  # the small trial has screen failures
    assert set(failures["trial_id"]) == not_eligible
    assert set(run.dataset.baseline["trial_id"]) == set(patients["trial_id"])


def test_a_failing_criterion_really_fails(run: TrialRun) -> None:
    """ECOG, Krenning and GFR failures recomputed from the simulated values and the file."""
    candidates = run.screening.candidates
    failures = run.dataset.screen_failures
    checked = 0
    for row in failures.itertuples():
        c = candidate(str(row.trial_id))
        if row.criterion == "IN03":  # ECOG <= 1 is required: this one is above
            assert candidates.ecog[c] > threshold("IN03")
            assert row.reason == "ECOG (inclusion: ≤ 1)"
        elif row.criterion == "IN06":  # Krenning >= 3 is required: this one is below
            assert candidates.krenning_score[c] < threshold("IN06")
        elif row.criterion == "IN12":  # measured GFR > 50 is required: this one is <= 50
            assert candidates.gfr_measured[c] <= threshold("IN12")
        else:
            continue
        checked += 1
    assert checked >= 3


def test_baseline_rows_are_the_screening_records(run: TrialRun) -> None:
    candidates = run.screening.candidates
    baseline = run.dataset.baseline.set_index("trial_id")
    eligible = run.dataset.patients.set_index("trial_id")["eligible"].astype(bool)
    chosen = [eligible.index[0], eligible[eligible].index[1], eligible[~eligible].index[0]]
    for trial_id in chosen:
        c = candidate(trial_id)
        row = baseline.loc[trial_id]
        record = screening_record(candidates, c, run.dataset.patients["screened_on"].iloc[c].date())
        assert row["age_years"] == record.age_years == candidates.age_years[c]
        assert row["sex"] == ("female" if candidates.female[c] else "male")
        assert row["ecog"] == record.ecog == candidates.ecog[c]
        assert row["krenning_score"] == candidates.krenning_score[c]
        assert row["fdg_pet_positive"] == bool(candidates.fdg_positive[c])
        # the GFR the criteria read: the measured one, which every candidate has
        assert row["gfr_ml_min_173"] == candidates.gfr_measured[c]
        assert row["weight_kg"] == candidates.weight_kg[c]
        assert row["height_cm"] == candidates.height_cm[c]
        assert row["prior_non_ssa_therapy"] == record.prior_non_ssa_therapy
        assert row["prior_prrt"] == record.prior_prrt
        assert pd.isna(row["primary_site"])  # not simulated
        assert pd.isna(row["ki67_percent"])
        assert row["who_grade"] == f"G{candidates.grade[c]}"  # the drawn grade, 1-3


def test_a_cycle_below_the_full_activity_names_its_limit(run: TrialRun, protocol: Protocol) -> None:
    cycles = run.dataset.cycles
    full = cycles["activity_gbq"] == protocol.treatment.activity_per_cycle_gbq  # 7.5 GBq
    limited = cycles["activity_limited_by"].notna()
    assert (~full).sum() >= 3  # the small trial has reduced cycles
    assert (full != limited).all()
    # the simulation reduces an activity only for the kidney limit (no marrow limit set)
    assert set(cycles.loc[limited, "activity_limited_by"]) == {"kidney"}


def test_capecitabine_dose_level_and_full_dose(run: TrialRun, protocol: Protocol) -> None:
    candidates = run.screening.candidates
    dispensed = run.dataset.capecitabine
    assert set(dispensed["dose_level_percent"]) >= {100, 75}
    days = protocol.schedule.capecitabine_days
    for row in dispensed.itertuples():
        c = candidate(str(row.trial_id))
        mg = 500 * row.tablets_500 + 150 * row.tablets_150
        full = capecitabine_dose(
            dubois_bsa_m2(float(candidates.height_cm[c]), float(candidates.weight_kg[c])),
            protocol.capecitabine.dose_mg_per_m2,
            crcl_ml_min=float(candidates.crcl_ml_min[c]),
            dose_level_percent=100,
        )
        # the course: days x (morning + evening tablets) of each strength, in mg
        full_mg = days * sum(
            strength * (full.tablets_morning[strength] + full.tablets_evening[strength])
            for strength in (500, 150)
        )
        assert row.full_dose_mg == full_mg
        if row.dose_level_percent == 100:
            assert mg == full_mg
        else:
            assert mg < full_mg
