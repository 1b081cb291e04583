"""Balance of allocations between arms: per stratum, per factor level, overall, per block."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from startrt.protocol.randomization.design import (
    Stratum,
    validate_arms,
    validate_name,
    validate_ratio,
)
from startrt.validation import InvalidInputError


def ratio_adjusted_range(counts: Sequence[int], ratio: Sequence[int]) -> Fraction:
    """Range across arms of count / ratio share, exact (0 = balanced per ratio).

    The imbalance measure of Pocock & Simon, Biometrics 1975;31:103-115 (range method), with
    counts divided by the allocation ratio so that e.g. 4 vs 2 under 2:1 is balanced.
    """
    shares = [Fraction(count, part) for count, part in zip(counts, ratio, strict=True)]
    return max(shares) - min(shares)


@dataclass(frozen=True)
class GroupBalance:
    """Arm counts in one group: a stratum, one factor level ((factor, level),) or overall ()."""

    group: Stratum
    counts: Mapping[str, int]
    imbalance: float


@dataclass(frozen=True)
class BlockBalance:
    """Arm counts in one permuted block and whether they match the ratio exactly."""

    stratum: Stratum
    block_number: int
    block_size: int
    counts: Mapping[str, int]
    balanced: bool


@dataclass(frozen=True)
class BalanceReport:
    """Counts per arm overall, per stratum, per factor level; the largest imbalance and where.

    Imbalance = range across arms of count / ratio share (for 1:1, the count difference).
    `blocks` is filled only for a randomization list (one entry per permuted block).
    """

    arms: tuple[str, ...]
    ratio: tuple[int, ...]
    overall: GroupBalance
    by_stratum: tuple[GroupBalance, ...]
    by_factor_level: tuple[GroupBalance, ...]
    max_imbalance: float
    max_imbalance_group: Stratum
    blocks: tuple[BlockBalance, ...] = ()

    @property
    def all_blocks_balanced(self) -> bool:
        """True if every reported block matches the allocation ratio exactly."""
        return all(block.balanced for block in self.blocks)


def balance_report(
    allocations: Sequence[tuple[Stratum, str]],
    arms: tuple[str, ...],
    ratio: tuple[int, ...] | None = None,
) -> BalanceReport:
    """Balance of (stratum, arm) allocations; `ratio` defaults to equal allocation."""
    arms = validate_arms(arms)
    ratio = validate_ratio((1,) * len(arms) if ratio is None else ratio, arms)
    overall_counts: Counter[str] = Counter()
    stratum_counts: dict[Stratum, Counter[str]] = {}
    level_counts: dict[Stratum, Counter[str]] = {}
    for index, allocation in enumerate(allocations):
        stratum, arm = _validated_allocation(index, allocation, arms)
        overall_counts[arm] += 1
        stratum_counts.setdefault(stratum, Counter())[arm] += 1
        for pair in stratum:
            level_counts.setdefault((pair,), Counter())[arm] += 1
    overall = _group_balance((), overall_counts, arms, ratio)
    by_stratum = _groups_balance(stratum_counts, arms, ratio)
    by_level = _groups_balance(level_counts, arms, ratio)
    worst = max((overall, *by_stratum, *by_level), key=lambda balance: balance.imbalance)
    return BalanceReport(
        arms=arms,
        ratio=ratio,
        overall=overall,
        by_stratum=by_stratum,
        by_factor_level=by_level,
        max_imbalance=worst.imbalance,
        max_imbalance_group=worst.group,
    )


def block_balance(
    stratum: Stratum,
    block_number: int,
    block_arms: Sequence[str],
    arms: tuple[str, ...],
    ratio: tuple[int, ...],
) -> BlockBalance:
    """Counts of one block; balanced if every arm has exactly size * ratio / sum(ratio)."""
    counts = Counter(block_arms)
    size = len(block_arms)
    balanced = set(counts) <= set(arms) and all(
        counts[arm] * sum(ratio) == size * part for arm, part in zip(arms, ratio, strict=True)
    )
    return BlockBalance(stratum, block_number, size, _frozen_counts(counts, arms), balanced)


def _validated_allocation(
    index: int, allocation: object, arms: tuple[str, ...]
) -> tuple[Stratum, str]:
    field = f"allocations[{index}]"
    if not isinstance(allocation, tuple) or len(allocation) != 2:
        raise InvalidInputError(field, allocation, "must be a (stratum, arm) pair")
    stratum, arm = allocation
    if arm not in arms:
        raise InvalidInputError(field, arm, f"arm must be one of {list(arms)}")
    if not isinstance(stratum, tuple) or not all(
        isinstance(pair, tuple) and len(pair) == 2 for pair in stratum
    ):
        raise InvalidInputError(field, stratum, "stratum must be a tuple of (factor, level)")
    for factor, level in stratum:
        validate_name(field, factor)
        validate_name(field, level)
    return stratum, arm


def _group_balance(
    group: Stratum, counts: Counter[str], arms: tuple[str, ...], ratio: tuple[int, ...]
) -> GroupBalance:
    imbalance = ratio_adjusted_range([counts[arm] for arm in arms], ratio)
    return GroupBalance(group, _frozen_counts(counts, arms), float(imbalance))


def _groups_balance(
    counts_by_group: dict[Stratum, Counter[str]], arms: tuple[str, ...], ratio: tuple[int, ...]
) -> tuple[GroupBalance, ...]:
    return tuple(
        _group_balance(group, counts_by_group[group], arms, ratio)
        for group in sorted(counts_by_group)
    )


def _frozen_counts(counts: Counter[str], arms: tuple[str, ...]) -> Mapping[str, int]:
    return MappingProxyType({arm: counts[arm] for arm in arms})
