"""PFS hazard ratio by subgroup: counts by hand, hazard ratios and the interaction test against
a second implementation (statsmodels' PHReg, lifelines' CoxPHFitter), refusals, the forest plot
and the report wiring."""

from __future__ import annotations

import itertools
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from matplotlib.text import Text
from statsmodels.duration.hazard_regression import PHReg

from startrt.analysis import subgroups
from startrt.analysis.report import build_report
from startrt.analysis.subgroups import (
    OVERALL,
    SUBGROUPS,
    Subgroup,
    forest_figure,
    forest_plot,
    interaction_test,
    subgroup_table,
)
from startrt.analysis.trial_protocol import protocol_of
from startrt.protocol.definition import Protocol
from startrt.validation import InvalidInputError
from support.datasets import report_dataset

Z_95 = 1.959963984540054

# (arm, fdg, site, pfs_days, pfs_event): 12 patients, three per arm and FDG-PET level.
PATIENTS = (
    ("standard", "negative", "Lund", 10, True),
    ("standard", "negative", "Lund", 20, True),
    ("standard", "negative", "Uppsala", 27, True),
    ("personalized", "negative", "Lund", 15, True),
    ("personalized", "negative", "Uppsala", 24, True),
    ("personalized", "negative", "Uppsala", 28, False),
    ("standard", "positive", "Lund", 5, True),
    ("standard", "positive", "Uppsala", 12, True),
    ("standard", "positive", "Uppsala", 18, True),
    ("personalized", "positive", "Lund", 8, True),
    ("personalized", "positive", "Lund", 22, False),
    ("personalized", "positive", "Uppsala", 35, False),
)


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return protocol_of("START-01 v1.0").protocol


def hand_patients() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "trial_id": f"P{index:02d}",
                "arm": arm,
                "stratum": f"site={site};fdg={fdg}",
                "site": site,
                "pfs_days": days,
                "pfs_event": event,
                "who_grade": None,  # no grade: the WHO grade subgroup has no level
            }
            for index, (arm, fdg, site, days, event) in enumerate(PATIENTS, start=1)
        ]
    )


def row(table: pd.DataFrame, subgroup: str, level: str) -> pd.Series:
    chosen = table[(table["subgroup"] == subgroup) & (table["level"] == level)]
    assert len(chosen) == 1, (subgroup, level)
    return chosen.iloc[0]


def statsmodels_hr(frame: pd.DataFrame) -> tuple[float, float, float]:
    fit = PHReg(
        frame["pfs_days"].to_numpy(float),
        (frame["arm"] == "personalized").to_numpy(float)[:, None],
        status=frame["pfs_event"].to_numpy(float),
        ties="efron",
    ).fit()
    b, se = float(fit.params[0]), float(fit.bse[0])
    return math.exp(b), math.exp(b - Z_95 * se), math.exp(b + Z_95 * se)


def test_counts_per_arm_and_level_by_hand(protocol: Protocol) -> None:
    table = subgroup_table(hand_patients(), protocol)
    counted = {
        # (subgroup, level): personalized patients, events; standard patients, events
        (OVERALL, OVERALL): (6, 3, 6, 6),
        ("FDG-PET status", "FDG-PET negative"): (3, 2, 3, 3),
        ("FDG-PET status", "FDG-PET positive"): (3, 1, 3, 3),
        ("Site", "Lund"): (3, 2, 3, 3),
        ("Site", "Uppsala"): (3, 1, 3, 3),
        ("Randomization stratum", "Lund, FDG-PET negative"): (1, 1, 2, 2),
        ("Randomization stratum", "Lund, FDG-PET positive"): (2, 1, 1, 1),
        ("Randomization stratum", "Uppsala, FDG-PET negative"): (2, 1, 1, 1),
        ("Randomization stratum", "Uppsala, FDG-PET positive"): (1, 0, 2, 2),
    }
    for (subgroup, level), expected in counted.items():
        found = row(table, subgroup, level)
        assert tuple(found[list(subgroups.COLUMNS[2:6])]) == expected, (subgroup, level)
    # levels without patients (Gothenburg, Stockholm) are not shown; the order is the protocol's
    assert list(table["level"]) == [OVERALL, *(level for _, level in counted if level != OVERALL)]


def test_hazard_ratios_agree_with_statsmodels(protocol: Protocol) -> None:
    patients = hand_patients()
    table = subgroup_table(patients, protocol)
    fdg = patients["stratum"].str.endswith("negative")
    for subgroup, level, members in (
        (OVERALL, OVERALL, patients),
        (
            "Randomization stratum",
            "Uppsala, FDG-PET negative",
            patients[fdg & (patients.site == "Uppsala")],
        ),
        ("FDG-PET status", "FDG-PET negative", patients[fdg]),
        ("FDG-PET status", "FDG-PET positive", patients[~fdg]),
        ("Site", "Lund", patients[patients["site"] == "Lund"]),
        ("Site", "Uppsala", patients[patients["site"] == "Uppsala"]),
        (
            "Randomization stratum",
            "Lund, FDG-PET negative",
            patients[fdg & (patients.site == "Lund")],
        ),
    ):
        found = row(table, subgroup, level)
        expected = statsmodels_hr(members)
        assert (found["hazard_ratio"], found["lower"], found["upper"]) == pytest.approx(
            expected, rel=1e-6
        ), level


def test_a_level_without_a_finite_estimate_says_why(protocol: Protocol) -> None:
    # Lund, FDG-PET positive: the personalized event on day 8 comes after the only standard
    # patient's (day 5): the partial likelihood rises without bound as HR -> 0.
    # Uppsala, FDG-PET positive: no personalized event.
    table = subgroup_table(hand_patients(), protocol)
    for level in ("Lund, FDG-PET positive", "Uppsala, FDG-PET positive"):
        found = row(table, "Randomization stratum", level)
        assert pd.isna(found["hazard_ratio"])
        assert "not estimable" in found["note"]
    # the interaction is tested over the two levels with an estimate (1 df), the note says so
    stratum = table[table["subgroup"] == "Randomization stratum"]
    assert stratum["interaction_p"].notna().all()
    assert all(
        "interaction tested without Lund, FDG-PET positive, Uppsala, FDG-PET positive" in note
        for note in stratum["note"]
    )
    chosen = hand_patients()["stratum"].str.endswith("negative")
    members = hand_patients()[chosen]
    test = interaction_test(
        members["pfs_days"], members["pfs_event"], members["arm"] == "personalized", members["site"]
    )
    assert test.df == 1
    assert stratum["interaction_p"].iloc[0] == pytest.approx(test.p_value)


def test_interaction_not_tested_with_one_estimable_level(protocol: Protocol) -> None:
    patients = hand_patients()
    patients = patients[~patients["stratum"].isin(["site=Uppsala;fdg=negative"])]
    stratum = subgroup_table(patients, protocol)
    stratum = stratum[stratum["subgroup"] == "Randomization stratum"]
    assert stratum["interaction_p"].isna().all()
    assert all("fewer than two levels" in note for note in stratum["note"])


def test_an_arm_without_patients_gives_no_hazard_ratio(protocol: Protocol) -> None:
    patients = hand_patients()
    patients = patients[~((patients["site"] == "Uppsala") & (patients["arm"] == "standard"))]
    found = row(subgroup_table(patients, protocol), "Site", "Uppsala")
    assert (found["patients_standard"], found["events_standard"]) == (0, 0)
    assert pd.isna(found["hazard_ratio"])
    assert "an arm has no patients" in found["note"]


def lifelines_loglik(frame: pd.DataFrame, columns: list[str]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = CoxPHFitter().fit(
            frame[[*columns, "level", "time", "event"]], "time", "event", strata=["level"]
        )
    return float(fit.log_likelihood_)


@pytest.mark.parametrize("seed", [3, 4])
def test_interaction_test_agrees_with_lifelines(seed: int) -> None:
    """Three levels, the treatment effect different in one: the likelihood-ratio statistic
    against lifelines' partial log-likelihoods of the two models stratified by level (2 df)."""
    rng = np.random.default_rng(seed)
    n = 240
    arm = rng.integers(0, 2, n)
    level = rng.integers(0, 3, n)
    hazard = np.exp(np.where(level == 2, 0.4, -0.5) * arm + 0.2 * level)
    time = np.ceil(rng.exponential(100.0 / hazard))  # whole days: ties
    event = time < 150
    time = np.minimum(time, 150.0)
    frame = pd.DataFrame({"time": time, "event": event, "arm": arm, "level": level})
    for k in (1, 2):
        frame[f"arm_l{k}"] = frame["arm"] * (level == k)
    reduced = lifelines_loglik(frame, ["arm"])
    full = lifelines_loglik(frame, ["arm", "arm_l1", "arm_l2"])
    test = interaction_test(time, event, arm == 1, np.array(["a", "b", "c"])[level])
    assert test.df == 2
    assert test.chi2 == pytest.approx(2.0 * (full - reduced), rel=1e-5)
    # chi-square on 2 df: p = exp(-chi2 / 2)
    assert test.p_value == pytest.approx(math.exp(-test.chi2 / 2.0), rel=1e-9)


def test_interaction_full_model_is_the_levels_own_fits() -> None:
    """Stratified by level, the model with arm x level fits each level's own hazard ratio:
    its log-likelihood is the sum of the levels' (statsmodels, fitted level by level)."""
    patients = hand_patients()
    members = patients[patients["stratum"].str.endswith("negative")]
    own = sum(
        PHReg(
            rows["pfs_days"].to_numpy(float),
            (rows["arm"] == "personalized").to_numpy(float)[:, None],
            status=rows["pfs_event"].to_numpy(float),
            ties="efron",
        )
        .fit()
        .llf
        for _, rows in members.groupby("site")
    )
    common = PHReg(
        members["pfs_days"].to_numpy(float),
        (members["arm"] == "personalized").to_numpy(float)[:, None],
        status=members["pfs_event"].to_numpy(float),
        strata=members["site"].to_numpy(),
        ties="efron",
    ).fit()
    test = interaction_test(
        members["pfs_days"], members["pfs_event"], members["arm"] == "personalized", members["site"]
    )
    assert test.chi2 == pytest.approx(2.0 * (own - common.llf), rel=1e-6)


def test_interaction_of_a_single_level_is_not_tested() -> None:
    test = interaction_test([1.0, 2.0, 3.0], [1, 1, 1], [True, False, True], ["a", "a", "a"])
    assert (test.chi2, test.p_value, test.df) == (None, None, 0)
    assert "fewer than two levels" in test.note


def test_unknown_endpoint_is_refused(protocol: Protocol) -> None:
    with pytest.raises(InvalidInputError) as error:
        subgroup_table(hand_patients(), protocol, endpoint="ttp")
    assert error.value.field == "endpoint"


def test_a_new_subgroup_is_one_registry_entry(
    protocol: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tumour grade, once the dataset has it: one entry, no other change."""
    patients = hand_patients().assign(grade=["G1", "G2"] * 6)
    grade = Subgroup("Tumour grade", lambda rows, _: rows["grade"], lambda _: ("G1", "G2", "G3"))
    monkeypatch.setattr(subgroups, "SUBGROUPS", (*SUBGROUPS, grade))
    table = subgroup_table(patients, protocol)
    g1 = row(table, "Tumour grade", "G1")  # rows 1, 3, 5, ... of PATIENTS
    assert tuple(g1[list(subgroups.COLUMNS[2:6])]) == (2, 1, 4, 4)
    assert "G3" not in set(table["level"])


def test_forest_plot_shows_every_row_and_the_labels(protocol: Protocol) -> None:
    table = subgroup_table(hand_patients(), protocol)
    drawn = forest_figure(table, "PFS by subgroup")
    assert drawn.lstrip().startswith("<?xml")
    for text in (
        "favours personalized",
        "favours standard",
        "FDG-PET status (interaction p = ",
        "Randomization stratum (interaction p = ",
        "Uppsala, FDG-PET negative",
        "not estimable",
        "3/6",  # overall personalized events / patients
        "6/6",
    ):
        assert text in drawn, text
    overall = row(table, OVERALL, OVERALL)
    assert f"{overall['hazard_ratio']:.2f} ({overall['lower']:.2f}-{overall['upper']:.2f})" in drawn


def test_forest_plot_text_does_not_overlap_and_fits_a_portrait_page(protocol: Protocol) -> None:
    """Every text of the plot (labels, counts, estimates, axis) is drawn apart from every other,
    and the whole figure is at most the 190 mm text width of an A4 portrait page."""
    patients = hand_patients()
    long_labels = patients.assign(site=patients["site"].replace("Uppsala", "Gothenburg"))
    for frame in (patients, long_labels):
        figure = forest_plot(subgroup_table(frame, protocol), "PFS by subgroup")
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
        boxes = [
            text.get_window_extent(renderer)
            for text in figure.findobj(Text)
            if text.get_visible() and text.get_text().strip()
        ]
        for first, second in itertools.combinations(boxes, 2):
            assert not first.overlaps(second), (first, second)
        tight = figure.get_tightbbox(renderer)
        assert tight.width <= 190 / 25.4
        plt.close(figure)


def test_forest_plot_without_any_estimate_is_drawn(protocol: Protocol) -> None:
    patients = hand_patients().assign(pfs_event=False)
    table = subgroup_table(patients, protocol)
    assert table["hazard_ratio"].isna().all()
    assert "not estimable" in forest_figure(table, "PFS by subgroup")


def test_the_report_shows_the_forest_plot_and_its_table() -> None:
    report = build_report(report_dataset())
    figure = next(f for f in report.figures if f.name == "forest_pfs")
    assert figure.section == "Efficacy"
    table = next(t for t in report.tables if t.name == "efficacy_subgroups")
    # the hand-made dataset (tests/support/datasets.py): 7 randomized, P02, P05, P07 progress
    overall = row(table.frame, OVERALL, OVERALL)
    assert tuple(overall[list(subgroups.COLUMNS[2:6])]) == (4, 2, 3, 1)
    assert table.section == "Efficacy"
