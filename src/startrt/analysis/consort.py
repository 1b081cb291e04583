"""CONSORT flow counts (Schulz et al., CONSORT 2010 statement, BMJ 2010;340:c332, figure 1):
screened, eligible, randomized, and per randomized arm allocated, treated, completed,
discontinued (with reasons), ongoing and analysed.

Rules: eligible is the recorded screening decision (empty = not yet decided); randomized has an
allocation; treated was given at least one cycle; completed ended treatment as the protocol
plans it (`startrt.protocol.vocabulary.ends_as_planned`: the planned cycles given, or, in a
dosimetry-guided arm, the cumulative kidney or marrow limit reached);
any other end of treatment is a discontinuation; treated without an end of treatment is ongoing.
Every randomized patient is analysed in the arm they were randomized to (intention to treat);
the arms are those of the dataset's protocol. A not-eligible patient counts under every
criterion they failed (the dataset's screen failures), so the reasons add up to more than the
patients when one failed two (`protocol.enrolment`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from startrt.analysis.dataset import TrialDataset
from startrt.analysis.groups import dataset_protocol, randomized
from startrt.protocol.definition import Protocol
from startrt.protocol.enrolment import FailureCount
from startrt.protocol.vocabulary import EndOfTreatmentReason, ends_as_planned

UNASSIGNED = "not yet assigned"


@dataclass(frozen=True)
class ArmFlow:
    """One randomized arm's patients from allocation to analysis."""

    arm: str
    allocated: int
    treatment_arms: dict[str, int]
    treated: int
    not_treated: int
    completed: int
    discontinued: int
    discontinued_reasons: dict[str, int]
    ongoing: int
    died: int
    analysed: int


@dataclass(frozen=True)
class ConsortFlow:
    """Screening to randomization, then one ArmFlow per randomized arm."""

    screened: int
    eligible: int
    not_eligible: int
    not_eligible_reasons: tuple[FailureCount, ...]
    eligibility_pending: int
    eligible_not_randomized: int
    randomized: int
    arms: tuple[ArmFlow, ...]


def consort_flow(dataset: TrialDataset) -> ConsortFlow:
    """The flow counts of `dataset` (see the module's rules)."""
    patients = dataset.patients
    eligible = patients["eligible"]
    allocated = randomized(dataset)
    protocol = dataset_protocol(dataset)
    eligible_ids = set(patients.loc[eligible.fillna(False).astype(bool), "trial_id"])
    return ConsortFlow(
        screened=len(patients),
        eligible=len(eligible_ids),
        not_eligible=int((eligible == False).sum()),  # noqa: E712 (nullable boolean)
        not_eligible_reasons=_failure_reasons(dataset),
        eligibility_pending=int(eligible.isna().sum()),
        eligible_not_randomized=len(eligible_ids - set(allocated["trial_id"])),
        randomized=len(allocated),
        arms=tuple(
            _arm_flow(dataset, protocol, arm, allocated[allocated["arm"] == arm])
            for arm in protocol.randomization.arms
        ),
    )


def _failure_reasons(dataset: TrialDataset) -> tuple[FailureCount, ...]:
    """Not-eligible patients per failed criterion, most first, then by criterion id (as
    `protocol.enrolment.screen_failures` orders them)."""
    patients = dataset.patients
    not_eligible = patients.loc[patients["eligible"] == False, "trial_id"]  # noqa: E712
    failures = dataset.screen_failures
    failures = failures[failures["trial_id"].isin(not_eligible)]
    pairs = failures[["trial_id", "criterion", "reason"]].drop_duplicates()
    counts = Counter(zip(pairs["criterion"], pairs["reason"], strict=True))
    reasons = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(FailureCount(str(key[0]), str(key[1]), n) for key, n in reasons)


def _dosimetry_guided(protocol: Protocol, arm: str, members: pd.DataFrame) -> dict[str, bool]:
    """Per patient, whether their treatment arm is dosimetry-guided; without a treatment arm,
    whether every arm of their randomized arm is."""
    every = all(a.dosimetry_guided for a in protocol.arms if a.randomized_arm == arm)
    pairs = zip(members["trial_id"], members["treatment_arm"], strict=True)
    return {
        trial_id: every if pd.isna(treated_in) else protocol.arm(treated_in).dosimetry_guided
        for trial_id, treated_in in pairs
    }


def _arm_flow(
    dataset: TrialDataset, protocol: Protocol, arm: str, members: pd.DataFrame
) -> ArmFlow:
    ids = set(members["trial_id"])
    treated = ids & set(dataset.cycles["trial_id"])
    ends = dataset.end_of_treatment
    reasons = dict(zip(ends["trial_id"], ends["reason"], strict=True))
    guided = _dosimetry_guided(protocol, arm, members)
    ended = {trial_id: reasons[trial_id] for trial_id in treated if trial_id in reasons}
    completed = {
        trial_id
        for trial_id, reason in ended.items()
        if ends_as_planned(EndOfTreatmentReason(reason), guided[trial_id])
    }
    stopped = Counter(reason for trial_id, reason in ended.items() if trial_id not in completed)
    treatment_arms = Counter(members["treatment_arm"].fillna(UNASSIGNED))
    return ArmFlow(
        arm=arm,
        allocated=len(ids),
        treatment_arms=dict(sorted(treatment_arms.items())),
        treated=len(treated),
        not_treated=len(ids - treated),
        completed=len(completed),
        discontinued=sum(stopped.values()),
        discontinued_reasons=dict(sorted(stopped.items())),
        ongoing=len(treated - set(ended)),
        died=len(ids & set(dataset.deaths["trial_id"])),
        analysed=len(ids),
    )
