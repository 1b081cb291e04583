"""The CTCAE v5.0 term picker walked in headless Debian Chromium: the nurse of a CAP-dTOC patient
opens the adverse-event form, narrows the terms to a System Organ Class, types the term, sees its
grade definitions next to the grade choice (hand-foot syndrome: grades 1-3 only), chooses grade
2 and saves; then an "Other, specify" event, whose name field appears only for it; and the same
form without script, through "Show the grades of this term". Screenshots on the way, each page
checked by axe-core (no serious or critical violation). Grade texts as NCI publishes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from startrt.web.events.models import AdverseEvent
from web.test_accessibility import CheckedScreenshots
from web.test_browser import Screenshots, chromium_page, sign_in
from web.test_treatment import Sites, Staff, randomized

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TREATMENT = "/patients/S01-LUN-001/treatment/"
FORM = "#adverse-events form.report-adverse-event"
HAND_FOOT = "Palmar-plantar erythrodysesthesia syndrome"
HAND_FOOT_2 = (
    "2: Skin changes (e.g., peeling, blisters, bleeding, fissures, edema, or hyperkeratosis) "
    "with pain; limiting instrumental ADL"
)
OTHER_GI = "Gastrointestinal disorders - Other, specify"


def fill_the_rest(page: Page, onset: str) -> None:
    page.fill(f"{FORM} [name=onset_date]", onset)
    page.select_option(f"{FORM} [name=attribution_prrt]", "unlikely")
    page.select_option(f"{FORM} [name=attribution_capecitabine]", "probable")
    page.select_option(f"{FORM} [name=outcome]", "recovering")


def grade_labels(page: Page) -> list[str]:
    return [
        " ".join(t.split()) for t in page.locator(f"{FORM} .ctcae-grades label").all_inner_texts()
    ]


def test_nurse_codes_adverse_events_with_the_term_picker(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    randomized(team, sites, 1, fdg_positive=True)  # CAP-dTOC: capecitabine attribution asked
    base_url = live_server.url
    with chromium_page() as page:
        screenshot = CheckedScreenshots(page, tmp_path)

        sign_in(page, base_url, "nurse.lund")
        page.goto(f"{base_url}{TREATMENT}")
        page.click("#adverse-events a.report-adverse-event")
        expect(page.locator(f"{FORM} button[name=show_grades]")).to_have_count(0)  # script ran
        assert page.locator("#ctcae-terms option").count() == 837
        page.select_option(f"{FORM} [name=soc]", "Skin and subcutaneous tissue disorders")
        assert page.locator("#ctcae-terms option").count() == 39  # the SOC's terms in v5.0
        page.locator(f"{FORM} [name=term]").press_sequentially(HAND_FOOT)
        expect(page.get_by_label(HAND_FOOT_2)).to_be_visible()
        assert len(grade_labels(page)) == 3  # no grade 4 or 5 for hand-foot syndrome
        expect(page.locator(f"{FORM} .ctcae-term-info")).to_contain_text("Hand-Foot Syndrome")
        expect(page.locator(f"{FORM} [name=other_specify]")).to_be_hidden()
        page.get_by_label(HAND_FOOT_2).check()
        fill_the_rest(page, "2025-03-25")
        screenshot("hand_foot_grades")
        page.click("button[name=report_adverse_event]")
        expect(page.locator("#messages")).to_contain_text("Adverse event reported.")
        expect(page.locator("#adverse-events table")).to_contain_text(HAND_FOOT)
        screenshot("hand_foot_saved")

        page.click("#adverse-events a.report-adverse-event")
        page.locator(f"{FORM} [name=term]").press_sequentially(OTHER_GI)
        expect(page.locator(f"{FORM} [name=other_specify]")).to_be_visible()
        expect(page.locator(f"{FORM} [name=soc]")).to_have_value("Gastrointestinal disorders")
        page.fill(f"{FORM} [name=other_specify]", "Bile reflux")
        page.get_by_label("1: Asymptomatic or mild symptoms", exact=False).check()
        fill_the_rest(page, "2025-03-26")
        screenshot("other_specify")
        page.click("button[name=report_adverse_event]")
        expect(page.locator("#adverse-events table")).to_contain_text(f"{OTHER_GI}: Bile reflux")

        # without script: the button shows the grades of the term typed, nothing saved
        context = page.context.browser.new_context(  # type: ignore[union-attr]
            java_script_enabled=False, viewport={"width": 1280, "height": 900}
        )
        plain = context.new_page()
        sign_in(plain, base_url, "nurse.lund")
        plain.goto(f"{base_url}{TREATMENT}?report=adverse-event#adverse-events")
        assert grade_labels(plain) == ["1", "2", "3", "4", "5"]
        plain.fill(f"{FORM} [name=term]", "Alopecia")
        plain.click(f"{FORM} button[name=show_grades]")
        labels = grade_labels(plain)
        assert [label[:2] for label in labels] == ["1:", "2:"]  # alopecia: grades 1 and 2
        assert labels[0].startswith("1: Hair loss of <50% of normal for that individual")
        Screenshots(plain, tmp_path / "no_script")("alopecia_grades_without_script")
        context.close()
    screenshot.check_written()
    assert screenshot.blocking() == []
    stored = list(AdverseEvent.objects.order_by("pk").values_list("term", "ctcae_grade", "soc"))
    assert stored == [
        (HAND_FOOT, 2, "Skin and subcutaneous tissue disorders"),
        (OTHER_GI, 1, "Gastrointestinal disorders"),
    ]
