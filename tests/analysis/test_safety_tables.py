"""The DMC's safety tables (issue 16): AEs by SOC and term, SAE and death listings, the eGFR
slope and the blood-count nadirs, on the hand-made dataset (tests/support/datasets.py), counted
by hand; slopes against scipy.stats.linregress; SOCs against the CTCAE v5.0 file's rows."""

from __future__ import annotations

import csv
from datetime import date
from importlib import resources

import pandas as pd
import pytest
from scipy import stats

from startrt.analysis import safety_labs, safety_tables
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.pooled import POOLED
from startrt.analysis.report import ReportKind, TrialReport, build_report
from startrt.analysis.safety import ANY_TERM
from support.datasets import report_dataset, report_tables

FIRST_CYCLE = {  # tests/support/datasets.py _CYCLES
    "P01": date(2024, 2, 1),
    "P02": date(2024, 2, 8),
    "P04": date(2024, 3, 1),
    "P05": date(2024, 3, 20),
    "P06": date(2024, 4, 1),
    "P07": date(2024, 4, 8),
}


@pytest.fixture(scope="module")
def reports() -> dict[ReportKind, TrialReport]:
    return {kind: build_report(report_dataset(), kind=kind) for kind in ReportKind}


def _table(report: TrialReport, name: str) -> pd.DataFrame:
    (table,) = [t for t in report.tables if t.name == name]
    return table.frame


def _ctcae_rows() -> dict[str, str]:
    """term -> SOC, read from the shipped CTCAE v5.0 file itself."""
    text = resources.files("startrt.clinical.data").joinpath("ctcae_v5_terms.csv").read_text()
    return {row["term"]: row["soc"] for row in csv.DictReader(text.splitlines())}


# AEs by SOC and term -------------------------------------------------------------------------

GI, GENERAL, SKIN = (
    "Gastrointestinal disorders",
    "General disorders and administration site conditions",
    "Skin and subcutaneous tissue disorders",
)
PPE = "Palmar-plantar erythrodysesthesia syndrome"


def test_socs_are_those_of_the_ctcae_rows() -> None:
    rows = _ctcae_rows()
    for term in ("Nausea", "Diarrhea", "Fatigue", PPE, "Anemia"):
        assert safety_tables.soc_of(term) == rows[term]
    assert (rows["Nausea"], rows["Fatigue"], rows[PPE]) == (GI, GENERAL, SKIN)
    assert safety_tables.soc_of("Tumour flare") == safety_tables.NOT_CODED


def test_adverse_events_by_soc(report_dataset: TrialDataset) -> None:
    frame = safety_tables.adverse_events_by_soc(report_dataset)
    # SOCs in the CTCAE file's order (GI before General before Skin), terms by patients:
    # Nausea 3 (P01, P02, P04) before Diarrhea 2 (P06, P07)
    order = list(dict.fromkeys(zip(frame["soc"], frame["term"], strict=True)))
    assert order == [
        (GI, ANY_TERM),
        (GI, "Nausea"),
        (GI, "Diarrhea"),
        (GENERAL, ANY_TERM),
        (GENERAL, "Fatigue"),
        (SKIN, ANY_TERM),
        (SKIN, PPE),
    ]
    socs = list(_ctcae_rows().values())
    assert socs.index(GI) < socs.index(GENERAL) < socs.index(SKIN)
    counts = {
        (row.soc, row.term, row.group): (row.n_patients, row.any_grade, row.grade_3_plus)
        for row in frame.itertuples()
    }
    # treated: standard P01 P02; dTOC P04 P05; CAP-dTOC P06 P07 (personalized 4).
    # Treatment-emergent AEs: P01 nausea 1, fatigue 2; P02 nausea 2; P04 nausea 1, 2 (its
    # fatigue of 02-20 is before its first cycle 03-01); P05 fatigue 1; P06 diarrhea 3, PPE 2;
    # P07 diarrhea 4; P03 never treated.
    assert counts[(GI, ANY_TERM, "standard")] == (2, 2, 0)  # P01, P02
    assert counts[(GI, ANY_TERM, "personalized")] == (4, 3, 2)  # P04 P06 P07; >=3 P06 P07
    assert counts[(GI, "Nausea", "personalized")] == (4, 1, 0)  # P04 once, at two grades
    assert counts[(GI, "Diarrhea", "CAP-dTOC")] == (2, 2, 2)
    assert counts[(GI, "Diarrhea", "dTOC")] == (2, 0, 0)
    assert counts[(GENERAL, "Fatigue", "standard")] == (2, 1, 0)  # P01
    assert counts[(GENERAL, "Fatigue", "dTOC")] == (2, 1, 0)  # P05 only, not P04
    assert counts[(SKIN, PPE, "CAP-dTOC")] == (2, 1, 0)  # P06


def test_a_term_outside_ctcae_goes_last_uncoded() -> None:
    events = report_tables()["adverse_events"] + [
        {"trial_id": "P05", "term": "Tumour flare", "grade": 3, "serious": False}
        | {"onset_on": "2024-04-01"}
    ]
    frame = safety_tables.adverse_events_by_soc(report_dataset(adverse_events=events))
    last = frame[frame["soc"] == safety_tables.NOT_CODED]
    assert frame["soc"].iloc[-1] == safety_tables.NOT_CODED
    dtoc = last[last["group"] == "dTOC"].set_index("term")
    assert dtoc.loc["Tumour flare", ["any_grade", "grade_3_plus"]].tolist() == [1, 1]


# SAEs and deaths -----------------------------------------------------------------------------


def test_serious_adverse_event_listing(report_dataset: TrialDataset) -> None:
    frame = safety_tables.serious_adverse_events(report_dataset)
    patients = ["P06", "personalized", "CAP-dTOC"], ["P07", "personalized", "CAP-dTOC"]
    sequelae = "Recovered / resolved with sequelae"
    assert frame.drop(columns="onset_on").values.tolist() == [
        [*patients[0], "Diarrhea", GI, 3, "Possible", "Probable", "Recovered / resolved"],
        [*patients[1], "Diarrhea", GI, 4, "Unlikely", "Definite", sequelae],
    ]
    assert list(frame["onset_on"].dt.date) == [date(2024, 4, 10), date(2024, 6, 25)]


def test_serious_by_soc(report_dataset: TrialDataset) -> None:
    frame = safety_tables.serious_by_soc(report_dataset).set_index("group")
    # randomized: standard P01-P03 (3), personalized P04-P07 (4); SAEs: P06, P07 (GI)
    assert frame.loc["standard", ["n_patients", "events", "patients"]].tolist() == [3, 0, 0]
    assert frame.loc["personalized", ["n_patients", "events", "patients"]].tolist() == [4, 2, 2]


def test_deaths_listing(report_dataset: TrialDataset) -> None:
    frame = safety_tables.deaths(report_dataset)
    # P02: last cycle 2024-04-18 -> 2024-12-01: 12 + 31+30+31+31+30+31+30 + 1 = 227 days
    # P07: last cycle 2024-06-17 -> 2025-03-01: 13 + 31+31+30+31+30+31+31+28 + 1 = 257 days
    assert frame[["trial_id", "arm", "days_after_last_cycle"]].values.tolist() == [
        ["P02", "standard", 227],
        ["P07", "personalized", 257],
    ]
    assert frame["cause"].tolist() == ["disease progression", "infection"]
    assert frame["related_to_treatment"].tolist() == [False, True]


def test_the_open_report_counts_and_lists_no_patient(
    reports: dict[ReportKind, TrialReport],
) -> None:
    names = {t.name for t in reports[ReportKind.OPEN].tables}
    assert "safety_sae_listing" not in names
    deaths = _table(reports[ReportKind.OPEN], "safety_deaths")
    assert list(deaths.columns) == ["randomized_patients", "deaths", "related_deaths"]
    assert deaths.iloc[0].tolist() == [7, 2, 1]  # P02 (unrelated), P07 (related)
    sae = _table(reports[ReportKind.OPEN], "safety_sae_by_soc")
    assert sae[["soc", "n_patients", "events", "patients"]].values.tolist() == [[GI, 7, 2, 2]]
    ae = _table(reports[ReportKind.OPEN], "safety_ae_by_soc").set_index(["soc", "term"])
    # 6 treated; GI: P01, P02, P04 (nausea), P06, P07 (diarrhoea) = 5, grade >= 3: P06, P07
    assert list(ae.columns) == [f"{POOLED} (n=6)"]
    assert ae.loc[(GI, ANY_TERM), f"{POOLED} (n=6)"] == "5 / 2"
    closed = {t.name: t for t in reports[ReportKind.CLOSED].tables}
    for name in ("safety_sae_listing", "safety_deaths", "safety_ae_by_soc", "safety_nadirs"):
        assert not closed[name].listing
        assert closed[name].number > 0
        assert closed[name].section == "Safety"


# eGFR slope ----------------------------------------------------------------------------------

USED_EGFR = {  # the last value on or before the first cycle, then every later one
    "P01": [("2024-01-25", 80.0), ("2024-05-01", 76.0), ("2024-08-01", 72.0)],
    "P02": [("2024-02-01", 70.0), ("2024-05-08", 66.0)],
    "P04": [
        *(("2024-02-26", 90.0), ("2024-03-20", 88.0)),
        *(("2024-06-01", 84.0), ("2024-09-01", 81.0)),
    ],
    "P05": [("2024-03-15", 60.0), ("2024-06-20", 58.0), ("2024-07-10", 57.0)],
    "P06": [("2024-03-28", 75.0), ("2024-07-01", 70.0), ("2024-10-01", 66.0)],
    "P07": [("2024-04-01", 85.0), ("2024-07-08", 80.0)],
}


def _scipy_slope(trial_id: str) -> float:
    points = USED_EGFR[trial_id]
    years = [(date.fromisoformat(d) - FIRST_CYCLE[trial_id]).days / 365.25 for d, _ in points]
    return float(stats.linregress(years, [value for _, value in points]).slope)


def test_egfr_slopes_against_scipy_and_by_hand(report_dataset: TrialDataset) -> None:
    frame = safety_labs.egfr_slopes(report_dataset).set_index("trial_id")
    assert sorted(frame.index) == sorted(USED_EGFR)  # P03 never treated
    for trial_id in USED_EGFR:
        assert frame.loc[trial_id, "egfr_slope_per_year"] == pytest.approx(_scipy_slope(trial_id))
        assert frame.loc[trial_id, "egfr_values"] == len(USED_EGFR[trial_id])
    # P02 by hand: 70 -> 66 over 2024-02-01 .. 05-08 = 29 + 31 + 30 + 7 = 97 days:
    # -4 / (97 / 365.25) = -15.0619 per year
    assert frame.loc["P02", "egfr_slope_per_year"] == pytest.approx(-15.0619, abs=1e-4)
    assert frame.loc["P02", "span_days"] == 97
    # P01: its 82.0 of 01-10 is not the baseline; the 80.0 of 01-25 is
    assert frame.loc["P01", "baseline_egfr_ml_min_173"] == 80.0


def test_egfr_slope_summary(report_dataset: TrialDataset) -> None:
    frame = safety_labs.egfr_slope_summary(report_dataset).set_index("group")
    standard = sorted(_scipy_slope(p) for p in ("P01", "P02"))
    dtoc = sorted(_scipy_slope(p) for p in ("P04", "P05"))
    # two values: median the mean of both, q1 and q3 at 1/4 and 3/4 between them (type 7)
    assert frame.loc["standard", "slope_median"] == pytest.approx(sum(standard) / 2)
    assert frame.loc["dTOC", "slope_q1"] == pytest.approx(dtoc[0] + (dtoc[1] - dtoc[0]) / 4)
    assert frame.loc["dTOC", "slope_q3"] == pytest.approx(dtoc[0] + 3 * (dtoc[1] - dtoc[0]) / 4)
    # every slope loses > 5 a year (the mildest, P05: 60 -> 57 over 117 days, about -8.8)
    assert frame["patients"].tolist() == [2, 4, 2, 2]
    assert frame["rapid_decline"].tolist() == [2, 4, 2, 2]


def test_a_short_or_flat_egfr_record() -> None:
    labs = [
        row
        for row in report_tables()["labs"]
        if not (row["term"] == "egfr" and row["trial_id"] in ("P05", "P07"))
    ]
    egfr = {"term": "egfr", "unit": "ml/min/1.73 m2", "grade": None}
    labs += [  # P05 flat over 100 days; P07 only 30 days apart: no slope
        {"trial_id": "P05", "drawn_on": "2024-03-15", "value": 60.0} | egfr,
        {"trial_id": "P05", "drawn_on": "2024-06-23", "value": 60.0} | egfr,
        {"trial_id": "P07", "drawn_on": "2024-04-01", "value": 85.0} | egfr,
        {"trial_id": "P07", "drawn_on": "2024-05-01", "value": 80.0} | egfr,
    ]
    dataset = report_dataset(labs=labs)
    slopes = safety_labs.egfr_slopes(dataset).set_index("trial_id")
    assert "P07" not in slopes.index
    assert slopes.loc["P05", "egfr_slope_per_year"] == pytest.approx(0.0)
    summary = safety_labs.egfr_slope_summary(dataset).set_index("group")
    # dTOC: P04 (-17.1) and P05 (0.0): one rapid; CAP-dTOC: P06 only
    assert summary.loc["dTOC", ["patients", "rapid_decline"]].tolist() == [2, 1]
    assert summary.loc["CAP-dTOC", ["patients", "rapid_decline"]].tolist() == [1, 1]


# blood-count nadirs --------------------------------------------------------------------------

PLATELETS, NEUTROPHILS = "Platelet count decreased", "Neutrophil count decreased"


def _counts_dataset() -> TrialDataset:
    def lab(trial_id: str, day: str, term: str, value: float, grade: int) -> dict[str, object]:
        return {"trial_id": trial_id, "drawn_on": day, "term": term, "value": value} | {
            "unit": "10^9/L",
            "grade": grade,
        }

    egfr = [row for row in report_tables()["labs"] if row["term"] == "egfr"]
    return report_dataset(
        labs=[
            *egfr,
            lab("P01", "2024-01-20", PLATELETS, 30.0, 4),  # before the first cycle 02-01
            lab("P01", "2024-03-01", PLATELETS, 140.0, 1),
            lab("P01", "2024-05-01", PLATELETS, 45.0, 3),
            lab("P01", "2024-07-01", PLATELETS, 70.0, 2),
            lab("P03", "2024-03-01", PLATELETS, 10.0, 4),  # never treated
            lab("P04", "2024-04-01", PLATELETS, 120.0, 1),
            lab("P04", "2024-08-01", PLATELETS, 20.0, 4),
            lab("P06", "2024-05-01", NEUTROPHILS, 0.9, 3),
            lab("P06", "2024-07-01", NEUTROPHILS, 0.4, 4),
            lab("P07", "2024-05-08", NEUTROPHILS, 1.2, 2),
        ]
    )


def test_nadirs_per_patient() -> None:
    frame = safety_labs.nadirs(_counts_dataset())
    # P01 45 on 05-01, cycle 04-11 before it: 20 days; P04 20 on 08-01, cycle 07-19: 13 days;
    # P06 0.4 on 07-01, cycle 06-10: 21 days; P07 1.2 on 05-08, cycle 04-08: 30 days
    assert frame[["trial_id", "term", "nadir", "grade", "days_from_cycle"]].values.tolist() == [
        ["P01", PLATELETS, 45.0, 3, 20],
        ["P04", PLATELETS, 20.0, 4, 13],
        ["P06", NEUTROPHILS, 0.4, 4, 21],
        ["P07", NEUTROPHILS, 1.2, 2, 30],
    ]


def test_a_nadir_without_a_grade_keeps_none() -> None:
    """The lowest value has no grade recorded: its row's empty grade, not the next value's."""
    labs = [
        {"trial_id": "P05", "drawn_on": day, "term": PLATELETS, "value": value}
        | {"unit": "10^9/L", "grade": grade}
        for day, value, grade in (("2024-04-20", 80.0, 1), ("2024-05-20", 50.0, None))
    ]
    frame = safety_labs.nadirs(report_dataset(labs=labs))
    # P05's last cycle before 05-20 is 03-20 (the next is 05-29): 61 days
    assert frame[["trial_id", "nadir", "days_from_cycle"]].values.tolist() == [["P05", 50.0, 61]]
    assert pd.isna(frame["grade"].iloc[0])


def test_nadir_summary() -> None:
    frame = safety_labs.nadir_summary(_counts_dataset()).set_index(["term", "group"])
    columns = ["patients", "nadir_median", "nadir_min", "nadir_max", "grade_3_plus"]
    assert frame.loc[(PLATELETS, "standard"), columns].tolist() == [1, 45.0, 45.0, 45.0, 1]
    assert frame.loc[(PLATELETS, "dTOC"), columns].tolist() == [1, 20.0, 20.0, 20.0, 1]
    assert frame.loc[(PLATELETS, "CAP-dTOC"), "patients"] == 0
    # personalized neutrophils: P06 0.4 (grade 4), P07 1.2 (grade 2): median (0.4 + 1.2) / 2
    neutrophils = frame.loc[(NEUTROPHILS, "personalized")]
    assert neutrophils[columns].tolist() == pytest.approx([2, 0.8, 0.4, 1.2, 1])
    assert neutrophils["days_from_cycle_median"] == (21 + 30) / 2
    assert set(frame["unit"]) == {"10^9/L"}
    assert set(frame.index.get_level_values("term")) == {PLATELETS, NEUTROPHILS}


@pytest.mark.parametrize(("last_day", "sloped"), [("2024-06-12", False), ("2024-06-13", True)])
def test_the_slope_needs_90_days(last_day: str, sloped: bool) -> None:
    """P05's two values 89 days apart (03-15 + 16 + 30 + 31 + 12 = 06-12) give no slope; 90 do."""
    labs = [row for row in report_tables()["labs"] if row["trial_id"] != "P05"]
    egfr = {"trial_id": "P05", "term": "egfr", "unit": "ml/min/1.73 m2", "grade": None}
    labs += [
        egfr | {"drawn_on": "2024-03-15", "value": 60.0},
        egfr | {"drawn_on": last_day, "value": 55.0},
    ]
    slopes = safety_labs.egfr_slopes(report_dataset(labs=labs)).set_index("trial_id")
    assert ("P05" in slopes.index) is sloped
    if sloped:  # -5 over 90 days: -5 x 365.25 / 90 = -20.2917 a year
        assert slopes.loc["P05", "egfr_slope_per_year"] == pytest.approx(-20.2917, abs=1e-4)
