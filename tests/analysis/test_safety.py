"""Safety tables of the hand-made dataset (tests/support/datasets.py), counted by hand.

Safety population (treated): standard P01, P02; personalized P04, P05 (dTOC), P06, P07
(CAP-dTOC). P03 (never treated) and results before a patient's first cycle do not count.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import pandas as pd
import pytest

from startrt.analysis.dataset import TrialDataset
from startrt.analysis.safety import (
    DoseLimits,
    cumulative_doses,
    dose_distribution,
    dose_limits,
    dose_per_patient,
    egfr_over_time,
    egfr_summary,
    grade_3_4_rates,
    patients_at_limit,
    worst_grade_table,
)
from startrt.protocol.definition import Protocol, default_protocol, parse_protocol


def _row(frame: pd.DataFrame, **where: object) -> dict[str, object]:
    chosen = frame
    for column, value in where.items():
        chosen = chosen[chosen[column] == value]
    assert len(chosen) == 1, where
    return dict(chosen.iloc[0])


GRADE_COLUMNS = ["n_patients", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5", "any_grade"]


@pytest.mark.parametrize(
    ("source", "term", "group", "expected"),
    [
        # P01 worst 3 (1, 3, 2), P02 1; P03's grade 4 (untreated) not counted
        ("lab", "Platelet count decreased", "standard", (2, 1, 0, 1, 0, 0, 2)),
        # P04 4, P05 2, P06 3
        ("lab", "Platelet count decreased", "personalized", (4, 0, 1, 1, 1, 0, 3)),
        ("lab", "Platelet count decreased", "dTOC", (2, 0, 1, 0, 1, 0, 2)),
        # P04 1 (its screening grade 2 is before cycle 1), P05 grade 0 not toxicity, P07 3
        ("lab", "Anemia", "personalized", (4, 1, 0, 1, 0, 0, 2)),
        ("lab", "Neutrophil count decreased", "CAP-dTOC", (2, 0, 1, 0, 1, 0, 2)),
        ("lab", "Neutrophil count decreased", "standard", (2, 0, 0, 0, 0, 0, 0)),
        # worst over every lab term: P04 4, P05 2, P06 4, P07 3
        ("lab", "any term", "personalized", (4, 0, 1, 1, 2, 0, 4)),
        # P04 nausea 1 then 2 -> worst 2; P01 1, P02 2
        ("adverse_event", "Nausea", "personalized", (4, 0, 1, 0, 0, 0, 1)),
        ("adverse_event", "Nausea", "standard", (2, 1, 1, 0, 0, 0, 2)),
        # P04's fatigue before cycle 1 not counted: only P05 (grade 1)
        ("adverse_event", "Fatigue", "dTOC", (2, 1, 0, 0, 0, 0, 1)),
        ("adverse_event", "Diarrhea", "CAP-dTOC", (2, 0, 0, 1, 1, 0, 2)),
        # P01 fatigue 2, P02 nausea 2
        ("adverse_event", "any term", "standard", (2, 0, 2, 0, 0, 0, 2)),
    ],
)
def test_worst_grades(
    report_dataset: TrialDataset, source: str, term: str, group: str, expected: tuple[int, ...]
) -> None:
    row = _row(worst_grade_table(report_dataset), source=source, term=term, group=group)
    assert tuple(row[column] for column in GRADE_COLUMNS) == expected


def test_terms_listed(report_dataset: TrialDataset) -> None:
    table = worst_grade_table(report_dataset)
    assert list(dict.fromkeys(table.loc[table["source"] == "adverse_event", "term"])) == [
        "any term",
        "Diarrhea",
        "Fatigue",
        "Nausea",
        "Palmar-plantar erythrodysesthesia syndrome",
    ]
    assert "egfr" not in set(table["term"])  # ungraded


# Clopper-Pearson limits in closed form: k = 0 -> upper 1 - 0.025^(1/n); k = n -> lower
# 0.025^(1/n); n = 2: 0.841886 and 0.158114; n = 4, k = 0: 1 - 0.025^(1/4) = 0.602365.
# k = 1, n = 2: lower 1 - 0.975^(1/2) = 0.012579, upper 0.975^(1/2) = 0.987421.
@pytest.mark.parametrize(
    ("source", "term", "group", "k", "n", "lower", "upper"),
    [
        ("adverse_event", "Diarrhea", "CAP-dTOC", 2, 2, 0.158114, 1.0),  # P06 3, P07 4
        ("adverse_event", "Diarrhea", "standard", 0, 2, 0.0, 0.841886),
        ("adverse_event", "Nausea", "personalized", 0, 4, 0.0, 0.602365),
        ("lab", "Platelet count decreased", "standard", 1, 2, 0.012579, 0.987421),  # P01 3
        # any lab grade 3-4: P04 (platelets 4), P06 (neutrophils 4), P07 (anemia 3); not P05
        ("lab", "any term", "personalized", 3, 4, None, None),
    ],
)
def test_grade_3_4_rates(
    report_dataset: TrialDataset,
    source: str,
    term: str,
    group: str,
    k: int,
    n: int,
    lower: float | None,
    upper: float | None,
) -> None:
    row = _row(grade_3_4_rates(report_dataset), source=source, term=term, group=group)
    assert (row["patients"], row["n_patients"], row["rate"]) == (k, n, pytest.approx(k / n))
    if lower is not None:
        assert (row["lower"], row["upper"]) == pytest.approx((lower, upper), abs=1e-6)


def test_grade_5_is_not_grade_3_4(report_dataset: TrialDataset) -> None:
    events = pd.concat(
        [
            report_dataset.adverse_events,
            pd.DataFrame(
                {
                    "trial_id": ["P02"],
                    "term": ["Sepsis"],
                    "grade": pd.array([5], dtype="Int64"),
                    "serious": pd.array([True], dtype="boolean"),
                    "onset_on": [pd.Timestamp("2024-11-20")],
                }
            ),
        ],
        ignore_index=True,
    )
    dataset = replace(report_dataset, adverse_events=events)
    worst = _row(
        worst_grade_table(dataset), source="adverse_event", term="Sepsis", group="standard"
    )
    assert (worst["grade_5"], worst["any_grade"]) == (1, 1)
    rate = _row(grade_3_4_rates(dataset), source="adverse_event", term="Sepsis", group="standard")
    assert rate["patients"] == 0


def test_empty_group_has_no_rate(report_dataset: TrialDataset) -> None:
    patients = report_dataset.patients.copy()
    patients.loc[patients["treatment_arm"] == "CAP-dTOC", "treatment_arm"] = None
    rates = grade_3_4_rates(replace(report_dataset, patients=patients))
    row = _row(rates, source="lab", term="any term", group="CAP-dTOC")
    assert row["n_patients"] == 0
    assert row["rate"] is None or pd.isna(row["rate"])


def test_egfr_over_time(report_dataset: TrialDataset) -> None:
    values = egfr_over_time(report_dataset).set_index(["trial_id", "month"])
    # P01: baseline is the last before cycle 1 (80 on 01-25, not 82 on 01-10); 90 days ->
    # month 3 (76), 182 days -> month 6 (72)
    assert values.loc[("P01", 0), "egfr"] == 80.0
    assert values.loc[("P01", 6), "change"] == -8.0
    # P04's value 19 days after cycle 1 rounds to month 0: left out
    assert sorted(values.loc["P04"].index) == [0, 3, 6]
    # P05: 92 and 112 days both round to month 3; the later (57) is kept
    assert values.loc[("P05", 3), "egfr"] == 57.0


def test_egfr_summary(report_dataset: TrialDataset) -> None:
    summary = egfr_summary(report_dataset)
    baseline = _row(summary, group="personalized", month=0)
    # 90, 60, 75, 85: mean 77.5, median 80, type-7 quartiles 71.25 and 86.25
    assert (baseline["n"], baseline["mean"], baseline["median"]) == (4, 77.5, 80.0)
    assert (baseline["q1"], baseline["q3"]) == (71.25, 86.25)
    month_3 = _row(summary, group="personalized", month=3)
    # 84, 57, 70, 80; changes -6, -3, -5, -5
    assert month_3["mean"] == pytest.approx(72.75)
    assert month_3["mean_change"] == pytest.approx(-4.75)
    standard_6 = _row(summary, group="standard", month=6)
    assert (standard_6["n"], standard_6["mean"]) == (1, 72.0)
    assert standard_6["sd"] is None or pd.isna(standard_6["sd"])


def test_limits_from_the_protocol() -> None:
    assert dose_limits(default_protocol()) == DoseLimits(30.0, None, 0.9, ())


def _amended(replacements: dict[str, str]) -> Protocol:
    """The shipped protocol file with text replaced (an amendment written by hand)."""
    text = resources.files("startrt.protocol.files").joinpath("START-01_v1.0.toml").read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return parse_protocol(text)


def test_bed_limit_is_not_compared_and_marrow_limit_is() -> None:
    protocol = _amended(
        {
            'quantity = "AD"': 'quantity = "BED"',
            "# No bone-marrow limit in v1.0": "[marrow_limit]\nlimit_gy = 2.0\n#",
        }
    )
    limits = dose_limits(protocol)
    assert (limits.kidney_limit_gy, limits.marrow_limit_gy) == (None, 2.0)
    assert "BED" in limits.notes[0]


def test_cumulative_doses(report_dataset: TrialDataset) -> None:
    frame = cumulative_doses(report_dataset).set_index(["trial_id", "cycle"])
    assert frame.loc[("P04", 4), "cumulative_kidney_dose_gy"] == 27.0  # 6 + 6.5 + 7 + 7.5
    assert frame.loc[("P04", 5), "cumulative_kidney_dose_gy"] == 30.0
    assert frame.loc[("P06", 4), "cumulative_marrow_dose_gy"] == pytest.approx(1.5)
    assert pd.isna(frame.loc[("P07", 2), "cumulative_kidney_dose_gy"])  # cycle 2 not measured
    assert "P03" not in frame.index.get_level_values(0)


LIMITS = DoseLimits(kidney_limit_gy=30.0, marrow_limit_gy=1.4)


def test_dose_per_patient(report_dataset: TrialDataset) -> None:
    frame = dose_per_patient(report_dataset, LIMITS).set_index("trial_id")
    expected = {
        # kidney Gy, status; marrow Gy, status (limit 1.4 Gy, at from 1.26 Gy)
        "P01": (32.5, "over", 0.8, "below"),  # 8 + 8 + 8 + 8.5
        "P02": (12.5, "below", 0.6, "below"),
        "P04": (30.0, "at", 1.32, "at"),
        "P05": (16.5, "below", 0.75, "below"),
        "P06": (29.3, "at", 1.5, "over"),  # 8 + 8 + 7.5 + 5.8 >= 27 Gy
        "P07": (7.0, "unknown", 0.35, "unknown"),  # cycle 2 without dosimetry
    }
    for trial_id, (kidney, kidney_status, marrow, marrow_status) in expected.items():
        row = frame.loc[trial_id]
        assert row["kidney_dose_gy"] == pytest.approx(kidney), trial_id
        assert row["marrow_dose_gy"] == pytest.approx(marrow), trial_id
        assert (row["kidney_status"], row["marrow_status"]) == (kidney_status, marrow_status)
    assert frame.loc["P01", "kidney_fraction_of_limit"] == pytest.approx(32.5 / 30)
    assert frame.loc["P07", "kidney_doses_missing"] == 1
    assert list(patients_at_limit(frame.reset_index())["trial_id"]) == ["P01", "P04", "P06"]


def test_over_the_limit_even_with_a_missing_dose(report_dataset: TrialDataset) -> None:
    frame = dose_per_patient(report_dataset, DoseLimits(5.0, None)).set_index("trial_id")
    assert frame.loc["P07", "kidney_status"] == "over"  # 7 Gy known > 5 Gy
    assert frame.loc["P07", "marrow_status"] == "no limit"


def test_dose_distribution(report_dataset: TrialDataset) -> None:
    table = dose_distribution(dose_per_patient(report_dataset, LIMITS), LIMITS, default_protocol())
    kidney = _row(table, group="personalized", organ="kidney")
    # complete: P04 30.0, P05 16.5, P06 29.3 (P07 incomplete); mean 75.8 / 3, median 29.3
    assert (kidney["n"], kidney["n_incomplete"]) == (3, 1)
    assert kidney["mean"] == pytest.approx(75.8 / 3)
    assert (kidney["median"], kidney["min"], kidney["max"]) == pytest.approx((29.3, 16.5, 30.0))
    assert (kidney["at_limit"], kidney["over_limit"]) == (2, 0)
    standard = _row(table, group="standard", organ="kidney")
    assert (standard["median"], standard["over_limit"]) == (22.5, 1)  # (32.5 + 12.5) / 2
    marrow = _row(table, group="CAP-dTOC", organ="marrow")
    assert (marrow["n"], marrow["over_limit"], marrow["limit_gy"]) == (1, 1, 1.4)
