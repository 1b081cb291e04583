"""User administration in the application (issue 15, item 7): an administrator creates users,
gives and removes roles per site, deactivates (sign-in refused, history kept) and reactivates
them, every change audited with who, what and why; a site's administrator only at their site;
everyone else 403; the guard rails (oneself, the last administrator, unique user names)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.web.signing.models import Signature
from startrt.web.trial.models import AuditEntry, Membership, Role, Site
from web.conftest import make_user

PASSWORD = "correct horse battery"
NEW_PASSWORD = "lingonberry kayak 42"
Staff = dict[str, User]
Sites = dict[str, Site]


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def admin(staff: Staff) -> User:
    return make_user("admin", Role.ADMINISTRATOR, None)


@pytest.fixture
def lund_admin(staff: Staff, sites: Sites) -> User:
    return make_user("admin.lund", Role.ADMINISTRATOR, sites["Lund"])


def new_user(client: Client, site: Site | None, **changes: str) -> object:
    data = {
        "username": "anna.berg",
        "first_name": "Anna",
        "last_name": "Berg",
        "email": "anna.berg@example.org",
        "password": NEW_PASSWORD,
        "role": Role.RESEARCH_NURSE.value,
        "site": str(site.pk) if site else "",
        **changes,
    }
    return client.post("/users/new/", data)


def entries(table: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(table=table).order_by("pk"))


def text(response: object) -> str:
    return re.sub(r"\s+", " ", response.content.decode())  # type: ignore[attr-defined]


def test_an_administrator_creates_a_user_who_can_sign_in(admin: User, sites: Sites) -> None:
    created = new_user(signed_in(admin), sites["Lund"])
    anna = User.objects.get(username="anna.berg")
    assert (created.status_code, created["Location"]) == (302, f"/users/{anna.pk}/")
    assert (anna.get_full_name(), anna.email, anna.is_active) == (
        "Anna Berg",
        "anna.berg@example.org",
        True,
    )
    assert list(Membership.objects.filter(user=anna).values_list("role", "site__name")) == [
        ("research_nurse", "Lund")
    ]
    [user_entry] = entries("auth_user")
    assert (user_entry.username, user_entry.action, user_entry.row_id) == (
        "admin",
        "insert",
        str(anna.pk),
    )
    assert "password" not in user_entry.new
    [role_entry] = entries("trial_membership")
    assert role_entry.new["role"] == "research_nurse"
    assert Client().post("/login/", {"username": "anna.berg", "password": NEW_PASSWORD})[
        "Location"
    ] == ("/")
    listing = text(signed_in(admin).get("/users/"))
    assert "Anna Berg" in listing
    assert "Research nurse at Lund" in listing


def test_the_site_offered_first_is_a_site_not_every_site(admin: User, sites: Sites) -> None:
    form = signed_in(admin).get("/users/new/").content.decode()
    assert f'<option value="{sites["Gothenburg"].pk}" selected>Gothenburg</option>' in form
    assert '<option value="" selected>' not in form


def test_a_generated_password_is_shown_once_and_works(admin: User, sites: Sites) -> None:
    shown = new_user(signed_in(admin), sites["Lund"], password="")
    assert shown.status_code == 200
    assert shown["Cache-Control"] == "no-store"
    password = re.search(r'id="generated-password">([^<]+)<', shown.content.decode())[1]
    assert len(password) == 16  # 12 random bytes, URL-safe base64
    assert password not in str([e.new for e in AuditEntry.objects.all()])
    assert Client().post("/login/", {"username": "anna.berg", "password": password})[
        "Location"
    ] == ("/")


def test_refusals_name_the_field_and_the_rule(admin: User, sites: Sites) -> None:
    client = signed_in(admin)
    weak = text(new_user(client, sites["Lund"], password="12345678"))
    assert "This password is too short" in weak
    assert "entirely numeric" in weak
    taken = new_user(client, sites["Lund"], username="NURSE.LUND")
    assert taken.status_code == 422
    assert "is taken: user names are unique" in text(taken)
    everywhere = text(new_user(client, None))
    assert "the role Research nurse is given at one site" in everywhere
    assert not User.objects.filter(username__in=["anna.berg", "NURSE.LUND"]).exists()
    assert not entries("auth_user")


def test_roles_are_added_and_removed_with_a_reason(admin: User, staff: Staff, sites: Sites) -> None:
    nurse, client = staff["nurse"], signed_in(admin)
    url = f"/users/{nurse.pk}/"
    added = client.post(
        url,
        {"add-role": "investigator", "add-site": str(sites["Uppsala"].pk), "add_role": ""},
    )
    assert added.status_code == 302
    membership = Membership.objects.get(user=nurse, role="investigator")
    assert membership.site == sites["Uppsala"]
    remove = f"/users/{nurse.pk}/roles/{membership.pk}/remove/"
    refused = client.post(remove, {f"remove-{membership.pk}-reason": " "})
    assert refused.status_code == 422
    assert Membership.objects.filter(pk=membership.pk).exists()
    removed = client.post(remove, {f"remove-{membership.pk}-reason": "left the Uppsala team"})
    assert removed.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    inserted, deleted = entries("trial_membership")
    assert (inserted.action, deleted.action, deleted.reason) == (
        "insert",
        "delete",
        "left the Uppsala team",
    )
    assert deleted.old == {
        "id": membership.pk,
        "user": nurse.pk,
        "site": sites["Uppsala"].pk,
        "role": "investigator",
    }
    page = text(client.get(url))
    assert "left the Uppsala team" in page
    assert "Role: Investigator" in page  # labels, not ids
    assert "Site: Uppsala" in page


def test_a_deactivated_user_cannot_sign_in_and_keeps_their_history(
    admin: User, staff: Staff, sites: Sites
) -> None:
    from startrt.web.trial import services

    nurse, client = staff["nurse"], signed_in(admin)
    patient = services.register_patient(nurse, sites["Lund"], "S01-LUN-001", "male")
    session = signed_in(nurse)
    url = f"/users/{nurse.pk}/"
    assert client.post(url, {"active-reason": "", "set_active": ""}).status_code == 422
    done = client.post(url, {"active-reason": "left the trial team", "set_active": ""})
    assert done.status_code == 302
    nurse.refresh_from_db()
    assert not nurse.is_active
    assert User.objects.filter(pk=nurse.pk).exists()  # never deleted
    login = Client().post("/login/", {"username": "nurse.lund", "password": PASSWORD})
    assert login.status_code == 200  # the form again: refused
    assert "_auth_user_id" not in login.client.session
    assert session.get("/").status_code == 302  # the open session ends
    assert AuditEntry.objects.filter(patient_trial_id=patient.trial_id, username="nurse.lund")
    trail = text(signed_in(staff["investigator"]).get(f"/patients/{patient.trial_id}/audit/"))
    assert "nurse.lund" in trail
    [entry] = entries("auth_user")
    assert (entry.action, entry.reason, entry.old["is_active"], entry.new["is_active"]) == (
        "update",
        "left the trial team",
        True,
        False,
    )
    again = client.post(url, {"active-reason": "back from leave", "set_active": ""})
    assert again.status_code == 302
    back = Client().post("/login/", {"username": "nurse.lund", "password": PASSWORD})
    assert back["Location"] == "/"


def test_signatures_of_a_deactivated_user_keep_their_name(
    admin: User, staff: Staff, sites: Sites
) -> None:
    from django.test import RequestFactory

    from startrt.web.signing import services as signing
    from startrt.web.trial import services
    from support.records import eligible_screening

    nurse = staff["nurse"]
    patient = services.register_patient(nurse, sites["Lund"], "S01-LUN-001", "male")
    screening = services.record_screening(nurse, patient, eligible_screening())
    request = RequestFactory().post("/sign/", REMOTE_ADDR="10.0.0.7")
    request.user = nurse
    signing.sign(request, PASSWORD, "trial.screening", screening.pk, "authorship")
    signed_in(admin).post(f"/users/{nurse.pk}/", {"active-reason": "moved away", "set_active": ""})
    nurse.refresh_from_db()
    assert not nurse.is_active
    signature = Signature.objects.get()
    assert (signature.signer, signature.signer_username) == (nurse, "nurse.lund")
    page = text(signed_in(staff["investigator"]).get("/patients/S01-LUN-001/"))
    assert "nurse.lund" in page


def test_others_get_403(staff: Staff, sites: Sites, admin: User) -> None:
    for role in ("nurse", "investigator", "monitor", "statistician"):
        client = signed_in(staff[role])
        assert client.get("/users/").status_code == 403, role
        assert client.get(f"/users/{admin.pk}/").status_code == 403, role
        assert new_user(client, sites["Lund"]).status_code == 403, role
        assert "/users/" not in client.get("/").content.decode()
    assert not User.objects.filter(username="anna.berg").exists()
    assert 'href="/users/"' in signed_in(admin).get("/").content.decode()


def test_a_site_administrator_works_only_at_their_site(
    lund_admin: User, staff: Staff, sites: Sites, admin: User
) -> None:
    client = signed_in(lund_admin)
    listing = text(client.get("/users/"))
    assert "nurse.lund" in listing
    assert "investigator.uppsala" not in listing
    assert client.get(f"/users/{staff['uppsala'].pk}/").status_code == 403
    assert new_user(client, sites["Uppsala"]).status_code == 422  # not a site offered
    assert new_user(client, sites["Lund"]).status_code == 302
    nurse = staff["nurse"]
    grant = {"add-role": "monitor", "add-site": "", "add_role": ""}
    assert client.post(f"/users/{nurse.pk}/", grant).status_code == 403
    assert not Membership.objects.filter(user=nurse, role="monitor").exists()
    # a Lund nurse who also works at Uppsala is out of the Lund administrator's reach to
    # deactivate, and the Uppsala role cannot be removed by them
    uppsala = Membership.objects.create(user=nurse, site=sites["Uppsala"], role="research_nurse")
    deactivate = {"active-reason": "left", "set_active": ""}
    assert client.post(f"/users/{nurse.pk}/", deactivate).status_code == 403
    remove = f"/users/{nurse.pk}/roles/{uppsala.pk}/remove/"
    assert client.post(remove, {f"remove-{uppsala.pk}-reason": "x"}).status_code == 403
    assert User.objects.get(pk=nurse.pk).is_active
    assert Membership.objects.filter(pk=uppsala.pk).exists()


def superuser(username: str) -> User:
    """A superuser without any role (what `createsuperuser` makes), verified by two factors."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = User.objects.create_superuser(username, password=PASSWORD)
    user.otp_device = TOTPDevice.objects.create(user=user, name="test app", confirmed=True)
    return user


def test_guard_rails_on_oneself_and_the_last_administrator(admin: User, staff: Staff) -> None:
    client = signed_in(admin)
    url = f"/users/{admin.pk}/"
    own = client.post(url, {"active-reason": "testing", "set_active": ""})
    assert own.status_code == 422
    assert "you cannot deactivate yourself" in text(own)
    role = Membership.objects.get(user=admin)
    remove = f"/users/{admin.pk}/roles/{role.pk}/remove/"
    removal = client.post(remove, {f"remove-{role.pk}-reason": "testing"})
    assert removal.status_code == 422
    assert "you cannot remove your own administrator role" in text(removal)
    second = make_user("admin2", Role.ADMINISTRATOR, None)
    deactivated = signed_in(second).post(url, {"active-reason": "leaves", "set_active": ""})
    assert deactivated.status_code == 302  # admin2 is still there
    assert client.get("/users/").status_code == 302  # admin's session ended: to sign-in
    # admin2 is now the only active trial-wide administrator
    root = signed_in(superuser("root"))
    last = f"/users/{second.pk}/"
    refused = root.post(last, {"active-reason": "cleanup", "set_active": ""})
    assert refused.status_code == 422
    assert "the trial needs at least one active administrator" in text(refused)
    second_role = Membership.objects.get(user=second)
    take = f"/users/{second.pk}/roles/{second_role.pk}/remove/"
    refused = root.post(take, {f"remove-{second_role.pk}-reason": "cleanup"})
    assert refused.status_code == 422
    assert "the trial needs at least one active administrator" in text(refused)
    assert User.objects.get(pk=second.pk).is_active
    assert Membership.objects.filter(pk=second_role.pk).exists()
    assert root.post(url, {"active-reason": "back", "set_active": ""}).status_code == 302
    assert root.post(take, {f"remove-{second_role.pk}-reason": "cleanup"}).status_code == 302
    assert not Membership.objects.filter(pk=second_role.pk).exists()  # admin is back


def test_an_administrator_without_a_verified_session_is_sent_to_two_factor(
    sites: Sites,
) -> None:
    unverified = User.objects.create_user("admin.new", password=PASSWORD)
    Membership.objects.create(user=unverified, site=None, role=Role.ADMINISTRATOR)
    answer = signed_in(unverified).get("/users/")
    assert (answer.status_code, answer["Location"]) == (302, "/account/two-factor/")
