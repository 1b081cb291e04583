"""The demo's users: a nurse, investigator, physicist and pharmacist at each site, a monitor,
a statistician and an administrator, all with one password (a local demonstration only).

Investigators and the administrator sign with two factors: each gets an enrolled TOTP device
and signs in once with a code computed from its key (`user.otp_device` then stands for the
verified session in the demo's signed service calls); the keys are shown at the end of the
demo so that a person can add them to an authenticator app and sign in."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from startrt.demo.virtual_trial import SiteTeam
from startrt.protocol.definition import Protocol
from startrt.web.signing import two_factor
from startrt.web.trial.models import Membership, Role, Site

SITE_ROLES = {
    "nurse": Role.RESEARCH_NURSE,
    "investigator": Role.INVESTIGATOR,
    "physicist": Role.PHYSICIST,
    "pharmacist": Role.PHARMACIST,
}
TRIAL_ROLES = {
    "monitor": Role.MONITOR,
    "datamanager": Role.DATA_MANAGER,
    "statistician": Role.STATISTICIAN,
    "admin": Role.ADMINISTRATOR,
}


@dataclass(frozen=True)
class DemoTeam:
    sites: dict[str, SiteTeam]
    statistician: User
    otp_keys: dict[str, str] = field(default_factory=dict)
    """The base32 TOTP key of each user who signs with two factors, by username."""


def make_team(protocol: Protocol, password: str) -> DemoTeam:
    """Users `<role>.<site>` (e.g. nurse.lund) and monitor, statistician, admin."""
    teams = {}
    for name in protocol.sites:
        site = Site.objects.get(name=name)
        users = {
            role: _user(f"{role}.{name.lower()}", password, kind, site)
            for role, kind in SITE_ROLES.items()
        }
        teams[name] = SiteTeam(**users)
    trial_wide = {role: _user(role, password, kind, None) for role, kind in TRIAL_ROLES.items()}
    users = [
        *trial_wide.values(),
        *(user for team in teams.values() for user in vars(team).values()),
    ]
    keys = {user.username: _enrol(user) for user in users if two_factor.requires_two_factor(user)}
    return DemoTeam(teams, trial_wide["statistician"], keys)


def _enrol(user: User) -> str:
    """Enrol a TOTP device for `user` and verify it with a code computed from its key, as the
    user's app would show it; the base32 key."""
    device = TOTPDevice.objects.create(user=user, name=two_factor.DEVICE_NAME, confirmed=True)
    code = f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"
    if not two_factor.check_token(device, code):
        raise RuntimeError(f"the computed TOTP code of {user.username} was refused")
    user.otp_device = device  # signed in with both factors
    return base64.b32encode(device.bin_key).decode("ascii")


def _user(username: str, password: str, role: Role, site: Site | None) -> User:
    user = User.objects.create_user(
        username, password=password, is_staff=role == Role.ADMINISTRATOR
    )
    Membership.objects.create(user=user, site=site, role=role)
    return user
