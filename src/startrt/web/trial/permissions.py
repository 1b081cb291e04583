"""Who may do what where: roles per site; monitors, data managers and statisticians read every
site."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from startrt.web.trial.models import Membership, Patient, Role, Site

ALL_SITES_ROLES = {Role.MONITOR, Role.DATA_MANAGER, Role.STATISTICIAN, Role.ADMINISTRATOR}


def roles_at(user: AbstractBaseUser, site: Site) -> set[str]:
    """The user's roles at `site` (a membership without site counts at every site)."""
    memberships = Membership.objects.filter(user=user).filter(
        site__isnull=True
    ) | Membership.objects.filter(user=user, site=site)
    return {membership.role for membership in memberships}


def require_role(user: AbstractBaseUser, site: Site, *allowed: Role) -> None:
    """Refuse (PermissionDenied) unless the user holds one of `allowed` at `site`."""
    if not roles_at(user, site) & {role.value for role in allowed}:
        names = ", ".join(role.label for role in allowed)
        raise PermissionDenied(f"needs the role {names} at {site.name}")


def visible_patients(user: AbstractBaseUser) -> QuerySet[Patient]:
    """The patients the user may see: their sites' (every site for all-site roles)."""
    memberships = Membership.objects.filter(user=user)
    if memberships.filter(site__isnull=True).exists():
        return Patient.objects.all()
    return Patient.objects.filter(site__in=memberships.values("site"))
