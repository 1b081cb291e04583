"""Reproducible random source for allocation: PCG64 raw output, own integer draws and shuffle.

NumPy's `Generator` methods may change their output between versions (NEP 19), but the raw
64-bit stream of a seeded BitGenerator is stable. Everything here is built on that raw stream
only, so a list generated from a seed is the same on any NumPy version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from startrt.validation import InvalidInputError

T = TypeVar("T")

_RAW_BITS = 64
_RAW_SPAN = 1 << _RAW_BITS
_UNIT_BITS = 53
_DERIVATION_PREFIX = "startrt.randomization.v1"


def validate_seed(seed: object) -> int:
    """Return `seed` if it is a non-negative int (not bool), else raise naming `seed`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError("seed", seed, "must be a non-negative integer")
    return seed


def derive_seed(seed: int, purpose: str) -> int:
    """Sub-seed for one independent stream: SHA-256 of a canonical "prefix|seed|purpose" string.

    Streams for different purposes (one stratum, one minimized patient) never depend on each
    other, so adding a stratum or a patient leaves every other stream unchanged.
    """
    text = f"{_DERIVATION_PREFIX}|{validate_seed(seed)}|{purpose}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")


class RandomStream:
    """Deterministic stream of draws from `numpy.random.PCG64(seed).random_raw()`.

    Stateful by nature (each draw advances it); create one per independent purpose and keep it
    local. Source: O'Neill, PCG, HMC-CS-2014-0905 (2014); NumPy NEP 19 (stream stability).
    """

    def __init__(self, seed: int) -> None:
        self._bit_generator = np.random.PCG64(validate_seed(seed))

    def raw(self) -> int:
        """Next raw 64-bit unsigned integer of the PCG64 stream."""
        return int(self._bit_generator.random_raw())

    def uniform_int(self, n: int) -> int:
        """Unbiased integer in [0, n) by rejection sampling of raw 64-bit draws.

        Raw values at or above the largest multiple of n below 2**64 are rejected, so every
        residue is equally likely (no modulo bias). Lemire, ACM Trans Model Comput Simul 2019;29:3.
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _RAW_SPAN:
            raise InvalidInputError("n", n, f"must be an integer in [1, 2**{_RAW_BITS}]")
        limit = _RAW_SPAN - _RAW_SPAN % n
        while True:
            value = self.raw()
            if value < limit:
                return value % n

    def uniform_unit(self) -> float:
        """Uniform float in [0, 1) from the top 53 bits of one raw draw (exact binary fraction)."""
        return (self.raw() >> (_RAW_BITS - _UNIT_BITS)) / (1 << _UNIT_BITS)

    def shuffle(self, items: Sequence[T]) -> tuple[T, ...]:
        """Uniformly random permutation of `items` (Fisher-Yates / Durstenfeld, CACM 1964;7:420)."""
        shuffled = list(items)
        for last in range(len(shuffled) - 1, 0, -1):
            chosen = self.uniform_int(last + 1)
            shuffled[last], shuffled[chosen] = shuffled[chosen], shuffled[last]
        return tuple(shuffled)
