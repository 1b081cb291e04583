"""A simulated trial entered through the services (demo/virtual_trial.py), as `make demo` does:
the services must agree with the simulation on eligibility and allocation, the clinic's
planner must keep every planned cumulative kidney dose under the limit, and every entry must
carry its date in the trial."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
import time_machine

from startrt.demo.team import make_team
from startrt.demo.virtual_trial import Enrolment, enter_simulated_trial
from startrt.protocol.definition import default_protocol
from startrt.simulation.parameters import load_parameters
from startrt.simulation.trial import TrialRun, simulate_trial
from startrt.web.events.models import AdverseEvent, TumourAssessment
from startrt.web.exports.analysis_dataset import trial_dataset
from startrt.web.treatment.models import Cycle, PlanProposal
from startrt.web.trial.models import AuditEntry, Patient, Site, Slot

pytestmark = pytest.mark.slow
PASSWORD = "a demo password"


@contextmanager
def at(moment: datetime) -> Iterator[None]:
    with time_machine.travel(moment, tick=False):
        yield


@pytest.fixture
def entered(db: None, fast_password_hashing: None) -> tuple[TrialRun, Enrolment]:
    protocol = default_protocol()
    for name in protocol.sites:
        Site.objects.create(name=name, code=name[:3].upper())
    parameters = load_parameters()
    trial = parameters.trial.model_copy(
        update={"patients": 10, "accrual_months": 6.0, "minimum_follow_up_months": 12.0}
    )
    parameters = parameters.model_copy(update={"trial": trial})
    run = simulate_trial(parameters, 7, protocol)
    team = make_team(protocol, PASSWORD)
    enrolment = enter_simulated_trial(
        run, parameters, protocol, team.sites, team.statistician, PASSWORD, at, phantom_studies=0
    )
    return run, enrolment


def test_the_services_agree_with_the_simulation(entered: tuple[TrialRun, Enrolment]) -> None:
    run, enrolment = entered
    simulated = run.dataset.patients
    assert Patient.objects.count() == len(simulated) == enrolment.screened
    assert Slot.objects.filter(patient__isnull=False).count() == 10 == enrolment.randomized
    # the same arms, patient by patient, in screening order (the services raise otherwise)
    stored = list(
        Slot.objects.filter(patient__isnull=False)
        .order_by("allocated_at")
        .values_list("arm", flat=True)
    )
    assert stored == simulated.dropna(subset=["arm"])["arm"].tolist()

    # never more cycles than the simulated patient had, never a plan over the limit
    simulated_cycles = run.cycles.groupby("trial_id").size()
    given = Cycle.objects.filter(status=Cycle.Status.ADMINISTERED).count()
    assert 0 < given == enrolment.cycles <= simulated_cycles.sum()
    given_plans = [p.plan for p in PlanProposal.objects.all() if p.plan["action"] != "stop"]
    dose_guided = [p for p in given_plans if p["predicted_cumulative_kidney_gy"] is not None]
    assert dose_guided  # plans after a cycle with dosimetry
    assert all(p["predicted_cumulative_kidney_gy"] <= 30.0 for p in dose_guided)

    # entries carry the trial's dates: each patient's registration on its screening day
    for patient in Patient.objects.all():
        created = AuditEntry.objects.get(table="trial_patient", row_id=str(patient.pk))
        assert created.at.date().isoformat() == patient.screening.record["screening_date"]
    assert AdverseEvent.objects.count() == len(run.dataset.adverse_events)
    assert TumourAssessment.objects.exists()

    dataset = trial_dataset(run.dataset.cut_off)
    assert dataset.patients["eligible"].tolist() == simulated["eligible"].tolist()
    assert sorted(dataset.patients["site"]) == sorted(simulated["site"])
