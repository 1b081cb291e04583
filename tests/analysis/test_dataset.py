"""The dataset refuses values outside its vocabularies and arms its protocol does not have,
naming the table, row, column, value and the allowed values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from startrt.analysis.dataset import read_dataset, write_dataset
from startrt.protocol.vocabulary import EndOfTreatmentReason, VitalStatus
from startrt.validation import InvalidInputError
from support.datasets import report_dataset, report_tables


def _replaced(table: str, trial_id: str, **values: Any) -> list[dict[str, Any]]:
    return [row | values if row["trial_id"] == trial_id else row for row in report_tables()[table]]


def test_an_unknown_end_of_treatment_reason_is_refused() -> None:
    ends = _replaced("end_of_treatment", "P04", reason="renal limit")
    with pytest.raises(InvalidInputError) as raised:
        report_dataset(end_of_treatment=ends)
    error = raised.value
    assert (error.field, error.value) == ("end_of_treatment[3].reason", "renal limit")
    assert str([reason.value for reason in EndOfTreatmentReason]) in error.rule


@pytest.mark.parametrize(
    ("table", "column", "value", "allowed"),
    [
        ("assessments", "response", "progression", "'CR', 'PR', 'SD', 'PD', 'NE'"),
        ("follow_up", "status", "deceased", str([status.value for status in VitalStatus])),
    ],
)
def test_every_vocabulary_column_refuses_an_unknown_value(
    table: str, column: str, value: str, allowed: str
) -> None:
    rows = report_tables()[table]
    rows = [rows[0] | {column: value}, *rows[1:]]
    with pytest.raises(InvalidInputError) as raised:
        report_dataset(**{table: rows})
    assert (raised.value.field, raised.value.value) == (f"{table}[1].{column}", value)
    assert allowed in raised.value.rule


def test_arms_are_those_of_the_dataset_protocol() -> None:
    with pytest.raises(InvalidInputError) as raised:
        report_dataset(patients=_replaced("patients", "P01", arm="control"))
    assert (raised.value.field, raised.value.value) == ("patients[1].arm", "control")
    assert "['standard', 'personalized']" in raised.value.rule
    assert "START-01 v1.0" in raised.value.rule
    # a treatment arm of the other randomized arm
    with pytest.raises(InvalidInputError) as raised:
        report_dataset(patients=_replaced("patients", "P01", treatment_arm="dTOC"))
    assert (raised.value.field, raised.value.value) == ("patients[1].treatment_arm", "dTOC")
    assert "['standard']" in raised.value.rule


def test_lost_to_follow_up_is_kept_through_files(tmp_path: Path) -> None:
    follow_up = _replaced("follow_up", "P05", status=VitalStatus.LOST)
    ends = [
        *report_tables()["end_of_treatment"],
        {"trial_id": "P05", "ended_on": "2024-09-01", "reason": "lost_to_follow_up"},
    ]
    write_dataset(report_dataset(follow_up=follow_up, end_of_treatment=ends), tmp_path)
    again = read_dataset(tmp_path)
    assert "lost" in set(again.follow_up["status"])
    assert EndOfTreatmentReason.LOST_TO_FOLLOW_UP in set(again.end_of_treatment["reason"])
