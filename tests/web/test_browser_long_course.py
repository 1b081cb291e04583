"""The pages of a long course in headless Debian Chromium: a patient with 12 cycles given
(bench/treatment_page.py's course, entered through the services); the treatment overview and a
cycle page each fit in a few screens (the one treatment page of 11 cycles, every form open, was
12,000-18,000 px tall)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from web.test_browser import PASSWORD, Screenshots, chromium_page, sign_in
from web.test_treatment import Sites, Staff

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PATIENT_URL = "/patients/S01-LUN-001/"


def _bench_course() -> Any:
    """bench/treatment_page.py (its 12-cycle course)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "treatment_page.py"
    spec = importlib.util.spec_from_file_location("bench_treatment_page", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_12_cycle_course_fits_in_a_few_screens(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    course = _bench_course()
    patient = course.randomized_patient(team["nurse"], team["investigator"], sites["Lund"])
    course.give_cycles(patient, team, 12, PASSWORD)
    heights = {}
    with chromium_page() as page:
        shot = Screenshots(page, tmp_path)
        sign_in(page, live_server.url, "nurse.lund")
        for name, url in (("overview", "treatment/"), ("cycle 12", "treatment/cycles/12/")):
            page.goto(f"{live_server.url}{PATIENT_URL}{url}")
            heights[name] = page.evaluate("document.documentElement.scrollHeight")
            shot(name.replace(" ", "_"))
        expect(page.locator("#cycle-state .cycle-status")).to_have_text("Administered")
    print(f"12-cycle pages in Chromium at 1280 px wide: {heights} px")
    assert heights["overview"] < 3000, heights
    assert heights["cycle 12"] < 2500, heights
