"""Web tests: sites of the protocol, users with roles, and randomized patients."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in
from django.db import connection
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.signing.two_factor import TWO_FACTOR_ROLES
from startrt.web.trial import services as trial
from startrt.web.trial.models import Membership, Patient, Role, Site
from support.records import eligible_screening

Randomized = Callable[[bool], Patient]


@pytest.fixture
def sites(db: None) -> dict[str, Site]:
    codes = {"Gothenburg": "GOT", "Lund": "LUN", "Stockholm": "STO", "Uppsala": "UPP"}
    return {
        name: Site.objects.create(name=name, code=codes[name]) for name in default_protocol().sites
    }


def make_user(username: str, role: Role, site: Site | None) -> User:
    """A user with `role`; an investigator or administrator (who signs with two factors) also
    gets an enrolled TOTP device and stands for a session verified by it: requests made with
    this instance, and a client's force_login of it, are verified (see `_force_login_verifies`)."""
    user = User.objects.create_user(username, password="correct horse battery")
    Membership.objects.create(user=user, site=site, role=role)
    if role in TWO_FACTOR_ROLES:
        user.otp_device = TOTPDevice.objects.create(user=user, name="test app", confirmed=True)
    return user


def _verified_by_force_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    device = getattr(user, "otp_device", None)
    if device is not None and getattr(request, "session", None) is not None:
        request.session[DEVICE_ID_SESSION_KEY] = device.persistent_id


@pytest.fixture(autouse=True)
def _force_login_verifies() -> Iterator[None]:
    """Client.force_login of a user made by `make_user` with a device keeps that device in the
    session, as a sign-in with both factors would (force_login skips the password too)."""
    user_logged_in.connect(_verified_by_force_login, dispatch_uid="tests-force-login-otp")
    yield
    user_logged_in.disconnect(dispatch_uid="tests-force-login-otp")


@pytest.fixture
def staff(sites: dict[str, Site]) -> dict[str, User]:
    lund = sites["Lund"]
    return {
        "nurse": make_user("nurse.lund", Role.RESEARCH_NURSE, lund),
        "investigator": make_user("investigator.lund", Role.INVESTIGATOR, lund),
        "uppsala": make_user("investigator.uppsala", Role.INVESTIGATOR, sites["Uppsala"]),
        "monitor": make_user("monitor", Role.MONITOR, None),
        "statistician": make_user("statistician", Role.STATISTICIAN, None),
    }


@pytest.fixture
def team(staff: dict[str, User], sites: dict[str, Site]) -> dict[str, User]:
    """The staff plus a physicist and a pharmacist at Lund (the treatment course's roles)."""
    lund = sites["Lund"]
    return {
        **staff,
        "physicist": make_user("physicist.lund", Role.PHYSICIST, lund),
        "pharmacist": make_user("pharmacist.lund", Role.PHARMACIST, lund),
    }


@pytest.fixture
def randomized(staff: dict[str, User], sites: dict[str, Site]) -> Randomized:
    """Randomizes new Lund patients (FDG-PET positive) until one lands in an arm with (or
    without) capecitabine: standard gives none, CAP-dTOC gives it."""
    listing = generate_block_list(
        seed=4242, n_per_stratum=8, strata=protocol_strata(default_protocol())
    )
    trial.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)
    numbers = iter(range(1, 9))

    def make(capecitabine: bool) -> Patient:
        for number in numbers:
            patient = trial.register_patient(
                staff["nurse"], sites["Lund"], f"S01-LUN-{number:03d}", "male"
            )
            trial.record_screening(
                staff["nurse"], patient, eligible_screening(fdg_pet_positive=True)
            )
            slot = trial.randomize(staff["investigator"], patient)
            if default_protocol().arm(slot.treatment_arm).capecitabine == capecitabine:
                return patient
        raise AssertionError("the list ran out of slots")

    return make


@pytest.fixture(autouse=True)
def _every_web_test_hashes_fast(fast_password_hashing: None) -> None:
    """Every web test uses the fast hasher of tests/conftest.py."""


APPEND_ONLY = [
    importlib.import_module("startrt.web.trial.migrations.0002_audit_append_only"),
    importlib.import_module("startrt.web.signing.migrations.0002_signature_append_only"),
    importlib.import_module("startrt.web.monitoring.migrations.0003_lock_append_only"),
]


def _audit_triggers(create: bool) -> None:
    with connection.schema_editor() as editor:
        for migration in APPEND_ONLY:
            (migration.create if create else migration.drop)(apps, editor)


@pytest.fixture(scope="module")
def audit_triggers_back(django_db_blocker: Any) -> Iterator[None]:
    """Brings the audit trail's append-only triggers back after the flush (see below)."""
    yield
    if connection.vendor == "sqlite":
        with django_db_blocker.unblock():
            _audit_triggers(create=True)


@pytest.fixture
def flushable_audit_trail(audit_triggers_back: None, transactional_db: None) -> Iterator[None]:
    """A live-server test ends by emptying every table; SQLite's flush DELETEs rows, which the
    append-only triggers refuse (PostgreSQL's TRUNCATE does not fire them): lift the triggers
    for the flush only."""
    yield
    if connection.vendor == "sqlite":
        _audit_triggers(create=False)
