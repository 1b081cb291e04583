"""The value sets: a label for every member, Django-style choices, and the completion rule."""

from __future__ import annotations

import pytest

from startrt.protocol.definition import default_protocol
from startrt.protocol.vocabulary import (
    AdverseEventOutcome,
    Attribution,
    EndOfTreatmentReason,
    SeriousnessCriterion,
    VitalStatus,
    Vocabulary,
    ends_as_planned,
)

VOCABULARIES: tuple[type[Vocabulary], ...] = (
    EndOfTreatmentReason,
    SeriousnessCriterion,
    Attribution,
    AdverseEventOutcome,
    VitalStatus,
)


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
def test_every_member_has_a_label_and_a_choice(vocabulary: type[Vocabulary]) -> None:
    choices = vocabulary.choices()
    assert [value for value, _ in choices] == [member.value for member in vocabulary]
    assert all(label and label != value for value, label in choices)
    assert vocabulary(choices[0][0]).label == choices[0][1]


def test_a_dose_limit_completes_only_a_dosimetry_guided_arm() -> None:
    arms = {arm.id: arm.dosimetry_guided for arm in default_protocol().arms}
    assert arms == {"standard": False, "dTOC": True, "CAP-dTOC": True}
    planned = {
        (reason, arm)
        for reason in EndOfTreatmentReason
        for arm, guided in arms.items()
        if ends_as_planned(reason, guided)
    }
    assert planned == {
        ("completed", "standard"),
        ("completed", "dTOC"),
        ("completed", "CAP-dTOC"),
        ("renal_limit", "dTOC"),
        ("renal_limit", "CAP-dTOC"),
        ("marrow_limit", "dTOC"),
        ("marrow_limit", "CAP-dTOC"),
    }
