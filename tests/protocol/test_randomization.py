"""Tests for startrt.protocol.randomization: random source, permuted blocks, minimization, balance.

Statistical tests use fixed seeds (deterministic) and chi-square critical values at alpha = 0.001
from the NIST/SEMATECH e-Handbook of Statistical Methods, table 1.3.6.7.4 (upper tail).
"""

from __future__ import annotations

import hashlib
import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from startrt.protocol.randomization import (
    CSV_HEADER,
    Minimizer,
    RandomizationList,
    RandomStream,
    Slot,
    StrataDesign,
    Stratum,
    balance_report,
    derive_seed,
    generate_block_list,
    stratum_label,
)
from startrt.validation import InvalidInputError

# Upper 0.1 % points of the chi-square distribution by degrees of freedom (NIST table 1.3.6.7.4).
CHI2_CRITICAL_0_001 = {1: 10.828, 3: 16.266, 5: 20.515, 9: 27.877}

SITES = ("Gothenburg", "Lund", "Stockholm", "Uppsala")
FDG = ("negative", "positive")
ARMS = ("standard", "personalized")
T = TypeVar("T")
SEEDS = st.integers(min_value=0, max_value=2**128)


def start01_design() -> StrataDesign:
    return StrataDesign({"site": SITES, "fdg": FDG})


def chi_square(observed: Sequence[int], expected: Sequence[float]) -> float:
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))


def assert_uniform(counts: Mapping[T, int], categories: Sequence[T]) -> None:
    """Chi-square goodness of fit to equal frequencies over `categories` at alpha = 0.001."""
    assert set(counts) <= set(categories)
    total = sum(counts.values())
    statistic = chi_square(
        [counts[c] for c in categories], [total / len(categories)] * len(categories)
    )
    assert statistic < CHI2_CRITICAL_0_001[len(categories) - 1]


def raises_on(field: str, call: Callable[[], object]) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        call()
    assert caught.value.field == field
    return caught.value


def blocks_of(entries: Sequence[Slot]) -> dict[tuple[Stratum, int], list[Slot]]:
    blocks: dict[tuple[Stratum, int], list[Slot]] = defaultdict(list)
    for slot in entries:
        blocks[(slot.stratum, slot.block_number)].append(slot)
    return blocks


# --- random source -----------------------------------------------------------------------------


def test_stream_is_numpy_pcg64_raw_output() -> None:
    # The whole point: only BitGenerator raw output (stable across NumPy versions, NEP 19) is used.
    reference = np.random.PCG64(2024)
    stream = RandomStream(2024)
    assert [stream.raw() for _ in range(5)] == [int(reference.random_raw()) for _ in range(5)]


def test_uniform_int_rejects_instead_of_reducing_modulo() -> None:
    # n = 2**63 + 1: 2**64 mod n = 2**63 - 1, so the acceptance limit is 2**64 - (2**63 - 1) = n.
    # Every accepted raw value is < n and returned as is; raw values >= n (about half) are
    # rejected. A plain `raw % n` would instead return raw - n for them.
    n = 2**63 + 1
    reference = np.random.PCG64(7)
    stream = RandomStream(7)
    for _ in range(20):
        raw = int(reference.random_raw())
        while raw >= n:
            raw = int(reference.random_raw())
        assert stream.uniform_int(n) == raw


def test_uniform_int_unbiased_where_modulo_would_be_biased() -> None:
    # n = 3 * 2**62: with raw % n, values below 2**62 would come up with probability 2/4 = 0.5;
    # unbiased they have probability 1/3. 3000 draws: expected 1000 low, 2000 high.
    stream = RandomStream(99)
    low = sum(stream.uniform_int(3 * 2**62) < 2**62 for _ in range(3000))
    assert chi_square([low, 3000 - low], [1000, 2000]) < CHI2_CRITICAL_0_001[1]


def test_uniform_int_is_uniform_over_small_range() -> None:
    stream = RandomStream(12345)
    counts = Counter(stream.uniform_int(10) for _ in range(50_000))
    assert_uniform(counts, range(10))


def test_uniform_int_of_one_is_always_zero() -> None:
    stream = RandomStream(3)
    assert {stream.uniform_int(1) for _ in range(50)} == {0}


@pytest.mark.parametrize("n", [0, -1, 2**64 + 1, True, 2.0])
def test_uniform_int_rejects_bad_range(n: object) -> None:
    raises_on("n", lambda: RandomStream(1).uniform_int(n))  # type: ignore[arg-type]


def test_uniform_unit_lies_in_unit_interval_and_is_uniform() -> None:
    stream = RandomStream(5)
    draws = [stream.uniform_unit() for _ in range(20_000)]
    assert all(0.0 <= u < 1.0 for u in draws)
    assert_uniform(Counter(int(u * 10) for u in draws), range(10))


@given(items=st.lists(st.integers(), max_size=30), seed=SEEDS)
def test_shuffle_is_a_permutation_and_leaves_input_alone(items: list[int], seed: int) -> None:
    original = list(items)
    shuffled = RandomStream(seed).shuffle(items)
    assert sorted(shuffled) == sorted(items)
    assert items == original


def test_shuffle_gives_every_ordering_equally_often() -> None:
    # 3 items have 3! = 6 orderings; a biased shuffle (e.g. swapping with any index) fails this.
    stream = RandomStream(31)
    counts = Counter(stream.shuffle("abc") for _ in range(6000))
    assert_uniform(counts, list(itertools.permutations("abc")))


@given(seed=SEEDS)
def test_same_seed_same_stream(seed: int) -> None:
    first, second = RandomStream(seed), RandomStream(seed)
    assert [first.uniform_int(1000) for _ in range(10)] == [
        second.uniform_int(1000) for _ in range(10)
    ]


def test_derived_seeds_differ_by_purpose_and_seed() -> None:
    assert derive_seed(1, "a") == derive_seed(1, "a")
    assert len({derive_seed(1, "a"), derive_seed(1, "b"), derive_seed(2, "a")}) == 3


@pytest.mark.parametrize("seed", [-1, True, 1.5, "1"])
def test_bad_seed_is_refused(seed: object) -> None:
    raises_on("seed", lambda: RandomStream(seed))  # type: ignore[arg-type]
    raises_on("seed", lambda: derive_seed(seed, "x"))  # type: ignore[arg-type]


# --- strata ------------------------------------------------------------------------------------


def test_strata_are_the_cartesian_product_in_factor_order() -> None:
    strata = start01_design().strata()
    assert len(strata) == 4 * 2
    assert strata[0] == (("site", "Gothenburg"), ("fdg", "negative"))
    assert strata[1] == (("site", "Gothenburg"), ("fdg", "positive"))
    assert strata[-1] == (("site", "Uppsala"), ("fdg", "positive"))


def test_stratum_of_and_label_round_trip() -> None:
    design = start01_design()
    stratum = design.stratum_of({"fdg": "positive", "site": "Lund"})
    assert stratum == (("site", "Lund"), ("fdg", "positive"))
    assert stratum_label(stratum) == "site=Lund;fdg=positive"
    assert design.parse_label("site=Lund;fdg=positive") == stratum


@pytest.mark.parametrize(
    ("levels", "field"),
    [
        ({"site": "Malmo", "fdg": "positive"}, "patient_levels.site"),
        ({"site": "Lund"}, "patient_levels"),
        ({"site": "Lund", "fdg": "positive", "ki67": "high"}, "patient_levels"),
        ("site=Lund", "patient_levels"),
    ],
)
def test_stratum_of_refuses_unknown_or_missing_levels(levels: object, field: str) -> None:
    raises_on(field, lambda: start01_design().stratum_of(levels))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factors", "field"),
    [
        ({}, "factors"),
        ({"site": ()}, "factors.site"),
        ({"site": ("Lund", "Lund")}, "factors.site"),
        ({"site": ("Lund;fdg=x",)}, "factors.site"),
        ({"site": ("Lund,Malmo",)}, "factors.site"),
        ({"si=te": ("Lund",)}, "factors"),
        ({"site": "Lund"}, "factors.site"),
    ],
)
def test_bad_factors_are_refused(factors: object, field: str) -> None:
    raises_on(field, lambda: StrataDesign(factors))  # type: ignore[arg-type]


# --- permuted blocks: properties ---------------------------------------------------------------


@dataclass(frozen=True)
class ListInputs:
    seed: int
    n_per_stratum: int
    strata: StrataDesign
    arms: tuple[str, ...]
    ratio: tuple[int, ...]
    block_sizes: tuple[int, ...]

    def generate(self) -> RandomizationList:
        return generate_block_list(
            seed=self.seed,
            n_per_stratum=self.n_per_stratum,
            strata=self.strata,
            arms=self.arms,
            ratio=self.ratio,
            block_sizes=self.block_sizes,
        )


@st.composite
def block_list_inputs(draw: st.DrawFn) -> ListInputs:
    n_arms = draw(st.integers(min_value=2, max_value=3))
    ratio = tuple(draw(st.lists(st.integers(1, 3), min_size=n_arms, max_size=n_arms)))
    multiples = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True))
    return ListInputs(
        seed=draw(SEEDS),
        n_per_stratum=draw(st.integers(min_value=1, max_value=25)),
        strata=StrataDesign({"site": SITES[:2], "fdg": FDG}),
        arms=("standard", "personalized", "observation")[:n_arms],
        ratio=ratio,
        block_sizes=tuple(m * sum(ratio) for m in multiples),
    )


@settings(max_examples=60, deadline=None)
@given(inputs=block_list_inputs())
def test_every_block_is_balanced_exactly_per_ratio(inputs: ListInputs) -> None:
    randomization = inputs.generate()
    arms, ratio = inputs.arms, inputs.ratio
    for block in blocks_of(randomization.entries).values():
        counts = Counter(slot.arm for slot in block)
        assert len(block) in inputs.block_sizes
        assert {slot.block_size for slot in block} == {len(block)}
        for arm, part in zip(arms, ratio, strict=True):
            assert counts[arm] * sum(ratio) == len(block) * part


@settings(max_examples=60, deadline=None)
@given(inputs=block_list_inputs())
def test_each_stratum_is_whole_blocks_just_reaching_n(inputs: ListInputs) -> None:
    randomization = inputs.generate()
    n = inputs.n_per_stratum
    for stratum in inputs.strata.strata():
        slots = [slot for slot in randomization.entries if slot.stratum == stratum]
        assert [slot.sequence for slot in slots] == list(range(1, len(slots) + 1))
        block_numbers = [slot.block_number for slot in slots]
        assert block_numbers == sorted(block_numbers)
        assert sorted(set(block_numbers)) == list(range(1, block_numbers[-1] + 1))
        last_block_size = slots[-1].block_size
        assert Counter(block_numbers)[block_numbers[-1]] == last_block_size  # last block complete
        assert len(slots) >= n
        assert len(slots) - last_block_size < n  # stops at first >= n


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, other=SEEDS)
def test_same_seed_same_hash_other_seed_other_hash(seed: int, other: int) -> None:
    def fingerprint(chosen: int) -> str:
        return generate_block_list(seed=chosen, n_per_stratum=40, strata=start01_design()).sha256

    assert fingerprint(seed) == fingerprint(seed)
    if other != seed:
        assert fingerprint(other) != fingerprint(seed)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS)
def test_adding_a_stratum_leaves_existing_strata_unchanged(seed: int) -> None:
    before = generate_block_list(seed=seed, n_per_stratum=20, strata=start01_design())
    wider = StrataDesign({"site": (*SITES, "Umea"), "fdg": FDG})
    after = generate_block_list(seed=seed, n_per_stratum=20, strata=wider)
    for stratum in start01_design().strata():
        assert after.slots(stratum) == before.slots(stratum)
    assert len(after.entries) > len(before.entries)


def test_block_sizes_are_drawn_uniformly() -> None:
    randomization = generate_block_list(
        seed=20221101, n_per_stratum=2000, strata=start01_design(), block_sizes=(2, 4, 6, 8)
    )
    sizes = Counter(len(block) for block in blocks_of(randomization.entries).values())
    assert sum(sizes.values()) > 2500  # about 2000 / 5 = 400 blocks in each of 8 strata
    assert_uniform(sizes, [2, 4, 6, 8])


def test_arrangements_within_blocks_are_uniform() -> None:
    # A 1:1 block of 4 has C(4, 2) = 6 arrangements, each equally likely.
    randomization = generate_block_list(
        seed=77, n_per_stratum=1000, strata=start01_design(), block_sizes=(4,)
    )
    arrangements = Counter(
        tuple(slot.arm for slot in block) for block in blocks_of(randomization.entries).values()
    )
    expected = set(itertools.permutations(("standard",) * 2 + ("personalized",) * 2))
    assert_uniform(arrangements, sorted(expected))


# --- permuted blocks: published text and import ------------------------------------------------


def small_list(seed: int = 5) -> RandomizationList:
    return generate_block_list(seed=seed, n_per_stratum=6, strata=start01_design())


def test_csv_has_fixed_header_unix_newlines_and_no_seed() -> None:
    seed = 918273645546372819
    randomization = generate_block_list(seed=seed, n_per_stratum=10, strata=start01_design())
    text = randomization.to_csv()
    lines = text.split("\n")
    assert lines[0] == "stratum,sequence,block,block_size,arm"
    assert tuple(lines[0].split(",")) == CSV_HEADER
    assert lines[1].startswith("site=Gothenburg;fdg=negative,1,1,")
    assert text.endswith("\n")
    assert "\r" not in text
    assert len(lines) == 1 + len(randomization.entries) + 1  # header, rows, final empty piece
    assert str(seed) not in text
    assert str(seed) not in repr(randomization)


def test_sha256_is_the_hash_of_the_published_text() -> None:
    randomization = small_list()
    expected = hashlib.sha256(randomization.to_csv().encode("utf-8")).hexdigest()
    assert randomization.sha256 == expected
    assert len(expected) == 64


@settings(max_examples=30, deadline=None)
@given(inputs=block_list_inputs())
def test_csv_round_trip(inputs: ListInputs) -> None:
    randomization = inputs.generate()
    imported = RandomizationList.from_csv(
        randomization.to_csv(), strata=inputs.strata, arms=inputs.arms, ratio=inputs.ratio
    )
    assert imported.entries == randomization.entries
    assert imported.to_csv() == randomization.to_csv()
    assert imported.sha256 == randomization.sha256


def test_import_accepts_crlf_bom_and_any_row_order() -> None:
    randomization = small_list()
    header, *rows = randomization.to_csv().splitlines()
    scrambled = "\ufeff" + "\r\n".join([header, *reversed(rows)]) + "\r\n"
    imported = RandomizationList.from_csv(scrambled, strata=start01_design())
    assert imported.sha256 == randomization.sha256


def test_import_infers_parameters_from_the_rows() -> None:
    randomization = small_list()
    imported = RandomizationList.from_csv(randomization.to_csv(), strata=start01_design())
    sizes = {slot.block_size for slot in randomization.entries}
    assert imported.parameters.block_sizes == tuple(sorted(sizes))
    fewest = min(Counter(slot.stratum for slot in randomization.entries).values())
    assert imported.parameters.n_per_stratum == fewest


def replace_cell(text: str, row: int, column: int, value: str) -> str:
    lines = text.split("\n")
    cells = lines[row].split(",")
    cells[column] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines)


def flipped(arm: str) -> str:
    return "personalized" if arm == "standard" else "standard"


@pytest.mark.parametrize(
    ("tamper", "field"),
    [
        # one arm changed: its block now has 3 of one arm and 1 of the other
        (lambda t: replace_cell(t, 1, 4, flipped(t.split("\n")[1].split(",")[4])), "block"),
        (lambda t: t.replace("stratum,sequence", "stratum,seq", 1), "header"),
        (lambda t: t.replace("block_size,arm\n", "block_size,arm,seed\n", 1), "header"),
        (lambda t: "", "header"),
        (lambda t: replace_cell(t, 1, 4, "placebo"), "arm"),
        (lambda t: replace_cell(t, 2, 1, "99"), "sequence"),
        (lambda t: replace_cell(t, 1, 1, "x"), "row 2.sequence"),
        (lambda t: replace_cell(t, 1, 1, "01"), "row 2.sequence"),
        (lambda t: replace_cell(t, 1, 3, "6"), "block_size"),
        (lambda t: replace_cell(t, 1, 0, "site=Malmo;fdg=negative"), "row 2.stratum.site"),
        (lambda t: replace_cell(t, 1, 0, "site:Lund"), "row 2.stratum"),
        (lambda t: t.replace(",1,1,", ",1,1,4,extra,", 1), "row 2"),
        (
            lambda t: "\n".join(
                line for line in t.split("\n") if "Uppsala;fdg=positive" not in line
            ),
            "stratum",
        ),
    ],
)
def test_import_rejects_a_tampered_list(tamper: Callable[[str], str], field: str) -> None:
    text = generate_block_list(
        seed=5, n_per_stratum=6, strata=start01_design(), block_sizes=(4,)
    ).to_csv()
    tampered = tamper(text)
    assert tampered != text
    raises_on(field, lambda: RandomizationList.from_csv(tampered, strata=start01_design()))


def test_import_rejects_block_sizes_not_multiple_of_ratio() -> None:
    # Blocks of 3 cannot be balanced 1:1; the list is refused on its block sizes.
    header = ",".join(CSV_HEADER)
    rows = [
        f"{stratum_label(s)},{i},1,3,{arm}"
        for s in StrataDesign({"site": ("Lund",)}).strata()
        for i, arm in enumerate(("standard", "personalized", "standard"), start=1)
    ]
    text = "\n".join([header, *rows]) + "\n"
    raises_on(
        "block_sizes",
        lambda: RandomizationList.from_csv(text, strata=StrataDesign({"site": ("Lund",)})),
    )


def test_next_slot_walks_the_stratum_in_sequence() -> None:
    randomization = small_list()
    stratum = (("site", "Lund"), ("fdg", "positive"))
    slots = [slot for slot in randomization.entries if slot.stratum == stratum]
    assert randomization.next_slot(stratum, 0) == slots[0]
    assert randomization.next_slot(stratum, 0).sequence == 1
    assert randomization.next_slot(stratum, len(slots) - 1) == slots[-1]
    error = raises_on("used", lambda: randomization.next_slot(stratum, len(slots)))
    assert "site=Lund;fdg=positive" in error.rule
    raises_on("used", lambda: randomization.next_slot(stratum, -1))
    raises_on("stratum", lambda: randomization.next_slot((("site", "Malmo"),), 0))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"block_sizes": (3,)}, "block_sizes"),
        ({"block_sizes": (4, 5)}, "block_sizes"),
        ({"block_sizes": (4, 4)}, "block_sizes"),
        ({"block_sizes": ()}, "block_sizes"),
        ({"block_sizes": (0,)}, "block_sizes"),
        ({"block_sizes": (102,)}, "block_sizes"),
        ({"ratio": (1,)}, "ratio"),
        ({"ratio": (0, 1)}, "ratio"),
        ({"ratio": (1.0, 1)}, "ratio"),
        ({"arms": ("standard",)}, "arms"),
        ({"arms": ("standard", "standard")}, "arms"),
        ({"arms": ("standard", "person,alized")}, "arms"),
        ({"n_per_stratum": 0}, "n_per_stratum"),
        ({"n_per_stratum": 7.5}, "n_per_stratum"),
        ({"seed": -3}, "seed"),
        ({"strata": {"site": SITES}}, "strata"),
    ],
)
def test_generate_refuses_bad_input(overrides: dict[str, object], field: str) -> None:
    inputs: dict[str, object] = {"seed": 1, "n_per_stratum": 10, "strata": start01_design()}
    inputs.update(overrides)
    raises_on(field, lambda: generate_block_list(**inputs))  # type: ignore[arg-type]


def test_list_balance_report_checks_every_block() -> None:
    randomization = generate_block_list(
        seed=11, n_per_stratum=30, strata=start01_design(), ratio=(2, 1), block_sizes=(3, 6)
    )
    report = randomization.balance()
    assert len(report.blocks) == len(blocks_of(randomization.entries))
    assert report.all_blocks_balanced
    # Whole 2:1 blocks in every stratum: each stratum, each level and the total hold exactly
    # twice as many "standard" as "personalized", so every ratio-adjusted imbalance is 0.
    assert report.max_imbalance == 0
    total = len(randomization.entries)
    assert dict(report.overall.counts) == {"standard": total * 2 // 3, "personalized": total // 3}
    assert len(report.by_stratum) == 8
    assert len(report.by_factor_level) == 4 + 2


# --- balance report ----------------------------------------------------------------------------

LUND_POS = (("site", "Lund"), ("fdg", "positive"))
LUND_NEG = (("site", "Lund"), ("fdg", "negative"))
UPPSALA_POS = (("site", "Uppsala"), ("fdg", "positive"))
HAND_ALLOCATIONS = [
    (LUND_POS, "standard"),
    (LUND_POS, "standard"),
    (LUND_NEG, "personalized"),
    (UPPSALA_POS, "personalized"),
    (UPPSALA_POS, "standard"),
]


def test_balance_report_by_hand() -> None:
    report = balance_report(HAND_ALLOCATIONS, ARMS)
    # overall: standard 3, personalized 2 -> imbalance 1
    assert dict(report.overall.counts) == {"standard": 3, "personalized": 2}
    assert report.overall.imbalance == 1
    # strata (sorted): Lund/neg 0-1 -> 1; Lund/pos 2-0 -> 2; Uppsala/pos 1-1 -> 0
    assert [(b.group, b.imbalance) for b in report.by_stratum] == [
        (LUND_NEG, 1),
        (LUND_POS, 2),
        (UPPSALA_POS, 0),
    ]
    # levels: fdg neg 0-1 -> 1; fdg pos 3-1 -> 2; Lund 2-1 -> 1; Uppsala 1-1 -> 0
    assert [(b.group, dict(b.counts)) for b in report.by_factor_level] == [
        ((("fdg", "negative"),), {"standard": 0, "personalized": 1}),
        ((("fdg", "positive"),), {"standard": 3, "personalized": 1}),
        ((("site", "Lund"),), {"standard": 2, "personalized": 1}),
        ((("site", "Uppsala"),), {"standard": 1, "personalized": 1}),
    ]
    assert report.max_imbalance == 2
    assert report.max_imbalance_group == LUND_POS  # first group reaching 2 (strata before levels)
    assert report.blocks == ()


def test_balance_report_adjusts_for_ratio() -> None:
    # 2:1, overall 3 standard / 2 personalized: shares 3/2 = 1.5 and 2/1 = 2 -> imbalance 0.5
    report = balance_report(HAND_ALLOCATIONS, ARMS, ratio=(2, 1))
    assert report.overall.imbalance == pytest.approx(0.5)


def test_balance_report_of_nothing_is_zero() -> None:
    report = balance_report([], ARMS)
    assert report.max_imbalance == 0
    assert report.by_stratum == ()
    assert report.by_factor_level == ()


@pytest.mark.parametrize(
    ("allocations", "field"),
    [
        ([(LUND_POS, "standard"), (LUND_POS, "placebo")], "allocations[1]"),
        ([("Lund", "standard")], "allocations[0]"),
        ([((("site", "Lu;nd"),), "standard")], "allocations[0]"),
        ([(LUND_POS,)], "allocations[0]"),
    ],
)
def test_balance_report_refuses_bad_allocations(allocations: object, field: str) -> None:
    raises_on(field, lambda: balance_report(allocations, ARMS))  # type: ignore[arg-type]


# --- minimization ------------------------------------------------------------------------------

SMALL_FACTORS = {"site": ("A", "B"), "fdg": ("pos", "neg")}
HISTORY = [
    ({"site": "A", "fdg": "pos"}, "standard"),
    ({"site": "A", "fdg": "neg"}, "personalized"),
    ({"site": "B", "fdg": "pos"}, "standard"),
]


def minimizer(p_best: float = 1.0, seed: int = 0) -> Minimizer:
    return Minimizer(SMALL_FACTORS, ARMS, p_best=p_best, seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_deterministic_minimization_by_hand(seed: int) -> None:
    # Patient 4 (site A, fdg pos) after HISTORY (counts among earlier patients):
    #   site A: standard 1 (#1), personalized 1 (#2); fdg pos: standard 2 (#1, #3), personalized 0
    #   -> standard:     site A 2 vs 1 -> range 1; fdg pos 3 vs 0 -> range 3; score 4
    #   -> personalized: site A 1 vs 2 -> range 1; fdg pos 2 vs 1 -> range 1; score 2
    decision = minimizer(seed=seed).assign({"site": "A", "fdg": "pos"}, HISTORY)
    assert dict(decision.scores) == {"standard": 4, "personalized": 2}
    assert decision.minimising_arms == ("personalized",)
    assert decision.arm == "personalized"
    assert not decision.overridden
    assert decision.patient_number == 4

    # Patient 5 (site B, fdg pos), patient 4 went to personalized:
    #   site B: standard 1 (#3), personalized 0; fdg pos: standard 2 (#1, #3), personalized 1 (#4)
    #   -> standard:     site B 2 vs 0 -> 2; fdg pos 3 vs 1 -> 2; score 4
    #   -> personalized: site B 1 vs 1 -> 0; fdg pos 2 vs 2 -> 0; score 0
    history = [*HISTORY, ({"site": "A", "fdg": "pos"}, "personalized")]
    decision = minimizer(seed=seed).assign({"site": "B", "fdg": "pos"}, history)
    assert dict(decision.scores) == {"standard": 4, "personalized": 0}
    assert decision.arm == "personalized"


def test_tie_is_broken_at_random() -> None:
    # Patient 5 (site B, fdg neg) after HISTORY + patient 4 -> personalized:
    #   site B: standard 1 (#3), personalized 0; fdg neg: standard 0, personalized 1 (#2)
    #   -> standard:     site B 2 vs 0 -> 2; fdg neg 1 vs 1 -> 0; score 2
    #   -> personalized: site B 1 vs 1 -> 0; fdg neg 0 vs 2 -> 2; score 2  (tie)
    history = [*HISTORY, ({"site": "A", "fdg": "pos"}, "personalized")]
    chosen: Counter[str] = Counter()
    for seed in range(2000):
        decision = minimizer(seed=seed).assign({"site": "B", "fdg": "neg"}, history)
        assert dict(decision.scores) == {"standard": 2, "personalized": 2}
        assert decision.minimising_arms == ARMS
        assert not decision.overridden
        chosen[decision.arm] += 1
    assert_uniform(chosen, ARMS)


def test_first_patient_scores_tie() -> None:
    # No one yet: either arm gives range 1 on site and 1 on fdg -> score 2 for both.
    decision = minimizer(p_best=0.8).assign({"site": "A", "fdg": "neg"}, [])
    assert dict(decision.scores) == {"standard": 2, "personalized": 2}
    assert decision.patient_number == 1
    assert not decision.overridden


def test_random_element_overrides_with_probability_one_minus_p_best() -> None:
    # Patient 4 of the hand-worked case: personalized minimises (score 2 vs 4).
    overridden = 0
    trials = 4000
    for seed in range(trials):
        decision = minimizer(p_best=0.8, seed=seed).assign({"site": "A", "fdg": "pos"}, HISTORY)
        assert decision.overridden == (decision.random_draw >= 0.8)
        assert decision.arm == ("standard" if decision.overridden else "personalized")
        overridden += decision.overridden
    # Expected 0.2 * 4000 = 800 overrides, 3200 not.
    assert chi_square([overridden, trials - overridden], [800, 3200]) < CHI2_CRITICAL_0_001[1]


def test_unequal_ratio_by_hand() -> None:
    # Ratio 2:1, one factor; one earlier "x" patient on standard. Next "x" patient:
    #   -> standard:     counts 2, 0 -> shares 2/2 = 1, 0/1 = 0 -> score 1
    #   -> personalized: counts 1, 1 -> shares 1/2 = 0.5, 1/1 = 1 -> score 0.5
    chooser = Minimizer({"f": ("x", "y")}, ARMS, ratio=(2, 1), p_best=1.0, seed=3)
    decision = chooser.assign({"f": "x"}, [({"f": "x"}, "standard")])
    assert dict(decision.scores) == {"standard": 1.0, "personalized": 0.5}
    assert decision.arm == "personalized"


def run_minimization(
    chooser: Minimizer, patients: list[dict[str, str]]
) -> list[tuple[dict[str, str], str]]:
    history: list[tuple[dict[str, str], str]] = []
    for levels in patients:
        history.append((levels, chooser.assign(levels, history).arm))
    return history


def random_patients(seed: int, count: int) -> list[dict[str, str]]:
    stream = RandomStream(derive_seed(seed, "test-patients"))
    return [
        {"site": SITES[stream.uniform_int(4)], "fdg": FDG[stream.uniform_int(2)]}
        for _ in range(count)
    ]


def test_same_seed_and_patients_give_the_same_decisions() -> None:
    patients = random_patients(1, 40)
    factors = {"site": SITES, "fdg": FDG}
    first = run_minimization(Minimizer(factors, ARMS, seed=42), patients)
    again = run_minimization(Minimizer(factors, ARMS, seed=42), patients)
    other = run_minimization(Minimizer(factors, ARMS, seed=43), patients)
    assert first == again
    assert first != other


def max_marginal_imbalance(history: list[tuple[dict[str, str], str]]) -> float:
    design = start01_design()
    allocations = [(design.stratum_of(levels), arm) for levels, arm in history]
    return max(group.imbalance for group in balance_report(allocations, ARMS).by_factor_level)


def test_minimization_keeps_marginal_imbalance_small() -> None:
    # 300 patients (the trial's size), 8 fixed seeds. Simple randomization (a fair coin from the
    # same kind of stream) serves as the contrast: its largest marginal imbalance is typically
    # around 15 for 6 levels of about 40-150 patients each.
    minimized, simple = [], []
    for seed in range(8):
        patients = random_patients(seed, 300)
        chooser = Minimizer({"site": SITES, "fdg": FDG}, ARMS, p_best=0.8, seed=seed)
        minimized.append(max_marginal_imbalance(run_minimization(chooser, patients)))
        coin = RandomStream(derive_seed(seed, "test-coin"))
        simple.append(max_marginal_imbalance([(p, ARMS[coin.uniform_int(2)]) for p in patients]))
    assert max(minimized) <= 6
    assert statistics.mean(minimized) <= 3.5
    assert statistics.mean(minimized) * 3 < statistics.mean(simple)


def test_deterministic_minimization_keeps_imbalance_tiny() -> None:
    for seed in range(3):
        chooser = Minimizer({"site": SITES, "fdg": FDG}, ARMS, p_best=1.0, seed=seed)
        assert max_marginal_imbalance(run_minimization(chooser, random_patients(seed, 300))) <= 2


def test_minimizer_repr_hides_the_seed() -> None:
    assert "987654321" not in repr(minimizer(seed=987654321))


@pytest.mark.parametrize(
    ("levels", "previous", "field"),
    [
        ({"site": "C", "fdg": "pos"}, [], "patient_levels.site"),
        ({"site": "A"}, [], "patient_levels"),
        ({"site": "A", "fdg": "pos"}, [({"site": "A", "fdg": "pos"}, "placebo")], "previous[0]"),
        (
            {"site": "A", "fdg": "pos"},
            [({"site": "A", "fdg": "maybe"}, "standard")],
            "previous[0].fdg",
        ),
        ({"site": "A", "fdg": "pos"}, [({"site": "A", "fdg": "pos"},)], "previous[0]"),
        ({"site": "A", "fdg": "pos"}, None, "previous"),
    ],
)
def test_assign_refuses_bad_input(levels: object, previous: object, field: str) -> None:
    raises_on(field, lambda: minimizer().assign(levels, previous))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"p_best": 0.4}, "p_best"),
        ({"p_best": 1.01}, "p_best"),
        ({"p_best": float("nan")}, "p_best"),
        ({"seed": -1}, "seed"),
        ({"ratio": (1, 1, 1)}, "ratio"),
    ],
)
def test_minimizer_refuses_bad_settings(kwargs: dict[str, object], field: str) -> None:
    settings_ = {"p_best": 0.8, "seed": 1, **kwargs}
    raises_on(field, lambda: Minimizer(SMALL_FACTORS, ARMS, **settings_))  # type: ignore[arg-type]


def test_minimizer_refuses_bad_factors_and_arms() -> None:
    raises_on("factors", lambda: Minimizer({}, ARMS, seed=1))
    raises_on("factors.site", lambda: Minimizer({"site": ("A", "A")}, ARMS, seed=1))
    raises_on("arms", lambda: Minimizer(SMALL_FACTORS, ("standard",), ratio=(1,), seed=1))
