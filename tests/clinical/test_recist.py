"""RECIST 1.1 (Eisenhauer, EJC 2009): expected responses worked out by hand in the comments."""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from startrt.clinical.recist import (
    TOO_SMALL,
    AssessmentResponse,
    Lesion,
    NonTargetStatus,
    Response,
    TargetValue,
    evaluate_series,
    non_target_response,
    overall_response,
    parse_series,
    propose_targets,
    target_response,
    validate_targets,
)
from startrt.validation import InvalidInputError

BASELINE_DATE = "2024-01-10"

CR, PR, SD, PD, NE = Response.CR, Response.PR, Response.SD, Response.PD, Response.NE
NON_CR_NON_PD = Response.NON_CR_NON_PD


def lesion(
    lesion_id: str,
    organ: str,
    diameter_mm: float | None,
    *,
    node: bool = False,
    target: bool = True,
) -> Lesion:
    return Lesion(lesion_id, organ, node, diameter_mm, target)


def lesion_json(
    lesion_id: str, organ: str, diameter_mm: float | None, *, node: bool = False, target: bool
) -> dict[str, Any]:
    return {
        "id": lesion_id,
        "organ": organ,
        "lymph_node": node,
        "diameter_mm": diameter_mm,
        "target": target,
    }


# Baseline used by most series: L1 liver 30 + L2 lung 20 = 50 mm, B1 bone non-target.
STANDARD_LESIONS = [
    lesion_json("L1", "liver", 30, target=True),
    lesion_json("L2", "lung", 20, target=True),
    lesion_json("B1", "bone", None, target=False),
]


def visit(
    date: str,
    targets: dict[str, Any],
    non_target: dict[str, str] | None = None,
    *,
    new_lesions: bool = False,
) -> dict[str, Any]:
    return {
        "date": date,
        "target_mm": targets,
        "non_target": {"B1": "present"} if non_target is None else non_target,
        "new_lesions": new_lesions,
    }


def series_json(visits: list[dict[str, Any]], lesions: list[dict[str, Any]] | None = None) -> Any:
    return {
        "baseline": {
            "date": BASELINE_DATE,
            "lesions": STANDARD_LESIONS if lesions is None else lesions,
        },
        "follow_up": visits,
    }


def evaluate(visits: list[dict[str, Any]], lesions: list[dict[str, Any]] | None = None) -> Any:
    return evaluate_series(parse_series(series_json(visits, lesions)))


# --- target lesion response ------------------------------------------------------------------

LIVER_30_LUNG_20 = [lesion("L1", "liver", 30), lesion("L2", "lung", 20)]  # baseline sum 50 mm


def targets_of(measurements: dict[str, TargetValue], nadir_mm: float = 50.0) -> Response:
    return target_response(LIVER_30_LUNG_20, measurements, nadir_mm=nadir_mm)


def test_exactly_30_percent_decrease_is_pr() -> None:
    # 21 + 14 = 35 = 50 x 0.70: exactly -30 % -> PR.
    assert targets_of({"L1": 21, "L2": 14}) == Response.PR


def test_just_under_30_percent_decrease_is_sd() -> None:
    # 21.1 + 14 = 35.1: -29.8 % -> SD.
    assert targets_of({"L1": 21.1, "L2": 14}) == Response.SD


@pytest.mark.parametrize(
    ("baseline_mm", "follow_up_mm", "expected"),
    [
        (20, 24, Response.SD),  # +4 mm = +20 %, but < 5 mm absolute -> SD
        (30, 36, Response.PD),  # +6 mm = +20 % and >= 5 mm -> PD
        (30, 35.9, Response.SD),  # +5.9 mm but +19.7 % -> SD
        (25, 30, Response.PD),  # +5 mm = +20 % exactly, both limits reached -> PD
        (16, 20, Response.SD),  # +25 % but +4 mm -> SD
        (16, 21, Response.PD),  # +31 % and +5 mm -> PD
    ],
)
def test_progression_needs_20_percent_and_5_mm_over_nadir(
    baseline_mm: float, follow_up_mm: float, expected: Response
) -> None:
    # Single target, nadir = baseline sum.
    targets = [lesion("L1", "liver", baseline_mm)]
    result = target_response(targets, {"L1": follow_up_mm}, nadir_mm=baseline_mm)
    assert result == expected


def test_thresholds_compare_measurements_as_written_not_binary_floats() -> None:
    # 10.1 -> 7.07 is exactly -30 % (7.07 = 0.7 x 10.1) -> PR; 25.1 -> 30.12 is exactly +20 %
    # and +5.02 mm -> PD. In binary floating point both land just short of the threshold.
    assert target_response([lesion("L1", "liver", 10.1)], {"L1": 7.07}, nadir_mm=10.1) == PR
    assert target_response([lesion("L1", "liver", 25.1)], {"L1": 30.12}, nadir_mm=25.1) == PD


def test_nodes_below_10_mm_with_other_targets_gone_is_cr_although_sum_above_0() -> None:
    targets = [lesion("L1", "liver", 30), lesion("N1", "mediastinum", 18, node=True)]
    # L1 0 mm, N1 9 mm (< 10): CR; the sum is 9 mm, not 0.
    assert target_response(targets, {"L1": 0, "N1": 9}, nadir_mm=48) == Response.CR
    # N1 10 mm is pathological: not CR; sum 10 vs 48 = -79 % -> PR.
    assert target_response(targets, {"L1": 0, "N1": 10}, nadir_mm=48) == Response.PR


def test_too_small_counts_5_mm() -> None:
    # Nadir 10: too_small (5) + 10 = 15 = +5 mm, +50 % -> PD. Counted as 0 it would be
    # 10 mm, i.e. no increase.
    assert targets_of({"L1": TOO_SMALL, "L2": 10}, nadir_mm=10) == Response.PD
    # A non-nodal target too small to measure is present: 5 + 0 = 5 mm, -90 % -> PR, not CR.
    assert targets_of({"L1": TOO_SMALL, "L2": 0}) == Response.PR


def test_target_not_evaluated_is_ne_unless_the_others_show_progression() -> None:
    assert targets_of({"L1": None, "L2": 20}, nadir_mm=35) == Response.NE
    # Nadir 20: L2 alone 30 mm is already +10 mm, +50 % -> PD whatever L1 measures.
    assert targets_of({"L1": None, "L2": 30}, nadir_mm=20) == Response.PD


def test_a_target_reappearing_after_overall_cr_is_pd() -> None:
    targets = [lesion("L1", "liver", 30), lesion("N1", "mediastinum", 18, node=True)]
    # L1 back at 3 mm, N1 5 mm: sum 8 vs nadir 5 is only +3 mm, but after CR -> PD.
    after_cr = {"L1": 3, "N1": 5}
    assert target_response(targets, after_cr, nadir_mm=5) == Response.PR
    assert (
        target_response(targets, after_cr, nadir_mm=5, after_complete_response=True) == Response.PD
    )
    # A target node back to >= 10 mm after CR is PD; 9 mm is not.
    assert (
        target_response(targets, {"L1": 0, "N1": 10}, nadir_mm=9, after_complete_response=True)
        == Response.PD
    )
    assert (
        target_response(targets, {"L1": 0, "N1": 9}, nadir_mm=9, after_complete_response=True)
        == Response.CR
    )


@pytest.mark.parametrize(
    ("measurements", "nadir_mm", "field"),
    [
        ({"L1": 20}, 50.0, "measurements_mm.L2"),  # L2 missing
        ({"L1": 20, "L2": 10, "L9": 5}, 50.0, "measurements_mm.L9"),
        ({"L1": -1, "L2": 10}, 50.0, "measurements_mm.L1"),
        ({"L1": "gone", "L2": 10}, 50.0, "measurements_mm.L1"),
        ({"L1": 20, "L2": 10}, 60.0, "nadir_mm"),  # nadir above baseline sum 50
    ],
)
def test_target_response_refuses_bad_input(
    measurements: dict[str, Any], nadir_mm: float, field: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        target_response(LIVER_30_LUNG_20, measurements, nadir_mm=nadir_mm)
    assert error.value.field == field


# --- non-target response ---------------------------------------------------------------------

A = NonTargetStatus.ABSENT
P = NonTargetStatus.PRESENT
U = NonTargetStatus.UNEQUIVOCAL_PROGRESSION
N = NonTargetStatus.NOT_EVALUATED


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((A, A), Response.CR),
        ((A, P), Response.NON_CR_NON_PD),
        ((P, U), Response.PD),
        ((N, U), Response.PD),
        ((A, N), Response.NE),
        ((P, N), Response.NE),
    ],
)
def test_non_target_response(statuses: tuple[NonTargetStatus, ...], expected: Response) -> None:
    mapping = {f"B{index}": status for index, status in enumerate(statuses)}
    assert non_target_response(mapping) == expected


def test_non_target_present_again_after_overall_cr_is_pd() -> None:
    assert non_target_response({"B1": P}, after_complete_response=True) == Response.PD
    assert non_target_response({"B1": A}, after_complete_response=True) == Response.CR


def test_non_target_status_is_validated() -> None:
    with pytest.raises(InvalidInputError) as error:
        non_target_response({"B1": "gone"})  # type: ignore[dict-item]
    assert error.value.field == "statuses.B1"


# --- overall response, RECIST 1.1 tables 1 and 2 ---------------------------------------------


@pytest.mark.parametrize(
    ("target", "non_target", "new_lesions", "expected"),
    [
        # Table 1 (target lesions at baseline), row by row.
        (CR, CR, False, CR),
        (CR, NON_CR_NON_PD, False, PR),
        (CR, NE, False, PR),
        (PR, NON_CR_NON_PD, False, PR),
        (PR, NE, False, PR),
        (PR, CR, False, PR),
        (SD, NON_CR_NON_PD, False, SD),
        (SD, NE, False, SD),
        (SD, CR, False, SD),
        (NE, NON_CR_NON_PD, False, NE),
        (NE, CR, False, NE),
        (NE, NE, False, NE),
        (PD, CR, False, PD),
        (PD, NE, False, PD),
        (CR, PD, False, PD),
        (NE, PD, False, PD),
        (CR, CR, True, PD),
        (PR, NON_CR_NON_PD, True, PD),
        # No non-target lesions at baseline.
        (CR, None, False, CR),
        (SD, None, False, SD),
        (CR, None, True, PD),
        # Table 2 (non-target lesions only).
        (None, CR, False, CR),
        (None, NON_CR_NON_PD, False, NON_CR_NON_PD),
        (None, NE, False, NE),
        (None, PD, False, PD),
        (None, CR, True, PD),
    ],
)
def test_overall_response_tables(
    target: Response | None, non_target: Response | None, new_lesions: bool, expected: Response
) -> None:
    assert overall_response(target, non_target, new_lesions=new_lesions) == expected


@pytest.mark.parametrize(
    ("target", "non_target", "field"),
    [(NON_CR_NON_PD, CR, "target"), (CR, SD, "non_target"), (None, None, "target")],
)
def test_overall_response_refuses_impossible_inputs(
    target: Response | None, non_target: Response | None, field: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        overall_response(target, non_target, new_lesions=False)
    assert error.value.field == field


# --- series and best overall response --------------------------------------------------------


def test_example_from_the_brief() -> None:
    data = {
        "baseline": {
            "date": "2024-01-10",
            "lesions": [
                lesion_json("L1", "liver", 32, target=True),
                lesion_json("N1", "mediastinum", 18, node=True, target=True),
                lesion_json("B1", "bone", None, target=False),
            ],
        },
        "follow_up": [visit("2024-04-10", {"L1": 20, "N1": 9}, {"B1": "present"})],
    }
    result = evaluate_series(parse_series(data))
    # Sum 32 + 18 = 50 -> 20 + 9 = 29: -42 % -> PR (L1 not 0, so not CR); B1 present.
    assert result.assessments == (
        AssessmentResponse(
            date=dt.date(2024, 4, 10),
            sum_mm=29.0,
            nadir_mm=50.0,
            change_from_baseline_pct=-42.0,
            change_from_nadir_pct=-42.0,
            target=PR,
            non_target=NON_CR_NON_PD,
            new_lesions=False,
            overall=PR,
        ),
    )
    assert result.best_overall == PR


def test_progression_is_measured_from_the_nadir_after_a_response() -> None:
    result = evaluate(
        [
            visit("2024-03-06", {"L1": 18, "L2": 12}),  # 30 mm: -40 % -> PR, new nadir 30
            visit("2024-05-01", {"L1": 22, "L2": 14}),  # 36 mm: +6 mm, +20 % over nadir
        ]
    )
    second = result.assessments[1]
    # Still 28 % below baseline (50), yet PD against the nadir.
    assert (second.sum_mm, second.nadir_mm) == (36.0, 30.0)
    assert second.change_from_baseline_pct == pytest.approx(-28.0)
    assert second.change_from_nadir_pct == pytest.approx(20.0)
    assert (second.target, second.overall) == (PD, PD)
    assert result.best_overall == PR


def test_incomplete_sum_does_not_become_the_nadir() -> None:
    result = evaluate(
        [
            visit("2024-03-06", {"L1": None, "L2": 5}),  # NE; partial 5 mm is not a nadir
            visit("2024-05-01", {"L1": 20, "L2": 10}),  # 30 mm vs nadir 50: -40 % -> PR
        ]
    )
    assert [a.overall for a in result.assessments] == [NE, PR]
    assert result.assessments[0].sum_mm is None
    assert result.assessments[1].nadir_mm == 50.0


def test_partial_sum_proving_pd_does_not_become_the_nadir() -> None:
    lesions = [
        lesion_json("L1", "liver", 30, target=True),
        lesion_json("N1", "mediastinum", 18, node=True, target=True),
        lesion_json("N2", "axilla", 16, node=True, target=True),
    ]
    result = evaluate(
        [
            visit("2024-03-06", {"L1": 0, "N1": 9, "N2": 9}, {}),  # CR, sum 18 = nadir
            visit("2024-05-01", {"L1": 2, "N1": 9, "N2": None}, {}),  # L1 back: PD, partial 11
            visit("2024-07-01", {"L1": 2, "N1": 9, "N2": 9}, {}),
        ],
        lesions,
    )
    assert [a.overall for a in result.assessments[:2]] == [CR, PD]
    assert result.assessments[1].sum_mm == 11.0
    # The incomplete 11 mm is not a sum of all targets, so the nadir stays 18 mm.
    assert result.assessments[2].nadir_mm == 18.0


def test_cr_with_residual_nodes_then_reappearance_is_pd() -> None:
    lesions = [
        lesion_json("L1", "liver", 30, target=True),
        lesion_json("N1", "mediastinum", 18, node=True, target=True),
        lesion_json("B1", "bone", None, target=False),
    ]
    result = evaluate(
        [
            visit("2024-03-06", {"L1": 0, "N1": 9}, {"B1": "absent"}),  # CR, sum 9
            visit("2024-05-01", {"L1": 3, "N1": 9}, {"B1": "absent"}),  # L1 back: +3 mm only
        ],
        lesions,
    )
    assert [a.overall for a in result.assessments] == [CR, PD]
    assert result.assessments[0].sum_mm == 9.0
    assert result.best_overall == CR


NODE_20_MM = [lesion_json("N1", "mediastinum", 20, node=True, target=True)]


def test_target_node_below_10_mm_has_not_reappeared() -> None:
    # EORTC RECIST FAQ "Abnormal lymph node": a target node that fell below 10 mm has only
    # reappeared when it is >= 10 mm again; nodes < 10 mm are normal (Eisenhauer 2009, 4.3.1).
    # 20 -> 4 mm: CR (node < 10 mm), sum 4 = nadir. 4 -> 9 mm: +5 mm and +125 % over the
    # nadir, which the sum rule alone would call PD, but the node is still normal: CR.
    visits = [visit("2024-03-06", {"N1": 4}, {}), visit("2024-05-01", {"N1": 9}, {})]
    result = evaluate(visits, NODE_20_MM)
    assert [(a.sum_mm, a.nadir_mm) for a in result.assessments] == [(4.0, 20.0), (9.0, 4.0)]
    assert [a.target for a in result.assessments] == [CR, CR]
    assert result.best_overall == CR


def test_target_node_back_to_10_mm_after_cr_is_pd() -> None:
    # Same FAQ: >= 10 mm short axis is "reappeared", and after an overall CR that is PD.
    visits = [visit("2024-03-06", {"N1": 4}, {}), visit("2024-05-01", {"N1": 10}, {})]
    result = evaluate(visits, NODE_20_MM)
    assert [a.overall for a in result.assessments] == [CR, PD]


def test_normal_nodes_growing_while_every_target_meets_cr_is_cr() -> None:
    targets = [lesion("L1", "liver", 30), lesion("N1", "mediastinum", 18, node=True)]
    # L1 0 mm, N1 4 -> 9 mm: every target meets CR; sum 9 vs nadir 4 (+5 mm, +125 %) is no PD
    # with or without an overall CR before.
    for after_cr in (False, True):
        response = target_response(
            targets, {"L1": 0, "N1": 9}, nadir_mm=4, after_complete_response=after_cr
        )
        assert response == CR


def test_non_target_lesion_reappearing_after_cr_is_pd() -> None:
    result = evaluate(
        [
            visit("2024-03-06", {"L1": 0, "L2": 0}, {"B1": "absent"}),  # CR
            visit("2024-04-03", {"L1": None, "L2": 0}, {"B1": "absent"}),  # NE
            visit("2024-05-01", {"L1": 0, "L2": 0}, {"B1": "present"}),  # B1 back after CR
        ]
    )
    assert [a.overall for a in result.assessments] == [CR, NE, PD]


def test_new_lesion_is_pd_and_later_responses_do_not_count() -> None:
    result = evaluate(
        [
            visit("2024-03-06", {"L1": 30, "L2": 20}, new_lesions=True),  # PD by new lesion
            visit("2024-05-01", {"L1": 10, "L2": 10}),  # 20 mm, -60 %: PR after PD
        ]
    )
    assert [a.overall for a in result.assessments] == [PD, PR]
    assert result.best_overall == PD


# 2024-01-10 + 41 days = 2024-02-20; + 42 days = 2024-02-21 (Jan 10 -> Jan 31 is 21 days).
UNCHANGED = {"L1": 30, "L2": 20}
GROWN = {"L1": 40, "L2": 20}  # 60 mm: +10 mm, +20 % -> PD


@pytest.mark.parametrize(
    ("visits", "expected"),
    [
        ([visit("2024-02-21", UNCHANGED)], SD),  # SD at exactly 42 days counts
        ([visit("2024-02-20", UNCHANGED)], NE),  # SD at 41 days, nothing after -> NE
        ([visit("2024-02-20", UNCHANGED), visit("2024-04-10", GROWN)], PD),  # early SD, PD
        ([visit("2024-02-20", UNCHANGED), visit("2024-04-10", UNCHANGED)], SD),
        ([visit("2024-02-20", UNCHANGED), visit("2024-04-10", {"L1": None, "L2": 20})], NE),
        ([visit("2024-02-20", {"L1": 21, "L2": 14})], PR),  # PR needs no minimum interval
        ([visit("2024-02-20", GROWN)], PD),
        ([], NE),
    ],
)
def test_best_overall_response(visits: list[dict[str, Any]], expected: Response) -> None:
    assert evaluate(visits).best_overall == expected


def test_sd_interval_is_a_protocol_setting() -> None:
    data = parse_series(series_json([visit("2024-02-20", UNCHANGED)]))  # day 41
    assert evaluate_series(data, sd_min_interval_days=41).best_overall == SD
    assert evaluate_series(data, sd_min_interval_days=56).best_overall == NE
    with pytest.raises(InvalidInputError) as error:
        evaluate_series(data, sd_min_interval_days=-1)
    assert error.value.field == "sd_min_interval_days"


def test_series_without_target_lesions_uses_table_2() -> None:
    lesions = [lesion_json("B1", "bone", None, target=False)]
    result = evaluate([visit("2024-03-06", {})], lesions)  # day 56, B1 present
    only = result.assessments[0]
    assert (only.target, only.sum_mm, only.non_target) == (None, None, NON_CR_NON_PD)
    assert result.best_overall == NON_CR_NON_PD


def test_series_without_non_target_lesions() -> None:
    lesions = [lesion_json("L1", "liver", 30, target=True)]
    result = evaluate([visit("2024-03-06", {"L1": 0}, {})], lesions)
    assert (result.assessments[0].non_target, result.best_overall) == (None, CR)


# --- target selection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "accepted"),
    [
        (lesion("X", "liver", 10), True),  # 10 mm: measurable
        (lesion("X", "liver", 9.9), False),
        (lesion("X", "liver", None), False),
        (lesion("X", "mediastinum", 15, node=True), True),  # node short axis 15 mm
        (lesion("X", "mediastinum", 14.9, node=True), False),  # pathological, non-measurable
    ],
)
def test_target_must_be_measurable(candidate: Lesion, accepted: bool) -> None:
    if accepted:
        validate_targets([candidate])
        return
    with pytest.raises(InvalidInputError) as error:
        validate_targets([candidate])
    assert error.value.field == "lesions[0].diameter_mm"


def test_non_target_lesions_need_not_be_measurable() -> None:
    validate_targets(
        [lesion("X", "bone", None, target=False), lesion("Y", "node", 12, node=True, target=False)]
    )


def test_at_most_five_targets() -> None:
    organs = ["liver", "lung", "bone", "adrenal", "spleen", "kidney"]
    lesions = [lesion(f"L{i}", organ, 20) for i, organ in enumerate(organs)]
    validate_targets(lesions[:5])
    with pytest.raises(InvalidInputError) as error:
        validate_targets(lesions)
    assert error.value.field == "lesions"


def test_at_most_two_targets_per_organ_and_nodes_are_one_organ() -> None:
    with pytest.raises(InvalidInputError) as error:
        validate_targets(
            [lesion("L1", "liver", 20), lesion("L2", "Liver", 20), lesion("L3", "liver ", 20)]
        )
    assert error.value.field == "lesions[2].organ"
    nodes = [
        lesion("N1", "mediastinum", 20, node=True),
        lesion("N2", "axilla", 20, node=True),
        lesion("N3", "groin", 20, node=True),
    ]
    with pytest.raises(InvalidInputError) as error:
        validate_targets(nodes)
    assert error.value.field == "lesions[2].organ"


def test_duplicate_lesion_ids_are_refused() -> None:
    with pytest.raises(InvalidInputError) as error:
        validate_targets([lesion("L1", "liver", 20), lesion("L1", "lung", 20)])
    assert error.value.field == "lesions[1].id"


def test_propose_targets_picks_largest_within_limits() -> None:
    lesions = [
        lesion("liver50", "liver", 50, target=False),
        lesion("liver40", "liver", 40, target=False),
        lesion("liver30", "liver", 30, target=False),  # third in liver: skipped
        lesion("lung25", "lung", 25, target=False),
        lesion("node16", "hilum", 16, node=True, target=False),  # would be a third node
        lesion("node14", "hilum", 14, node=True, target=False),  # not measurable
        lesion("node20", "axilla", 20, node=True, target=False),
        lesion("node18", "mediastinum", 18, node=True, target=False),
        lesion("bone", "bone", None, target=False),
        lesion("brain9", "brain", 9, target=False),  # not measurable
    ]
    chosen = propose_targets(lesions)
    assert [item.id for item in chosen] == ["liver50", "liver40", "lung25", "node20", "node18"]
    assert all(item.target for item in chosen)


ORGANS = st.sampled_from(["liver", "lung", "bone", "adrenal"])
LESIONS = st.lists(
    st.builds(
        Lesion,
        id=st.just(""),
        organ=ORGANS,
        lymph_node=st.booleans(),
        diameter_mm=st.none() | st.floats(min_value=0, max_value=100),
        target=st.booleans(),
    ),
    max_size=12,
)


@given(LESIONS)
def test_proposed_targets_are_valid_and_leave_out_only_blocked_lesions(
    candidates: list[Lesion],
) -> None:
    lesions = [replace(candidate, id=f"X{i}") for i, candidate in enumerate(candidates)]
    chosen = propose_targets(lesions)
    validate_targets(chosen)

    def organ(item: Lesion) -> str:
        return "nodes" if item.lymph_node else item.organ

    def measurable(item: Lesion) -> bool:
        limit = 15 if item.lymph_node else 10
        return item.diameter_mm is not None and item.diameter_mm >= limit

    per_organ = Counter(organ(item) for item in chosen)
    chosen_ids = {item.id for item in chosen}
    for item in lesions:
        if measurable(item) and item.id not in chosen_ids:
            assert len(chosen) == 5 or per_organ[organ(item)] == 2


# --- parsing ---------------------------------------------------------------------------------


def broken(path: list[str | int], value: Any) -> Any:
    data = series_json(
        [
            visit("2024-03-06", {"L1": 20, "L2": 10}),
            visit("2024-05-01", {"L1": 20, "L2": 10}),
        ]
    )
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["follow_up", 1, "target_mm", "L3"], 12, "follow_up[1].target_mm.L3"),
        (["follow_up", 0, "target_mm", "L2"], KeyError, "follow_up[0].target_mm.L2"),
        (["follow_up", 1, "target_mm", "L1"], "big", "follow_up[1].target_mm.L1"),
        (["follow_up", 1, "target_mm", "L1"], -2, "follow_up[1].target_mm.L1"),
        (["follow_up", 1, "target_mm", "L1"], True, "follow_up[1].target_mm.L1"),
        (["follow_up", 0, "non_target", "B1"], "gone", "follow_up[0].non_target.B1"),
        (["follow_up", 0, "non_target", "B1"], KeyError, "follow_up[0].non_target.B1"),
        (["follow_up", 0, "non_target", "L1"], "absent", "follow_up[0].non_target.L1"),
        (["follow_up", 0, "new_lesions"], "no", "follow_up[0].new_lesions"),
        (["follow_up", 0, "new_lesions"], KeyError, "follow_up[0].new_lesions"),
        (["follow_up", 0, "date"], "06/03/2024", "follow_up[0].date"),
        (["follow_up", 1, "date"], "2024-03-06", "follow_up[1].date"),  # not after previous
        (["follow_up", 0, "date"], "2024-01-10", "follow_up[0].date"),  # same day as baseline
        (["follow_up", 0, "extra"], 1, "follow_up[0].extra"),
        (["follow_up"], {}, "follow_up"),
        (["baseline", "date"], 20240110, "baseline.date"),
        (["baseline", "lesions", 0, "size"], 30, "baseline.lesions[0].size"),
        (["baseline", "lesions", 1, "diameter_mm"], 9, "baseline.lesions[1].diameter_mm"),
        (["baseline", "lesions", 1, "diameter_mm"], "20", "baseline.lesions[1].diameter_mm"),
        (["baseline", "lesions", 1, "diameter_mm"], 900, "baseline.lesions[1].diameter_mm"),
        (["baseline", "lesions", 1, "id"], "L1", "baseline.lesions[1].id"),
        (["baseline", "lesions", 1, "id"], "", "baseline.lesions[1].id"),
        (["baseline", "lesions", 1, "lymph_node"], 0, "baseline.lesions[1].lymph_node"),
        (["baseline", "lesions", 1, "organ"], "liver", None),  # 2 in liver: allowed
        (["baseline", "lesions"], [], "baseline.lesions"),
        (["baseline"], "x", "baseline"),
    ],
)
def test_parse_series_names_the_offending_path(
    path: list[str | int], value: Any, field: str | None
) -> None:
    data = broken(path, value)
    if field is None:
        parse_series(data)
        return
    with pytest.raises(InvalidInputError) as error:
        parse_series(data)
    assert error.value.field == field


def test_parse_series_refuses_non_object() -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_series([])  # type: ignore[arg-type]
    assert error.value.field == "data"


def test_parse_series_reads_too_small_and_not_evaluated() -> None:
    series = parse_series(series_json([visit("2024-03-06", {"L1": "too_small", "L2": None})]))
    assert dict(series.follow_up[0].target_mm) == {"L1": TOO_SMALL, "L2": None}
    assert dict(series.follow_up[0].non_target) == {"B1": NonTargetStatus.PRESENT}
