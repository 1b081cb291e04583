"""Stratified permuted-block randomization lists with random block sizes: generate, publish, check.

Each stratum has its own random stream derived from the seed and the stratum's label, so adding a
stratum (a new site) leaves every existing stratum's list unchanged. Blocks are always complete:
every block holds each arm exactly in the allocation ratio. Source: Zelen, J Chronic Dis
1974;27:365-375 (permuted blocks within strata); Schulz & Grimes, Lancet 2002;359:515-519
(random block sizes for allocation concealment).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from startrt.protocol.randomization.balance import (
    BalanceReport,
    BlockBalance,
    balance_report,
    block_balance,
)
from startrt.protocol.randomization.design import (
    StrataDesign,
    Stratum,
    stratum_label,
    validate_arms,
    validate_ratio,
)
from startrt.protocol.randomization.rng import RandomStream, derive_seed, validate_seed
from startrt.validation import InvalidInputError

CSV_HEADER = ("stratum", "sequence", "block", "block_size", "arm")
MAX_BLOCK_SIZE = 100
MAX_SLOTS_PER_STRATUM = 100_000
_POSITIVE_INT = re.compile(r"[1-9][0-9]*")


@dataclass(frozen=True)
class Slot:
    """One row of a randomization list: the `sequence`-th allocation (from 1) in its stratum."""

    stratum: Stratum
    sequence: int
    block_number: int
    block_size: int
    arm: str


@dataclass(frozen=True)
class BlockListParameters:
    """What a list was built to satisfy (the seed is deliberately not kept).

    For an imported list, `block_sizes` are the sizes found and `n_per_stratum` the smallest
    number of slots in any stratum.
    """

    strata: StrataDesign
    arms: tuple[str, ...]
    ratio: tuple[int, ...]
    block_sizes: tuple[int, ...]
    n_per_stratum: int

    def __post_init__(self) -> None:
        if not isinstance(self.strata, StrataDesign):
            raise InvalidInputError("strata", self.strata, "must be a StrataDesign")
        arms = validate_arms(self.arms)
        ratio = validate_ratio(self.ratio, arms)
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "ratio", ratio)
        object.__setattr__(self, "block_sizes", _validated_block_sizes(self.block_sizes, ratio))
        _require_int_in("n_per_stratum", self.n_per_stratum, 1, MAX_SLOTS_PER_STRATUM)


@dataclass(frozen=True)
class RandomizationList:
    """A complete stratified permuted-block list, in canonical order (design strata, sequence).

    Construction checks every invariant (contiguous sequences and blocks, block sizes, exact
    balance of every block, every stratum present with >= n_per_stratum slots).
    """

    parameters: BlockListParameters
    entries: tuple[Slot, ...]
    _by_stratum: Mapping[Stratum, tuple[Slot, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.parameters, BlockListParameters):
            raise InvalidInputError("parameters", self.parameters, "must be BlockListParameters")
        object.__setattr__(self, "entries", tuple(self.entries))
        by_stratum = _checked_index(self.entries, self.parameters)
        object.__setattr__(self, "_by_stratum", MappingProxyType(by_stratum))

    def to_csv(self) -> str:
        """Publishable text: fixed header, canonical order, "\\n" line endings, no seed."""
        rows = [",".join(CSV_HEADER)]
        rows.extend(
            f"{stratum_label(slot.stratum)},{slot.sequence},{slot.block_number},"
            f"{slot.block_size},{slot.arm}"
            for slot in self.entries
        )
        return "\n".join(rows) + "\n"

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of `to_csv()` encoded as UTF-8: the list's fingerprint."""
        return hashlib.sha256(self.to_csv().encode("utf-8")).hexdigest()

    @classmethod
    def from_csv(
        cls,
        text: str,
        *,
        strata: StrataDesign,
        arms: tuple[str, ...] = ("standard", "personalized"),
        ratio: tuple[int, ...] = (1, 1),
    ) -> RandomizationList:
        """Import a list in `to_csv` format (e.g. from the trial statistician), fully checked."""
        if not isinstance(strata, StrataDesign):
            raise InvalidInputError("strata", strata, "must be a StrataDesign")
        slots = _parse_csv(text, strata)
        order = {stratum: index for index, stratum in enumerate(strata.strata())}
        slots.sort(key=lambda slot: (order[slot.stratum], slot.sequence))
        slots_per_stratum = Counter(slot.stratum for slot in slots)
        for stratum in strata.strata():
            if not slots_per_stratum[stratum]:
                raise InvalidInputError("stratum", stratum_label(stratum), "has no slots")
        parameters = BlockListParameters(
            strata=strata,
            arms=arms,
            ratio=ratio,
            block_sizes=tuple(sorted({slot.block_size for slot in slots})),
            n_per_stratum=min(slots_per_stratum.values()),
        )
        return cls(parameters, tuple(slots))

    def slots(self, stratum: Stratum) -> tuple[Slot, ...]:
        """All slots of one stratum, in sequence order."""
        if stratum not in self._by_stratum:
            raise InvalidInputError("stratum", stratum, "is not a stratum of this list")
        return self._by_stratum[stratum]

    def next_slot(self, stratum: Stratum, used: int) -> Slot:
        """The slot for the next patient of `stratum` when `used` slots are already taken.

        Pure lookup: the caller must take `used` and record the allocation in one transaction.
        """
        slots = self.slots(stratum)
        _require_int_in("used", used, 0, MAX_SLOTS_PER_STRATUM)
        if used >= len(slots):
            raise InvalidInputError(
                "used", used, f"stratum {stratum_label(stratum)} has only {len(slots)} slots"
            )
        return slots[used]

    def balance(self) -> BalanceReport:
        """Balance of the whole list, with an exact-ratio check of every block."""
        allocations = [(slot.stratum, slot.arm) for slot in self.entries]
        report = balance_report(allocations, self.parameters.arms, self.parameters.ratio)
        blocks = tuple(_block_balance(block, self.parameters) for block in _blocks(self.entries))
        return replace(report, blocks=blocks)


def generate_block_list(
    *,
    seed: int,
    n_per_stratum: int,
    strata: StrataDesign,
    arms: tuple[str, ...] = ("standard", "personalized"),
    ratio: tuple[int, ...] = (1, 1),
    block_sizes: tuple[int, ...] = (4, 6),
) -> RandomizationList:
    """Stratified permuted-block list: whole blocks per stratum until >= n_per_stratum slots.

    Each block's size is drawn uniformly from `block_sizes` (multiples of sum(ratio)) and its
    arms are a uniformly random permutation of a block balanced exactly per `ratio`.
    Source: Zelen, J Chronic Dis 1974;27:365-375.
    """
    seed = validate_seed(seed)
    parameters = BlockListParameters(strata, arms, ratio, block_sizes, n_per_stratum)
    entries = tuple(
        slot
        for stratum in parameters.strata.strata()
        for slot in _stratum_slots(seed, stratum, parameters)
    )
    return RandomizationList(parameters, entries)


def _stratum_slots(seed: int, stratum: Stratum, parameters: BlockListParameters) -> list[Slot]:
    stream = RandomStream(derive_seed(seed, f"permuted-blocks|{stratum_label(stratum)}"))
    slots: list[Slot] = []
    block_number = 0
    while len(slots) < parameters.n_per_stratum:
        block_number += 1
        size = parameters.block_sizes[stream.uniform_int(len(parameters.block_sizes))]
        for arm in stream.shuffle(_balanced_block(size, parameters.arms, parameters.ratio)):
            slots.append(Slot(stratum, len(slots) + 1, block_number, size, arm))
    return slots


def _balanced_block(size: int, arms: tuple[str, ...], ratio: tuple[int, ...]) -> list[str]:
    repeats = size // sum(ratio)
    return [arm for arm, part in zip(arms, ratio, strict=True) for _ in range(part * repeats)]


def _blocks(slots: Sequence[Slot]) -> Iterator[tuple[Slot, ...]]:
    for _, block in itertools.groupby(slots, key=lambda slot: (slot.stratum, slot.block_number)):
        yield tuple(block)


def _block_balance(block: tuple[Slot, ...], parameters: BlockListParameters) -> BlockBalance:
    arms_in_block = [slot.arm for slot in block]
    return block_balance(
        block[0].stratum, block[0].block_number, arms_in_block, parameters.arms, parameters.ratio
    )


def _checked_index(
    entries: tuple[Slot, ...], parameters: BlockListParameters
) -> dict[Stratum, tuple[Slot, ...]]:
    by_stratum: dict[Stratum, list[Slot]] = {stratum: [] for stratum in parameters.strata.strata()}
    for slot in entries:
        if slot.stratum not in by_stratum:
            raise InvalidInputError("stratum", slot.stratum, "is not a stratum of the design")
        by_stratum[slot.stratum].append(slot)
    if entries != tuple(itertools.chain.from_iterable(by_stratum.values())):
        raise InvalidInputError("entries", "order", "must be grouped by stratum in design order")
    for stratum, slots in by_stratum.items():
        _check_stratum(stratum, slots, parameters)
    return {stratum: tuple(slots) for stratum, slots in by_stratum.items()}


def _check_stratum(stratum: Stratum, slots: list[Slot], parameters: BlockListParameters) -> None:
    label = stratum_label(stratum)
    if len(slots) < parameters.n_per_stratum:
        raise InvalidInputError(
            "entries", label, f"has {len(slots)} slots, fewer than {parameters.n_per_stratum}"
        )
    if [slot.sequence for slot in slots] != list(range(1, len(slots) + 1)):
        raise InvalidInputError("sequence", label, "must run 1, 2, 3, ... without gaps")
    for expected_number, block in enumerate(_blocks(slots), start=1):
        _check_block(label, expected_number, block, parameters)


def _check_block(
    label: str, expected_number: int, block: tuple[Slot, ...], parameters: BlockListParameters
) -> None:
    where = f"{label} block {block[0].block_number}"
    if block[0].block_number != expected_number:
        raise InvalidInputError("block", where, "blocks must be numbered 1, 2, ... in order")
    if any(slot.block_size != len(block) for slot in block):
        raise InvalidInputError("block_size", where, f"must equal the block's {len(block)} rows")
    if len(block) not in parameters.block_sizes:
        raise InvalidInputError("block_size", where, f"must be one of {parameters.block_sizes}")
    for slot in block:
        if slot.arm not in parameters.arms:
            raise InvalidInputError("arm", slot.arm, f"must be one of {list(parameters.arms)}")
    check = _block_balance(block, parameters)
    if not check.balanced:
        raise InvalidInputError(
            "block", where, f"arm counts {dict(check.counts)} do not match ratio {parameters.ratio}"
        )


def _parse_csv(text: str, strata: StrataDesign) -> list[Slot]:
    if not isinstance(text, str):
        raise InvalidInputError("text", type(text).__name__, "must be CSV text")
    rows = [row for row in csv.reader(io.StringIO(text.removeprefix("\ufeff"))) if row]
    if not rows or tuple(rows[0]) != CSV_HEADER:
        raise InvalidInputError("header", rows[0] if rows else None, f"must be {CSV_HEADER}")
    return [_parse_row(number, row, strata) for number, row in enumerate(rows[1:], start=2)]


def _parse_row(number: int, row: list[str], strata: StrataDesign) -> Slot:
    if len(row) != len(CSV_HEADER):
        raise InvalidInputError(f"row {number}", row, f"must have {len(CSV_HEADER)} fields")
    label, sequence, block_number, block_size, arm = row
    return Slot(
        stratum=strata.parse_label(label, field=f"row {number}.stratum"),
        sequence=_parse_positive_int(f"row {number}.sequence", sequence),
        block_number=_parse_positive_int(f"row {number}.block", block_number),
        block_size=_parse_positive_int(f"row {number}.block_size", block_size),
        arm=arm,
    )


def _parse_positive_int(field_name: str, text: str) -> int:
    if not _POSITIVE_INT.fullmatch(text):
        raise InvalidInputError(field_name, text, "must be a positive integer")
    return int(text)


def _require_int_in(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(field_name, value, f"must be an integer in [{low}, {high}]")
    return value


def _validated_block_sizes(block_sizes: object, ratio: tuple[int, ...]) -> tuple[int, ...]:
    if not isinstance(block_sizes, tuple | list) or not block_sizes:
        raise InvalidInputError("block_sizes", block_sizes, "must list at least one block size")
    for size in block_sizes:
        _require_int_in("block_sizes", size, 1, MAX_BLOCK_SIZE)
        if size % sum(ratio):
            raise InvalidInputError(
                "block_sizes", block_sizes, f"each must be a multiple of sum(ratio) = {sum(ratio)}"
            )
    if len(set(block_sizes)) != len(block_sizes):
        raise InvalidInputError("block_sizes", block_sizes, "must be distinct")
    return tuple(block_sizes)
