"""Dates in ISO 8601 in every input (issue 14, item 10): a date is typed and shown as
YYYY-MM-DD and a time as YYYY-MM-DD HH:MM whatever the browser's language (Chromium's own date
picker shows mm/dd/yyyy in en-US); another order is refused, never guessed."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.contrib.auth.models import User
from playwright.sync_api import expect, sync_playwright

from startrt.web.pages.forms import ScreeningForm, date_field, datetime_field
from startrt.web.trial import services
from startrt.web.trial.models import Site
from web.test_browser import CHROMIUM, CHROMIUM_ARGS, sign_in


class Dates(forms.Form):
    day = date_field()
    moment = datetime_field()


@pytest.mark.parametrize(
    ("day", "moment", "parsed"),
    [
        ("2026-03-01", "2026-03-01 14:05", (date(2026, 3, 1), datetime(2026, 3, 1, 14, 5))),
        ("2026-12-31", "2026-12-31T23:59", (date(2026, 12, 31), datetime(2026, 12, 31, 23, 59))),
    ],
)
def test_iso_dates_and_times_are_read(
    day: str, moment: str, parsed: tuple[date, datetime], settings: Any
) -> None:
    settings.USE_TZ = False  # the naive value as typed
    form = Dates({"day": day, "moment": moment})
    assert form.is_valid(), form.errors
    assert (form.cleaned_data["day"], form.cleaned_data["moment"]) == parsed


@pytest.mark.parametrize(
    ("day", "moment"), [("03/01/2026", "03/01/2026 2:05 PM"), ("1.3.2026", "")]
)
def test_other_orders_are_refused(day: str, moment: str) -> None:
    form = Dates({"day": day, "moment": moment})
    assert not form.is_valid()
    assert set(form.errors) == {"day", "moment"}


def test_the_inputs_say_the_format_and_show_iso() -> None:
    form = ScreeningForm(initial={"screening_date": date(2026, 3, 1)})
    html = str(form["screening_date"])
    assert 'type="text"' in html
    assert 'placeholder="YYYY-MM-DD"' in html
    assert 'pattern="\\d{4}-\\d{2}-\\d{2}"' in html
    assert 'inputmode="numeric"' in html
    assert 'value="2026-03-01"' in html
    moment = str(Dates(initial={"moment": datetime(2026, 3, 1, 14, 5)})["moment"])
    assert 'value="2026-03-01 14:05"' in moment
    assert 'placeholder="YYYY-MM-DD HH:MM"' in moment


@pytest.mark.slow
def test_chromium_in_en_us_shows_and_keeps_iso_dates(
    live_server: Any,
    flushable_audit_trail: None,
    staff: dict[str, User],
    sites: dict[str, Site],
    tmp_path: Path,
) -> None:
    services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "female")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="en-US", timezone_id="America/New_York").new_page()
            sign_in(page, live_server.url, "nurse.lund")
            page.goto(f"{live_server.url}/patients/S01-LUN-001/")
            field = page.locator("#screening [name=screening_date]")
            expect(field).to_have_attribute("placeholder", "YYYY-MM-DD")
            field.fill("2026-03-01")
            expect(field).to_have_value("2026-03-01")
            assert page.evaluate("navigator.language") == "en-US"
            field.scroll_into_view_if_needed()
            page.screenshot(path=tmp_path / "iso_date_en_us.png")
            field.fill("03/01/2026")  # the pattern marks the US order invalid before sending
            assert not field.evaluate("input => input.checkValidity()")
        finally:
            browser.close()
    assert (tmp_path / "iso_date_en_us.png").read_bytes()[:4] == b"\x89PNG"
