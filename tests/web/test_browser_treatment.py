"""The browser walk continued after randomization, in headless Debian Chromium: the physicist
accepts the planner's proposal, the nurse enters pre-cycle labs, the investigator releases the
cycle signing with the password, the nurse records its administration, the physicist enters its
dosimetry, corrects it with a reason and accepts the next proposal (each on the cycle's page,
each save answered by a message), and the nurse reports an adverse event on the treatment
overview; screenshots on the way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from startrt.web.events.models import AdverseEvent
from startrt.web.signing.models import Signature
from startrt.web.treatment.models import Cycle, DosimetryResult, PlanProposal
from web.test_browser import PASSWORD, Screenshots, chromium_page, sign_in, sign_out
from web.test_treatment import GOOD_LABS, Sites, Staff, randomized

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TREATMENT = "/patients/S01-LUN-001/treatment/"
CYCLE_1 = f"{TREATMENT}cycles/1/"


def fill_and_submit(page: Page, scope: str, values: dict[str, Any], button: str) -> None:
    for name, value in values.items():
        page.fill(f"{scope} [name={name}]", str(value))
    page.click(f"{scope} button[name={button}]")


def accept_a_new_proposal(page: Page) -> None:
    page.click("button[name=propose]")
    page.click("button[name=accept]")
    expect(page.locator("#plan")).to_contain_text("accepted by physicist.lund")
    expect(page.locator("#messages")).to_contain_text("proposal accepted, the cycle is planned")


def test_a_cycle_with_dosimetry_and_an_adverse_event(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    randomized(team, sites, 1)  # dTOC; cycle 1 planned for 2025-03-17
    base_url = live_server.url
    otp_keys = {"investigator.lund": team["investigator"].otp_device.bin_key}  # type: ignore[attr-defined]
    with chromium_page() as page:
        screenshot = Screenshots(page, tmp_path)

        def as_user(username: str, url: str = CYCLE_1) -> None:
            sign_in(page, base_url, username, otp_keys.get(username))
            page.goto(f"{base_url}{url}")

        as_user("physicist.lund")
        accept_a_new_proposal(page)
        expect(page.locator("#cycle-state .cycle-status")).to_have_text("Planned")
        screenshot("plan_accepted")
        sign_out(page)

        as_user("nurse.lund")
        labs = {**GOOD_LABS, "drawn_at": "2025-03-10T09:00"}
        fill_and_submit(page, "form.labs", labs, "labs")
        expect(page.locator("#labs .decision-go")).to_have_text("go")
        screenshot("labs")
        sign_out(page)

        as_user("investigator.lund")
        fill_and_submit(page, "form.release", {"password": PASSWORD}, "release")
        expect(page.locator("#release")).to_contain_text("Released by investigator.lund")
        expect(page.locator("#cycle-state .locked")).to_contain_text("Release signed")
        screenshot("released_signed")
        sign_out(page)

        as_user("nurse.lund")
        administration = {
            "activity_gbq": "7.4",
            "lot": "LU-2025-17",
            "infusion_start": "2025-03-17T09:00",
            "infusion_end": "2025-03-17T09:30",
            "inpatient_days": "1.5",
        }
        fill_and_submit(page, "form.administration", administration, "administer")
        expect(page.locator("#cycle-state .cycle-status")).to_have_text("Administered")
        screenshot("administered")
        sign_out(page)

        as_user("physicist.lund")
        doses = {
            "left_kidney_dose_gy": "4.0",
            "right_kidney_dose_gy": "5.0",
            "marrow_dose_gy": "0.3",
        }
        fill_and_submit(page, "form.dosimetry-entry", doses, "dosimetry")
        expect(page.locator("#dosimetry .dosimetry")).to_contain_text("right kidney 5.00 Gy")
        page.click("#dosimetry summary:has-text('Correct the dosimetry')")
        correction = {"left_kidney_dose_gy": "4.4", "reason": "left kidney VOI redrawn"}
        fill_and_submit(page, "form.dosimetry-entry", correction, "dosimetry")
        expect(page.locator("#dosimetry .dosimetry")).to_contain_text("left kidney 4.40 Gy")
        accept_a_new_proposal(page)
        expect(page.locator("h1")).to_contain_text("Cycle 2")
        expect(page.locator("#cycle-state .cycle-status")).to_have_text("Planned")
        screenshot("dosimetry_and_next_plan")
        page.goto(f"{base_url}{TREATMENT}")
        expect(page.locator("#kidney-dose")).to_be_visible()
        expect(page.locator("#cycle-1")).to_contain_text("4.40")
        sign_out(page)

        as_user("nurse.lund", TREATMENT)
        page.click("#adverse-events a.report-adverse-event")
        page.fill("#adverse-events [name=term]", "Nausea")
        page.get_by_label("1: Loss of appetite without alteration in eating habits").check()
        page.fill("#adverse-events [name=onset_date]", "2025-03-18")
        page.select_option("#adverse-events [name=attribution_prrt]", "possible")
        page.select_option("#adverse-events [name=attribution_capecitabine]", "not_applicable")
        page.select_option("#adverse-events [name=outcome]", "recovering")
        page.click("button[name=report_adverse_event]")
        expect(page.locator("#adverse-events table")).to_contain_text("Nausea")
        expect(page.locator("#messages")).to_contain_text("Adverse event reported.")
        screenshot("adverse_event")

    cycle = Cycle.objects.get(patient__trial_id="S01-LUN-001", number=1)
    assert (cycle.status, cycle.lot, cycle.released_by) == (
        Cycle.Status.ADMINISTERED,
        "LU-2025-17",
        "investigator.lund",
    )
    assert cycle.inpatient_days == 1.5
    result = DosimetryResult.objects.get(cycle=cycle)
    assert (result.entered_by, result.left_kidney_dose_gy, result.version) == (
        "physicist.lund",
        4.4,
        2,
    )
    assert Signature.objects.get().kind == "treatment.cycle"
    assert PlanProposal.objects.filter(status=PlanProposal.Status.ACCEPTED).count() == 2
    assert AdverseEvent.objects.get().term == "Nausea"
    assert len(screenshot.paths) == 6
    screenshot.check_written()
