"""The report of the hand-made dataset (tests/support/datasets.py): its numbers against hand
calculations, its figures, and the HTML, CSV and JSON written from it (the PDF and the page in
Chromium: test_report_browser.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from startrt.analysis.costs import read_unit_costs
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.efficacy import DAYS_PER_MONTH, comparisons, fdg_level, km_summary
from startrt.analysis.endpoints import survival_endpoints
from startrt.analysis.report import TrialReport, build_report
from startrt.analysis.report_files import (
    css_text,
    display,
    render_html,
    report_json,
    table_csv,
    write_report,
)
from startrt.analysis.trial_protocol import protocol_of
from startrt.protocol.definition import default_protocol
from startrt.validation import InvalidInputError
from support.datasets import report_dataset as make_report_dataset
from support.datasets import report_tables

SVG = "{http://www.w3.org/2000/svg}"
FIGURES = {
    "km_pfs_arm",
    "km_pfs_treatment_arm",
    "km_os_arm",
    "toxicity",
    "kidney_dose",
    "egfr",
    "cycles_per_patient",
    "forest_pfs",
    "interim_boundary",
}


@pytest.fixture(scope="module")
def report_built(tmp_path_factory: pytest.TempPathFactory) -> TrialReport:
    costs = tmp_path_factory.mktemp("costs") / "costs.toml"
    costs.write_text(
        'currency = "SEK"\n[cost_per_unit]\nactivity_gbq = 20000\ndosimetry_sessions = 3000\n'
        "inpatient_days = 5000\ncapecitabine_mg = 0.01\n",
        encoding="utf-8",
    )
    return build_report(
        make_report_dataset(), unit_costs=read_unit_costs(costs), generated_on=date(2026, 1, 5)
    )


def _table(report: TrialReport, name: str) -> pd.DataFrame:
    (table,) = [table for table in report.tables if table.name == name]
    return table.frame


def _svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    return ["".join(node.itertext()).strip() for node in root.iter(f"{SVG}text")]


def test_metadata(report_built: TrialReport) -> None:
    assert (report_built.protocol, report_built.cut_off) == ("START-01 v1.0", date(2025, 12, 31))
    assert report_built.source == "hand-made test data"
    assert report_built.consort.randomized == 7
    assert report_built.notes == ()


def test_every_figure_is_svg(report_built: TrialReport) -> None:
    assert {figure.name for figure in report_built.figures} == FIGURES
    for figure in report_built.figures:
        assert _svg_texts(figure.svg), figure.name


def test_numbers_at_risk_under_the_km_curve(report_built: TrialReport) -> None:
    (figure,) = [f for f in report_built.figures if f.name == "km_pfs_arm"]
    texts = _svg_texts(figure.svg)
    start = texts.index("months since randomization")
    # at 0 and 6 months (182.6 days): standard 3 then 1 (only P01's 291 days); personalized
    # 4 and 4 (PFS 203, 204, 277, 333 days)
    assert texts[start + 1 : start + 7] == ["standard", "personalized", "3", "1", "4", "4"]
    assert "numbers at risk" in texts


def test_kidney_figure_draws_the_limit(report_built: TrialReport) -> None:
    (figure,) = [f for f in report_built.figures if f.name == "kidney_dose"]
    assert "limit 30 Gy" in _svg_texts(figure.svg)


def test_km_summary_by_hand() -> None:
    endpoints = survival_endpoints(make_report_dataset())
    table = km_summary(endpoints, default_protocol()).set_index(["endpoint", "group"])
    # standard PFS: P03 censored at day 0, P02 progresses at 107 (S = 1/2), P01 censored 291
    assert table.loc[("pfs", "standard"), "median_months"] == pytest.approx(107 / DAYS_PER_MONTH)
    # personalized: 203 event (3/4), 204 censored, 277 event (3/4 x 1/2 = 3/8 <= 1/2)
    assert table.loc[("pfs", "personalized"), "median_months"] == pytest.approx(
        277 / DAYS_PER_MONTH
    )
    assert table.loc[("pfs", "personalized"), "events"] == 2
    # OS: P02 died day 314 of 3 at risk (S = 2/3 at 12 months); no median
    assert table.loc[("os", "standard"), "survival_12m"] == pytest.approx(2 / 3)
    assert pd.isna(table.loc[("os", "standard"), "median_months"])
    # tau: the shortest of the groups' longest PFS, CAP-dTOC's 277 days; dTOC never drops
    # below 1 before 203 days: RMST = 203 + (277 - 203) x 1/2 = 240 days
    assert table.loc[("pfs", "dTOC"), "tau_months"] == pytest.approx(277 / DAYS_PER_MONTH)
    assert table.loc[("pfs", "dTOC"), "rmst_months"] == pytest.approx(240 / DAYS_PER_MONTH)


def test_comparisons_by_hand() -> None:
    table = comparisons(survival_endpoints(make_report_dataset()), default_protocol())
    rows = table.set_index(["endpoint", "population", "analysis"])
    everyone = ("pfs", "all randomized")
    # PFS events at 107 (standard; at risk 2 standard + 4 personalized), 203 (personalized;
    # 1 + 4) and 277 (personalized; 1 + 2): E = 4/6 + 4/5 + 2/3 = 32/15 for personalized, which
    # had O = 2; V = 2/9 + 4/25 + 2/9 = 136/225; chi2 = (2/15)^2 / (136/225) = 1/34
    assert rows.loc[(*everyone, "log-rank chi2"), "statistic"] == pytest.approx(1 / 34)
    # stratified by the randomization stratum: Lund;fdg=positive, P02's event at 107 with P02
    # and P06 at risk: O = 0, E = 1/2, V = 1/4 for personalized; Uppsala;fdg=negative (P05 at
    # 203, P03 censored at 0) and Stockholm (P07) have one patient at risk: O = E = 1, V = 0;
    # Lund;fdg=negative no event. chi2 = (2 - 2.5)^2 / 0.25 = 1
    assert rows.loc[(*everyone, "stratified log-rank chi2"), "statistic"] == pytest.approx(1.0)
    assert rows.loc[(*everyone, "Cox hazard ratio"), "estimate"] > 0
    not_estimable = rows.loc[("os", "dTOC stratum (FDG-PET negative)", "log-rank chi2"), "note"]
    assert str(not_estimable).startswith("not estimable:")  # no death in the stratum
    assert set(table["population"]) == {
        "all randomized",
        "dTOC stratum (FDG-PET negative)",
        "CAP-dTOC stratum (FDG-PET positive)",
    }
    stratum = rows.loc[("pfs", "dTOC stratum (FDG-PET negative)", "log-rank chi2")]
    assert stratum["patients"] == 4  # P01, P03 standard; P04, P05 dTOC


def test_fdg_level() -> None:
    assert fdg_level("site=Lund;fdg=positive") == "positive"
    assert fdg_level("site=Lund") is None
    assert fdg_level(None) is None


def test_response_and_safety_tables_are_in(report_built: TrialReport) -> None:
    response = _table(report_built, "efficacy_response").set_index(["grouping", "group"])
    # personalized best responses: P04 PR, P05 SD, P06 CR, P07 SD -> ORR 2/4
    assert response.loc[("arm", "personalized"), "orr"] == 0.5
    rates = _table(report_built, "safety_grade_3_4")
    diarrhea = rates[(rates["term"] == "Diarrhea") & (rates["group"] == "CAP-dTOC")]
    assert list(diarrhea["patients"]) == [2]


def test_sample_size(report_built: TrialReport) -> None:
    table = _table(report_built, "sample_size").set_index(["hazard_ratio", "power"])
    # Schoenfeld, 1:1, two-sided 5 %, 80 %: HR 0.60 -> 121, 0.75 -> 380 (REFERENCE.md)
    assert table.loc[(0.60, 0.8), "events_schoenfeld"] == 121
    assert table.loc[(0.75, 0.8), "events_schoenfeld"] == 380
    # 3 PFS events so far (P02, P05, P07)
    assert table.loc[(0.60, 0.8), "information_fraction"] == pytest.approx(3 / 121)


def test_costs_in_the_report(report_built: TrialReport) -> None:
    per_group = _table(report_built, "costs_per_group").set_index("group")
    # tests/analysis/test_resources.py: standard 632000 + 321000 + 0
    assert per_group.loc["standard", "total"] == pytest.approx(953000.0)
    assert "Cost per group (SEK)" in {table.title for table in report_built.tables}


def test_html_has_the_numbers(report_built: TrialReport) -> None:
    html = render_html(report_built)
    assert 'id="cut-off">2025-12-31<' in html
    assert 'id="protocol-version">START-01 v1.0<' in html
    assert html.count('<img alt="') == len(FIGURES)
    assert "Screened (n=10)" in html
    assert "953\u202f000" in html  # the standard arm's total cost
    assert "<script" not in html
    listing_only = "Resource use per patient"
    assert listing_only not in html  # per-patient listings go to CSV / JSON only


def test_csv_and_json_hold_the_same_numbers(report_built: TrialReport, tmp_path: Path) -> None:
    files = write_report(report_built, tmp_path, pdf=False)
    assert {file.name for file in files} >= {"report.html", "report.json", "consort.csv"}
    assert not (tmp_path / "report.pdf").exists()
    resources = pd.read_csv(tmp_path / "tables" / "resources_per_patient.csv")
    assert resources.set_index("trial_id").loc["P06", "capecitabine_mg"] == 184800
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["cut_off"] == "2025-12-31"
    assert data["protocol"] == "START-01 v1.0"
    assert data["consort"]["arms"][1]["discontinued_reasons"] == {"toxicity": 1}
    for table in report_built.tables:
        rows = data["tables"][table.name]["rows"]
        assert len(rows) == len(table.frame), table.name
        on_disk = pd.read_csv(tmp_path / "tables" / f"{table.name}.csv")
        assert list(on_disk.columns) == [str(c) for c in table.frame.columns], table.name
    limit_rows = data["tables"]["safety_patients_at_limit"]["rows"]
    assert [row["trial_id"] for row in limit_rows] == ["P01", "P04", "P06"]
    km = {(r["endpoint"], r["group"]): r for r in data["tables"]["efficacy_kaplan_meier"]["rows"]}
    assert km[("os", "standard")]["median_months"] is None  # NaN written as null


def test_csv_dates_are_iso(report_built: TrialReport) -> None:
    (table,) = [t for t in report_built.tables if t.name == "efficacy_endpoints"]
    assert "2024-01-15" in table_csv(table)


def test_unknown_protocol_falls_back_with_a_note() -> None:
    report = build_report(replace(make_report_dataset(), protocol="OTHER-9 v2"))
    assert report.protocol == "OTHER-9 v2"
    assert "not shipped" in report.notes[0]
    assert "START-01 v1.0" in report.notes[0]


def test_protocol_named_by_label_or_file() -> None:
    assert protocol_of("START-01_v1.0.toml").protocol.label == "START-01 v1.0"
    choice = protocol_of("START-01 v1.0")
    assert (choice.protocol.version, choice.note) == ("1.0", None)


def test_a_trial_without_randomized_patients() -> None:
    tables = report_tables()
    patients = [
        row | {"randomized_on": None, "arm": None, "treatment_arm": None, "stratum": None}
        for row in tables["patients"]
    ]
    screened_only = {"patients": patients, "visits": tables["visits"][:10]}
    empty = {name: [] for name in tables if name not in screened_only}
    dataset: TrialDataset = make_report_dataset(**screened_only, **empty)
    report = build_report(dataset)
    assert report.figures == ()
    assert report.consort.randomized == 0
    assert "Screened (n=10)" in render_html(report)
    json.loads(report_json(report))


def test_unwritable_out(report_built: TrialReport, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(InvalidInputError) as raised:
        write_report(report_built, blocker / "out", pdf=False)
    assert raised.value.field == "--out"
    assert not (blocker / "out").exists()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (float("nan"), "-"),
        (pd.NA, "-"),
        (np.int64(3), "3"),
        (953000.0, "953\u202f000"),
        (1234.56, "1\u202f235"),
        (29.3, "29.3"),
        (0.158114, "0.158"),
        (0.000123456, "0.000123"),
        (pd.Timestamp("2024-01-15"), "2024-01-15"),
        (date(2024, 1, 15), "2024-01-15"),
        (True, "yes"),
        (np.bool_(False), "no"),
        ("Anemia", "Anemia"),
    ],
)
def test_display(value: object, text: str) -> None:
    assert display(value) == text


def test_css_text() -> None:
    assert str(css_text("START-01 v1.0")) == "START-01 v1.0"
    assert str(css_text('a"b\\c')) == "a\\22 b\\5C c"
