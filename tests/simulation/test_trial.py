"""One trial through the protocol engine: the engine's rules hold for every virtual patient,
the dataset is valid, and the same seed gives the same trial."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from startrt.analysis.dataset import read_dataset, write_dataset
from startrt.clinical.bsa import dubois_bsa_m2
from startrt.clinical.capecitabine import capecitabine_dose
from startrt.protocol.definition import Protocol
from startrt.protocol.vocabulary import EndOfTreatmentReason
from startrt.simulation.engine import EngineDecisions
from startrt.simulation.parameters import Parameters
from startrt.simulation.replicates import run_replicates
from startrt.simulation.trial import TrialRun, simulate_trial

EngineTrial = tuple[TrialRun, EngineDecisions]


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def equal(x: Any, y: Any) -> bool:
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x):
            return math.isnan(y)
        return bool(x == y)

    return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)


def test_dataset_is_valid_and_complete(engine_trial: EngineTrial, tmp_path: Path) -> None:
    run, _ = engine_trial
    data = run.dataset
    patients = data.patients
    assert patients["randomized_on"].notna().sum() == 300
    assert (~patients["eligible"].astype(bool)).sum() > 0  # screening failures are kept
    assert set(patients["treatment_arm"].dropna()) == {"standard", "dTOC", "CAP-dTOC"}
    for name in ("cycles", "capecitabine", "labs", "adverse_events", "assessments", "visits"):
        assert len(data.table(name)), name
    # the simulation ends treatment in the trial's vocabulary
    reasons = set(data.end_of_treatment["reason"])
    assert {EndOfTreatmentReason.COMPLETED, EndOfTreatmentReason.RENAL_LIMIT} <= reasons
    write_dataset(data, tmp_path / "dataset")
    again = read_dataset(tmp_path / "dataset")
    assert again.cut_off == data.cut_off
    assert len(again.cycles) == len(data.cycles)
    pd.testing.assert_series_equal(again.cycles["activity_gbq"], data.cycles["activity_gbq"])


def test_planned_cumulative_kidney_dose_never_exceeds_the_limit(
    engine_trial: EngineTrial, protocol: Protocol
) -> None:
    run, decisions = engine_trial
    limit = protocol.renal_limit.limit_gy
    guided = [
        plan
        for arm, plan in decisions.plan_records
        if protocol.arm(arm).dosimetry_guided and plan.action != "stop" and plan.next_cycle > 1
    ]
    assert len(guided) > 300
    assert {plan.action for plan in guided} == {"full", "reduced"}
    assert max(p.predicted_cumulative_kidney_gy or 0.0 for p in guided) <= limit
    # Independently, from the per-cycle records: each cycle's predicted cumulative dose (all
    # measured doses so far + the latest Gy/GBq x this cycle's activity) is within the limit.
    cycles = run.cycles.merge(run.patients[["trial_id", "arm"]], on="trial_id")
    for _, mine in cycles[cycles["arm"] == "personalized"].groupby("trial_id"):
        kidney = mine["kidney_gy_measured"].to_numpy()
        activity = mine["activity_gbq"].to_numpy()
        for k in range(1, len(mine)):
            predicted = kidney[:k].sum() + kidney[k - 1] / activity[k - 1] * activity[k]
            assert predicted <= limit + 1e-9


def test_standard_arm_gets_its_four_cycles(engine_trial: EngineTrial) -> None:
    run, _ = engine_trial
    standard = run.patients[run.patients["arm"] == "standard"]
    assert standard["cycles"].max() == 4
    given = standard[standard["end_reason"] == EndOfTreatmentReason.COMPLETED]
    assert len(given) > 50
    assert (given["cycles"] == 4).all()
    cycles = run.cycles[run.cycles["trial_id"].isin(standard["trial_id"])]
    assert (cycles["activity_gbq"] == 7.5).all()
    personalized = run.patients[run.patients["arm"] == "personalized"]
    assert personalized["cycles"].max() > 4
    assert (
        personalized[personalized["end_reason"] == EndOfTreatmentReason.RENAL_LIMIT]["cycles"] > 1
    ).all()


def test_capecitabine_in_cap_dtoc_cycles_1_to_4_dosed_by_the_label(
    engine_trial: EngineTrial, protocol: Protocol
) -> None:
    run, _ = engine_trial
    rows = run.cycles.merge(run.patients, on="trial_id", suffixes=("", "_patient"))
    with_capecitabine = rows[rows["tablets_500"] + rows["tablets_150"] > 0]
    assert set(with_capecitabine["treatment_arm"]) == {"CAP-dTOC"}
    assert with_capecitabine["cycle"].max() == protocol.schedule.capecitabine_prrt_cycles
    first = rows[(rows["treatment_arm"] == "CAP-dTOC") & (rows["cycle"] == 1)]
    assert (first["capecitabine_level_percent"] == 100).all()
    assert len(first) > 40
    days = protocol.schedule.capecitabine_days
    for row in with_capecitabine.itertuples():
        dose = capecitabine_dose(
            dubois_bsa_m2(row.height_cm, row.weight_kg),
            protocol.capecitabine.dose_mg_per_m2,
            crcl_ml_min=row.crcl_ml_min,
            dose_level_percent=int(row.capecitabine_level_percent),
        )
        assert row.tablets_500 == days * (dose.tablets_morning[500] + dose.tablets_evening[500])
        assert row.tablets_150 == days * (dose.tablets_morning[150] + dose.tablets_evening[150])
    dispensed = run.dataset.capecitabine
    assert len(dispensed) == len(with_capecitabine)  # every course before the cut-off


def test_cycles_follow_the_schedule(engine_trial: EngineTrial, parameters: Parameters) -> None:
    run, _ = engine_trial
    first_day = parameters.trial.randomization_to_first_cycle_days
    recheck = 7 * parameters.trial.lab_recheck_weeks
    for _, mine in run.cycles.groupby("trial_id"):
        days = mine["day"].to_numpy()
        assert (days[0] - first_day) % recheck == 0
        gaps = np.diff(days)
        assert np.all(gaps >= 70)
        assert np.all((gaps - 70) % recheck == 0)  # the interval, plus lab delays


def test_same_seed_same_trial(small: Parameters, protocol: Protocol) -> None:
    first, again = simulate_trial(small, 5, protocol), simulate_trial(small, 5, protocol)
    assert same(first.statistics, again.statistics)
    pd.testing.assert_frame_equal(first.dataset.cycles, again.dataset.cycles)
    pd.testing.assert_frame_equal(first.dataset.labs, again.dataset.labs)
    other = simulate_trial(small, 6, protocol)
    assert not first.patients["pfs_days"].equals(other.patients["pfs_days"])


def test_replicate_zero_is_the_trial(
    engine_trial: EngineTrial, parameters: Parameters, trial_seed: int
) -> None:
    run, _ = engine_trial
    row = run_replicates(parameters, trial_seed, 1).iloc[0].to_dict()
    assert row["replicate"] == 0
    assert same(row, run.statistics)


def test_amended_renal_limit_is_obeyed(small: Parameters, protocol: Protocol) -> None:
    data = protocol.model_dump(by_alias=True)
    data["renal_limit"] = {**data["renal_limit"], "limit_gy": 20.0}
    stricter = Protocol.model_validate(data)
    decisions = EngineDecisions(stricter, small.trial.start_date)
    run = simulate_trial(small, 5, stricter, decisions)
    planned = [
        plan.predicted_cumulative_kidney_gy
        for arm, plan in decisions.plan_records
        if stricter.arm(arm).dosimetry_guided and plan.action != "stop" and plan.next_cycle > 1
    ]
    assert max(p or 0.0 for p in planned) <= 20.0
    default = simulate_trial(small, 5, protocol)
    assert (
        run.arms.set_index("group").loc["personalized", "cycles"]
        < default.arms.set_index("group").loc["personalized", "cycles"]
    )


def test_per_arm_summaries(engine_trial: EngineTrial) -> None:
    run, _ = engine_trial
    arms = run.arms.set_index("group")
    assert list(arms.index) == ["standard", "personalized", "dTOC", "CAP-dTOC"]
    assert arms.loc["standard", "patients"] + arms.loc["personalized", "patients"] == 300
    assert arms.loc["dTOC", "patients"] + arms.loc["CAP-dTOC", "patients"] == pytest.approx(
        arms.loc["personalized", "patients"]
    )
    assert arms.loc["standard", "capecitabine_tablets"] == 0
    assert arms.loc["personalized", "activity_gbq"] > arms.loc["standard", "activity_gbq"]
    assert arms.loc["standard", "renal_limit_share"] == 0
    assert 0 < arms.loc["personalized", "renal_limit_share"] < 1
