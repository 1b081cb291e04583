"""The monitor opens the missing-data report in headless Debian Chromium, filters it to one
form, and follows a missing form's link to where it is entered; screenshots on the way and
axe-core's WCAG check of each page (as tests/web/test_accessibility.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from startrt.web.events import services as events
from web.test_accessibility import CheckedScreenshots
from web.test_browser import chromium_page, sign_in
from web.test_missing_data import randomized_on_march_3
from web.test_treatment import Sites, Staff, give, planned_cycle

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_monitor_opens_the_missing_data_report(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    for number in (1, 2):
        give(team, planned_cycle(team, randomized_on_march_3(team, sites, number)), 7.5)
    events.record_death(
        team["investigator"],
        sites["Lund"].patients.get(trial_id="S01-LUN-002"),
        {"date": "2025-04-01", "cause": "Myocardial infarction", "related_to_treatment": False},
    )
    base_url = live_server.url
    with chromium_page() as page:
        screenshot = CheckedScreenshots(page, tmp_path)

        sign_in(page, base_url, "monitor")
        page.click("nav >> text=Missing data")
        expect(page.locator("h1")).to_have_text("Missing data")
        expect(page.locator("table.missing-by-site")).to_contain_text("Lund")
        expect(page.locator("table.missing-by-patient")).to_contain_text("S01-LUN-002")
        screenshot("report")
        page.select_option("select[name=kind]", "end_of_treatment")
        page.click("form.filters button[type=submit]")
        rows = page.locator("table.missing-by-patient tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("2025-04-01")
        screenshot("end_of_treatment")
        page.click("table.missing-by-patient >> text=End of treatment")
        expect(page.locator("#end-of-treatment h2")).to_have_text("End of treatment")
        screenshot("events")
    screenshot.check_written()
    assert screenshot.blocking() == []
