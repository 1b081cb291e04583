"""Recruitment of virtual patients: screening candidates until the trial's size is eligible,
randomization by the protocol's own method, and the treatment arm from the dual imaging.

Candidates are drawn in blocks of `trial.candidate_block` from the replicate's own streams
(block b: stream (replicate, CANDIDATES, b)) and screened by the decision provider; the first
`trial.patients` eligible ones are randomized in screening order. Screening days are spread
evenly over the accrual period; randomization follows `screening_to_randomization_days` later.
Randomization calls the protocol's code: a stratified permuted-block list
(`generate_block_list`, slots taken in order per stratum) or Pocock-Simon minimization
(`Minimizer`), seeded per replicate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from startrt.protocol.definition import Protocol
from startrt.protocol.randomization import (
    Minimizer,
    RandomizationList,
    Stratum,
    generate_block_list,
    stratum_label,
)
from startrt.protocol.stratification import patient_stratum, protocol_strata
from startrt.simulation.arrays import Bools, Ints
from startrt.simulation.engine import Decisions
from startrt.simulation.parameters import DAYS_PER_MONTH, Parameters
from startrt.simulation.population import Candidates, draw_candidates
from startrt.simulation.streams import CANDIDATES, randomization_seed, stream
from startrt.validation import InvalidInputError

MAX_CANDIDATE_BLOCKS = 1000


@dataclass(frozen=True)
class Screening:
    """The candidates one replicate screened (in order) and which were eligible."""

    candidates: Candidates
    eligible: Bools
    screening_day: Ints  # days from the trial start

    @property
    def randomized(self) -> Ints:
        """Indices of the candidates randomized (every eligible one screened)."""
        return np.flatnonzero(self.eligible)


@dataclass(frozen=True)
class Cohort:
    """The randomized patients of one or more replicates, replicate by replicate."""

    patients: Candidates
    replicate: Ints  # the replicate's number (its streams)
    randomized_arm: tuple[str, ...]
    stratum: tuple[str, ...]
    arm: Ints  # treatment arm: index into protocol.arms
    randomized_day: Ints  # days from the trial start

    def __len__(self) -> int:
        return len(self.patients)


def screen(
    parameters: Parameters,
    protocol: Protocol,
    decisions: Decisions,
    seed: int,
    replicates: Sequence[int],
) -> list[Screening]:
    """Screen candidates of each replicate until `trial.patients` are eligible."""
    trial = parameters.trial
    parts: dict[int, list[Candidates]] = {r: [] for r in replicates}
    eligible: dict[int, list[Bools]] = {r: [] for r in replicates}
    needed = list(replicates)
    for block in range(MAX_CANDIDATE_BLOCKS):
        if not needed:
            break
        drawn = [
            draw_candidates(
                parameters,
                protocol.sites,
                stream(seed, r, CANDIDATES, block),
                trial.candidate_block,
            )
            for r in needed
        ]
        pooled = Candidates.concat(drawn)
        start = [trial.start_date] * len(pooled)
        verdict = decisions.eligible(pooled, start)
        for position, r in enumerate(needed):
            parts[r].append(drawn[position])
            window = slice(position * trial.candidate_block, (position + 1) * trial.candidate_block)
            eligible[r].append(verdict[window])
        needed = [r for r in needed if sum(int(e.sum()) for e in eligible[r]) < trial.patients]
    if needed:
        raise InvalidInputError(
            "population", needed[0], f"too few eligible candidates in {MAX_CANDIDATE_BLOCKS} blocks"
        )
    return [_screening(parameters, parts[r], eligible[r]) for r in replicates]


def _screening(parameters: Parameters, parts: list[Candidates], eligible: list[Bools]) -> Screening:
    """Keep the candidates up to the last one randomized; spread their screening days."""
    trial = parameters.trial
    verdict = np.concatenate(eligible)
    last = int(np.flatnonzero(verdict)[trial.patients - 1])
    candidates = Candidates.concat(parts).take(np.arange(last + 1))
    accrual_days = trial.accrual_months * DAYS_PER_MONTH
    days = np.floor(np.arange(last + 1) * accrual_days / (last + 1)).astype(np.int64)
    return Screening(candidates, verdict[: last + 1], days)


def recruit(
    parameters: Parameters,
    protocol: Protocol,
    decisions: Decisions,
    seed: int,
    replicates: Sequence[int],
    screenings: Sequence[Screening],
) -> Cohort:
    """Randomize and assign the eligible candidates of each replicate; one cohort."""
    patients, replicate, allocated, strata, days = [], [], [], [], []
    for r, screening in zip(replicates, screenings, strict=True):
        chosen = screening.randomized
        cohort = screening.candidates.take(chosen)
        arms, labels = allocate(protocol, cohort, randomization_seed(seed, r))
        patients.append(cohort)
        replicate.append(np.full(len(chosen), r, dtype=np.int64))
        allocated.extend(arms)
        strata.extend(labels)
        lag = parameters.trial.screening_to_randomization_days
        days.append(screening.screening_day[chosen] + lag)
    pooled = Candidates.concat(patients)
    return Cohort(
        patients=pooled,
        replicate=np.concatenate(replicate),
        randomized_arm=tuple(allocated),
        stratum=tuple(strata),
        arm=decisions.treatment_arms(allocated, pooled.fdg_positive),
        randomized_day=np.concatenate(days),
    )


def patient_strata(protocol: Protocol, patients: Candidates) -> list[Stratum]:
    """Each patient's randomization stratum (site and FDG-PET result), in order."""
    strata: dict[tuple[int, bool], Stratum] = {}
    keys = list(zip(patients.site.tolist(), patients.fdg_positive.tolist(), strict=True))
    for site, fdg in set(keys):
        strata[(site, fdg)] = patient_stratum(
            protocol, site=protocol.sites[site], fdg_pet_positive=fdg
        )
    return [strata[key] for key in keys]


def block_list(protocol: Protocol, of_patient: Sequence[Stratum], seed: int) -> RandomizationList:
    """The protocol's stratified permuted-block list, long enough for these patients."""
    settings = protocol.randomization
    counts: dict[Stratum, int] = {}
    for stratum in of_patient:
        counts[stratum] = counts.get(stratum, 0) + 1
    return generate_block_list(
        seed=seed,
        n_per_stratum=max(counts.values()),
        strata=protocol_strata(protocol),
        arms=settings.arms,
        ratio=settings.ratio,
        block_sizes=settings.block_sizes,
    )


def allocate(protocol: Protocol, patients: Candidates, seed: int) -> tuple[list[str], list[str]]:
    """Randomized arm and stratum label of each patient, in order, by the protocol's method."""
    of_patient = patient_strata(protocol, patients)
    settings = protocol.randomization
    if settings.method == "minimization":
        design = protocol_strata(protocol)
        minimizer = Minimizer(
            design.factors,
            settings.arms,
            ratio=settings.ratio,
            p_best=settings.minimization_p_best,
            seed=seed,
        )
        history: list[tuple[Mapping[str, str], str]] = []
        for stratum in of_patient:
            levels = dict(stratum)
            history.append((levels, minimizer.assign(levels, history).arm))
        arms = [arm for _, arm in history]
    else:
        listing = block_list(protocol, of_patient, seed)
        used: dict[Stratum, int] = {}
        arms = []
        for stratum in of_patient:
            arms.append(listing.next_slot(stratum, used.get(stratum, 0)).arm)
            used[stratum] = used.get(stratum, 0) + 1
    return arms, [stratum_label(stratum) for stratum in of_patient]
