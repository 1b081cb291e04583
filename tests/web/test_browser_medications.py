"""Concomitant medications walked through the pages in headless Debian Chromium: the nurse picks
octreotide (allowed) and everolimus (flagged as a protocol deviation) from the picker, which
fills the ATC code; the investigator finds the deviation on the worklist and acknowledges it.
Screenshots on the way, and axe-core's WCAG check of each page shown (no serious or critical
violation)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from startrt.web.medications.models import ConcomitantMedication, MedicationDeviation
from startrt.web.treatment.models import Cycle
from startrt.web.trial.models import AuditEntry, Site
from web.conftest import Randomized
from web.test_accessibility import CheckedScreenshots
from web.test_browser import chromium_page, sign_in, sign_out

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def pick(page: Page, drug: str, indication: str, start: str) -> None:
    """Fill the add form: the drug typed as in the picker (the script fills its ATC code)."""
    form = page.locator("#add form")
    form.locator("[name=drug_name]").fill(drug)
    form.locator("[name=indication]").fill(indication)
    form.locator("[name=start_date]").fill(start)


def test_nurse_adds_allowed_and_prohibited_investigator_acknowledges(
    live_server: Any,
    flushable_audit_trail: None,
    staff: dict[str, User],
    sites: dict[str, Site],
    randomized: Randomized,
    tmp_path: Path,
) -> None:
    patient = randomized(False)
    Cycle.objects.create(
        patient=patient, number=1, planned_date=date(2025, 4, 1), planned_activity_gbq=7.5
    )
    investigator_key = staff["investigator"].otp_device.bin_key  # type: ignore[attr-defined]
    with chromium_page() as page:
        screenshot = CheckedScreenshots(page, tmp_path)

        sign_in(page, live_server.url, "nurse.lund")
        page.goto(f"{live_server.url}/patients/{patient.trial_id}/")
        page.click("#medications-link")
        expect(page.locator("h1")).to_contain_text("concomitant medications")
        screenshot("empty")

        pick(page, "Octreotide", "carcinoid syndrome", "2023-05-10")
        expect(page.locator("#add [name=atc_code]")).to_have_value("H01CB02")
        page.select_option("#add [name=route]", "intramuscular")
        page.locator("#add [name=dose]").fill("30 mg every 4 weeks")
        screenshot("octreotide_picked")
        page.click("button[name=add_medication]")
        expect(page.locator("#medications")).to_contain_text("Allowed")

        pick(page, "Everolimus", "pancreatic NET", "2024-10-01")
        expect(page.locator("#add [name=atc_code]")).to_have_value("L01EG02")
        page.click("button[name=add_medication]")
        expect(page.locator("#medications tr.deviation")).to_contain_text(
            "Protocol deviation: prohibited therapy during the treatment"
        )
        expect(page.locator("#medications tr.detail")).to_contain_text("(L01EG02, ATC L01)")
        expect(page.locator("#deviations")).to_contain_text("Awaiting the investigator")
        screenshot("everolimus_flagged")
        sign_out(page)

        sign_in(page, live_server.url, "investigator.lund", investigator_key)
        worklist_task = "Acknowledge the prohibited-therapy deviation: Everolimus"
        expect(page.locator("#worklist")).to_contain_text(worklist_task)
        screenshot("worklist")
        page.click(f"text={worklist_task}")
        page.locator("#deviations textarea[name=reason]").fill(
            "Everolimus stopped on the day of the visit; patient informed."
        )
        screenshot("acknowledge")
        page.click("button[name=acknowledge]")
        expect(page.locator("#deviations")).to_contain_text("Acknowledged by investigator.lund")
        screenshot("acknowledged")
        page.locator("#medications a", has_text="Change").first.click()
        expect(page.locator("h1")).to_contain_text("Change: Octreotide")
        expect(page.locator("[name=atc_code]")).to_have_value("H01CB02")
        screenshot("change")
    screenshot.check_written()
    assert screenshot.blocking() == []
    rows = ConcomitantMedication.objects.order_by("pk")
    assert [(m.atc_code, m.finding) for m in rows] == [
        ("H01CB02", "allowed"),
        ("L01EG02", "concomitant"),
    ]
    deviation = MedicationDeviation.objects.get()
    assert deviation.acknowledged_by == "investigator.lund"
    steps = AuditEntry.objects.filter(table="medications_medicationdeviation").order_by("pk")
    assert [(e.action, e.username) for e in steps] == [
        ("insert", "nurse.lund"),
        ("update", "investigator.lund"),
    ]
