"""Authentication and electronic signatures (issue 11, points 4, 5 and 10): the API's
randomization signed like the page's; login lockouts per username and address, and a signing
throttle of its own; two-factor authentication (TOTP) for investigators and administrators,
required to sign; the change of one's own password; the first administrator's password checked
by the project's validators.

django-otp is imported inside the tests that use it, so that the other tests of this file also
run (and fail for the reason they test) on a tree without it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.utils import timezone

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.validation import InvalidInputError
from startrt.web.signing import services as signing
from startrt.web.signing.models import Signature
from startrt.web.trial import services
from startrt.web.trial.models import AuditEntry, Membership, Patient, Role, Site, Slot
from support.records import eligible_screening

PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
Staff = dict[str, User]
Sites = dict[str, Site]
PATIENT = "S01-LUN-001"
RANDOMIZE = f"/api/patients/{PATIENT}/randomize"
NAT = "10.20.30.40"  # one hospital address for every user behind it


@pytest.fixture
def screened(staff: Staff, sites: Sites) -> Patient:
    listing = generate_block_list(
        seed=4242, n_per_stratum=4, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)
    patient = services.register_patient(staff["nurse"], sites["Lund"], PATIENT, "male")
    services.record_screening(staff["nurse"], patient, eligible_screening())
    return patient


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client: Client, url: str, body: dict[str, Any] | None) -> Any:
    if body is None:
        return client.post(url)
    return client.post(url, body, content_type="application/json")


def log_in(client: Client, username: str, password: str = PASSWORD, **extra: str) -> Any:
    return client.post("/login/", {"username": username, "password": password, **extra})


def enrolled_device(user: User) -> Any:
    """The user's confirmed TOTP device (what enrolment leaves), created if they have none."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test app", confirmed=True)


def code(device: Any, steps_ahead: int = 0) -> str:
    """The code the user's app shows now (or `steps_ahead` 30-s steps later), computed from the
    device's key."""
    from django_otp.oath import totp

    device.refresh_from_db()
    return f"{totp(device.bin_key, step=device.step, digits=device.digits, drift=steps_ahead):06d}"


def new_investigator(sites: Sites, username: str = "investigator2.lund") -> User:
    """An investigator at Lund with no authenticator app enrolled yet."""
    user = User.objects.create_user(username, password=PASSWORD)
    Membership.objects.create(user=user, site=sites["Lund"], role=Role.INVESTIGATOR)
    return User.objects.get(pk=user.pk)


# --- 4. the API's randomization is signed as the page's ----------------------------------------


@pytest.mark.parametrize(
    ("body", "status"), [(None, 400), ({}, 422), ({"password": "not mine"}, 422)]
)
def test_api_randomization_without_the_right_password_allocates_nothing(
    staff: Staff, screened: Patient, body: dict[str, Any] | None, status: int
) -> None:
    refused = post_json(client_for(staff["investigator"]), RANDOMIZE, body)
    assert refused.status_code == status  # 400: no JSON body at all
    if status == 422:
        assert refused.json()["field"] == "password"
    assert "not mine" not in refused.content.decode()  # never echoed
    assert not Slot.objects.filter(patient=screened).exists()
    assert not Signature.objects.exists()


def test_api_randomization_with_the_password_is_allocated_and_signed(
    staff: Staff, screened: Patient
) -> None:
    allocated = post_json(client_for(staff["investigator"]), RANDOMIZE, {"password": PASSWORD})
    assert allocated.status_code == 200
    slot = Slot.objects.get(patient=screened)
    assert allocated.json()["treatment_arm"] == slot.treatment_arm
    signature = Signature.objects.get()
    assert (signature.kind, signature.record_id, signature.meaning) == (
        "trial.slot",
        str(slot.pk),
        "responsibility",
    )
    assert signature.signer == staff["investigator"]
    assert signing.content_unchanged(signature)


def test_api_randomization_needs_the_code_when_the_session_was_not_verified(
    staff: Staff, sites: Sites, screened: Patient
) -> None:
    investigator = User.objects.get(pk=staff["investigator"].pk)  # signed in without a code
    device = enrolled_device(investigator)
    client = client_for(investigator)
    missing = post_json(client, RANDOMIZE, {"password": PASSWORD})
    assert (missing.status_code, missing.json()["field"]) == (422, "otp_token")
    wrong = post_json(client, RANDOMIZE, {"password": PASSWORD, "otp_token": "000000"})
    assert (wrong.status_code, wrong.json()["field"]) == (422, "otp_token")
    assert not Slot.objects.filter(patient=screened).exists()
    device.throttle_reset()  # django-otp holds a device back for 1 s after a wrong code
    signed = post_json(client, RANDOMIZE, {"password": PASSWORD, "otp_token": code(device)})
    assert signed.status_code == 200
    assert Signature.objects.get().kind == "trial.slot"


def test_the_other_signed_api_actions_take_the_code_too(staff: Staff) -> None:
    """The release and its unlock and the deviation signature (the eligibility signature has no
    API operation): their bodies carry `otp_token`, the schema says so."""
    schema = client_for(staff["nurse"]).get("/api/openapi.json").json()["components"]["schemas"]
    for name in ("RandomizeIn", "ReleaseIn", "UnlockIn", "SignDeviationIn"):
        # the password (and code) or a signing token of the session: neither alone is required
        assert {"password", "otp_token", "signing_token"} <= set(schema[name]["properties"]), name


def test_an_api_release_takes_the_code_of_a_session_not_verified(team: Staff, sites: Sites) -> None:
    from web.test_treatment import labs_go, planned_cycle, randomized

    cycle = planned_cycle(team, randomized(team, sites, 1))
    labs_go(team, cycle)
    investigator = User.objects.get(pk=team["investigator"].pk)  # signed in without a code
    device = enrolled_device(investigator)
    client = client_for(investigator)
    url = f"/api/patients/{cycle.patient.trial_id}/cycles/1/release"
    body = {"expected_version": cycle.version, "password": PASSWORD}
    missing = post_json(client, url, body)
    assert (missing.status_code, missing.json()["field"]) == (422, "otp_token")
    wrong_password = post_json(client, url, {**body, "password": "x", "otp_token": code(device)})
    assert (wrong_password.status_code, wrong_password.json()["field"]) == (422, "password")
    released = post_json(client, url, {**body, "otp_token": code(device)})
    assert (released.status_code, released.json()["released_by"]) == (200, "investigator.lund")


# --- 5. lockouts: per username and address; signing throttled apart -------------------------


def test_five_wrong_logins_lock_that_user_at_that_address_not_the_colleagues(
    staff: Staff,
) -> None:
    for _ in range(4):
        assert log_in(Client(REMOTE_ADDR=NAT), "nurse.lund", "guess").status_code == 200
    # the 5th failure (AXES_FAILURE_LIMIT) locks nurse.lund at this address
    assert log_in(Client(REMOTE_ADDR=NAT), "nurse.lund", "guess").status_code == 429
    locked = log_in(Client(REMOTE_ADDR=NAT), "nurse.lund")
    assert locked.status_code == 429  # even the right password: user A is locked out
    colleague = log_in(Client(REMOTE_ADDR=NAT), "statistician")
    assert colleague.status_code == 302  # user B behind the same address is not
    assert colleague.url == "/"


def test_wrong_signing_passwords_do_not_lock_the_login_but_lock_signing_until_the_cool_off(
    staff: Staff, screened: Patient
) -> None:
    screening = screened.screening
    nurse = staff["nurse"]

    def sign(password: str) -> Signature:
        request = RequestFactory().post("/sign/", REMOTE_ADDR=NAT)
        request.user = nurse
        return signing.sign(request, password, "trial.screening", screening.pk, "authorship")

    for _ in range(6):  # more than the login limit too
        with pytest.raises(signing.SignatureRefusedError):
            sign("guess")
    assert log_in(Client(REMOTE_ADDR=NAT), "nurse.lund").status_code == 302  # login unaffected
    with pytest.raises(signing.SignatureRefusedError, match="signing is locked"):
        sign(PASSWORD)  # the right password, refused until the cool-off
    assert not Signature.objects.exists()
    failures = AuditEntry.objects.filter(table="signing_signingfailure")
    assert failures.count() == 5  # audited; the attempts while locked are refused unchecked
    assert {entry.new["factor"] for entry in failures} == {"password"}
    assert "guess" not in str([entry.new for entry in failures])

    from startrt.web.signing.models import SigningFailure

    SigningFailure.objects.update(at=timezone.now() - timedelta(minutes=16))  # cool-off over
    assert sign(PASSWORD).signer == nurse


# --- 10. two-factor authentication, required to sign ----------------------------------------


def test_an_investigator_without_an_authenticator_app_cannot_sign(
    sites: Sites, screened: Patient
) -> None:
    investigator = new_investigator(sites)
    refused = post_json(client_for(investigator), RANDOMIZE, {"password": PASSWORD})
    assert refused.status_code == 422
    assert (refused.json()["field"], "enrol") == ("otp_token", "enrol")
    assert "/account/two-factor/" in refused.json()["rule"]
    assert not Slot.objects.filter(patient=screened).exists()


def test_enrolment_shows_the_secret_and_a_code_confirms_it(sites: Sites, screened: Patient) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    investigator = new_investigator(sites)
    client = Client()
    signed_in = log_in(client, investigator.username)  # nothing enrolled: no code asked
    assert (signed_in.status_code, signed_in.url) == (302, "/account/two-factor/")
    page = client.get("/account/two-factor/")
    device = TOTPDevice.objects.get(user=investigator, confirmed=False)
    text = page.content.decode()
    assert "otpauth://totp/" in text
    assert device.config_url.replace("&", "&amp;") in text
    wrong = client.post("/account/two-factor/", {"otp_token": "123456x"})
    assert wrong.status_code == 422
    confirmed = client.post("/account/two-factor/", {"otp_token": code(device)})
    assert confirmed.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    entry = AuditEntry.objects.get(table="otp_totp_totpdevice")
    assert entry.username == investigator.username
    assert device.key not in str(entry.new)  # the key is never audited
    # the session is verified by the enrolment: the investigator signs with the password
    assert post_json(client, RANDOMIZE, {"password": PASSWORD}).status_code == 200


def test_login_asks_the_code_of_an_enrolled_app(sites: Sites, screened: Patient) -> None:
    investigator = new_investigator(sites)
    device = enrolled_device(investigator)
    without = log_in(Client(), investigator.username)
    assert without.status_code == 200
    assert "6-digit code" in without.content.decode()
    client = Client()
    now = code(device)
    accepted = log_in(client, investigator.username, otp_token=now)
    assert accepted.status_code == 302
    # a code is valid once: the same one again is refused, as is a wrong one
    for refused in (now, "000000"):
        wrong = log_in(Client(), investigator.username, otp_token=refused)
        assert wrong.status_code == 200
        assert "not a current code" in wrong.content.decode()
    # signed in with both factors: the signature needs the password only
    assert post_json(client, RANDOMIZE, {"password": PASSWORD}).status_code == 200


def test_wrong_login_codes_count_as_failed_logins(sites: Sites) -> None:
    from axes.models import AccessAttempt

    investigator = new_investigator(sites)
    enrolled_device(investigator)
    for _ in range(5):
        log_in(Client(REMOTE_ADDR=NAT), investigator.username, otp_token="000000")
    attempt = AccessAttempt.objects.get(username=investigator.username)
    assert attempt.failures_since_start == 5
    assert log_in(Client(REMOTE_ADDR=NAT), investigator.username).status_code == 429


def test_users_change_their_own_password_audited(staff: Staff) -> None:
    client = client_for(staff["nurse"])
    assert client.get("/account/password/").status_code == 200
    weak = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": "a", "new_password2": "a"},
    )
    assert weak.status_code == 200
    assert "too short" in weak.content.decode()
    new = "a much longer passphrase 7"
    changed = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert changed.status_code == 302
    entry = AuditEntry.objects.get(table="auth_user", action="update")
    assert (entry.username, entry.row_id) == ("nurse.lund", str(staff["nurse"].pk))
    assert entry.reason
    assert new not in str(entry.new)  # no password,
    assert "md5" not in str(entry.new)  # no hash
    assert log_in(Client(), "nurse.lund", new).status_code == 302
    assert client.get("/").status_code == 200  # still signed in after the change


@pytest.mark.parametrize(
    ("password", "rule"),
    [("a", "too short"), ("password123", "too common"), ("4711081512", "entirely numeric")],
)
def test_the_first_administrator_needs_a_password_the_validators_accept(
    db: None, monkeypatch: pytest.MonkeyPatch, password: str, rule: str
) -> None:
    from startrt import cli_web

    monkeypatch.setenv(cli_web.ADMIN_PASSWORD_ENV, password)
    with pytest.raises(InvalidInputError, match=rule) as refused:
        cli_web._ensure_admin("admin")
    assert "\n" not in str(refused.value)
    assert "(hidden)" in str(refused.value)  # the password itself is not shown
    assert not User.objects.filter(username="admin").exists()
    monkeypatch.setenv(cli_web.ADMIN_PASSWORD_ENV, "a long secret pass")
    cli_web._ensure_admin("admin")
    assert User.objects.get(username="admin").is_staff
