"""Each role's working day through one real cycle, in headless Debian Chromium: from the home
page's worklist to the cycle's page and its one form. The physicist plans cycle 1, the nurse
enters the pre-cycle labs, the investigator (signed in with password and authenticator code)
releases the cycle signing with the password, the pharmacist prescribes and dispenses the
capecitabine, the nurse records the administration, the physicist enters the kidney doses by
hand and asks for the next plan; the monitor and the statistician read the cycle. At every step:
the success message, the next step, and only the role's own buttons (none of another role's).

Page loads are counted per task (the browser's load events: the home page after sign-in is
the first; a POST answered by a redirect is one). Counted by hand from the pages: planning 4
(home, cycle page, ask the planner, accept), labs 3, release 3, administration 3, dosimetry 3
and the next plan 2 more on the same page; capecitabine: prescribe 4 (home, capecitabine page,
compute the dose, prescribe) and dispense 1 more. From the patient's arrival to the released
cycle no role needs more than 4. The README's table states these numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from startrt.web.treatment.models import CapecitabinePrescription, Cycle, DosimetryResult
from web.test_browser import PASSWORD, Screenshots, chromium_page, sign_in, sign_out
from web.test_treatment import GOOD_LABS, Sites, Staff, randomized

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PATIENT = "/patients/S01-LUN-001/"
CYCLE_1 = f"{PATIENT}treatment/cycles/1/"
CYCLE_2 = f"{PATIENT}treatment/cycles/2/"
CAPECITABINE = f"{PATIENT}treatment/capecitabine/"
MAX_LOADS_TO_RELEASE = 4


class PageLoads:
    """The page's load events (a document shown: a link followed, a form posted and
    redirected), counted per task."""

    def __init__(self, page: Page) -> None:
        self.page, self.count = page, 0
        page.on("load", self._loaded)

    def _loaded(self, _: Any) -> None:
        self.count += 1

    @contextmanager
    def task(self, name: str, counted: dict[str, int]) -> Iterator[None]:
        """Count the loads of the task `name` from the page now shown (counted as the first)."""
        self.page.wait_for_load_state()
        start = self.count - 1
        yield
        self.page.wait_for_load_state()
        counted[name] = self.count - start


def buttons(page: Page) -> set[str]:
    """The names of the submit buttons in the page's main content."""
    main = page.inner_html("main")
    return set(re.findall(r'<button type="submit" name="(\w+)"', main))


def message(page: Page, text: str) -> None:
    expect(page.locator("#messages[role=status]")).to_contain_text(text)


def next_step(page: Page, text: str) -> None:
    expect(page.locator("#cycle-state .next-step")).to_contain_text(text)


def follow_worklist(page: Page, href: str) -> None:
    """From the home page, the worklist's link to `href` (its task)."""
    expect(page.locator("h1")).to_be_visible()
    page.locator(f"main a[href='{href}']").first.click()


def test_each_role_walks_a_cycle_in_at_most_4_page_loads(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    randomized(team, sites, 1, fdg_positive=True)  # CAP-dTOC: capecitabine with cycles 1-4
    base_url = live_server.url
    otp_keys = {"investigator.lund": team["investigator"].otp_device.bin_key}  # type: ignore[attr-defined]
    loads: dict[str, int] = {}
    with chromium_page() as page:
        shot = Screenshots(page, tmp_path)
        counter = PageLoads(page)

        def as_user(username: str) -> None:
            sign_in(page, base_url, username, otp_keys.get(username))

        as_user("physicist.lund")
        with counter.task("physicist: plan cycle 1", loads):
            follow_worklist(page, CYCLE_1)
            next_step(page, "Ask the planner for this cycle's activity.")
            assert buttons(page) == {"propose"}
            page.click("button[name=propose]")
            message(page, "Cycle 1: the planner's proposal is below.")
            next_step(page, "Accept the planner's proposal, or override it.")
            assert buttons(page) == {"accept", "override"}
            page.click("button[name=accept]")
        message(page, "Cycle 1: proposal accepted, the cycle is planned.")
        next_step(page, "Enter the pre-cycle labs.")
        assert buttons(page) == set()  # the labs are the nurse's
        shot("physicist_plan_accepted")
        sign_out(page)

        as_user("nurse.lund")
        with counter.task("research nurse: pre-cycle labs", loads):
            follow_worklist(page, CYCLE_1)
            assert buttons(page) == {"labs"}
            for name, value in {**GOOD_LABS, "drawn_at": "2025-03-10 09:00"}.items():
                page.fill(f"form.labs [name={name}]", str(value))
            page.click("button[name=labs]")
        message(page, "Cycle 1: pre-cycle labs saved.")
        expect(page.locator("#labs .decision-go")).to_have_text("go")
        next_step(page, "Release the cycle, signed with your password.")
        assert buttons(page) == {"labs"}  # no release, no plan decision, no dosimetry
        shot("nurse_labs_saved")
        sign_out(page)

        as_user("investigator.lund")
        with counter.task("investigator: release (signed)", loads):
            follow_worklist(page, CYCLE_1)
            assert buttons(page) == {"labs", "release", "reschedule", "cancel"}
            expect(page.locator("form.reschedule")).to_be_hidden()  # folded corrections
            page.fill("form.release [name=password]", PASSWORD)
            page.click("button[name=release]")
        message(page, "Cycle 1 released, signed by you.")
        next_step(page, "Record the administration.")
        assert buttons(page) == {"administer", "unlock_release", "reschedule", "cancel"}
        shot("investigator_released")
        sign_out(page)

        as_user("pharmacist.lund")
        with counter.task("pharmacist: prescribe capecitabine", loads):
            follow_worklist(page, CAPECITABINE)
            page.click("#capecitabine-1 button[name=assess]")
            page.click("#capecitabine-1 button[name=prescribe]")
        message(page, "Cycle 1: capecitabine prescribed.")
        with counter.task("pharmacist: dispense (same visit)", loads):
            page.fill("#capecitabine-1 [name=tablets_500]", "84")  # 3 + 3 a day, 14 days
            page.fill("#capecitabine-1 [name=tablets_150]", "28")  # 1 + 1 a day
            page.click("#capecitabine-1 button[name=dispense]")
        loads["pharmacist: dispense (same visit)"] -= 1  # the page already shown
        message(page, "Cycle 1: capecitabine dispensed.")
        shot("pharmacist_dispensed")
        page.goto(f"{base_url}{CYCLE_1}")
        assert buttons(page) == set()
        expect(page.locator("a.capecitabine")).to_be_visible()
        sign_out(page)

        as_user("nurse.lund")
        with counter.task("research nurse: administration", loads):
            follow_worklist(page, CYCLE_1)
            assert buttons(page) == {"administer"}
            administration = {
                "activity_gbq": "7.4",
                "lot": "LU-2025-17",
                "infusion_start": "2025-03-17 09:00",
                "infusion_end": "2025-03-17 09:30",
                "inpatient_days": "1",
            }
            for name, value in administration.items():
                page.fill(f"form.administration [name={name}]", value)
            page.click("button[name=administer]")
        message(page, "Cycle 1: administration saved.")
        next_step(page, "Enter the kidney doses of this cycle.")
        expect(page.locator("form.administration")).to_be_hidden()  # its correction, folded
        shot("nurse_administered")
        sign_out(page)

        as_user("physicist.lund")
        with counter.task("physicist: dosimetry by hand", loads):
            follow_worklist(page, CYCLE_1)
            assert buttons(page) == {"dosimetry", "upload_study"}
            page.fill("form.dosimetry-entry [name=left_kidney_dose_gy]", "3.861330716659756")
            page.fill("form.dosimetry-entry [name=right_kidney_dose_gy]", "4.12")
            page.click("button[name=dosimetry]")
        message(page, "Cycle 1: dosimetry saved.")
        expect(page.locator("#dosimetry .dosimetry")).to_contain_text("left kidney 3.86 Gy")
        next_step(page, "Ask the planner for the next cycle.")
        with counter.task("physicist: next plan (same visit)", loads):
            page.click("#next-cycle button[name=propose]")
            expect(page.locator("h1")).to_contain_text("Cycle 2")
            page.click("button[name=accept]")
        loads["physicist: next plan (same visit)"] -= 1
        message(page, "Cycle 2: proposal accepted, the cycle is planned.")
        next_step(page, "Enter the pre-cycle labs.")
        assert page.url.endswith(f"{CYCLE_2}#plan")
        shot("physicist_dosimetry_next_plan")
        sign_out(page)

        for reader in ("monitor", "statistician"):
            as_user(reader)
            page.goto(f"{base_url}{CYCLE_1}")
            assert buttons(page) == set()
            next_step(page, "Nothing more here: cycle 2 is planned.")
            page.goto(f"{base_url}{PATIENT}treatment/")
            assert buttons(page) == set()
            expect(page.locator("#cycle-1")).to_contain_text("3.86")
            shot(f"{reader}_overview")
            sign_out(page)

    assert loads == {
        "physicist: plan cycle 1": 4,
        "research nurse: pre-cycle labs": 3,
        "investigator: release (signed)": 3,
        "pharmacist: prescribe capecitabine": 4,
        "pharmacist: dispense (same visit)": 1,
        "research nurse: administration": 3,
        "physicist: dosimetry by hand": 3,
        "physicist: next plan (same visit)": 2,
    }
    to_release = ("physicist: plan cycle 1", "research nurse: pre-cycle labs")
    assert max(loads[task] for task in (*to_release, "investigator: release (signed)")) <= (
        MAX_LOADS_TO_RELEASE
    )
    cycle = Cycle.objects.get(patient__trial_id="S01-LUN-001", number=1)
    assert (cycle.status, cycle.released_by) == (Cycle.Status.ADMINISTERED, "investigator.lund")
    assert DosimetryResult.objects.get(cycle=cycle).left_kidney_dose_gy == 3.861330716659756
    assert CapecitabinePrescription.objects.get(cycle=cycle).dispensings.count() == 1
    assert Cycle.objects.get(patient=cycle.patient, number=2).status == Cycle.Status.PLANNED
    assert len(shot.paths) == 8
    shot.check_written()
