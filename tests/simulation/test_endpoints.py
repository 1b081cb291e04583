"""PFS of simulated patients is the trial's endpoint: tumours assessed on the protocol's
schedule, progression seen at the first assessment after it, PFS derived by the report's rules
(`analysis.endpoints`) from what the dataset holds."""

from __future__ import annotations

import numpy as np

from startrt.analysis.endpoints import PFS_RULES, progression_free_survival, survival_endpoints
from startrt.protocol.definition import Protocol
from startrt.protocol.vocabulary import EndOfTreatmentReason
from startrt.simulation.endpoints import RESPONSES, assessments_done, tumour_records
from startrt.simulation.engine import EngineDecisions
from startrt.simulation.trial import TrialRun

INTERVAL_DAYS = 84


def observe(
    progression: list[float], death: list[float], follow_up: list[float], best: list[str]
) -> tuple[list[list[tuple[int, str]]], list[tuple[int, bool, str]]]:
    """Each patient's assessments (day, response) and PFS (days, event, rule)."""
    progression_day, death_day = np.array(progression), np.array(death)
    follow_up_days = np.array(follow_up)
    assessments, found = assessments_done(progression_day, death_day, follow_up_days, INTERVAL_DAYS)
    records = tumour_records(
        assessments=assessments,
        progression_found=found,
        response=np.array([RESPONSES.index(r) for r in best], dtype=np.int64),
        death_day=death_day,
        follow_up_days=follow_up_days,
        interval_days=INTERVAL_DAYS,
    )
    seen: list[list[tuple[int, str]]] = [[] for _ in progression]
    for patient, day, response in zip(
        records.assessment_patients,
        records.assessment_days,
        records.assessment_responses,
        strict=True,
    ):
        seen[patient].append((int(day), str(response)))
    pfs = progression_free_survival(records, INTERVAL_DAYS)
    outcomes = [
        (int(days), bool(event), PFS_RULES[rule])
        for days, event, rule in zip(pfs.days, pfs.event, pfs.rule, strict=True)
    ]
    return seen, outcomes


def test_progression_on_day_100_is_seen_at_the_day_168_assessment() -> None:
    inf = np.inf
    seen, outcomes = observe(
        progression=[100.0, 100.0, 100.0, inf, 30.0, 500.0],
        death=[900.0, 150.5, 900.0, 400.2, 900.0, 260.0],
        follow_up=[1000.0, 1000.0, 160.0, 1000.0, 1000.0, 1000.0],
        best=["PR", "SD", "SD", "SD", "PD", "SD"],
    )
    assert seen == [
        [(84, "PR"), (168, "PD")],  # assessed every 84 days: day 100 is found on day 168
        [(84, "SD")],  # died on day 150, before the next assessment
        [(84, "SD")],  # data cut-off on day 160
        [(84, "SD"), (168, "SD"), (252, "SD"), (336, "SD")],
        [(84, "PD")],
        [(84, "SD"), (168, "SD"), (252, "SD")],  # died on day 260 before progressing
    ]
    assert outcomes == [
        (168, True, "event: progression (RECIST 1.1 PD)"),
        (150, True, "event: death without progression"),  # progression never seen
        (84, False, "censored at the last adequate assessment"),
        (400, True, "event: death without progression"),
        (84, True, "event: progression (RECIST 1.1 PD)"),
        (260, True, "event: death without progression"),
    ]


def test_the_trials_pfs_is_the_reports_pfs_of_its_dataset(
    engine_trial: tuple[TrialRun, EngineDecisions], protocol: Protocol
) -> None:
    run, _ = engine_trial
    report = survival_endpoints(run.dataset).set_index("trial_id")
    simulated = run.patients.set_index("trial_id")
    assert sorted(report.index) == sorted(simulated.index)
    report = report.loc[simulated.index]
    assert (report["pfs_days"].to_numpy() == simulated["pfs_days"].to_numpy()).all()
    assert (report["pfs_event"].to_numpy() == simulated["pfs_event"].to_numpy()).all()
    # progression is only ever seen at a scheduled assessment
    interval = protocol.assessments.interval_days
    progressed = report[report["pfs_censoring"] == PFS_RULES[0]]
    assert len(progressed) > 50
    assert (progressed["pfs_days"] % interval == 0).all()
    assessments = run.dataset.assessments
    randomized = run.dataset.patients.set_index("trial_id")["randomized_on"]
    days = (assessments["assessed_on"] - assessments["trial_id"].map(randomized)).dt.days
    assert len(days) > 0
    assert (days % interval == 0).all()
    # treatment ends for progression when an assessment finds it, not at the true time
    ended = run.dataset.end_of_treatment
    ended = ended[ended["reason"] == EndOfTreatmentReason.PROGRESSION]
    assert len(ended) > 5
    end_days = (ended["ended_on"] - ended["trial_id"].map(randomized)).dt.days
    assert (end_days % interval == 0).all()
