"""The kidney-dose panel of the treatment page on a hand-built course (two 7.4 GBq cycles,
3.86/4.12 Gy then 4.10/4.50 Gy, the planner's proposal for cycle 3): the table's numbers worked
by hand, the chart's axes, cycle numbers, data labels, limit and predicted point, and the flag
of a cumulative at or over the 30 Gy limit of START-01 v1.0 (the mean of both kidneys)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.test import Client
from playwright.sync_api import expect

from startrt.protocol import definition
from startrt.web.pages.kidney_dose import KidneyDosePanel, kidney_dose_panel, proposal_reasoning
from startrt.web.treatment import services
from startrt.web.treatment.models import PlanProposal
from startrt.web.trial.models import Patient
from support.protocols import SHIPPED_FILE, amended_text
from web.test_browser import Screenshots, chromium_page, sign_in
from web.test_treatment import Sites, Staff, accepted, give, planned_cycle, randomized


def given(team: Staff, patient: Patient, left_gy: float, right_gy: float, **sd: float) -> None:
    cycle = give(team, planned_cycle(team, patient), 7.4)
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=left_gy, right_kidney_dose_gy=right_gy, **sd
    )


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    """Two 7.4 GBq cycles (the first with its dose uncertainties), then the proposal for 3."""
    patient = randomized(team, sites, 1)  # dTOC
    given(team, patient, 3.86, 4.12, left_kidney_dose_sd_gy=0.39, right_kidney_dose_sd_gy=0.41)
    given(team, patient, 4.10, 4.50)
    services.propose_next_cycle(team["physicist"], patient)
    return patient


def rendered(panel: KidneyDosePanel) -> str:
    return render_to_string("pages/kidney_dose.html", {"kidney": panel})


def test_the_table_worked_by_hand(patient: Patient) -> None:
    panel = kidney_dose_panel(patient)
    assert panel.headings == (
        "Cycle",
        "Activity (GBq)",
        "Left kidney dose (Gy)",
        "Right kidney dose (Gy)",
        "Left kidney (Gy/GBq)",
        "Right kidney (Gy/GBq)",
        "Cumulative left kidney dose (Gy)",
        "Cumulative right kidney dose (Gy)",
        "Cumulative mean kidney dose (Gy)",
        "Of the limit (%)",
        "Remaining kidney budget (Gy)",
    )
    # Gy/GBq 3.86 / 7.4 = 0.522, 4.12 / 7.4 = 0.557; mean (3.86 + 4.12) / 2 = 3.99 Gy = 13.3 %
    # of 30 Gy; then 4.10 / 7.4 = 0.554, 4.50 / 7.4 = 0.608; cumulative 7.96 and 8.62 Gy, mean
    # 8.29 Gy = 27.63 %, 21.71 Gy left
    first, second = panel.rows
    assert first[:4] == ("1", "7.4", "3.86 ± 0.39", "4.12 ± 0.41")
    assert first[4:] == ("0.52", "0.56", "3.86", "4.12", "3.99", "13.3", "26.01")
    assert second[:4] == ("2", "7.4", "4.10", "4.50")
    assert second[4:] == ("0.55", "0.61", "7.96", "8.62", "8.29", "27.6", "21.71")
    # cycle 3 at 7.5 GBq: cycle 2's mean 4.30 Gy / 7.4 GBq = 0.581 Gy/GBq -> 4.358 Gy;
    # total 12.648 Gy = 42.16 % of 30 Gy, 17.352 Gy left
    prediction = panel.prediction
    assert prediction is not None
    assert (prediction.cycle, prediction.status, prediction.activity) == (3, "proposed", "7.5")
    assert (prediction.added, prediction.rate, prediction.cumulative) == ("4.36", "0.58", "12.65")
    assert (prediction.percent, prediction.remaining) == ("42.2", "17.35")
    assert prediction.interval is not None
    assert prediction.probability == "< 0.1 %"
    assert panel.flag is None
    assert panel.reasoning is not None
    assert panel.reasoning.startswith(
        "Cycle 3: 7.5 GBq proposed (full activity). Cumulative mean-kidney dose 8.29 Gy of 30 Gy;"
        " predicted for 7.5 GBq: 4.36 Gy at 0.58 Gy/GBq (cycle 2's), total 12.65 Gy; remaining "
        "budget after the cycle 17.35 Gy."
    )


def test_the_chart_has_axes_cycle_numbers_data_labels_the_limit_and_the_prediction(
    patient: Patient,
) -> None:
    panel = kidney_dose_panel(patient)
    html = rendered(panel)
    svg = re.search(r"<svg id=\"kidney-dose\".*?</svg>", html, re.S)
    assert svg is not None
    chart = svg.group()
    assert 'role="img"' in chart
    label = re.search(r'aria-label="([^"]*)"', chart)
    assert label is not None
    assert label.group(1) == (
        "Cumulative kidney dose per cycle against the 30 Gy limit. Mean-kidney dose: cycle 1 "
        "3.99 Gy, cycle 2 8.29 Gy. Left kidney: cycle 1 3.86 Gy, cycle 2 7.96 Gy. Right kidney: "
        "cycle 1 4.12 Gy, cycle 2 8.62 Gy. Predicted after cycle 3 (7.5 GBq): 12.65 Gy."
    )
    # the y axis covers 30 Gy x 1.08 in steps of 10 Gy (5 Gy would need 7 steps)
    y_ticks = re.findall(r'text-anchor="end">(\d+)</text>', chart)
    assert y_ticks == ["0", "10", "20", "30", "40"]
    assert re.findall(r'class="cycle-tick"[^>]*>(\d+)</text>', chart) == ["1", "2", "3"]
    data_labels = re.findall(r'class="data-label"[^>]*>([^<]+)</text>', chart)
    assert data_labels == ["3.99", "8.29", "12.65 predicted"]
    assert ">Limit 30 Gy</text>" in chart
    assert re.search(r'<g class="predicted">\s*<line [^>]*stroke-dasharray="5 4"', chart)
    assert ">Cumulative dose (Gy)</text>" in chart
    assert ">Cycle</text>" in chart
    # the legend sits under the x axis title, below every point
    assert panel.chart is not None
    lowest_point = max(p.y for series in panel.chart.series for p in series.points)
    legend = re.search(r'class="legend" transform="translate\(0 (\d+)\)"', chart)
    assert legend is not None
    assert lowest_point <= panel.chart.bottom < panel.chart.bottom + 36 < int(legend.group(1))
    # the table is the text alternative, with the predicted row
    assert '<tr class="predicted-row" id="kidney-predicted">' in html
    assert "3.86 ± 0.39" in html


@pytest.mark.parametrize(
    ("second_gy", "flag"),
    [
        (14.99, None),
        (
            15.0,
            "Cumulative mean-kidney dose 30.00 Gy has reached the 30 Gy limit (100.0 %): no "
            "budget is left for another cycle",
        ),
        (15.25, "Cumulative mean-kidney dose 30.25 Gy exceeds the 30 Gy limit (100.8 %)"),
    ],
)
def test_a_cumulative_at_or_over_the_limit_is_flagged(
    team: Staff, sites: Sites, second_gy: float, flag: str | None
) -> None:
    patient = randomized(team, sites, 1)
    given(team, patient, 15.0, 15.0)
    given(team, patient, second_gy, second_gy)
    services.propose_next_cycle(team["physicist"], patient)
    panel = kidney_dose_panel(patient)
    assert panel.flag == flag
    html = rendered(panel)
    if flag is None:
        assert 'id="kidney-flag"' not in html
        return
    assert f'role="alert" id="kidney-flag">{flag}</p>' in html
    assert html.count('class="over-limit"') == 1  # cycle 2's row
    assert panel.prediction is None  # the planner stops
    assert panel.reasoning is not None
    assert "no further cycle proposed (stop)" in panel.reasoning


def test_a_kidney_over_the_limit_under_a_mean_limit_is_named(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    given(team, patient, 15.2, 14.0)
    given(team, patient, 15.2, 14.0)
    panel = kidney_dose_panel(patient)
    assert panel.flag is None  # the mean, 29.2 Gy, keeps the limit
    assert panel.notes == (
        "The left kidney's cumulative dose 30.40 Gy is at or over 30 Gy; the limit reads the "
        "mean of both kidneys (29.20 Gy).",
    )


def test_the_treatment_page_shows_the_panel(client: Client, team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    given(team, patient, 15.0, 15.0)
    given(team, patient, 15.25, 15.25)
    user: User = team["physicist"]
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    html = client.get(f"/patients/{patient.trial_id}/treatment/").content.decode()
    assert "Cumulative mean-kidney dose 30.25 Gy exceeds the 30 Gy limit (100.8 %)" in html
    assert 'id="kidney-dose"' in html
    assert 'class="kidney-table"' in html


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_panel_in_chromium(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    within = randomized(team, sites, 1)
    given(team, within, 3.86, 4.12, left_kidney_dose_sd_gy=0.39, right_kidney_dose_sd_gy=0.41)
    given(team, within, 4.10, 4.50)
    services.propose_next_cycle(team["physicist"], within)
    over = randomized(team, sites, 2)
    given(team, over, 15.0, 15.0)
    given(team, over, 15.25, 15.25)
    services.propose_next_cycle(team["physicist"], over)
    with chromium_page() as page:
        screenshot = Screenshots(page, tmp_path)
        sign_in(page, live_server.url, "physicist.lund")
        page.goto(f"{live_server.url}/patients/S01-LUN-001/treatment/")
        expect(page.locator("#kidney-dose")).to_be_visible()
        expect(page.locator("#kidney-flag")).to_have_count(0)
        expect(page.locator("#kidney-predicted")).to_contain_text("12.65")
        page.locator("#kidney").screenshot(path=tmp_path / "kidney_within.png")
        screenshot("treatment_within")
        page.goto(f"{live_server.url}/patients/S01-LUN-002/treatment/")
        expect(page.locator("#kidney-flag")).to_have_text(
            "Cumulative mean-kidney dose 30.25 Gy exceeds the 30 Gy limit (100.8 %)"
        )
        page.locator("#kidney").screenshot(path=tmp_path / "kidney_over.png")
        screenshot("treatment_over")
        screenshot.check_written()


def test_the_reasoning_shown_is_the_current_proposals(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    proposal = services.propose_next_cycle(team["physicist"], patient)
    panel = kidney_dose_panel(patient)
    assert (panel.rows, panel.chart, panel.prediction) == ((), None, None)
    assert panel.reasoning is not None
    assert panel.reasoning.startswith("Cycle 1: 7.5 GBq proposed (full activity). First cycle")
    assert "No cycle with kidney dosimetry yet." in rendered(panel)
    cycle = accepted(team, proposal)
    assert kidney_dose_panel(patient).reasoning == panel.reasoning  # accepted, not yet given
    give(team, cycle, 7.4)
    assert kidney_dose_panel(patient).reasoning is None  # given: its dosimetry is awaited
    assert proposal_reasoning(PlanProposal.objects.get(pk=proposal.pk)) == panel.reasoning


def test_a_plan_of_a_protocol_version_no_longer_shipped_has_no_reasoning(
    team: Staff, sites: Sites
) -> None:
    patient = randomized(team, sites, 1)
    proposal = services.propose_next_cycle(team["physicist"], patient)
    PlanProposal.objects.filter(pk=proposal.pk).update(
        plan={**proposal.plan, "protocol": "START-01 v0.9"}
    )
    assert proposal_reasoning(PlanProposal.objects.get(pk=proposal.pk)) is None
    assert kidney_dose_panel(patient).reasoning is None


def test_under_a_worse_kidney_limit_one_kidney_over_is_flagged(
    team: Staff, sites: Sites, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "protocols"
    folder.mkdir()
    worse = amended_text(
        ('kidney = "mean"', 'kidney = "worse"'), version="1.0", effective_date=date(2022, 11, 1)
    )
    (folder / SHIPPED_FILE).write_text(worse, encoding="utf-8")
    monkeypatch.setattr(definition, "PROTOCOL_FOLDER", folder)
    patient = randomized(team, sites, 1)
    # left 15.2 + 15.2 = 30.4 Gy over 30 Gy, right 14 + 14 = 28 Gy (mean 29.2 Gy)
    given(team, patient, 15.2, 14.0)
    given(team, patient, 15.2, 14.0)
    panel = kidney_dose_panel(patient)
    assert panel.flag == (
        "Cumulative worse-kidney dose (left kidney) 30.40 Gy exceeds the 30 Gy limit (101.3 %)"
    )
    assert panel.notes == ()
    assert panel.headings[8] == "Cumulative worse kidney dose (Gy)"
    assert [row[8:] for row in panel.rows] == [
        ("15.20", "50.7", "14.80"),
        ("30.40", "101.3", "-0.40"),
    ]
    # both kidneys' lines are labelled: the higher above its point, the lower below
    chart = rendered(panel)
    assert re.findall(r'class="data-label"[^>]*>([^<]+)</text>', chart) == [
        "15.20",
        "30.40",
        "14.00",
        "28.00",
    ]
