"""A patient walked through the pages in headless Debian Chromium (Playwright): a nurse registers
and screens, an investigator randomizes with an electronic signature; screenshots on the way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from playwright.sync_api import Page, expect, sync_playwright

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.trial import services
from startrt.web.trial.models import Site, Slot
from support.records import eligible_screening

PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Screenshots:
    """Full-page screenshots of `page`, numbered in the order taken, in `folder`."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page, self.folder = page, folder
        self.paths: list[Path] = []

    def __call__(self, name: str) -> None:
        self.paths.append(self.folder / f"{len(self.paths) + 1:02d}_{name}.png")
        self.page.screenshot(path=self.paths[-1], full_page=True)

    def check_written(self) -> None:
        """Every screenshot is a PNG file of real content."""
        for shot in self.paths:
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot.stat().st_size > 1000


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A page in headless Debian Chromium. No ORM call may run inside: Playwright's event loop
    would give Django's thread-local connections a second, never-closed connection."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def sign_in(page: Page, base_url: str, username: str, otp_key: bytes | None = None) -> None:
    """Sign in with the password and, for a user with a TOTP device (investigators), the code
    computed from its key `otp_key` (read before the page opens: no ORM call inside it)."""
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    if otp_key is not None:
        page.fill("input[name=otp_token]", f"{totp(otp_key):06d}")
    page.click("button[type=submit]")
    expect(page.locator("header")).to_contain_text(username)


def sign_out(page: Page) -> None:
    page.click("header button[type=submit]")
    expect(page.locator("h1")).to_have_text("Sign in")


def enter_screening(page: Page, record: dict[str, Any]) -> None:
    for name, value in record.items():
        field = f"#screening [name={name}]"
        if isinstance(value, bool):
            page.select_option(field, "true" if value else "false")
        else:
            page.fill(field, str(value))
    page.click("button[name=save_screening]")


def test_a_patient_from_registration_to_randomization(
    live_server: Any,
    flushable_audit_trail: None,
    staff: dict[str, User],
    sites: dict[str, Site],
    tmp_path: Path,
) -> None:
    listing = generate_block_list(
        seed=4242, n_per_stratum=4, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)
    base_url = live_server.url
    investigator_key = staff["investigator"].otp_device.bin_key  # type: ignore[attr-defined]
    with chromium_page() as page:
        screenshot = Screenshots(page, tmp_path)

        sign_in(page, base_url, "nurse.lund")
        page.click("text=Register a patient")
        page.select_option("select[name=site]", label="Lund")
        page.fill("input[name=trial_id]", "S01-LUN-001")
        page.select_option("select[name=sex]", "male")
        screenshot("registration")
        page.click("main button[type=submit]")
        expect(page.locator("h1")).to_contain_text("S01-LUN-001")

        enter_screening(page, eligible_screening())
        expect(page.locator("#eligibility")).to_contain_text("Eligible: all")
        expect(page.locator("#eligibility tr.blocking")).to_have_count(0)
        expect(page.locator("#eligibility")).to_contain_text("Haemoglobin > 90 g/L")
        screenshot("screened")
        sign_out(page)

        sign_in(page, base_url, "investigator.lund", investigator_key)
        page.click("text=S01-LUN-001")
        page.fill("#randomization input[name=password]", "not my password")
        page.click("button[name=randomize]")
        expect(page.locator("#randomization .errorlist")).to_contain_text("not signed")
        page.fill("#randomization input[name=password]", PASSWORD)
        screenshot("signing")
        page.click("button[name=randomize]")
        expect(page.locator("#allocated-arm")).to_be_visible()
        expect(page.locator("#signatures")).to_contain_text("responsibility")
        allocated_arm = page.inner_text("#allocated-arm")
        screenshot("randomized")

    slot = Slot.objects.get(patient__trial_id="S01-LUN-001")
    assert allocated_arm == slot.treatment_arm
    assert slot.allocated_by == "investigator.lund"
    assert [shot.name for shot in screenshot.paths] == [
        "01_registration.png",
        "02_screened.png",
        "03_signing.png",
        "04_randomized.png",
    ]
    screenshot.check_written()
