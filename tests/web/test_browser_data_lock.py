"""The database lock walked through the pages in headless Debian Chromium: the data manager
locks the database at a cut-off, the nurse's correction of a consent is refused with the lock's
message (nothing saved), the data manager unlocks with a reason (a blank one refused), and the
nurse's correction then goes through; screenshots on the way and axe-core's WCAG check of each
page shown (no serious or critical violation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from startrt.web.monitoring.models import DatabaseLock
from startrt.web.trial import services as trial
from startrt.web.trial.models import Consent, Role, Site
from web.conftest import make_user
from web.test_accessibility import CheckedScreenshots
from web.test_browser import PASSWORD, chromium_page, sign_in, sign_out

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_data_manager_locks_nurse_is_refused_data_manager_unlocks(
    live_server: Any,
    flushable_audit_trail: None,
    staff: dict[str, User],
    sites: dict[str, Site],
    tmp_path: Path,
) -> None:
    make_user("datamanager", Role.DATA_MANAGER, None)
    patient = trial.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    consent = trial.record_consent(
        staff["nurse"], patient, {"form_version": "1.0", "signed_on": "2025-02-20"}
    )
    correction = f"{live_server.url}/patients/S01-LUN-001/events/consent/{consent.pk}/"
    base_url = live_server.url
    with chromium_page() as page:
        screenshot = CheckedScreenshots(page, tmp_path)

        def correct(signed_on: str) -> None:
            page.goto(correction)
            page.fill("[name=signed_on]", signed_on)
            page.fill("[name=correction_reason]", "Date as on the signed form.")
            page.click("button[name=correct]")

        sign_in(page, base_url, "datamanager")
        page.click("header >> text=Data lock")
        screenshot("not_locked")
        page.fill("[name=lock-cutoff_date]", "2025-06-30")
        page.fill("[name=lock-reason]", "Interim analysis: data cut-off 2025-06-30.")
        page.fill("[name=lock-password]", PASSWORD)
        page.click("text=Lock the database")
        expect(page.locator("#messages")).to_contain_text("Database locked at the data cut-off")
        expect(page.locator(".data-lock-banner")).to_contain_text("The database is locked since")
        expect(page.locator("#lock")).to_contain_text("the data are unchanged since the lock")
        screenshot("locked")
        sign_out(page)

        sign_in(page, base_url, "nurse.lund")
        correct("2025-02-19")
        expect(page.locator("#correction .errorlist")).to_contain_text(
            "the database is locked since"
        )
        expect(page.locator("#correction .errorlist")).to_contain_text("by datamanager")
        screenshot("nurse_refused")
        sign_out(page)

        sign_in(page, base_url, "datamanager")
        page.goto(f"{base_url}/data-lock/")
        page.click("text=Unlock the database")  # no reason: the browser's own check first
        expect(page.locator("#lock")).to_contain_text("Locked")
        page.fill("[name=unlock-reason]", "Late SAE follow-up to enter before the final cut.")
        page.fill("[name=unlock-password]", PASSWORD)
        page.click("text=Unlock the database")
        expect(page.locator("#messages")).to_contain_text("Database unlocked")
        expect(page.locator(".data-lock-banner")).to_have_count(0)
        expect(page.locator("#history")).to_contain_text("Late SAE follow-up")
        screenshot("unlocked")
        sign_out(page)

        sign_in(page, base_url, "nurse.lund")
        correct("2025-02-19")
        expect(page).to_have_url(f"{base_url}/patients/S01-LUN-001/events/#consent")
        expect(page.locator("#consent")).to_contain_text("2025-02-19")
        screenshot("nurse_corrected")
    screenshot.check_written()
    assert screenshot.blocking() == []
    lock = DatabaseLock.objects.get()
    assert (lock.unlocked_by.username, lock.cutoff_date.isoformat()) == (  # type: ignore[union-attr]
        "datamanager",
        "2025-06-30",
    )
    assert Consent.objects.get().signed_on.isoformat() == "2025-02-19"
