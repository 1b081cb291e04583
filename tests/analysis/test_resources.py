"""Resource demands and costs of the hand-made dataset (tests/support/datasets.py), counted by
hand from its tables; unit-cost files validated."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from startrt.analysis.costs import UnitCosts, read_unit_costs
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.groups import dataset_protocol
from startrt.analysis.resources import (
    costs_per_group,
    costs_per_patient,
    resources_per_group,
    resources_per_patient,
    visits_by_kind,
)
from startrt.validation import InvalidInputError

# Per randomized patient, from the builder's cycles, dispensings and visits:
#        cycles  GBq  infusions sessions visits in-patient tablets_500 tablets_150  mg
EXPECTED = {
    "P01": (4, 30.0, 4, 4, 9, 4.0, 0, 0, 0),
    "P02": (2, 15.0, 2, 2, 5, 3.0, 0, 0, 0),
    "P03": (0, 0.0, 0, 0, 2, 0.0, 0, 0, 0),
    "P04": (5, 33.0, 5, 15, 10, 5.0, 0, 0, 0),  # 4 x 7.5 + 3.0
    "P05": (3, 22.5, 3, 9, 7, 3.0, 0, 0, 0),
    "P06": (4, 28.0, 4, 12, 8, 5.0, 336, 112, 184800),  # 336 x 500 + 112 x 150 mg
    "P07": (2, 15.0, 2, 3, 5, 5.0, 140, 56, 78400),  # 140 x 500 + 56 x 150 mg
}
COLUMNS = (
    "cycles",
    "activity_gbq",
    "infusions",
    "dosimetry_sessions",
    "visits",
    "inpatient_days",
    "tablets_500",
    "tablets_150",
    "capecitabine_mg",
)


def test_per_patient(report_dataset: TrialDataset) -> None:
    frame = resources_per_patient(report_dataset).set_index("trial_id")
    assert sorted(frame.index) == sorted(EXPECTED)  # randomized only: not P08-P10
    for trial_id, values in EXPECTED.items():
        assert tuple(frame.loc[trial_id, list(COLUMNS)]) == pytest.approx(values), trial_id


def test_an_empty_cycle_is_not_an_infusion(report_dataset: TrialDataset) -> None:
    cycles = report_dataset.cycles.copy()
    cycles.loc[0, "activity_gbq"] = 0.0  # P01 cycle 1 given no activity
    dataset = replace(report_dataset, cycles=cycles)
    frame = resources_per_patient(dataset).set_index("trial_id")
    assert (frame.loc["P01", "cycles"], frame.loc["P01", "infusions"]) == (4, 3)


def _row(frame: pd.DataFrame, group: str, measure: str) -> dict[str, object]:
    rows = frame[(frame["group"] == group) & (frame["measure"] == measure)]
    assert len(rows) == 1
    return dict(rows.iloc[0])


def test_per_group(report_dataset: TrialDataset) -> None:
    table = resources_per_group(
        resources_per_patient(report_dataset), dataset_protocol(report_dataset)
    )
    # standard P01-P03: cycles 4, 2, 0 -> total 6, mean 2, median 2
    standard_cycles = _row(table, "standard", "cycles")
    assert (standard_cycles["total"], standard_cycles["n"]) == (6, 3)
    assert (standard_cycles["mean"], standard_cycles["median"]) == (2.0, 2.0)
    assert (standard_cycles["min"], standard_cycles["max"]) == (0.0, 4.0)
    # personalized GBq: 33 + 22.5 + 28 + 15 = 98.5, mean 24.625; median (22.5 + 28) / 2
    gbq = _row(table, "personalized", "activity_gbq")
    assert (gbq["total"], gbq["mean"], gbq["median"]) == pytest.approx((98.5, 24.625, 25.25))
    expected_totals = {
        ("standard", "activity_gbq"): 45.0,
        ("standard", "dosimetry_sessions"): 6,
        ("standard", "visits"): 16,  # 9 + 5 + 2
        ("standard", "inpatient_days"): 7.0,
        ("personalized", "dosimetry_sessions"): 39,  # 15 + 9 + 12 + 3
        ("personalized", "visits"): 30,  # 10 + 7 + 8 + 5
        ("personalized", "inpatient_days"): 18.0,
        ("personalized", "tablets_500"): 476,
        ("personalized", "capecitabine_mg"): 263200,
        ("dTOC", "cycles"): 8,
        ("dTOC", "activity_gbq"): 55.5,
        ("dTOC", "capecitabine_mg"): 0,
        ("CAP-dTOC", "cycles"): 6,
        ("CAP-dTOC", "tablets_150"): 168,
        ("CAP-dTOC", "inpatient_days"): 10.0,
    }
    for (group, measure), total in expected_totals.items():
        assert _row(table, group, measure)["total"] == pytest.approx(total), (group, measure)


def test_visits_by_kind(report_dataset: TrialDataset) -> None:
    table = visits_by_kind(report_dataset)
    standard = table[table["group"] == "standard"].set_index("kind")
    # screening P01-P03; cycles 4 + 2; assessments 3 + 1; one follow-up contact each
    assert standard["visits"].to_dict() == {
        "assessment": 4,
        "cycle": 6,
        "follow_up": 3,
        "screening": 3,
    }
    assert standard["patients"].to_dict() == {
        "assessment": 2,
        "cycle": 2,
        "follow_up": 3,
        "screening": 3,
    }


# Costs (SEK): 20000 per GBq, 3000 per dosimetry session, 5000 per in-patient day, 0.01 per mg:
COSTS = {
    "P01": 632000.0,  # 30 x 20000 + 4 x 3000 + 4 x 5000
    "P02": 321000.0,  # 15 x 20000 + 2 x 3000 + 3 x 5000
    "P03": 0.0,
    "P04": 730000.0,  # 33 x 20000 + 15 x 3000 + 5 x 5000
    "P05": 492000.0,  # 22.5 x 20000 + 9 x 3000 + 3 x 5000
    "P06": 622848.0,  # 28 x 20000 + 12 x 3000 + 5 x 5000 + 184800 x 0.01
    "P07": 334784.0,  # 15 x 20000 + 3 x 3000 + 5 x 5000 + 78400 x 0.01
}


def test_costs(report_dataset: TrialDataset, report_unit_costs: Path) -> None:
    costs = read_unit_costs(report_unit_costs)
    assert costs.currency == "SEK"
    per_patient = costs_per_patient(resources_per_patient(report_dataset), costs)
    assert per_patient.set_index("trial_id")["cost"].to_dict() == pytest.approx(COSTS)
    assert per_patient.set_index("trial_id").loc["P06", "cost_capecitabine_mg"] == 1848.0
    per_group = costs_per_group(per_patient, dataset_protocol(report_dataset)).set_index("group")
    assert per_group.loc["standard", "total"] == pytest.approx(953000.0)
    assert per_group.loc["standard", "mean"] == pytest.approx(953000.0 / 3)
    assert per_group.loc["personalized", "total"] == pytest.approx(2179632.0)
    # personalized median: (492000 + 622848) / 2
    assert per_group.loc["personalized", "median"] == pytest.approx(557424.0)
    assert per_group.loc["CAP-dTOC", "total"] == pytest.approx(957632.0)
    assert set(per_group["currency"]) == {"SEK"}


def test_csv_costs_equal_toml(tmp_path: Path, report_unit_costs: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_text(
        "measure,cost_per_unit,currency\nactivity_gbq,20000,SEK\ndosimetry_sessions,3000,SEK\n"
        "inpatient_days,5000,SEK\ncapecitabine_mg,0.01,SEK\n",
        encoding="utf-8",
    )
    from_csv, from_toml = read_unit_costs(path), read_unit_costs(report_unit_costs)
    assert (from_csv.currency, dict(from_csv.cost_per_unit)) == (
        from_toml.currency,
        dict(from_toml.cost_per_unit),
    )


TOML_HEAD = 'currency = "SEK"\n[cost_per_unit]\n'


@pytest.mark.parametrize(
    ("text", "field", "value", "rule"),
    [
        (TOML_HEAD + "gbq = 5\n", "cost_per_unit.gbq", 5, "unknown measure"),
        (TOML_HEAD + "visits = -1\n", "cost_per_unit.visits", -1, "must lie in [0, 1e+08] SEK"),
        (TOML_HEAD + "visits = 2e9\n", "cost_per_unit.visits", 2e9, "must lie in"),
        (TOML_HEAD + "visits = inf\n", "cost_per_unit.visits", float("inf"), "must lie in"),
        (TOML_HEAD + 'visits = "900"\n', "cost_per_unit.visits", "900", "must be a number"),
        (TOML_HEAD + "visits = true\n", "cost_per_unit.visits", True, "must be a number"),
        ("[cost_per_unit]\nvisits = 1\n", "currency", None, "ISO 4217"),
        ('currency = "sek"\n[cost_per_unit]\nvisits = 1\n', "currency", "sek", "ISO 4217"),
        (TOML_HEAD, "cost_per_unit", {}, "at least one measure"),
        ('currency = "SEK"\n', "cost_per_unit", None, "must be a table"),
        (TOML_HEAD + "visits = 1\n[extra]\n", "extra", {}, "not a unit-cost setting"),
    ],
)
def test_bad_toml(tmp_path: Path, text: str, field: str, value: object, rule: str) -> None:
    path = tmp_path / "costs.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError) as raised:
        read_unit_costs(path)
    assert raised.value.field == field
    assert raised.value.value == value
    assert rule in raised.value.rule


CSV_HEAD = "measure,cost_per_unit,currency\n"


@pytest.mark.parametrize(
    ("text", "field", "rule"),
    [
        (CSV_HEAD + "visits,1,SEK\ncycles,2,EUR\n", "currency", "same on every row"),
        (CSV_HEAD + 'visits,"1,5",SEK\n', "cost_per_unit.visits", "must be a number"),
        (CSV_HEAD + "visits,1,SEK\nvisits,2,SEK\n", "line 3.measure", "given twice"),
        ("item,cost,currency\nvisits,1,SEK\n", "columns", "must be ['measure'"),
        (CSV_HEAD, "currency", "ISO 4217"),
        (CSV_HEAD + "visits,-3,SEK\n", "cost_per_unit.visits", "must lie in"),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, field: str, rule: str) -> None:
    path = tmp_path / "costs.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError) as raised:
        read_unit_costs(path)
    assert (raised.value.field, rule in raised.value.rule) == (field, True)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot be read"):
        read_unit_costs(tmp_path / "missing.toml")
    (tmp_path / "costs.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"must be a \.toml or \.csv file"):
        read_unit_costs(tmp_path / "costs.json")
    (tmp_path / "broken.toml").write_text("currency = ", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="is not valid TOML"):
        read_unit_costs(tmp_path / "broken.toml")


def test_unit_costs_are_a_value(report_unit_costs: Path) -> None:
    costs = read_unit_costs(report_unit_costs)
    assert isinstance(costs, UnitCosts)
    assert dict(costs.cost_per_unit) == {
        "activity_gbq": 20000.0,
        "dosimetry_sessions": 3000.0,
        "inpatient_days": 5000.0,
        "capecitabine_mg": 0.01,
    }
