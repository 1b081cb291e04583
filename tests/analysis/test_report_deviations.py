"""Protocol deviations in the analysis dataset and the report: listed with kind, reason and
signer, read back from CSV, and not taken for contacts with the patient (OS censoring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from startrt.analysis.dataset import read_dataset, write_dataset
from startrt.analysis.endpoints import survival_endpoints
from startrt.analysis.report import build_report
from startrt.analysis.report_files import render_html
from startrt.validation import InvalidInputError
from support.datasets import report_dataset

# P05 (dTOC, 3 cycles, ongoing): cycle 3 moved out of its window; cycle 4 overridden to
# 7.5 GBq at 30.25 Gy already, signed by the investigator. P04: a deviation recorded after
# every other record of P04 (the cut-off is 31 December 2025).
DEVIATIONS: list[dict[str, Any]] = [
    {
        "trial_id": "P05",
        "cycle": 4,
        "kind": "activity",
        "recorded_on": "2025-01-10",
        "description": "7.5 GBq is above the planner's 0 GBq (stop); the predicted cumulative "
        "kidney AD after it, 45.5 Gy, exceeds the limit of 30 Gy",
        "reason": "progressive liver metastases: full cycle on the board's advice",
        "recorded_by": "physicist.lund",
        "signed_by": "investigator.lund",
        "signed_on": "2025-01-12",
        "planned_activity_gbq": 7.5,
        "predicted_cumulative_kidney_gy": 45.5,
    },
    {
        "trial_id": "P05",
        "cycle": 3,
        "kind": "window",
        "recorded_on": "2024-09-02",
        "description": "Cycle 3 on 2024-09-30 is 7 days after its window",
        "reason": "patient on holiday",
        "recorded_by": "investigator.lund",
        "signed_by": None,
        "signed_on": None,
        "planned_activity_gbq": None,
        "predicted_cumulative_kidney_gy": None,
    },
    {
        "trial_id": "P04",
        "cycle": 6,
        "kind": "activity",
        "recorded_on": "2025-12-30",
        "description": "7.5 GBq is above the planner's 0 GBq (stop)",
        "reason": "study of a late cycle",
        "recorded_by": "physicist.lund",
        "signed_by": None,
        "signed_on": None,
        "planned_activity_gbq": 7.5,
        "predicted_cumulative_kidney_gy": 37.5,
    },
]


def test_the_report_lists_every_deviation_with_its_reason_and_signer() -> None:
    report = build_report(report_dataset(deviations=DEVIATIONS))
    (table,) = [t for t in report.tables if t.name == "protocol_deviations"]
    assert table.title == "Protocol deviations (3)"
    assert not table.listing  # shown in the HTML, not only in CSV/JSON
    rows = table.frame.to_dict("records")
    assert [(r["trial_id"], r["cycle"], r["kind"]) for r in rows] == [
        ("P04", 6, "activity"),
        ("P05", 3, "window"),
        ("P05", 4, "activity"),
    ]
    signed = rows[2]
    assert signed["reason"] == "progressive liver metastases: full cycle on the board's advice"
    assert (signed["signed_by"], signed["signed_on"]) == (
        "investigator.lund",
        pd.Timestamp("2025-01-12"),
    )
    assert signed["predicted_cumulative_kidney_gy"] == 45.5
    html = render_html(report)
    assert "Protocol deviations (3)" in html
    assert "progressive liver metastases" in html
    assert "investigator.lund" in html


def test_without_deviations_the_section_says_none() -> None:
    report = build_report(report_dataset())
    (table,) = [t for t in report.tables if t.name == "protocol_deviations"]
    assert (table.title, len(table.frame)) == ("Protocol deviations (0)", 0)


def test_a_deviation_is_no_contact_with_the_patient() -> None:
    # P04's latest record otherwise: OS censored there, not at the deviation of 30 December
    without = survival_endpoints(report_dataset()).set_index("trial_id")
    with_deviations = survival_endpoints(report_dataset(deviations=DEVIATIONS))
    assert with_deviations.set_index("trial_id")["os_days"].equals(without["os_days"])


def test_deviations_are_written_and_read_back(tmp_path: Path) -> None:
    dataset = report_dataset(deviations=DEVIATIONS)
    write_dataset(dataset, tmp_path)
    assert (tmp_path / "deviations.csv").is_file()
    again = read_dataset(tmp_path)
    pd.testing.assert_frame_equal(again.deviations, dataset.deviations)


def test_a_deviation_of_unknown_kind_is_refused() -> None:
    wrong = [{**DEVIATIONS[0], "kind": "override"}]
    with pytest.raises(InvalidInputError, match=r"deviations\[1\]\.kind"):
        report_dataset(deviations=wrong)
