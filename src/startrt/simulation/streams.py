"""Random streams of the in-silico trial, one per (replicate, purpose, index).

Every stream is `numpy.random.SeedSequence(seed, spawn_key=(replicate, purpose, index))`, the
same sequence `SeedSequence(seed).spawn(...)` would hand out, so a replicate's numbers depend
only on the run's seed and the replicate's number: never on how replicates are grouped into
chunks, on the scheduler, or on what other replicates drew. Within one NumPy version the same
seed gives the same numbers (NumPy's Generator methods do not promise identical streams across
versions, NEP 19).
"""

from __future__ import annotations

import numpy as np

from startrt.validation import InvalidInputError

CANDIDATES = 0  # index: the candidate block (screened candidates, their latent traits)
RANDOMIZATION = 1  # the seed of the replicate's randomization list or minimizer
CYCLE = 2  # index: the cycle number (per-cycle variation, lab and nadir noise)


def check_seed(seed: object) -> int:
    """`seed` if it is a non-negative int (not bool), else InvalidInputError naming `seed`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError("seed", seed, "must be a non-negative integer")
    return seed


def stream(seed: int, replicate: int, purpose: int, index: int = 0) -> np.random.Generator:
    """The generator of one (replicate, purpose, index) of the run seeded with `seed`."""
    sequence = np.random.SeedSequence(check_seed(seed), spawn_key=(replicate, purpose, index))
    return np.random.Generator(np.random.PCG64(sequence))


def randomization_seed(seed: int, replicate: int) -> int:
    """A 64-bit seed for the protocol's randomization list (or minimizer) of one replicate."""
    sequence = np.random.SeedSequence(check_seed(seed), spawn_key=(replicate, RANDOMIZATION, 0))
    return int(sequence.generate_state(1, np.uint64)[0])
