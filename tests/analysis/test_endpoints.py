"""PFS and OS derivation: each censoring rule on a hand-made patient, days counted by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from startrt.analysis import endpoints as ep
from startrt.analysis.survival import kaplan_meier
from startrt.protocol.definition import Protocol, default_protocol
from startrt.validation import InvalidInputError

# The datasets name START-01 v1.0: assessments every 12 weeks (84 days), so death more than
# 168 days after the last adequate assessment follows two or more missed assessments.


def every(weeks: int) -> Protocol:
    """The default protocol with tumour assessments every `weeks` weeks."""
    data = default_protocol().model_dump(by_alias=True)
    data["assessments"] = {"interval_weeks": weeks}
    return Protocol.model_validate(data)


def one_patient(outcome_dataset: Any, **tables: Any) -> pd.Series:
    dataset = outcome_dataset({"P1": {}}, **tables)
    frame = ep.survival_endpoints(dataset)
    assert list(frame["trial_id"]) == ["P1"]
    row: pd.Series = frame.iloc[0]
    return row


def pfs(row: pd.Series) -> tuple[int, bool, str]:
    return int(row["pfs_days"]), bool(row["pfs_event"]), str(row["pfs_censoring"])


def test_recist_progression_is_an_event(outcome_dataset: Any) -> None:
    row = one_patient(outcome_dataset, assessments=[("P1", 84, "SD"), ("P1", 170, "PD")])
    assert pfs(row) == (170, True, ep.PROGRESSION_BY_RECIST)


def test_earlier_progression_at_follow_up_wins(outcome_dataset: Any) -> None:
    row = one_patient(
        outcome_dataset,
        assessments=[("P1", 84, "SD"), ("P1", 170, "PD")],
        follow_up=[("P1", 160, "alive", 150)],
    )
    assert pfs(row) == (150, True, ep.PROGRESSION_AT_FOLLOW_UP)


def test_progression_before_death_is_the_event(outcome_dataset: Any) -> None:
    row = one_patient(outcome_dataset, assessments=[("P1", 84, "PD")], deaths=[("P1", 120)])
    assert pfs(row) == (84, True, ep.PROGRESSION_BY_RECIST)
    assert (row["os_days"], row["os_event"]) == (120, True)


@pytest.mark.parametrize(
    ("death_day", "expected"),
    [
        (100, (100, True, ep.DEATH)),
        (84 + 168, (252, True, ep.DEATH)),  # exactly two intervals: still an event
        (84 + 169, (84, False, ep.DEATH_AFTER_MISSED)),  # two missed assessments
    ],
)
def test_death_without_progression(outcome_dataset: Any, death_day: int, expected: Any) -> None:
    row = one_patient(outcome_dataset, assessments=[("P1", 84, "SD")], deaths=[("P1", death_day)])
    assert pfs(row) == expected
    assert (row["os_days"], row["os_event"]) == (death_day, True)


def test_not_evaluable_assessments_are_not_adequate(outcome_dataset: Any) -> None:
    # Last adequate assessment day 84; NE on 168 and 252 do not count, so death on day 260 is
    # 176 days after it: censored at 84.
    row = one_patient(
        outcome_dataset,
        assessments=[("P1", 84, "PR"), ("P1", 168, "NE"), ("P1", 252, "NE")],
        deaths=[("P1", 260)],
    )
    assert pfs(row) == (84, False, ep.DEATH_AFTER_MISSED)


@pytest.mark.parametrize(
    ("death_day", "expected"),
    [(168, (168, True, ep.DEATH)), (169, (0, False, ep.DEATH_AFTER_MISSED))],
)
def test_death_without_any_assessment(outcome_dataset: Any, death_day: int, expected: Any) -> None:
    row = one_patient(outcome_dataset, deaths=[("P1", death_day)])
    assert pfs(row) == expected


def test_alive_without_progression_is_censored_at_last_adequate_assessment(
    outcome_dataset: Any,
) -> None:
    row = one_patient(
        outcome_dataset,
        assessments=[("P1", 84, "SD"), ("P1", 168, "PR"), ("P1", 250, "NE")],
        follow_up=[("P1", 400, "alive", None)],
        visits=[("P1", 420, "follow_up")],
    )
    assert pfs(row) == (168, False, ep.LAST_ADEQUATE_ASSESSMENT)
    # OS: censored at the last date known alive, the visit on day 420.
    assert (row["os_days"], row["os_event"]) == (420, False)


def test_without_adequate_assessment_pfs_is_censored_at_randomization(
    outcome_dataset: Any,
) -> None:
    row = one_patient(
        outcome_dataset, assessments=[("P1", 84, "NE")], follow_up=[("P1", 90, "alive", None)]
    )
    assert pfs(row) == (0, False, ep.NO_ADEQUATE_ASSESSMENT)
    assert (row["os_days"], row["os_event"]) == (90, False)


def test_assessments_before_randomization_are_ignored(outcome_dataset: Any) -> None:
    row = one_patient(outcome_dataset, assessments=[("P1", -5, "PD"), ("P1", 0, "PD")])
    assert pfs(row) == (0, False, ep.NO_ADEQUATE_ASSESSMENT)


def test_progression_after_missed_assessments_still_counts(outcome_dataset: Any) -> None:
    row = one_patient(outcome_dataset, assessments=[("P1", 84, "SD"), ("P1", 500, "PD")])
    assert pfs(row) == (500, True, ep.PROGRESSION_BY_RECIST)


def test_other_assessment_interval(outcome_dataset: Any) -> None:
    dataset = outcome_dataset({"P1": {}}, assessments=[("P1", 56, "SD")], deaths=[("P1", 200)])
    # 56-day interval: death 144 days after the last assessment is more than 112 days.
    frame = ep.survival_endpoints(dataset, every(8))
    assert pfs(frame.iloc[0]) == (56, False, ep.DEATH_AFTER_MISSED)
    assert pfs(ep.survival_endpoints(dataset).iloc[0]) == (200, True, ep.DEATH)
    assert any("112 days" in rule for rule in ep.endpoint_rules(every(8)))


def test_frame_has_one_row_per_randomized_patient(outcome_dataset: Any) -> None:
    dataset = outcome_dataset(
        {
            "P1": {"arm": "standard", "stratum": "A"},
            "P2": {"arm": "personalized", "treatment_arm": "CAP-dTOC", "stratum": "B"},
            "P3": {"randomized": False},
        },
        assessments=[("P1", 84, "PD"), ("P2", 84, "SD")],
        deaths=[("P2", 100)],
    )
    frame = ep.survival_endpoints(dataset)
    assert list(frame.columns) == list(ep.COLUMNS)
    assert list(frame["trial_id"]) == ["P1", "P2"]
    assert list(frame["treatment_arm"]) == ["standard", "CAP-dTOC"]
    assert list(frame["stratum"]) == ["A", "B"]
    assert frame["pfs_event"].dtype == bool
    assert frame["os_days"].dtype == "int64"
    assert str(frame["randomized_on"].iloc[0].date()) == "2024-01-01"
    # The frame feeds the survival functions directly.
    km = kaplan_meier(frame["pfs_days"], frame["pfs_event"])
    assert list(km.time_days) == [0.0, 84.0, 100.0]


def test_endpoint_rules_name_the_limits() -> None:
    rules = ep.endpoint_rules(default_protocol())
    text = " ".join(rules)
    assert "168 days" in text
    assert "84 days" in text
    assert all(rule.endswith(".") for rule in rules)


@pytest.mark.parametrize(
    ("tables", "field"),
    [
        ({"deaths": [("P1", -3)]}, "deaths.died_on"),
        ({"deaths": [("P1", 30), ("P1", 40)]}, "deaths.trial_id"),
        ({"follow_up": [("P1", 30, "dead", None)]}, "follow_up.status"),
    ],
)
def test_inconsistent_records_are_refused(
    outcome_dataset: Any, tables: dict[str, Any], field: str
) -> None:
    dataset = outcome_dataset({"P1": {}}, **tables)
    with pytest.raises(InvalidInputError) as error:
        ep.survival_endpoints(dataset)
    assert error.value.field == field


def test_randomized_patient_without_arm_is_refused(outcome_dataset: Any) -> None:
    with pytest.raises(InvalidInputError, match="randomized without arm") as error:
        ep.survival_endpoints(outcome_dataset({"P1": {}, "P2": {"arm": ""}}))
    assert error.value.field == "patients.arm"


def records(
    deaths: list[float],
    assessments: dict[int, list[tuple[float, str]]],
    follow_up: dict[int, list[float]],
) -> ep.TumourRecords:
    """Flat records from {patient index: [(day, response), ...]} and {patient: [days]}."""
    rows = [(p, day, response) for p, seen in assessments.items() for day, response in seen]
    found = [(p, day) for p, days in follow_up.items() for day in days]
    return ep.TumourRecords(
        death_days=np.array(deaths, dtype=np.float64),
        assessment_patients=np.array([p for p, _, _ in rows], dtype=np.int64),
        assessment_days=np.array([day for _, day, _ in rows], dtype=np.float64),
        assessment_responses=np.array([r for _, _, r in rows], dtype=np.str_),
        follow_up_patients=np.array([p for p, _ in found], dtype=np.int64),
        follow_up_progression_days=np.array([day for _, day in found], dtype=np.float64),
    )


def test_array_form_applies_every_rule_at_once() -> None:
    """The cases of the tests above as one call of the array form the dataset form uses."""
    inf = np.inf
    given = records(
        [inf, 120.0, 100.0, 253.0, inf, inf, inf],
        {
            0: [(84, "SD"), (170, "PD")],
            1: [(84, "PD")],
            3: [(84, "SD")],
            4: [(84, "SD"), (168, "PR"), (250, "NE")],
            5: [(84, "NE")],
            6: [(84, "SD"), (170, "PD")],
        },
        {0: [-3], 6: [150]},
    )
    result = ep.progression_free_survival(given, 84)
    assert list(result.days) == [170, 84, 100, 84, 168, 0, 150]
    assert list(result.event) == [True, True, True, False, False, False, True]
    assert [ep.PFS_RULES[r] for r in result.rule] == [
        ep.PROGRESSION_BY_RECIST,
        ep.PROGRESSION_BY_RECIST,
        ep.DEATH,
        ep.DEATH_AFTER_MISSED,
        ep.LAST_ADEQUATE_ASSESSMENT,
        ep.NO_ADEQUATE_ASSESSMENT,
        ep.PROGRESSION_AT_FOLLOW_UP,
    ]


def test_protocol_names_the_interval_and_a_missing_one_is_refused() -> None:
    assert default_protocol().assessments.interval_days == 84
    data = default_protocol().model_dump(by_alias=True)
    del data["assessments"]
    with pytest.raises(ValueError, match="assessments"):
        Protocol.model_validate(data)
    with pytest.raises(ValueError, match="interval_weeks"):
        every(1)


@pytest.mark.parametrize("interval", [0, 7, 400, 84.0, True])
def test_bad_assessment_interval_is_refused(interval: Any) -> None:
    with pytest.raises(InvalidInputError, match="assessment_interval_days"):
        ep.progression_free_survival(records([np.inf], {}, {}), interval)
