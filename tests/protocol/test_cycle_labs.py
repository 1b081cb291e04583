"""Pre-cycle laboratory go / delay / stop on the START-01 v1.0 cycle conditions."""

from __future__ import annotations

from typing import Any

import pytest

from startrt.protocol.cycle_labs import check_pre_cycle_labs
from startrt.protocol.definition import Protocol
from startrt.protocol.screening import PatientLabs
from startrt.validation import InvalidInputError

GOOD = {
    "hemoglobin_g_l": 118,
    "platelets_10e9_l": 160,
    "leukocytes_10e9_l": 4.8,
    "neutrophils_10e9_l": 2.9,
    "measured_gfr_ml_min_173": 66,
}


def check(protocol: Protocol, weeks_delayed: float = 0.0, **changes: Any) -> Any:
    return check_pre_cycle_labs(
        PatientLabs(**{**GOOD, **changes}), protocol, weeks_delayed=weeks_delayed
    )


def test_good_labs_go(protocol: Protocol) -> None:
    decision = check(protocol)
    assert decision.action == "go"
    assert decision.protocol == "START-01 v1.0"


@pytest.mark.parametrize(
    ("field", "value", "action"),
    [
        ("platelets_10e9_l", 100, "delay"),  # "> 100": exactly 100 delays
        ("platelets_10e9_l", 101, "go"),
        ("hemoglobin_g_l", 90, "delay"),
        ("measured_gfr_ml_min_173", 50, "delay"),
        ("measured_gfr_ml_min_173", 30, "delay"),  # >= 30: not yet a stop
        ("measured_gfr_ml_min_173", 29.9, "stop"),
    ],
)
def test_boundaries(protocol: Protocol, field: str, value: float, action: str) -> None:
    assert check(protocol, **{field: value}).action == action


def test_delay_beyond_the_maximum_stops(protocol: Protocol) -> None:
    assert check(protocol, weeks_delayed=7.9, platelets_10e9_l=80).action == "delay"
    decision = check(protocol, weeks_delayed=8, platelets_10e9_l=80)
    assert decision.action == "stop"
    assert "already delayed 8 weeks" in decision.reason


def test_missing_labs_never_release_a_cycle(protocol: Protocol) -> None:
    decision = check(protocol, neutrophils_10e9_l=None)
    assert decision.action == "incomplete"
    assert "Neutrophils" in decision.reason


def test_negative_delay_is_refused(protocol: Protocol) -> None:
    with pytest.raises(InvalidInputError, match="weeks_delayed"):
        check(protocol, weeks_delayed=-1)
