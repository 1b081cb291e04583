"""Pocock-Simon minimization with a random element, reproducible from a seed.

For each arm, the new patient is hypothetically assigned to it; the imbalance score is the sum
over factors of the range across arms of (count / ratio share) among patients with the same level
as the new patient. With probability `p_best` the arm with the lowest score is chosen (ties at
random), otherwise one of the other arms at random. Source: Pocock & Simon, Biometrics
1975;31:103-115.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from fractions import Fraction
from types import MappingProxyType

from startrt.protocol.randomization.balance import ratio_adjusted_range
from startrt.protocol.randomization.design import (
    StrataDesign,
    Stratum,
    validate_arms,
    validate_ratio,
)
from startrt.protocol.randomization.rng import RandomStream, derive_seed, validate_seed
from startrt.validation import InvalidInputError, finite_number


@dataclass(frozen=True)
class MinimizationDecision:
    """One allocation by minimization, with everything needed to verify it.

    `scores` are the imbalance scores if the patient went to each arm; `overridden` is True when
    the random element chose an arm that does not minimise the score; `random_draw` in [0, 1)
    is compared with `p_best`.
    """

    patient_number: int
    patient_levels: Mapping[str, str]
    arm: str
    scores: Mapping[str, float]
    minimising_arms: tuple[str, ...]
    overridden: bool
    random_draw: float
    p_best: float


@dataclass(frozen=True)
class Minimizer:
    """Pocock-Simon minimizer over `factors` (factor -> levels); the seed is never shown in repr."""

    factors: Mapping[str, tuple[str, ...]]
    arms: tuple[str, ...]
    _: KW_ONLY
    ratio: tuple[int, ...] = (1, 1)
    p_best: float = 0.8
    seed: int = field(repr=False)
    _design: StrataDesign = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        design = StrataDesign(self.factors)
        arms = validate_arms(self.arms)
        object.__setattr__(self, "_design", design)
        object.__setattr__(self, "factors", design.factors)
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "ratio", validate_ratio(self.ratio, arms))
        p_best = finite_number("p_best", self.p_best, "probability")
        if not 1 / len(arms) <= p_best <= 1:
            raise InvalidInputError("p_best", self.p_best, f"must lie in [1/{len(arms)}, 1]")
        object.__setattr__(self, "p_best", p_best)
        validate_seed(self.seed)

    def assign(
        self,
        patient_levels: Mapping[str, str],
        previous: Sequence[tuple[Mapping[str, str], str]],
    ) -> MinimizationDecision:
        """Allocate the next patient given all earlier (levels, arm) allocations, in order.

        The draw for patient k (k = len(previous) + 1) comes from its own stream derived from
        the seed and k, so the same seed and patient sequence always give the same decisions.
        """
        patient = self._design.stratum_of(patient_levels)
        history = self._validated_history(previous)
        counts_per_factor = [
            Counter(arm for stratum, arm in history if stratum[position] == pair)
            for position, pair in enumerate(patient)
        ]
        scores = {arm: self._score_if_assigned(arm, counts_per_factor) for arm in self.arms}
        lowest = min(scores.values())
        minimising = tuple(arm for arm in self.arms if scores[arm] == lowest)
        others = tuple(arm for arm in self.arms if arm not in minimising)
        patient_number = len(history) + 1
        stream = RandomStream(derive_seed(self.seed, f"minimization|patient={patient_number}"))
        draw = stream.uniform_unit()
        overridden = draw >= self.p_best and bool(others)
        candidates = others if overridden else minimising
        return MinimizationDecision(
            patient_number=patient_number,
            patient_levels=MappingProxyType(dict(patient)),
            arm=candidates[stream.uniform_int(len(candidates))],
            scores=MappingProxyType({arm: float(score) for arm, score in scores.items()}),
            minimising_arms=minimising,
            overridden=overridden,
            random_draw=draw,
            p_best=self.p_best,
        )

    def _validated_history(
        self, previous: Sequence[tuple[Mapping[str, str], str]]
    ) -> list[tuple[Stratum, str]]:
        if not isinstance(previous, Sequence):
            raise InvalidInputError("previous", previous, "must be a sequence of (levels, arm)")
        history = []
        for index, allocation in enumerate(previous):
            field_name = f"previous[{index}]"
            if not isinstance(allocation, tuple) or len(allocation) != 2:
                raise InvalidInputError(field_name, allocation, "must be a (levels, arm) pair")
            levels, arm = allocation
            if arm not in self.arms:
                raise InvalidInputError(field_name, arm, f"arm must be one of {list(self.arms)}")
            history.append((self._design.stratum_of(levels, field_name), arm))
        return history

    def _score_if_assigned(self, arm: str, counts_per_factor: list[Counter[str]]) -> Fraction:
        """Sum over factors of the ratio-adjusted range after adding the patient to `arm`."""
        score = Fraction(0)
        for counts in counts_per_factor:
            after = [counts[name] + (name == arm) for name in self.arms]
            score += ratio_adjusted_range(after, self.ratio)
        return score
