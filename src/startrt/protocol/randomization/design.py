"""Stratification factors, strata and arms: vocabulary shared by block lists and minimization."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from startrt.validation import InvalidInputError

Stratum = tuple[tuple[str, str], ...]
"""One stratum: (factor, level) pairs in the design's factor order; () is "everyone"."""

# Names appear in CSV cells and in stratum labels: letters, digits, _ . + - and single inner
# spaces only, so ";", "=", ",", quotes and line breaks can never break a published list.
_NAME_PATTERN = re.compile(r"[\w.+-]+(?: [\w.+-]+)*")
_PAIR_SEPARATOR = ";"
_LEVEL_SEPARATOR = "="


def validate_name(field: str, name: object) -> str:
    """Return `name` if it is a non-empty label safe for CSV and stratum labels, else raise."""
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            field, name, "must be a non-empty name of letters, digits, '_.+-' and inner spaces"
        )
    return name


def validate_arms(arms: object) -> tuple[str, ...]:
    """Return `arms` as a tuple of >= 2 distinct valid names, else raise naming `arms`."""
    if not isinstance(arms, tuple | list) or len(arms) < 2:
        raise InvalidInputError("arms", arms, "must be a sequence of at least 2 arm names")
    names = tuple(validate_name("arms", arm) for arm in arms)
    if len(set(names)) != len(names):
        raise InvalidInputError("arms", arms, "arm names must be distinct")
    return names


def validate_ratio(ratio: object, arms: tuple[str, ...]) -> tuple[int, ...]:
    """Return `ratio` if it has one positive int per arm, else raise naming `ratio`."""
    if not isinstance(ratio, tuple | list) or len(ratio) != len(arms):
        raise InvalidInputError("ratio", ratio, f"must have one entry per arm ({len(arms)})")
    for part in ratio:
        if isinstance(part, bool) or not isinstance(part, int) or part < 1:
            raise InvalidInputError("ratio", ratio, "entries must be integers >= 1")
    return tuple(ratio)


def stratum_label(stratum: Stratum) -> str:
    """Canonical text of a stratum, e.g. "site=Lund;fdg=positive" (used in CSV and seeds)."""
    return _PAIR_SEPARATOR.join(f"{factor}{_LEVEL_SEPARATOR}{level}" for factor, level in stratum)


@dataclass(frozen=True)
class StrataDesign:
    """Stratification factors and their levels; the strata are their cartesian product.

    `factors` maps factor name -> levels, in the order used for strata and listings.
    """

    factors: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "factors", MappingProxyType(_validated_factors(self.factors)))

    def __hash__(self) -> int:
        return hash(tuple(self.factors.items()))

    def strata(self) -> tuple[Stratum, ...]:
        """Every stratum, in factor order then level order (first factor varies slowest)."""
        pairs_per_factor = [
            [(factor, level) for level in levels] for factor, levels in self.factors.items()
        ]
        return tuple(itertools.product(*pairs_per_factor))

    def stratum_of(self, levels: Mapping[str, str], field: str = "patient_levels") -> Stratum:
        """The stratum of a patient given factor -> level; raise on a missing/unknown one."""
        if not isinstance(levels, Mapping):
            raise InvalidInputError(field, levels, "must map each factor to a level")
        missing = [factor for factor in self.factors if factor not in levels]
        if missing:
            raise InvalidInputError(field, levels, f"missing factor(s) {missing}")
        if len(levels) != len(self.factors):
            unknown = [factor for factor in levels if factor not in self.factors]
            raise InvalidInputError(field, levels, f"unknown factor(s) {unknown}")
        for factor, allowed in self.factors.items():
            if levels[factor] not in allowed:
                raise InvalidInputError(
                    f"{field}.{factor}", levels[factor], f"must be one of {list(allowed)}"
                )
        return tuple((factor, levels[factor]) for factor in self.factors)

    def parse_label(self, label: str, field: str = "stratum") -> Stratum:
        """The stratum written as `stratum_label` text; raise if malformed or not in the design."""
        levels: dict[str, str] = {}
        for pair in label.split(_PAIR_SEPARATOR):
            factor, separator, level = pair.partition(_LEVEL_SEPARATOR)
            if not separator or factor in levels:
                raise InvalidInputError(field, label, "must read 'factor=level;factor=level'")
            levels[factor] = level
        return self.stratum_of(levels, field)


def _validated_factors(factors: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(factors, Mapping) or not factors:
        raise InvalidInputError("factors", factors, "must map at least one factor to its levels")
    validated: dict[str, tuple[str, ...]] = {}
    for factor, levels in factors.items():
        validate_name("factors", factor)
        if not isinstance(levels, tuple | list) or not levels:
            raise InvalidInputError(f"factors.{factor}", levels, "must list at least one level")
        names = tuple(validate_name(f"factors.{factor}", level) for level in levels)
        if len(set(names)) != len(names):
            raise InvalidInputError(f"factors.{factor}", levels, "levels must be distinct")
        validated[factor] = names
    return validated
