"""The demo's users: a nurse, investigator, physicist and pharmacist at each site, a monitor,
a statistician and an administrator, all with one password (a local demonstration only)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User

from startrt.demo.virtual_trial import SiteTeam
from startrt.protocol.definition import Protocol
from startrt.web.trial.models import Membership, Role, Site

SITE_ROLES = {
    "nurse": Role.RESEARCH_NURSE,
    "investigator": Role.INVESTIGATOR,
    "physicist": Role.PHYSICIST,
    "pharmacist": Role.PHARMACIST,
}
TRIAL_ROLES = {
    "monitor": Role.MONITOR,
    "statistician": Role.STATISTICIAN,
    "admin": Role.ADMINISTRATOR,
}


@dataclass(frozen=True)
class DemoTeam:
    sites: dict[str, SiteTeam]
    statistician: User


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
    return DemoTeam(teams, trial_wide["statistician"])


def _user(username: str, password: str, role: Role, site: Site | None) -> User:
    user = User.objects.create_user(
        username, password=password, is_staff=role == Role.ADMINISTRATOR
    )
    Membership.objects.create(user=user, site=site, role=role)
    return user
