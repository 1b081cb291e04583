"""dTOC / CAP-dTOC from the dual-imaging result inside the personalized allocation."""

from __future__ import annotations

import pytest

from startrt.protocol.arm_assignment import assign_treatment_arm
from startrt.protocol.definition import Protocol
from startrt.validation import InvalidInputError


@pytest.mark.parametrize(
    ("allocation", "fdg_positive", "arm"),
    [
        ("standard", True, "standard"),
        ("standard", None, "standard"),
        ("personalized", False, "dTOC"),
        ("personalized", True, "CAP-dTOC"),
    ],
)
def test_arm_from_allocation_and_fdg(
    protocol: Protocol, allocation: str, fdg_positive: bool | None, arm: str
) -> None:
    decision = assign_treatment_arm(allocation, fdg_positive, protocol)
    assert decision.arm == arm
    assert decision.inputs == {"randomized_arm": allocation, "fdg_pet_positive": fdg_positive}


def test_personalized_without_fdg_result_is_refused(protocol: Protocol) -> None:
    with pytest.raises(InvalidInputError, match="fdg_pet_positive"):
        assign_treatment_arm("personalized", None, protocol)


def test_unknown_allocation_is_refused(protocol: Protocol) -> None:
    with pytest.raises(InvalidInputError, match="randomized_arm"):
        assign_treatment_arm("control", False, protocol)
