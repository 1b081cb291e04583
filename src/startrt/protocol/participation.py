"""Where a participant stands in the trial, from what has been recorded: screening (no
eligible screening record yet, or an ineligible one), eligible (not yet randomized),
randomized (no cycle given yet), on treatment (a cycle given, no end of treatment), follow-up
(treatment ended) and ended (death recorded, or treatment ended by withdrawal of consent, loss
to follow-up or death: no further follow-up is expected)."""

from __future__ import annotations

from enum import StrEnum

from startrt.protocol.vocabulary import EndOfTreatmentReason

ENDS_PARTICIPATION = frozenset(
    {
        EndOfTreatmentReason.WITHDRAWAL,
        EndOfTreatmentReason.LOST_TO_FOLLOW_UP,
        EndOfTreatmentReason.DEATH,
    }
)


class ParticipantStatus(StrEnum):
    SCREENING = "screening"
    ELIGIBLE = "eligible"
    RANDOMIZED = "randomized"
    ON_TREATMENT = "on treatment"
    FOLLOW_UP = "follow-up"
    ENDED = "ended"


def participant_status(
    *,
    eligible: bool | None,
    randomized: bool,
    cycle_given: bool,
    end_of_treatment: EndOfTreatmentReason | None,
    died: bool,
) -> ParticipantStatus:
    """The participant's status (module docstring); `eligible` is None without a decision."""
    if died or end_of_treatment in ENDS_PARTICIPATION:
        return ParticipantStatus.ENDED
    if end_of_treatment is not None:
        return ParticipantStatus.FOLLOW_UP
    if randomized:
        return ParticipantStatus.ON_TREATMENT if cycle_given else ParticipantStatus.RANDOMIZED
    return ParticipantStatus.ELIGIBLE if eligible is True else ParticipantStatus.SCREENING
