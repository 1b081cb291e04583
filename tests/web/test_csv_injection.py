"""Spreadsheet formula (CSV) injection: text a spreadsheet would run as a formula comes out of
every CSV meant for people (the CSV export, the per-patient audit CSV, the report's tables)
with a leading single quote; numbers stay numbers (OWASP CSV Injection)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.analysis.report import ReportTable
from startrt.analysis.report_files import table_csv
from startrt.spreadsheet_safe import safe_cell
from startrt.web.events import services
from startrt.web.events.models import AdverseEvent
from startrt.web.exports.csv_export import export_csv
from web.conftest import Randomized
from web.test_events import adverse_event

Staff = dict[str, User]
PAYLOADS = [
    '=HYPERLINK("http://x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]
OTHER = "Gastrointestinal disorders - Other, specify"


def test_text_cells_are_neutralised_and_numbers_are_not() -> None:
    for payload in PAYLOADS:
        assert safe_cell(payload) == "'" + payload
    for number in ("-1.5", "+2", "-3e-4", "12", ".5"):
        assert safe_cell(number) == number
    assert safe_cell(-1.5) == -1.5
    assert safe_cell(None) is None
    assert safe_cell("Nausea") == "Nausea"
    assert safe_cell("-inf") == "'-inf"


@pytest.fixture
def events(staff: Staff, randomized: Randomized) -> list[str]:
    """One adverse event per payload as the name of its "Other, specify" term (the free text of a
    coded term); the first corrected with a payload reason."""
    patient = randomized(False)
    stored = []
    for payload in PAYLOADS:
        # tab and CR are refused on entry today; stored directly, as older data could be
        entered = payload if payload.isprintable() else "placeholder"
        named = adverse_event(term=OTHER, other_specify=entered)
        event = services.report_adverse_event(staff["nurse"], patient, named)
        AdverseEvent.objects.filter(pk=event.pk).update(other_specify=payload)
        stored.append(event)
    services.change_adverse_event(
        staff["nurse"],
        stored[0],
        adverse_event(term=OTHER, other_specify=PAYLOADS[0], ctcae_grade=3),
        reason="@SUM(1)",
        expected_version=1,
    )
    return [event.patient.trial_id for event in stored[:1]]


def test_the_csv_export_neutralises_stored_terms(
    staff: Staff, events: list[str], tmp_path: Path
) -> None:
    files = {path.name: path for path in export_csv(staff["monitor"], tmp_path)}
    with files["events_adverseevent.csv"].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["other_specify"] for row in rows) == sorted("'" + p for p in PAYLOADS)
    assert {row["ctcae_grade"] for row in rows} == {"2", "3"}  # numbers unchanged
    raw = files["events_adverseevent.csv"].read_text(encoding="utf-8")
    assert '"\'=HYPERLINK(""http://x"")"' in raw  # every field quoted
    with files["audit_trail.csv"].open(encoding="utf-8", newline="") as handle:
        reasons = [row["reason"] for row in csv.DictReader(handle)]
    assert "'@SUM(1)" in reasons
    assert "@SUM(1)" not in reasons


def test_the_audit_csv_neutralises_reasons(staff: Staff, events: list[str]) -> None:
    client = Client()
    client.force_login(staff["investigator"], backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(f"/patients/{events[0]}/audit.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    reasons = [row["reason"] for row in rows if row["reason"]]
    assert "'@SUM(1)" in reasons
    assert "@SUM(1)" not in reasons
    assert all(row["id"].isdigit() for row in rows)


def test_the_report_tables_neutralise_text_and_keep_numbers() -> None:
    frame = pd.DataFrame(
        {
            "term": PAYLOADS,
            "change_pct": [-1.5, 2.0, -3.25, 0.0, 1.0, -0.5],
            "count": [1, 2, 3, 4, 5, 6],
            "label": ["-1.5", "x", None, "y", "z", "=1"],
        }
    )
    table = ReportTable(name="t", section="safety", title="t", frame=frame)
    text = table_csv(table)
    back = pd.read_csv(io.StringIO(text), keep_default_na=True)
    assert list(back["term"]) == ["'" + p for p in PAYLOADS]
    assert back["change_pct"].dtype == float
    assert list(back["change_pct"]) == list(frame["change_pct"])
    assert back["count"].dtype == "int64"
    assert back["label"][0] == "-1.5"  # a number as text: kept
    assert back["label"][5] == "'=1"
    assert pd.isna(back["label"][2])
    assert '"\'=HYPERLINK(""http://x"")",-1.5,1,"-1.5"' in text  # text quoted, numbers bare
