"""Treatment exposure counted by hand from the hand-made dataset (tests/support/datasets.py),
medians and quartiles also by numpy: cycles, GBq, cumulative doses, capecitabine relative dose
intensity, cycles below the full activity, reduced capecitabine, delays, deviations; a dataset
without capecitabine patients; the open report pooled.

Treated: standard P01 (4 cycles), P02 (2); dTOC P04 (5), P05 (3); CAP-dTOC P06 (4), P07 (2)."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from startrt.analysis.exposure import (
    RELATIVE_DOSE_INTENSITY,
    delayed_cycles,
    exposure_counts,
    exposure_per_patient,
    exposure_summary,
    relative_dose_intensity,
)
from startrt.analysis.pooled import POOLED
from startrt.analysis.report import ReportKind, Section, build_report
from startrt.analysis.safety import dose_limits
from startrt.analysis.trial_protocol import protocol_of
from startrt.protocol.definition import Protocol
from support.datasets import report_dataset, report_tables

STATISTICS = ["median", "q1", "q3", "min", "max"]


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return protocol_of("START-01 v1.0").protocol


@pytest.fixture(scope="module")
def summary(protocol: Protocol) -> pd.DataFrame:
    dataset = report_dataset()
    return exposure_summary(exposure_per_patient(dataset, dose_limits(protocol)), protocol)


def measure(summary: pd.DataFrame, group: str, name: str) -> pd.Series:
    chosen = summary[(summary["group"] == group) & (summary["measure"] == name)]
    assert len(chosen) == 1, (group, name)
    return chosen.iloc[0]


def numpy_statistics(values: list[float]) -> list[float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return [median, q1, q3, min(values), max(values)]


@pytest.mark.parametrize(
    ("group", "name", "values", "total", "by_hand"),
    [
        # cycles 4, 2: median 3, q1 2.5, q3 3.5; total 6
        ("standard", "cycles", [4, 2], 6, [3, 2.5, 3.5, 2, 4]),
        # cycles 5, 3, 4, 2: median 3.5, q1 2 + 0.75 = 2.75, q3 4 + 0.25 = 4.25; total 14
        ("personalized", "cycles", [5, 3, 4, 2], 14, [3.5, 2.75, 4.25, 2, 5]),
        # GBq P01 4 x 7.5 = 30, P02 2 x 7.5 = 15: total 45, median 22.5
        ("standard", "activity_gbq", [30.0, 15.0], 45.0, [22.5, 18.75, 26.25, 15.0, 30.0]),
        # GBq P04 4 x 7.5 + 3 = 33, P05 3 x 7.5 = 22.5: total 55.5
        ("dTOC", "activity_gbq", [33.0, 22.5], 55.5, [27.75, 25.125, 30.375, 22.5, 33.0]),
        # GBq P06 3 x 7.5 + 5.5 = 28, P07 2 x 7.5 = 15: total 43
        ("CAP-dTOC", "activity_gbq", [28.0, 15.0], 43.0, [21.5, 18.25, 24.75, 15.0, 28.0]),
    ],
)
def test_cycles_and_activity_per_treated_patient(
    summary: pd.DataFrame,
    group: str,
    name: str,
    values: list[float],
    total: float,
    by_hand: list[float],
) -> None:
    row = measure(summary, group, name)
    assert (row["patients"], row["total"]) == (len(values), total)
    assert row[STATISTICS].tolist() == pytest.approx(by_hand)
    assert row[STATISTICS].tolist() == pytest.approx(numpy_statistics(values))


def test_cumulative_doses_leave_out_a_patient_with_a_dose_missing(summary: pd.DataFrame) -> None:
    # kidney: P04 6 + 6.5 + 7 + 7.5 + 3 = 30, P05 5 + 5.5 + 6 = 16.5, P06 8 + 8 + 7.5 + 5.8
    # = 29.3; P07 cycle 2 without dosimetry: counted apart
    kidney = measure(summary, "personalized", "cumulative_kidney_dose_gy")
    assert (kidney["patients"], kidney["n_incomplete"]) == (3, 1)
    assert kidney["median"] == pytest.approx(29.3)
    assert kidney[STATISTICS].tolist() == pytest.approx(numpy_statistics([30.0, 16.5, 29.3]))
    assert pd.isna(kidney["total"])
    # marrow standard: P01 4 x 0.2 = 0.8, P02 2 x 0.3 = 0.6: median 0.7
    marrow = measure(summary, "standard", "cumulative_marrow_dose_gy")
    assert (marrow["patients"], marrow["n_incomplete"], marrow["median"]) == (
        2,
        0,
        pytest.approx(0.7),
    )
    # CAP-dTOC marrow: P06 3 x 0.4 + 0.3 = 1.5 only
    cap = measure(summary, "CAP-dTOC", "cumulative_marrow_dose_gy")
    assert (cap["patients"], cap["n_incomplete"], cap["median"]) == (1, 1, pytest.approx(1.5))


def test_capecitabine_relative_dose_intensity(summary: pd.DataFrame) -> None:
    # dispensed mg = 500 x tablets_500 + 150 x tablets_150: P06 4 x (84 x 500 + 28 x 150)
    # = 4 x 46 200 over 4 x 46 200 = 1; P07 46 200 + (56 x 500 + 28 x 150 = 32 200) = 78 400
    # over 92 400 = 0.8485
    values = [1.0, 78400 / 92400]
    for group in ("personalized", "CAP-dTOC"):
        row = measure(summary, group, RELATIVE_DOSE_INTENSITY)
        assert row["patients"] == 2
        assert row["median"] == pytest.approx((1.0 + 78400 / 92400) / 2)
        assert row[STATISTICS].tolist() == pytest.approx(numpy_statistics(values))
    # only the arms giving capecitabine
    for group in ("standard", "dTOC"):
        assert RELATIVE_DOSE_INTENSITY not in set(summary[summary["group"] == group]["measure"])


def test_a_cycle_without_its_full_dose_leaves_the_intensity_as_it_was() -> None:
    extra = {"trial_id": "P07", "cycle": 3, "dispensed_on": "2024-08-26"}
    extra |= {"tablets_500": 84, "tablets_150": 28, "dose_level_percent": 100}
    extra |= {"full_dose_mg": None}  # not derivable: its 46 200 mg count against nothing
    dataset = report_dataset(capecitabine=[*report_tables()["capecitabine"], extra])
    intensity = relative_dose_intensity(dataset)
    assert intensity["P07"] == pytest.approx(78400 / 92400)  # as without the cycle
    assert intensity["P06"] == 1.0


def _counts(frame: pd.DataFrame, group: str) -> dict[str, tuple[int, int]]:
    rows = frame[frame["group"] == group]
    return {
        item: (int(count), int(patients))
        for item, count, patients in zip(
            rows["exposure_item"], rows["exposure_count"], rows["patients"], strict=True
        )
    }


KIDNEY = "PRRT cycles below the full activity: the kidney dose limit"
REDUCED = "Capecitabine cycles at a reduced dose level"
DELAYED = "Cycles delayed beyond interval and window"
WINDOW = "Protocol deviations: cycle date outside its window"
OVERRIDE = "Protocol deviations: planner override (planned activity)"


def test_counts_by_hand(protocol: Protocol) -> None:
    frame = exposure_counts(report_dataset(), protocol)
    # treated 2 of 3 standard (P03 never); kidney-held cycles P04 cycle 5, P06 cycle 4;
    # reduced capecitabine P07 cycle 2 (75 %); every interval 70 days: no delay; no deviation
    expected = {
        "standard": {"Patients treated": (2, 2), KIDNEY: (0, 0), REDUCED: (0, 0)},
        "personalized": {"Patients treated": (4, 4), KIDNEY: (2, 2), REDUCED: (1, 1)},
        "dTOC": {"Patients treated": (2, 2), KIDNEY: (1, 1), REDUCED: (0, 0)},
        "CAP-dTOC": {"Patients treated": (2, 2), KIDNEY: (1, 1), REDUCED: (1, 1)},
    }
    for group, items in expected.items():
        found = _counts(frame, group)
        assert {item: found[item] for item in items} == items, group
        assert found[DELAYED] == found[WINDOW] == found[OVERRIDE] == (0, 0)
        other = [i for i in found if i.startswith("PRRT cycles below") and i != KIDNEY]
        assert len(other) == 3  # marrow, cycles, dosimetry: labelled, none here
        assert all(found[item] == (0, 0) for item in other)
    n = frame.groupby("group")["n_patients"].first()
    assert n.to_dict() == {"standard": 3, "personalized": 4, "dTOC": 2, "CAP-dTOC": 2}


def _deviation(trial_id: str, cycle: int, kind: str) -> dict[str, Any]:
    return {
        "trial_id": trial_id,
        "cycle": cycle,
        "kind": kind,
        "recorded_on": "2024-12-01",
        "description": "test",
        "reason": "test",
    }


def test_delays_and_deviations(protocol: Protocol) -> None:
    tables = report_tables()
    cycles = tables["cycles"]
    # P05 cycle 3 on 2024-08-22: 85 days after 2024-05-29 (2 + 30 + 31 + 22), more than
    # (10 + 2) x 7 = 84; P02 cycle 2 on 2024-05-02: 84 days after 2024-02-08 (21 + 31 + 30
    # + 2): in the window, not delayed
    moved = {("P05", 3): "2024-08-22", ("P02", 2): "2024-05-02"}
    cycles = [
        row
        | {"administered_on": moved.get((row["trial_id"], row["cycle"]), row["administered_on"])}
        for row in cycles
    ]
    deviations = [
        _deviation("P05", 3, "window"),
        _deviation("P04", 5, "activity"),
        _deviation("P06", 4, "activity"),
    ]
    dataset = report_dataset(cycles=cycles, deviations=deviations)
    late = delayed_cycles(dataset, protocol)
    assert late[["trial_id", "cycle", "days"]].values.tolist() == [["P05", 3, 85]]
    frame = exposure_counts(dataset, protocol)
    assert _counts(frame, "standard")[DELAYED] == (0, 0)
    for group, delayed, window, override in (
        ("personalized", (1, 1), (1, 1), (2, 2)),
        ("dTOC", (1, 1), (1, 1), (1, 1)),
        ("CAP-dTOC", (0, 0), (0, 0), (1, 1)),
    ):
        found = _counts(frame, group)
        assert (found[DELAYED], found[WINDOW], found[OVERRIDE]) == (delayed, window, override)


def test_a_dataset_without_capecitabine_patients(protocol: Protocol) -> None:
    tables = report_tables()
    patients = [
        row | ({"treatment_arm": "dTOC"} if row["trial_id"] in ("P06", "P07") else {})
        for row in tables["patients"]
    ]
    dataset = report_dataset(patients=patients, capecitabine=[])
    summary = exposure_summary(exposure_per_patient(dataset, dose_limits(protocol)), protocol)
    # the arms giving capecitabine keep their row, with no patient; the others have none
    for group in ("personalized", "CAP-dTOC"):
        row = measure(summary, group, RELATIVE_DOSE_INTENSITY)
        assert row["patients"] == 0
        assert row[STATISTICS].isna().all()
    assert RELATIVE_DOSE_INTENSITY not in set(summary[summary["group"] == "dTOC"]["measure"])
    # CAP-dTOC has no patient: 0 cycles over 0 patients; dTOC has all four (5, 3, 4, 2)
    assert measure(summary, "CAP-dTOC", "cycles")["patients"] == 0
    assert measure(summary, "dTOC", "cycles")["total"] == 14
    assert _counts(exposure_counts(dataset, protocol), "personalized")[REDUCED] == (0, 0)


def test_the_report_shows_exposure_and_the_open_one_pools() -> None:
    closed = build_report(report_dataset(), generated_on=date(2026, 1, 5))
    names = [t.name for t in closed.tables if t.section == Section.EXPOSURE]
    assert names == ["exposure_per_patient", "exposure_counts"]
    opened = build_report(report_dataset(), generated_on=date(2026, 1, 5), kind=ReportKind.OPEN)
    tables = {t.name: t.frame for t in opened.tables if t.section == Section.EXPOSURE}
    per_patient = tables["exposure_per_patient"].set_index("measure")
    assert set(per_patient["group"]) == {POOLED}
    # cycles 4 + 2 + 5 + 3 + 4 + 2 = 20 over 6 treated patients: median (3 + 4) / 2 = 3.5
    assert per_patient.loc["cycles", ["patients", "total", "median"]].tolist() == [6, 20, 3.5]
    # GBq 30 + 15 + 33 + 22.5 + 28 + 15 = 143.5
    assert per_patient.loc["activity_gbq", "total"] == pytest.approx(143.5)
    # kidney over the 5 complete patients: 32.5, 12.5, 30, 16.5, 29.3 -> median 29.3
    kidney = per_patient.loc["cumulative_kidney_dose_gy"]
    assert (kidney["patients"], kidney["n_incomplete"], kidney["median"]) == (5, 1, 29.3)
    rdi = per_patient.loc[RELATIVE_DOSE_INTENSITY]
    assert (rdi["patients"], rdi["median"]) == (2, pytest.approx((1 + 78400 / 92400) / 2))
    counts = tables["exposure_counts"].set_index("exposure_item")
    # one column, all 7 randomized patients: 6 treated; 2 cycles (P04, P06) held by the
    # kidney limit; 1 capecitabine cycle (P07's second) at 75 %
    assert list(counts.columns) == [f"{POOLED} (n=7)"]
    cells = counts[f"{POOLED} (n=7)"]
    assert (cells["Patients treated"], cells[KIDNEY], cells[REDUCED]) == ("6", "2 (2)", "1 (1)")
