"""Web tests: sites of the protocol, users with roles, and randomized patients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
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
    user = User.objects.create_user(username, password="correct horse battery")
    Membership.objects.create(user=user, site=site, role=role)
    return user


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
def fast_password_hashing(settings: Any) -> None:
    """Tests create many users: a fast hasher here (production keeps Django's PBKDF2)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
