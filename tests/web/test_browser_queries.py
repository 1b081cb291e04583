"""A data query walked through the pages in headless Debian Chromium: the monitor raises it on
a consent's date, the nurse finds it on the worklist and answers, the monitor closes it;
screenshots on the way, and axe-core's WCAG check of each page shown (as in
tests/web/test_accessibility.py: no serious or critical violation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from startrt.web.monitoring.models import Query
from startrt.web.trial import services as trial
from startrt.web.trial.models import AuditEntry, Site
from web.test_accessibility import CheckedScreenshots
from web.test_browser import chromium_page, sign_in, sign_out

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MONITORING = "/patients/S01-LUN-001/monitoring/"


def test_monitor_raises_nurse_answers_monitor_closes(
    live_server: Any,
    flushable_audit_trail: None,
    staff: dict[str, User],
    sites: dict[str, Site],
    tmp_path: Path,
) -> None:
    patient = trial.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    trial.record_consent(
        staff["nurse"], patient, {"form_version": "1.0", "signed_on": "2025-02-20"}
    )
    base_url = live_server.url
    with chromium_page() as page:
        screenshot = CheckedScreenshots(page, tmp_path)

        sign_in(page, base_url, "monitor")
        page.goto(f"{base_url}{MONITORING}")
        screenshot("monitoring")
        page.click("text=Raise a query")
        page.select_option("select[name=field_name]", "signed_on")
        page.fill("textarea[name=text]", "The source document is dated 2025-02-19.")
        screenshot("raise")
        page.click("button[name=raise]")
        expect(page.locator("#messages")).to_contain_text("Query raised")
        expect(page.locator("#query-status")).to_have_text("Open")
        screenshot("raised")
        sign_out(page)

        sign_in(page, base_url, "nurse.lund")
        expect(page.locator("#worklist")).to_contain_text("Answer the data query on Consent")
        screenshot("worklist")
        page.click("text=Answer the data query on Consent")
        page.fill("textarea[name=text]", "Checked against the source: the date is right.")
        page.click("button[name=answer]")
        expect(page.locator("#query-status")).to_have_text("Answered")
        expect(page.locator("#steps")).to_contain_text("Checked against the source")
        screenshot("answered")
        sign_out(page)

        sign_in(page, base_url, "monitor")
        page.goto(f"{base_url}/queries/?status=answered")
        screenshot("report")
        page.click("text=Consent:")
        page.fill("textarea[name=text]", "Answer accepted.")
        page.click("button[name=close]")
        expect(page.locator("#query-status")).to_have_text("Closed")
        expect(page.locator("button[name=reopen]")).to_be_visible()
        screenshot("closed")
        page.goto(f"{base_url}/sdv/")
        screenshot("sdv")
    screenshot.check_written()
    assert screenshot.blocking() == []
    assert Query.objects.get().status == "closed"
    steps = AuditEntry.objects.filter(table="monitoring_query").order_by("pk")
    assert [(e.action, e.username) for e in steps] == [
        ("insert", "monitor"),
        ("update", "nurse.lund"),
        ("update", "monitor"),
    ]
