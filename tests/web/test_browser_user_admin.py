"""The user administration walked in headless Debian Chromium: the administrator opens Users
from the header, creates a user with a generated one-time password, gives and removes a role
with a reason, deactivates the user (who then cannot sign in); a nurse gets the 403 page; a site's
administrator sees and offers only their site; screenshots on the way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from startrt.web.trial.models import Membership, Role, Site
from web.conftest import make_user
from web.test_browser import Screenshots, chromium_page, sign_in, sign_out

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
Staff = dict[str, User]
Sites = dict[str, Site]


def test_an_administrator_creates_changes_and_deactivates_a_user(
    live_server: Any, flushable_audit_trail: None, staff: Staff, sites: Sites, tmp_path: Path
) -> None:
    admin = make_user("admin", Role.ADMINISTRATOR, None)
    admin_key = admin.otp_device.bin_key  # type: ignore[attr-defined]
    lund_admin = make_user("admin.lund", Role.ADMINISTRATOR, sites["Lund"])
    lund_key = lund_admin.otp_device.bin_key  # type: ignore[attr-defined]
    base_url = live_server.url
    with chromium_page() as page:
        screenshot = Screenshots(page, tmp_path)
        sign_in(page, base_url, "admin", admin_key)
        page.click("header nav >> text=Users")
        expect(page.locator("h1")).to_have_text("Users")
        expect(page.locator("table.users")).to_contain_text("Research nurse at Lund")
        screenshot("users")

        page.click("#new-user")
        page.fill("[name=username]", "anna.berg")
        page.fill("[name=first_name]", "Anna")
        page.fill("[name=last_name]", "Berg")
        page.fill("[name=email]", "anna.berg@example.org")
        page.select_option("[name=role]", label="Research nurse")
        page.select_option("[name=site]", label="Lund")
        screenshot("new_user_form")
        page.click("button[type=submit] >> text=Create the user")
        expect(page.locator("h1")).to_have_text("User anna.berg created")
        password = page.locator("#generated-password").inner_text()
        assert len(password) == 16
        screenshot("one_time_password")

        page.click("text=Go to the user's page")
        page.select_option("[name=add-role]", label="Investigator")
        page.select_option("[name=add-site]", label="Uppsala")
        page.click("button[name=add_role]")
        expect(page.locator("#messages")).to_contain_text("Role added to anna.berg")
        expect(page.locator("table.roles")).to_contain_text("Uppsala")
        row = page.locator("table.roles tr", has_text="Uppsala")
        row.locator("textarea").fill("works only at Lund")
        row.locator("button").click()
        expect(page.locator("#messages")).to_contain_text("Role removed from anna.berg")
        expect(page.locator("table.roles")).not_to_contain_text("Uppsala")

        expect(page.locator("[name=active-reason]")).to_have_attribute("required", "")
        page.fill("[name=active-reason]", "left the trial team")
        page.click("button[name=set_active]")
        expect(page.locator("#messages")).to_contain_text("anna.berg is deactivated")
        expect(page.locator("#history")).to_contain_text("left the trial team")
        expect(page.locator("#history")).to_contain_text("Active: Yes → No")
        screenshot("deactivated_with_history")
        sign_out(page)

        page.goto(f"{base_url}/login/")
        page.fill("input[name=username]", "anna.berg")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Sign in")
        screenshot("deactivated_cannot_sign_in")

        sign_in(page, base_url, "nurse.lund")
        expect(page.locator("header nav")).not_to_contain_text("Users")
        page.goto(f"{base_url}/users/")
        expect(page.locator("h1")).to_have_text("Not allowed")
        screenshot("nurse_refused")
        sign_out(page)

        sign_in(page, base_url, "admin.lund", lund_key)  # a site's administrator
        page.click("header nav >> text=Users")
        expect(page.locator("#users")).to_contain_text("You administer the roles at Lund")
        expect(page.locator("table.users")).to_contain_text("nurse.lund")
        expect(page.locator("table.users")).not_to_contain_text("investigator.uppsala")
        page.click("#new-user")
        expect(page.locator("[name=site] option")).to_have_text(["Lund"])
        screenshot("site_administrator")
        screenshot.check_written()
    anna = User.objects.get(username="anna.berg")
    assert not anna.is_active
    assert list(Membership.objects.filter(user=anna).values_list("role", "site__name")) == [
        ("research_nurse", "Lund")
    ]
    print(f"screenshots in {tmp_path}")
