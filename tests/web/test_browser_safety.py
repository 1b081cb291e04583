"""Two serious adverse events reported through the pages in headless Debian Chromium: the nurse
opens one from the SAE listing (aware 2 hours ago) and reports it on time; the other (aware
29 h 30 min ago, opened before) is overdue by 6 started hours on her worklist and is reported
late by 6 started hours. The monitor's listing shows both; each report's e-mail is a file in
the mail folder. Screenshots on the way, and axe-core's WCAG check of each page shown.

The clock is the real one (a browser refuses a session cookie dated in the past): the walk
takes well under 30 minutes, so the late report is 5 h 30 min + the walk late, 6 started hours."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from startrt.web.events import services as events
from startrt.web.safety import services as safety
from startrt.web.safety.models import SaeReport
from web.conftest import Randomized
from web.test_accessibility import CheckedScreenshots
from web.test_browser import chromium_page, sign_in, sign_out
from web.test_events import adverse_event

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def _serious(onset: date, term: str, grade: int) -> dict[str, Any]:
    return adverse_event(
        term=term,
        ctcae_grade=grade,
        onset_date=onset.isoformat(),
        resolved_date=None,
        serious=True,
        seriousness_criteria=["hospitalisation"],
        outcome="recovering",
    )


def test_an_sae_reported_on_time_and_one_late_with_their_mails(
    live_server: Any,
    flushable_audit_trail: None,
    staff: dict[str, User],
    randomized: Randomized,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path / "mail"
    now = timezone.now()
    onset = (now - timedelta(days=3)).astimezone(STOCKHOLM).date()
    patient = randomized(False)
    events.report_adverse_event(staff["nurse"], patient, _serious(onset, "Febrile neutropenia", 3))
    late = events.report_adverse_event(
        staff["nurse"], patient, _serious(onset, "Platelet count decreased", 4)
    )
    late_aware = (now - timedelta(hours=29, minutes=30)).replace(second=0, microsecond=0)
    late_case = safety.open_case(staff["nurse"], late, late_aware)
    aware_text = (now - timedelta(hours=2)).astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")
    base_url = live_server.url
    with chromium_page() as page:
        screenshot = CheckedScreenshots(page, tmp_path)

        sign_in(page, base_url, "nurse.lund")
        expect(page.locator("#worklist")).to_contain_text(
            "Submit the initial SAE report of Platelet count decreased (overdue by 6 h)"
        )
        screenshot("worklist_overdue")
        page.click("nav >> text=Serious adverse events")
        expect(page.locator("#overdue-alert")).to_contain_text("1 SAE report overdue")
        screenshot("listing_before")
        page.click("#unreported >> text=Report as SAE")
        page.fill("input[name=aware_at]", aware_text)
        screenshot("open")
        page.click("text=Open the SAE case")
        expect(page.locator("#messages")).to_contain_text("SAE case opened")
        page.fill("textarea[name=narrative]", "Admitted with fever 39.2 °C; antibiotics.")
        page.click("button[name=submit_report]")
        expect(page.locator("#messages")).to_contain_text(
            "Initial report submitted; the safety desk was notified (safety-desk@localhost)"
        )
        expect(page.locator("#initial-due")).to_contain_text("submitted on time")
        expect(page.locator("#report-0 .susar")).to_contain_text("Yes")
        screenshot("on_time")

        page.goto(base_url)
        page.click("text=Submit the initial SAE report of Platelet count decreased")
        expect(page.locator("#initial-due")).to_contain_text("overdue by 6 h")
        page.fill("textarea[name=narrative]", "Bleeding; platelet transfusion.")
        page.click("button[name=submit_report]")
        expect(page.locator("#initial-due")).to_contain_text("submitted late by 6 h")
        expect(page.locator("#report-0 .notification")).to_contain_text("safety-desk@localhost")
        screenshot("late")
        sign_out(page)

        sign_in(page, base_url, "monitor")
        page.goto(f"{base_url}/safety/")
        rows = page.locator("#sae-listing tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator(f"#sae-{late_case.pk} .timeliness")).to_have_text("late by 6 h")
        expect(page.locator("#sae-listing")).to_contain_text("on time")
        expect(page.locator("#overdue-alert")).to_have_count(0)
        screenshot("listing_monitor")
    screenshot.check_written()
    assert screenshot.blocking() == []
    mails = sorted((tmp_path / "mail").iterdir())
    texts = [path.read_text() for path in mails]
    assert len(texts) == 2
    assert any("Timeliness: On time" in text and "Febrile neutropenia" in text for text in texts)
    assert any("Timeliness: Late by 6 h" in text and "Platelet count" in text for text in texts)
    assert all("To: safety-desk@localhost" in text for text in texts)
    reports = SaeReport.objects.order_by("case__aware_at")
    assert [r.notified_to for r in reports] == [["safety-desk@localhost"]] * 2
