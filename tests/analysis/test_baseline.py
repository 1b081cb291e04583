"""Table 1 (baseline characteristics) counted by hand from the hand-made dataset
(tests/support/datasets.py), medians and quartiles also by numpy; missing values; the open
report pooled; and the WHO grade subgroup of the forest plot.

Randomized: standard P01-P03; personalized P04-P07 (dTOC P04, P05; CAP-dTOC P06, P07)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from startrt.analysis.baseline import (
    NOT_RECORDED,
    VALUES,
    baseline_summary,
    baseline_table,
)
from startrt.analysis.endpoints import survival_endpoints
from startrt.analysis.pooled import POOLED
from startrt.analysis.report import ReportKind, Section, build_report
from startrt.analysis.subgroups import subgroup_patients, subgroup_table
from startrt.analysis.trial_protocol import protocol_of
from startrt.protocol.definition import Protocol
from support.datasets import report_dataset, report_tables


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return protocol_of("START-01 v1.0").protocol


@pytest.fixture(scope="module")
def summary(protocol: Protocol) -> pd.DataFrame:
    return baseline_summary(report_dataset(), protocol)


def cell(summary: pd.DataFrame, group: str, characteristic: str, level: str) -> pd.Series:
    grouping = "treatment_arm" if group in ("dTOC", "CAP-dTOC") else "arm"
    chosen = summary[
        (summary["grouping"] == grouping)
        & (summary["group"] == group)
        & (summary["characteristic"] == characteristic)
        & (summary["level"] == level)
    ]
    assert len(chosen) == 1, (group, characteristic, level)
    return chosen.iloc[0]


def counts(summary: pd.DataFrame, group: str, characteristic: str) -> dict[str, int]:
    grouping = "treatment_arm" if group in ("dTOC", "CAP-dTOC") else "arm"
    rows = summary[
        (summary["grouping"] == grouping)
        & (summary["group"] == group)
        & (summary["characteristic"] == characteristic)
    ]
    return dict(zip(rows["level"], rows["n"].astype(int), strict=True))


@pytest.mark.parametrize(
    ("characteristic", "expected"),
    [
        # sex: P01 F, P02 M, P03 M | P04 F, P05 M, P06 F, P07 M
        ("Sex", {"standard": {"Female": 1, "Male": 2}, "personalized": {"Female": 2, "Male": 2}}),
        # ECOG: 0, 1, 0 | 1, 0, 1, 1
        (
            "ECOG",
            {"standard": {"0": 2, "1": 1}, "personalized": {"0": 1, "1": 3}},
        ),
        # primary site: small intestine, pancreas, small intestine | pancreas, colon-rectum,
        # pancreas, not recorded (P07); in the vocabulary's order, only the sites seen
        (
            "Primary site",
            {
                "standard": {
                    "Pancreas": 1,
                    "Small intestine (jejunum, ileum)": 2,
                    "Colon or rectum": 0,
                    NOT_RECORDED: 0,
                },
                "personalized": {
                    "Pancreas": 2,
                    "Small intestine (jejunum, ileum)": 0,
                    "Colon or rectum": 1,
                    NOT_RECORDED: 1,
                },
            },
        ),
        # Ki-67 2, 12, 5 -> G1, G2, G2 | 8, 1, 25, none -> G2, G1, G3, not recorded
        (
            "WHO grade",
            {
                "standard": {"G1": 1, "G2": 2, "G3": 0, NOT_RECORDED: 0},
                "personalized": {"G1": 1, "G2": 1, "G3": 1, NOT_RECORDED: 1},
                "dTOC": {"G1": 1, "G2": 1, "G3": 0, NOT_RECORDED: 0},
                "CAP-dTOC": {"G1": 0, "G2": 0, "G3": 1, NOT_RECORDED: 1},
                POOLED: {"G1": 2, "G2": 3, "G3": 1, NOT_RECORDED: 1},
            },
        ),
        # Krenning 4, 3, 3 | 4, 3, 4, 3
        ("Krenning score", {"standard": {"3": 2, "4": 1}, "personalized": {"3": 2, "4": 2}}),
        # FDG-PET at screening: no, yes, no | no, no, yes, yes
        (
            "FDG-PET",
            {
                "standard": {"negative": 2, "positive": 1},
                "personalized": {"negative": 2, "positive": 2},
            },
        ),
        # prior non-SSA therapy: no, yes, no | yes, no, yes, not recorded
        (
            "Prior non-SSA therapy",
            {
                "standard": {"yes": 1, "no": 2, NOT_RECORDED: 0},
                "personalized": {"yes": 2, "no": 1, NOT_RECORDED: 1},
            },
        ),
        # prior PRRT: no for every randomized patient (P09, not randomized, had it)
        ("Prior PRRT", {"standard": {"no": 3}, "personalized": {"no": 4}, POOLED: {"no": 7}}),
        # sites in the protocol's order: Lund, Lund, Uppsala | Lund, Uppsala, Lund, Stockholm
        (
            "Stratification: site",
            {
                "standard": {"Lund": 2, "Stockholm": 0, "Uppsala": 1},
                "personalized": {"Lund": 2, "Stockholm": 1, "Uppsala": 1},
            },
        ),
        # strata: negative, positive, negative | negative, negative, positive, positive
        (
            "Stratification: FDG-PET status",
            {
                "standard": {"negative": 2, "positive": 1},
                "personalized": {"negative": 2, "positive": 2},
            },
        ),
    ],
)
def test_categories_counted_by_hand(
    summary: pd.DataFrame, characteristic: str, expected: dict[str, dict[str, int]]
) -> None:
    for group, by_level in expected.items():
        assert counts(summary, group, characteristic) == by_level, group


def test_percent_of_the_groups_randomized_patients(summary: pd.DataFrame) -> None:
    # the denominators: standard 3, personalized 4, dTOC 2, CAP-dTOC 2, all 7
    for group, patients in (("standard", 3), ("personalized", 4), ("dTOC", 2), (POOLED, 7)):
        assert cell(summary, group, "Sex", "Male")["patients"] == patients
    assert cell(summary, "standard", "Sex", "Male")["percent"] == pytest.approx(200 / 3)  # 2/3
    assert cell(summary, POOLED, "Sex", "Female")["percent"] == pytest.approx(300 / 7)  # 3/7
    # P07's primary site not recorded: 1 of 4 personalized, 1 of 2 CAP-dTOC, 1 of 7
    assert cell(summary, "personalized", "Primary site", NOT_RECORDED)["percent"] == 25.0
    assert cell(summary, "CAP-dTOC", "Primary site", NOT_RECORDED)["percent"] == 50.0
    assert cell(summary, POOLED, "Primary site", NOT_RECORDED)["percent"] == pytest.approx(100 / 7)


@pytest.mark.parametrize(
    ("characteristic", "group", "values", "by_hand"),
    [
        # ages 58, 64, 71.5: median 64; q1 = 58 + 0.5 * 6 = 61; q3 = 64 + 0.5 * 7.5 = 67.75
        ("Age (years)", "standard", [64.0, 71.5, 58.0], (64.0, 61.0, 67.75, 58.0, 71.5)),
        # ages 49, 61, 66, 73: median 63.5; q1 = 49 + 0.75 * 12 = 58; q3 = 66 + 0.25 * 7 = 67.75
        ("Age (years)", "personalized", [66.0, 49.0, 73.0, 61.0], (63.5, 58.0, 67.75, 49.0, 73.0)),
        # all 7: 49 58 61 64 66 71.5 73: q1 = 58 + 0.5 * 3 = 59.5, q3 = 66 + 0.5 * 5.5 = 68.75
        (
            "Age (years)",
            POOLED,
            [64.0, 71.5, 58.0, 66.0, 49.0, 73.0, 61.0],
            (64.0, 59.5, 68.75, 49.0, 73.0),
        ),
        # GFR 60, 75, 85, 90: median 80; q1 = 60 + 0.75 * 15 = 71.25; q3 = 85 + 0.25 * 5 = 86.25
        (
            "GFR (mL/min/1.73 m\u00b2)",
            "personalized",
            [90.0, 60.0, 75.0, 85.0],
            (80.0, 71.25, 86.25, 60.0, 90.0),
        ),
        # Ki-67 of P07 not recorded: 8, 1, 25 -> median 8, q1 4.5, q3 16.5
        ("Ki-67 (%)", "personalized", [8.0, 1.0, 25.0], (8.0, 4.5, 16.5, 1.0, 25.0)),
    ],
)
def test_numbers_by_hand_and_numpy(
    summary: pd.DataFrame,
    characteristic: str,
    group: str,
    values: list[float],
    by_hand: tuple[float, ...],
) -> None:
    row = cell(summary, group, characteristic, VALUES)
    got = tuple(row[["median", "q1", "q3", "min", "max"]])
    assert got == pytest.approx(by_hand)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    assert got == pytest.approx((median, q1, q3, min(values), max(values)))
    assert row["n"] == len(values)


def test_body_surface_area_by_the_protocols_formula(summary: pd.DataFrame) -> None:
    # DuBois & DuBois 1916: 0.007184 x height_cm^0.725 x weight_kg^0.425 (P01-P03)
    heights, weights = np.array([165.0, 178.0, 182.0]), np.array([70.0, 82.0, 90.0])
    bsa = 0.007184 * heights**0.725 * weights**0.425
    row = cell(summary, "standard", "Body surface area (m\u00b2)", VALUES)
    assert row["median"] == pytest.approx(np.median(bsa))
    assert (row["min"], row["max"]) == pytest.approx((bsa.min(), bsa.max()))


def test_a_number_not_recorded_is_a_row(summary: pd.DataFrame) -> None:
    # Ki-67 missing for P07 only: a "not recorded" row 0 / 1 / 1, none for age (all known)
    assert counts(summary, "standard", "Ki-67 (%)")[NOT_RECORDED] == 0
    assert counts(summary, "personalized", "Ki-67 (%)")[NOT_RECORDED] == 1
    assert NOT_RECORDED not in counts(summary, "personalized", "Age (years)")


def test_a_patient_without_a_baseline_record_is_not_recorded_everywhere(
    protocol: Protocol,
) -> None:
    rows = [row for row in report_tables()["baseline"] if row["trial_id"] != "P03"]
    summary = baseline_summary(report_dataset(baseline=rows), protocol)
    # P03 (standard) has no record: 1 of 3 not recorded in every characteristic from it
    for characteristic in ("Age (years)", "Sex", "ECOG", "Prior PRRT"):
        row = cell(summary, "standard", characteristic, NOT_RECORDED)
        assert (row["n"], row["percent"]) == (1, pytest.approx(100 / 3)), characteristic
    # ages left 64 and 71.5: median 67.75
    assert cell(summary, "standard", "Age (years)", VALUES)["median"] == 67.75
    # the stratification factors come from the allocation, not the screening record
    assert NOT_RECORDED not in counts(summary, "standard", "Stratification: site")


def test_table_as_people_read_it(summary: pd.DataFrame) -> None:
    table = baseline_table(summary[summary["grouping"] == "arm"])
    assert list(table.columns) == [
        "baseline_characteristic",
        "level",
        "standard (n=3)",
        "personalized (n=4)",
        f"{POOLED} (n=7)",
    ]
    by_row = table.set_index(["baseline_characteristic", "level"])
    assert by_row.loc[("Sex", "Male"), "standard (n=3)"] == "2 (66.7 %)"  # 2/3
    assert by_row.loc[("Age (years)", "median (IQR)"), "standard (n=3)"] == "64.0 (61.0\u201367.8)"
    assert by_row.loc[("Age (years)", "range"), "personalized (n=4)"] == "49.0\u201373.0"
    assert by_row.loc[("Primary site", NOT_RECORDED), "personalized (n=4)"] == "1 (25.0 %)"
    by_treatment = baseline_table(summary[summary["grouping"] == "treatment_arm"])
    assert list(by_treatment.columns[2:]) == [
        "standard (n=3)",
        "dTOC (n=2)",
        "CAP-dTOC (n=2)",
        f"{POOLED} (n=7)",
    ]


def test_the_report_has_both_tables_and_the_open_one_pools() -> None:
    closed = build_report(report_dataset(), generated_on=date(2026, 1, 5))
    names = [t.name for t in closed.tables if t.section == Section.BASELINE]
    assert names == ["baseline_arm", "baseline_treatment_arm"]
    opened = build_report(report_dataset(), generated_on=date(2026, 1, 5), kind=ReportKind.OPEN)
    (table,) = [t for t in opened.tables if t.section == Section.BASELINE]
    assert list(table.frame.columns) == ["baseline_characteristic", "level", f"{POOLED} (n=7)"]
    by_row = table.frame.set_index(["baseline_characteristic", "level"])[f"{POOLED} (n=7)"]
    assert by_row[("Sex", "Female")] == "3 (42.9 %)"  # 3/7
    assert by_row[("WHO grade", "G2")] == "3 (42.9 %)"  # P02, P03, P04
    assert by_row[("Age (years)", "median (IQR)")] == "64.0 (59.5\u201368.8)"


def test_who_grade_subgroup_of_the_forest_plot(protocol: Protocol) -> None:
    dataset = report_dataset()
    patients = subgroup_patients(dataset, survival_endpoints(dataset, protocol))
    table = subgroup_table(patients, protocol)
    rows = table[table["subgroup"] == "WHO grade"].set_index("level")
    # G1: P01 (standard), P05 (personalized, PFS event); G2: P02 (event), P03 | P04;
    # G3: P06 (personalized); P07 (no Ki-67) in no level
    assert list(rows.index) == ["G1", "G2", "G3"]
    columns = [
        "patients_personalized",
        "events_personalized",
        "patients_standard",
        "events_standard",
    ]
    assert rows.loc["G1", columns].tolist() == [1, 1, 1, 0]
    assert rows.loc["G2", columns].tolist() == [1, 0, 2, 1]
    assert rows.loc["G3", columns].tolist() == [1, 0, 0, 0]
