"""Shared fixtures of the simulation tests: parameters, protocol, one simulated trial."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from startrt.protocol.definition import Protocol, default_protocol
from startrt.simulation.engine import EngineDecisions
from startrt.simulation.parameters import (
    Parameters,
    default_parameters_text,
    load_parameters,
    parse_parameters,
)
from startrt.simulation.trial import TrialRun, simulate_trial

TRIAL_SEED = 11


@pytest.fixture(scope="session")
def parameters() -> Parameters:
    return load_parameters()


@pytest.fixture(scope="session")
def protocol() -> Protocol:
    return default_protocol()


Edit = Callable[..., Parameters]


@pytest.fixture(scope="session")
def edited() -> Edit:
    """edited((old, new), ...): the shipped parameter file with text replaced, parsed."""

    def edit(*changes: tuple[str, str]) -> Parameters:
        text = default_parameters_text()
        for old, new in changes:
            assert old in text, old
            text = text.replace(old, new)
        return parse_parameters(text)

    return edit


@pytest.fixture(scope="session")
def small(edited: Edit) -> Parameters:
    """60 patients per trial: enough for every arm, quick to simulate."""
    return edited(("patients = 300", "patients = 60"))


@pytest.fixture(scope="session")
def trial_seed() -> int:
    return TRIAL_SEED


@pytest.fixture(scope="session")
def engine_trial(parameters: Parameters, protocol: Protocol) -> tuple[TrialRun, EngineDecisions]:
    """One 300-patient trial through the engine, with the decisions it recorded."""
    decisions = EngineDecisions(protocol, parameters.trial.start_date)
    return simulate_trial(parameters, TRIAL_SEED, protocol, decisions), decisions
