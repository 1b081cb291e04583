"""Signing tokens (21 CFR 11.200(a)(1)(i)): `POST /api/signing-session` checks the password (and
the code of a session not verified by one) as a signature does and returns a short-lived token,
bound to the user and the signed-in session, that signs later API actions instead of them."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.signing.models import Signature, SigningFailure, SigningToken
from startrt.web.trial import services
from startrt.web.trial.models import AuditEntry, Patient, Role, Slot
from support.records import eligible_screening
from web.conftest import make_user
from web.test_auth import (
    PASSWORD,
    PATIENT,
    RANDOMIZE,
    Sites,
    Staff,
    client_for,
    code,
    enrolled_device,
    post_json,
)

SESSION = "/api/signing-session"


@pytest.fixture
def screened(staff: Staff, sites: Sites) -> Patient:
    """An eligible Lund patient and a randomization list (as in test_auth)."""
    listing = generate_block_list(
        seed=4242, n_per_stratum=4, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)
    patient = services.register_patient(staff["nurse"], sites["Lund"], PATIENT, "male")
    services.record_screening(staff["nurse"], patient, eligible_screening())
    return patient


def token_of(client: Client, **body: str) -> str:
    issued = post_json(client, SESSION, {"password": PASSWORD, **body})
    assert issued.status_code == 200, issued.content
    token: str = issued.json()["signing_token"]
    return token


def refused_and_nothing_allocated(reply: Any, patient: Patient) -> None:
    assert (reply.status_code, reply.json()["field"]) == (422, "signing_token")
    assert not Slot.objects.filter(patient=patient).exists()
    assert not Signature.objects.exists()


def test_a_token_is_issued_only_for_the_right_password_and_a_wrong_one_is_counted(
    staff: Staff, screened: Patient
) -> None:
    client = client_for(staff["investigator"])
    wrong = post_json(client, SESSION, {"password": "not mine"})
    assert (wrong.status_code, wrong.json()["field"]) == (422, "password")
    assert "not mine" not in wrong.content.decode()
    assert not SigningToken.objects.exists()
    assert SigningFailure.objects.get().factor == "password"  # the signing throttle counts it

    issued = post_json(client, SESSION, {"password": PASSWORD})
    assert issued.status_code == 200
    body = issued.json()
    token = body["signing_token"]
    assert len(token) >= 43  # secrets.token_urlsafe(32)
    row = SigningToken.objects.get()
    assert (row.pk, row.user_id) == (body["id"], staff["investigator"].pk)
    minutes = (row.expires_at - row.issued_at).total_seconds() / 60
    assert 9.9 < minutes <= 10.0  # STARTRT_SIGNING_TOKEN_MINUTES, default 10
    issued_entry = AuditEntry.objects.get(table="signing_signingtoken", action="insert")
    assert issued_entry.username == "investigator.lund"
    assert issued_entry.new["expires_at"]
    # stored hashed, never in clear: not in the row, nor in the audit trail
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(SigningToken.objects.values().get())
    assert row.token_sha256 not in str(list(AuditEntry.objects.values("old", "new", "reason")))
    assert token not in str(list(AuditEntry.objects.values("old", "new", "reason")))


def test_a_session_not_verified_by_a_code_needs_the_code_for_a_token(
    staff: Staff, screened: Patient
) -> None:
    investigator = User.objects.get(pk=staff["investigator"].pk)  # signed in without a code
    device = enrolled_device(investigator)
    client = client_for(investigator)
    missing = post_json(client, SESSION, {"password": PASSWORD})
    assert (missing.status_code, missing.json()["field"]) == (422, "otp_token")
    wrong = post_json(client, SESSION, {"password": PASSWORD, "otp_token": "000000"})
    assert (wrong.status_code, wrong.json()["field"]) == (422, "otp_token")
    assert [f.factor for f in SigningFailure.objects.all()] == ["otp_token"]
    assert not SigningToken.objects.exists()
    device.throttle_reset()  # django-otp holds a device back for 1 s after a wrong code
    token = token_of(client, otp_token=code(device))
    allocated = post_json(client, RANDOMIZE, {"signing_token": token})
    assert allocated.status_code == 200, allocated.content


def test_a_randomization_signed_by_a_valid_token_is_allocated_signed_and_says_so(
    staff: Staff, screened: Patient
) -> None:
    client = client_for(staff["investigator"])
    token = token_of(client)
    allocated = post_json(client, RANDOMIZE, {"signing_token": token})
    assert allocated.status_code == 200, allocated.content
    slot = Slot.objects.get(patient=screened)
    signature = Signature.objects.get()
    assert (signature.kind, signature.record_id, signature.signer) == (
        "trial.slot",
        str(slot.pk),
        staff["investigator"],
    )
    entry = AuditEntry.objects.get(table="signing_signature", row_id=str(signature.pk))
    assert entry.new["signed_with"] == f"signing session {SigningToken.objects.get().pk}"


def test_a_randomization_signed_by_the_password_says_so(staff: Staff, screened: Patient) -> None:
    allocated = post_json(client_for(staff["investigator"]), RANDOMIZE, {"password": PASSWORD})
    assert allocated.status_code == 200
    signature = Signature.objects.get()
    entry = AuditEntry.objects.get(table="signing_signature", row_id=str(signature.pk))
    assert entry.new["signed_with"] == "password"


def test_an_expired_token_is_refused(staff: Staff, screened: Patient) -> None:
    client = client_for(staff["investigator"])
    token = token_of(client)
    SigningToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = post_json(client, RANDOMIZE, {"signing_token": token})
    refused_and_nothing_allocated(refused, screened)
    assert "expired" in refused.json()["message"]


def test_another_users_token_is_refused_and_counted(
    staff: Staff, sites: Sites, screened: Patient
) -> None:
    colleague = make_user("investigator2.lund", Role.INVESTIGATOR, sites["Lund"])
    token = token_of(client_for(colleague))
    refused = post_json(client_for(staff["investigator"]), RANDOMIZE, {"signing_token": token})
    refused_and_nothing_allocated(refused, screened)
    failure = SigningFailure.objects.get()
    assert (failure.user_id, failure.factor) == (staff["investigator"].pk, "signing_token")


def test_a_token_of_another_session_of_the_same_user_is_refused(
    staff: Staff, screened: Patient
) -> None:
    token = token_of(client_for(staff["investigator"]))
    other_session = client_for(staff["investigator"])
    refused = post_json(other_session, RANDOMIZE, {"signing_token": token})
    refused_and_nothing_allocated(refused, screened)


def test_an_unknown_token_is_refused(staff: Staff, screened: Patient) -> None:
    client = client_for(staff["investigator"])
    token_of(client)
    refused = post_json(client, RANDOMIZE, {"signing_token": "x" * 43})
    refused_and_nothing_allocated(refused, screened)


def test_logout_revokes_the_token(staff: Staff, screened: Patient) -> None:
    client = client_for(staff["investigator"])
    token = token_of(client)
    assert client.post("/logout/").status_code == 302
    row = SigningToken.objects.get()
    assert row.revoked_at is not None
    revoked = AuditEntry.objects.get(table="signing_signingtoken", action="update")
    assert revoked.reason == "logout"
    client.force_login(staff["investigator"])  # signed in again: a new session
    refused = post_json(client, RANDOMIZE, {"signing_token": token})
    refused_and_nothing_allocated(refused, screened)


def test_a_revoked_token_is_refused_even_in_its_session(staff: Staff, screened: Patient) -> None:
    client = client_for(staff["investigator"])
    token = token_of(client)
    SigningToken.objects.update(revoked_at=timezone.now())
    refused = post_json(client, RANDOMIZE, {"signing_token": token})
    refused_and_nothing_allocated(refused, screened)
    assert "revoked" in refused.json()["message"]


def test_a_cycle_release_and_its_unlock_take_the_token(team: Staff, sites: Sites) -> None:
    from web.test_treatment import labs_go, planned_cycle, randomized

    cycle = planned_cycle(team, randomized(team, sites, 1))
    labs_go(team, cycle)
    client = client_for(team["investigator"])
    token = token_of(client)
    url = f"/api/patients/{cycle.patient.trial_id}/cycles/1/release"
    released = post_json(client, url, {"expected_version": cycle.version, "signing_token": token})
    assert (released.status_code, released.json()["released_by"]) == (200, "investigator.lund")
    unlocked = post_json(client, f"{url}/unlock", {"signing_token": token, "reason": "typo"})
    assert unlocked.status_code == 200, unlocked.content
    entries = AuditEntry.objects.filter(table="signing_signature").order_by("pk")
    label = f"signing session {SigningToken.objects.get().pk}"
    assert [entry.new["signed_with"] for entry in entries] == [label, label]


@pytest.mark.parametrize("body", [{}, {"signing_token": ""}])
def test_neither_password_nor_token_is_refused(
    staff: Staff, screened: Patient, body: dict[str, str]
) -> None:
    refused = post_json(client_for(staff["investigator"]), RANDOMIZE, body)
    assert (refused.status_code, refused.json()["field"]) == (422, "password")
    assert not Slot.objects.filter(patient=screened).exists()
