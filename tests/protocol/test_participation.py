"""A participant's status from what was recorded (START-01: screening to end of study)."""

from __future__ import annotations

import pytest

from startrt.protocol.participation import ParticipantStatus, participant_status
from startrt.protocol.vocabulary import EndOfTreatmentReason as Reason


@pytest.mark.parametrize(
    ("eligible", "randomized", "cycle_given", "end", "died", "status"),
    [
        (None, False, False, None, False, "screening"),
        (False, False, False, None, False, "screening"),  # ineligible: still screening
        (True, False, False, None, False, "eligible"),
        (True, True, False, None, False, "randomized"),  # a planned cycle is not given
        (True, True, True, None, False, "on treatment"),
        (True, True, True, Reason.COMPLETED, False, "follow-up"),
        (True, True, True, Reason.PROGRESSION, False, "follow-up"),
        (True, True, True, Reason.WITHDRAWAL, False, "ended"),
        (True, True, True, Reason.LOST_TO_FOLLOW_UP, False, "ended"),
        (True, True, True, Reason.COMPLETED, True, "ended"),
        (True, True, False, None, True, "ended"),
    ],
)
def test_status(
    eligible: bool | None,
    randomized: bool,
    cycle_given: bool,
    end: Reason | None,
    died: bool,
    status: str,
) -> None:
    found = participant_status(
        eligible=eligible,
        randomized=randomized,
        cycle_given=cycle_given,
        end_of_treatment=end,
        died=died,
    )
    assert found == ParticipantStatus(status)
