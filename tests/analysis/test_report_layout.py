"""The report's layout (issue 16, items 4, 7 and 8): headers for people with units, numbered
tables and figures with a contents list, tables that fit their printed page, the CONSORT
arrows, the toxicity and kidney-dose figures, and the open report (arms pooled) beside the
closed one (by arm)."""

from __future__ import annotations

import base64
import itertools
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pypdfium2 as pdfium
import pytest
import weasyprint
from typer.testing import CliRunner

from startrt import fields
from startrt.analysis import consort
from startrt.analysis.consort_diagram import CHARACTER_WIDTH, PADDING, consort_layout, fitted
from startrt.analysis.costs import read_unit_costs
from startrt.analysis.dataset import read_dataset
from startrt.analysis.figures import OVER_LIMIT_COLOUR, kidney_dose_drawing, toxicity_labels
from startrt.analysis.pooled import POOLED, pooled_flow
from startrt.analysis.report import (
    SECTIONS,
    ReportKind,
    ReportTable,
    TrialReport,
    build_report,
)
from startrt.analysis.report_files import (
    PORTRAIT,
    TableLayout,
    heading,
    print_layout,
    render_html,
    report_json,
    shown,
    table_pieces,
    write_report,
)
from startrt.analysis.safety import cumulative_doses
from startrt.cli import app
from startrt.protocol.definition import default_protocol
from startrt.simulation.parameters import default_parameters_text
from support.datasets import report_dataset, report_tables

ARM_NAMES = ("standard", "personalized", "dTOC", "CAP-dTOC")
ARM_WORD = re.compile(r"(?<![\w-])(standard|personalized|Personalized|Standard|dTOC|CAP-dTOC)\b")
# columns whose label derived from the name was read and found right (checked here by hand)
DERIVED = {
    "trial_id": "Trial ID",
    "endpoint": "Endpoint",
    "group": "Group",
    "patients": "Patients",
    "events": "Events",
    "population": "Population",
    "analysis": "Analysis",
    "statistic": "Statistic",
    "estimate": "Estimate",
    "note": "Note",
    "CR": "CR",
    "PR": "PR",
    "SD": "SD",
    "PD": "PD",
    "NE": "NE",
    "source": "Source",
    "grade_1": "Grade 1",
    "grade_2": "Grade 2",
    "grade_3": "Grade 3",
    "grade_4": "Grade 4",
    "grade_5": "Grade 5",
    "any_grade": "Any grade",
    "rate": "Rate",
    "month": "Month",
    "mean": "Mean",
    "median": "Median",
    "organ": "Organ",
    "limit_gy": "Limit (Gy)",
    "cycles": "Cycles",
    "cycle": "Cycle",
    "kidney_dose_gy": "Kidney dose (Gy)",
    "kidney_doses_missing": "Kidney doses missing",
    "marrow_dose_gy": "Marrow dose (Gy)",
    "marrow_doses_missing": "Marrow doses missing",
    "measure": "Measure",
    "total": "Total",
    "kind": "Kind",
    "stage": "Stage",
    "visits": "Visits",
    "deviations": "Deviations",
    "description": "Description",
    "reason": "Reason",
    "recorded_on": "Recorded on",
    "signed_by": "Signed by",
    "signed_on": "Signed on",
    "hazard_ratio": "Hazard ratio",
    "power": "Power",
    "observed_events": "Observed events",
    "information_fraction": "Information fraction",
    "nominal_p": "Nominal p",
    "cost_per_unit": "Cost per unit",
    "currency": "Currency",
    "term": "CTCAE term",
    "subgroup": "Subgroup",
    "level": "Level",
    "patients_personalized": "Patients personalized",
    "events_personalized": "Events personalized",
    "patients_standard": "Patients standard",
    "events_standard": "Events standard",
    "b_value": "B value",
    "crosses": "Crosses",
    "required_events": "Required events",
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[ReportKind, TrialReport]:
    costs = tmp_path_factory.mktemp("costs") / "costs.toml"
    costs.write_text(
        'currency = "SEK"\n[cost_per_unit]\nactivity_gbq = 20000\ndosimetry_sessions = 3000\n',
        encoding="utf-8",
    )
    unit_costs = read_unit_costs(costs)
    return {
        kind: build_report(
            report_dataset(), unit_costs=unit_costs, generated_on=date(2026, 1, 5), kind=kind
        )
        for kind in ReportKind
    }


def _table(report: TrialReport, name: str) -> pd.DataFrame:
    (table,) = [table for table in report.tables if table.name == name]
    return table.frame


# headers -------------------------------------------------------------------------------------


def test_every_shown_column_has_a_label(reports: dict[ReportKind, TrialReport]) -> None:
    unlabelled = set()
    for report in reports.values():
        for table in report.tables:  # every table the HTML and PDF show
            for column in map(str, table.frame.columns if not table.listing else ()):
                if not (" " in column or fields.is_registered(column) or column in DERIVED):
                    unlabelled.add((table.name, column))
    assert sorted(unlabelled) == []
    assert {name: fields.label(name) for name in DERIVED} == DERIVED


def test_headers_are_labels_with_units(reports: dict[ReportKind, TrialReport]) -> None:
    html = render_html(reports[ReportKind.CLOSED])
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    assert headers
    assert not [header for header in headers if "_" in header]
    for expected in (
        "RMST SE (months)",
        "Median (months)",
        "Objective responses (patients)",
        "Limit (Gy)",
        "Survival at 12 months",
        "Events needed (Schoenfeld) (events)",
    ):
        assert f">{expected}</th>" in html, expected
    assert heading("true cumulative > limit") == "true cumulative > limit"


@pytest.mark.parametrize(
    ("value", "column", "text"),
    [
        ("activity_gbq", "measure", "Activity (GBq)"),
        ("adverse_event", "source", "reported AE"),
        ("lab", "source", "laboratory"),
        ("follow_up", "kind", "Follow up"),
        ("treatment_arm", "grouping", "Treatment arm"),
        ("P01", "trial_id", "P01"),
        (3.14159, "mean", "3.14"),
        ("10^9/L", "unit", "10\u2079/L"),
        ("ml/min/1.73 m2", "unit", "mL/min/1.73 m\u00b2"),
        ("g/L", "unit", "g/L"),
    ],
)
def test_cells_for_people(value: object, column: str, text: str) -> None:
    assert shown(value, column) == text


def test_csv_and_json_keep_the_machine_names(
    reports: dict[ReportKind, TrialReport], tmp_path: Path
) -> None:
    report = reports[ReportKind.CLOSED]
    write_report(report, tmp_path, pdf=False)
    header = (tmp_path / "tables" / "efficacy_kaplan_meier.csv").read_text().splitlines()[0]
    assert '"rmst_se_months"' in header
    rows = json.loads((tmp_path / "report.json").read_text())["tables"]["efficacy_response"]
    assert "orr_n" in rows["rows"][0]
    assert any("machine names" in rule for rule in report.rules)


# numbering and contents ----------------------------------------------------------------------


def test_tables_and_figures_are_numbered_in_page_order(
    reports: dict[ReportKind, TrialReport],
) -> None:
    for report in reports.values():
        html = render_html(report)
        shown = [t for t in report.tables if not t.listing]
        assert [t.number for t in shown] == list(range(1, len(shown) + 1))
        assert {t.number for t in report.tables if t.listing} <= {0}
        assert [f.number for f in report.figures] == list(range(2, len(report.figures) + 2))
        captions = re.findall(r"<h3 id=\"table-[^\"]+\">Table (\d+)\.", html)
        assert [int(n) for n in captions] == [t.number for t in shown]
        figures = re.findall(r"<figcaption>Figure (\d+)\.", html)
        assert [int(n) for n in figures] == list(range(1, len(report.figures) + 2))
        # every contents entry links to an element of the page
        targets = re.findall(r'<nav class="contents".*?</nav>', html, re.S)[0]
        for target in re.findall(r'href="#([^"]+)"', targets):
            assert f'id="{target}"' in html, target
        data = json.loads(report_json(report))
        assert {name: t["number"] for name, t in data["tables"].items()} == {
            t.name: (t.number or None) for t in report.tables
        }
        assert [f["number"] for f in data["figures"]] == list(range(1, len(report.figures) + 2))


# wide tables ---------------------------------------------------------------------------------


def test_table_pieces_repeat_the_key_columns() -> None:
    frame = pd.DataFrame(
        {"endpoint": ["pfs"], "group": ["a"], **{f"v{index}": [index] for index in range(5)}}
    )
    table = ReportTable("t", "Efficacy", "t", frame)
    assert [list(p.columns) for p in table_pieces(table, PORTRAIT)] == [list(frame.columns)]
    pieces = table_pieces(table, TableLayout(True, 2))
    assert [list(p.columns) for p in pieces] == [
        ["endpoint", "group", "v0", "v1", "v2"],
        ["endpoint", "group", "v3", "v4"],
    ]
    numbers = pd.DataFrame({f"v{index}": [index] for index in range(3)})
    pieces = table_pieces(ReportTable("n", "Efficacy", "n", numbers), TableLayout(True, 2))
    assert [list(p.columns) for p in pieces] == [["v0", "v1"], ["v0", "v2"]]
    # text in every column (Table 1's cells): the table names its two key columns
    text = pd.DataFrame({"item": ["Sex"], "level": ["female"], "a": ["1 (50 %)"], "b": ["2"]})
    pieces = table_pieces(ReportTable("x", "Efficacy", "x", text, keys=2), TableLayout(True, 2))
    assert [list(p.columns) for p in pieces] == [["item", "level", "a"], ["item", "level", "b"]]
    # without keys, all-text columns still leave a column to split
    pieces = table_pieces(ReportTable("x", "Efficacy", "x", text), TableLayout(True, 2))
    assert [list(p.columns) for p in pieces] == [["item", "level", "a", "b"]]


def test_wider_layouts() -> None:
    assert PORTRAIT.wider() == TableLayout(landscape=True, pieces=1)
    assert PORTRAIT.wider().wider() == TableLayout(landscape=True, pieces=2)


MARGIN_PT = 12 * 72 / 25.4 - 1  # the pages' 12 mm side margins, less a point


def _outside(pdf: bytes) -> list[tuple[int, float, float]]:
    """(page, left, right) of the PDF's page objects (pypdfium2: text, table rules, figures;
    top level, whose bounds are in page space) reaching into a side margin."""
    document = pdfium.PdfDocument(pdf)
    outside = []
    for index in range(len(document)):
        page = document[index]
        width, _ = page.get_size()
        for item in page.get_objects(max_depth=0):
            left, _, right, _ = item.get_bounds()
            if left < MARGIN_PT or right > width - MARGIN_PT:
                outside.append((index + 1, left, right))
    return outside


def _pdf_text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


def test_a_table_too_wide_for_landscape_is_split(reports: dict[ReportKind, TrialReport]) -> None:
    frame = pd.DataFrame(
        {"group": ["all"], **{f"measurement_{index}_gy": [1234.5] for index in range(40)}}
    )
    wide = ReportTable("wide", "Safety", "Forty doses", frame, number=1)
    report = replace(reports[ReportKind.CLOSED], tables=(wide,), figures=())
    unfitted = weasyprint.HTML(string=render_html(report)).write_pdf()
    assert _outside(unfitted)  # in portrait, in one piece, the table leaves its page
    html, pdf = print_layout(report)
    parts = re.findall(r"Table 1, part (\d+) of (\d+)", html)
    assert len(parts) >= 2
    assert 'class="table-block landscape"' in html
    assert _outside(pdf) == []
    text = _pdf_text(pdf)
    for index in range(40):  # every column's header on some page
        assert f"Measurement {index} (Gy)" in text.replace("\r\n", " ").replace("\n", " ")
    assert text.count("Group") == len(parts)  # the key column repeated in every piece


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated trial of 60 patients (`startrt simulate`), its dataset folder."""
    folder = tmp_path_factory.mktemp("simulated")
    parameters = folder / "parameters.toml"
    parameters.write_text(default_parameters_text().replace("patients = 300", "patients = 60"))
    args = ["simulate", "--replicates", "1", "--seed", "3", "--serial", "--out", str(folder)]
    result = CliRunner().invoke(app, [*args, "--parameters", str(parameters)])
    assert result.exit_code == 0, result.output
    return folder / "dataset"


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(ReportKind))
def test_every_table_of_a_simulated_trial_fits_its_page(
    simulated: Path, kind: ReportKind, tmp_path: Path
) -> None:
    report = build_report(read_dataset(simulated), kind=kind)
    write_report(report, tmp_path)
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert _outside(pdf) == []
    text = " ".join(_pdf_text(pdf).split())
    for column in _table(report, "efficacy_kaplan_meier").columns:  # incl. the RMST columns
        assert heading(column) in text, column
    for section in SECTIONS:  # every section of a DMC report, with its tables
        assert section in text, section
    shown = {table.name for table in report.tables if not table.listing}
    by_patient = {"safety_sae_listing", "protocol_deviations"}  # the closed report's
    expected = {"baseline_arm", "exposure_per_patient", "exposure_counts", "safety_ae_by_soc"}
    expected |= {"safety_sae_by_soc", "safety_deaths", "safety_egfr_slope", "safety_nadirs"}
    if kind is ReportKind.CLOSED:
        expected |= by_patient
    else:
        assert not by_patient & shown
    assert expected <= shown
    assert "Not eligible" in text
    assert "(inclusion:" in text
    document = pdfium.PdfDocument(pdf)
    for index in range(len(document)):  # pages for people, for the eye
        document[index].render(scale=0.6).to_pil().save(tmp_path / f"page-{index + 1}.png")


# CONSORT diagram -----------------------------------------------------------------------------


def _flow() -> consort.ConsortFlow:
    return consort.consort_flow(report_dataset())


@pytest.mark.parametrize("pooled", [False, True])
def test_consort_arrows_leave_box_borders_and_boxes_do_not_overlap(pooled: bool) -> None:
    flow = pooled_flow(_flow()) if pooled else _flow()
    layout = consort_layout(flow)
    for first, second in itertools.combinations(layout.boxes, 2):
        apart = (
            first.x + first.width <= second.x
            or second.x + second.width <= first.x
            or first.bottom <= second.y
            or second.bottom <= first.y
        )
        assert apart, (first.lines, second.lines)
    vertical = [a for a in layout.arrows if a.x1 == a.x2]
    for arrow in layout.arrows:
        assert not any(box.contains(arrow.x1, arrow.y1) for box in layout.boxes), arrow
        assert any(box.on_border(arrow.x2, arrow.y2) for box in layout.boxes), arrow
        on_a_box = any(box.on_border(arrow.x1, arrow.y1) for box in layout.boxes)
        on_a_line = any(line.x1 == arrow.x1 and line.y1 < arrow.y1 < line.y2 for line in vertical)
        assert on_a_box or on_a_line, arrow
    # the "Not eligible" arrow: between the Screened and the Eligible boxes (issue 16)
    screened, eligible = layout.boxes[0], layout.boxes[1]
    side = next(a for a in layout.arrows if a.y1 == a.y2)
    assert screened.bottom < side.y1 < eligible.y
    assert "Not eligible (n=1)" in layout.boxes[2].lines
    for box in layout.boxes:  # every line of text inside its box
        for line in box.lines:
            assert 2 * PADDING + 14 + len(line.strip()) * CHARACTER_WIDTH <= box.width + 14


def test_long_consort_lines_are_wrapped() -> None:
    assert fitted(("  Toxicity (including pre-cycle laboratory values): n=1",), 320) == (
        "  Toxicity (including pre-cycle laboratory",
        "    values): n=1",
    )
    assert fitted(("Progression imaging before screening (inclusion: in [1, 24]): n=7",), 320) == (
        "Progression imaging before screening",
        "  (inclusion: in [1, 24]): n=7",
    )
    assert fitted(("Died (n=1)",), 320) == ("Died (n=1)",)


# figures -------------------------------------------------------------------------------------


def test_toxicity_labels_name_their_source() -> None:
    rows = pd.DataFrame(
        {
            "source": ["lab", "adverse_event", "lab"],
            "term": ["Neutrophil count decreased"] * 3,
            "group": ["standard", "standard", "dTOC"],
        }
    )
    assert toxicity_labels(rows, pooled=False) == [
        "Neutrophil count decreased (laboratory), standard",
        "Neutrophil count decreased (reported AE), standard",
        "Neutrophil count decreased (laboratory), dTOC",
    ]
    assert toxicity_labels(rows.iloc[:2], pooled=True) == [
        "Neutrophil count decreased (laboratory)",
        "Neutrophil count decreased (reported AE)",
    ]


def test_toxicity_figure_has_no_two_identical_labels(
    reports: dict[ReportKind, TrialReport],
) -> None:
    for report in reports.values():
        (figure,) = [f for f in report.figures if f.name == "toxicity"]
        root = ET.fromstring(figure.svg.encode("utf-8"))
        texts = [
            "".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")
        ]
        labels = [t for t in texts if "(laboratory)" in t or "(reported AE)" in t]
        assert labels
        assert len(labels) == len(set(labels))


@pytest.mark.parametrize("groups", [("standard", "dTOC", "CAP-dTOC"), (POOLED,)])
def test_kidney_figure_legend_covers_no_line_and_marks_the_patient_over(
    groups: tuple[str, ...],
) -> None:
    cumulative = cumulative_doses(report_dataset())
    if groups == (POOLED,):
        cumulative = cumulative.assign(treatment_arm=POOLED)
    figure = kidney_dose_drawing(cumulative, 30.0, default_protocol(), groups)
    figure.canvas.draw()
    (axis,) = figure.axes
    legend = axis.get_legend()
    legend_box = legend.get_window_extent()
    assert not legend_box.overlaps(axis.get_window_extent())  # outside the plotting area
    # P01: 8 + 8 + 8 + 8.5 = 32.5 Gy > 30 Gy; P04 reaches 30.0 Gy exactly: not over
    black = [line for line in axis.get_lines() if line.get_color() == OVER_LIMIT_COLOUR]
    over = [line for line in black if len(line.get_xdata())]
    assert [list(line.get_ydata()) for line in over] == [[8.0, 16.0, 24.0, 32.5]]
    names = [text.get_text() for text in axis.texts]
    assert names == ([] if groups == (POOLED,) else ["P01"])
    assert "patient over the limit" in [text.get_text() for text in legend.get_texts()]


# open and closed reports ---------------------------------------------------------------------


def _svg_texts(html: str) -> str:
    return " ".join(
        base64.b64decode(data).decode("utf-8")
        for data in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html)
    )


def test_the_open_report_names_no_arm(
    reports: dict[ReportKind, TrialReport], tmp_path: Path
) -> None:
    report = reports[ReportKind.OPEN]
    write_report(report, tmp_path, pdf=False)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    texts = {
        "html": re.sub(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+", "", html),
        "figures": _svg_texts(html),
        "json": (tmp_path / "report.json").read_text(encoding="utf-8"),
        **{p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "tables").glob("*.csv")},
    }
    for name, text in texts.items():
        assert ARM_WORD.findall(text) == [], name
    # the closed report, by contrast, names them
    closed = render_html(reports[ReportKind.CLOSED])
    assert set(ARM_NAMES) <= set(ARM_WORD.findall(closed))


def test_the_open_report_pools_the_arms(reports: dict[ReportKind, TrialReport]) -> None:
    report = reports[ReportKind.OPEN]
    names = {table.name for table in report.tables}
    assert "efficacy_comparisons" not in names  # no comparison of the arms
    assert not [table.name for table in report.tables if table.listing and table.name != "consort"]
    assert "safety_patients_at_limit" not in names  # names patients with their doses
    # by hand: allocated 3 standard + 4 personalized; PFS events P02, P05, P07
    (arm,) = report.consort.arms
    assert (arm.arm, arm.allocated, arm.treated, arm.discontinued) == (POOLED, 7, 6, 2)
    km = _table(report, "efficacy_kaplan_meier").set_index("endpoint")
    assert (km.loc["pfs", "group"], km.loc["pfs", "patients"], km.loc["pfs", "events"]) == (
        POOLED,
        7,
        3,
    )
    # cycles: standard 4 + 2 + 0, personalized 5 + 3 + 4 + 2
    resources = _table(report, "resources_per_group").set_index("measure")
    assert resources.loc["cycles", "total"] == 20
    # best responses PR PD NE | PR SD CR SD: ORR 3/7, DCR 5/7
    response = _table(report, "efficacy_response")
    assert list(response.columns[:2]) == ["group", "n"]
    assert (response.loc[0, "orr_n"], response.loc[0, "dcr_n"], response.loc[0, "n"]) == (3, 5, 7)
    figures = {figure.name for figure in report.figures}
    assert figures == {
        "km_pfs_arm",
        "km_os_arm",
        "toxicity",
        "kidney_dose",
        "egfr",
        "cycles_per_patient",
    }


def test_each_report_is_marked_on_its_title_page(reports: dict[ReportKind, TrialReport]) -> None:
    marks = {
        ReportKind.OPEN: "OPEN REPORT \u2014 arms pooled",
        ReportKind.CLOSED: "CLOSED REPORT \u2014 for the DMC only",
    }
    for kind, report in reports.items():
        html = render_html(report)
        assert f'id="marking">{marks[kind]}</p>' in html
        assert json.loads(report_json(report))["marking"] == marks[kind]


@pytest.mark.slow
def test_the_open_pdf_names_no_arm(reports: dict[ReportKind, TrialReport]) -> None:
    report = reports[ReportKind.OPEN]
    _, pdf = print_layout(report)
    first = pdfium.PdfDocument(pdf)[0].get_textpage().get_text_range()
    assert "OPEN REPORT \u2014 arms pooled" in first
    assert ARM_WORD.findall(_pdf_text(pdf)) == []


def test_an_open_report_without_randomized_patients() -> None:
    tables = report_tables()
    patients = [
        row | {"randomized_on": None, "arm": None, "treatment_arm": None, "stratum": None}
        for row in tables["patients"]
    ]
    screened_only = {"patients": patients, "visits": tables["visits"][:10]}
    empty = {name: [] for name in tables if name not in screened_only}
    report = build_report(report_dataset(**screened_only, **empty), kind=ReportKind.OPEN)
    (arm,) = report.consort.arms
    assert (arm.arm, arm.allocated, report.figures) == (POOLED, 0, ())
    assert "Screened (n=10)" in render_html(report)
