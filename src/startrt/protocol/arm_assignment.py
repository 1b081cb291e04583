"""Treatment arm from the randomized allocation and the dual-imaging result.

Inside the personalized allocation, FDG-PET negative patients (NETPET P1) get dTOC and FDG-PET
positive ones (P2-P4) CAP-dTOC (START-01 protocol; NETPET score: Chan et al., Theranostics 2017).
"""

from __future__ import annotations

from startrt.protocol.decision import Decision
from startrt.protocol.definition import Protocol
from startrt.validation import InvalidInputError


class ArmAssignment(Decision):
    randomized_arm: str
    fdg_pet_positive: bool | None
    arm: str
    reason: str


def assign_treatment_arm(
    randomized_arm: str, fdg_pet_positive: bool | None, protocol: Protocol
) -> ArmAssignment:
    """The treatment arm (e.g. standard, dTOC, CAP-dTOC) for a randomized patient."""
    if randomized_arm not in protocol.randomization.arms:
        known = ", ".join(protocol.randomization.arms)
        raise InvalidInputError("randomized_arm", randomized_arm, f"must be one of: {known}")
    rules = protocol.arm_assignment
    if randomized_arm != rules.personalized_arm:
        arms = [arm.id for arm in protocol.arms if arm.randomized_arm == randomized_arm]
        arm, reason = arms[0], f"allocated to {randomized_arm}"
    elif fdg_pet_positive is None:
        raise InvalidInputError(
            "fdg_pet_positive", None, "the personalized arm is split by FDG-PET: record its result"
        )
    elif fdg_pet_positive:
        arm, reason = rules.fdg_positive_arm, "personalized allocation, FDG-PET positive"
    else:
        arm, reason = rules.fdg_negative_arm, "personalized allocation, FDG-PET negative"
    return ArmAssignment(
        kind="arm_assignment",
        protocol=protocol.label,
        rule=(
            f"{rules.personalized_arm}: FDG-PET negative -> {rules.fdg_negative_arm}, "
            f"positive -> {rules.fdg_positive_arm}"
        ),
        inputs={"randomized_arm": randomized_arm, "fdg_pet_positive": fdg_pet_positive},
        randomized_arm=randomized_arm,
        fdg_pet_positive=fdg_pet_positive,
        arm=arm,
        reason=reason,
    )
