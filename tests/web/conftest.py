"""Web tests: sites of the protocol, users with roles, and an eligible screening record."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from startrt.protocol.definition import default_protocol
from startrt.web.trial.models import Membership, Role, Site


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


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Tests create many users: a fast hasher here (production keeps Django's PBKDF2)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
