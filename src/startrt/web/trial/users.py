"""User administration in the application: administrators create users, give and take roles
per site, deactivate and reactivate them; every change audited (who, what, when, why).

Scope: an administrator's membership without a site administers every site (and the trial-wide
roles: monitor, statistician, administrator at every site); one with a site administers that
site's memberships only, and a user only when all of that user's roles lie at its sites. A user is
never deleted: deactivation (`is_active` False) refuses sign-in and keeps the user's audit entries
and signatures under their name. The last active trial-wide administrator cannot be deactivated or
lose that role, and nobody deactivates themselves or removes their own administrator role."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, User
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet

from startrt import fields
from startrt.validation import InvalidInputError, clean_text
from startrt.web.trial import audit
from startrt.web.trial.changes import require_reason
from startrt.web.trial.models import AuditEntry, Membership, Role, Site
from startrt.web.trial.permissions import ALL_SITES_ROLES

fields.register("username", "User name")
fields.register("is_active", "Active")
fields.register("email", "E-mail")
fields.register("first_name", "Given name")
fields.register("last_name", "Family name")

USER_FIELDS = ("username", "first_name", "last_name", "email", "is_active")
"""What the audit keeps of a user (never the password or its hash)."""
ONE_TIME_PASSWORD_BYTES = 12
"""A generated password: 12 random bytes, 16 URL-safe characters (96 bits)."""


@dataclass(frozen=True)
class Scope:
    """What an administrator administers: every site, or the sites listed (by id)."""

    every_site: bool
    site_ids: frozenset[int]

    def covers(self, site_id: int | None) -> bool:
        """Whether a membership at `site_id` (None: every site) is in this scope."""
        return self.every_site or (site_id is not None and site_id in self.site_ids)

    def sites(self) -> QuerySet[Site]:
        return Site.objects.all() if self.every_site else Site.objects.filter(pk__in=self.site_ids)


@dataclass(frozen=True)
class RoleGrant:
    """A role to give at a site (None: every site, for the trial-wide roles)."""

    role: str
    site: Site | None


@dataclass(frozen=True)
class CreatedUser:
    """A new user and, when the password was generated, that password (shown once)."""

    user: User
    one_time_password: str | None


def admin_scope(user: AbstractBaseUser) -> Scope | None:
    """The administrator's scope; None for anyone who is not an administrator."""
    if not user.is_authenticated or not user.is_active:
        return None
    if getattr(user, "is_superuser", False):
        return Scope(True, frozenset())
    sites = list(
        Membership.objects.filter(user_id=user.pk, role=Role.ADMINISTRATOR).values_list(
            "site_id", flat=True
        )
    )
    if not sites:
        return None
    return Scope(None in sites, frozenset(site for site in sites if site is not None))


def require_admin(user: AbstractBaseUser) -> Scope:
    """The administrator's scope; PermissionDenied for anyone else."""
    scope = admin_scope(user)
    if scope is None:
        raise PermissionDenied("user administration needs the role Administrator")
    return scope


def administered_users(admin: AbstractBaseUser) -> QuerySet[User]:
    """The users `admin` sees: every user (trial-wide), else those with a role at their sites."""
    scope = require_admin(admin)
    users = User.objects.all()
    if not scope.every_site:
        users = users.filter(memberships__site_id__in=scope.site_ids).distinct()
    return users.prefetch_related("memberships__site").order_by("username")


def administered_user(admin: AbstractBaseUser, user_id: int) -> User:
    """One user `admin` administers; PermissionDenied for any other user."""
    user = administered_users(admin).filter(pk=user_id).first()
    if user is None:
        raise PermissionDenied("this user has no role at a site you administer")
    return user


def create_user(
    admin: AbstractBaseUser,
    *,
    username: str,
    first_name: str,
    last_name: str,
    email: str,
    password: str | None,
    roles: Iterable[RoleGrant],
) -> CreatedUser:
    """A new active user with `roles` (at least one); `password` checked by the project's
    password validators, or None for a generated one-time password. Audited."""
    scope = require_admin(admin)
    grants = list(roles)
    if not grants:
        raise InvalidInputError("roles", [], "give the user at least one role")
    username = _username(username)
    names = {
        "first_name": clean_text("first_name", first_name, max_length=150),
        "last_name": clean_text("last_name", last_name, max_length=150),
    }
    email = _email(email)
    user = User(username=username, email=email, **names)
    generated = password is None
    if password is None:
        password = secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise InvalidInputError("password", "(hidden)", " ".join(error.messages)) from error
    for grant in grants:
        _check_grant(scope, grant)
    with transaction.atomic():
        user.set_password(password)
        user.save()
        audit.record(admin, "insert", user, old=None, new=_snapshot(user))
        for grant in grants:
            _insert_membership(admin, user, grant, reason="")
    return CreatedUser(user, password if generated else None)


def add_role(admin: AbstractBaseUser, user: User, grant: RoleGrant, reason: str = "") -> Membership:
    """Give `user` a role at a site (the reason is optional); audited."""
    scope = require_admin(admin)
    _check_grant(scope, grant)
    if Membership.objects.filter(user=user, site=grant.site, role=grant.role).exists():
        where = grant.site.name if grant.site else "every site"
        label = Role(grant.role).label
        raise InvalidInputError("role", label, f"the user already has this role at {where}")
    reason = clean_text("reason", reason, max_length=2000, multiline=True, required=False)
    with transaction.atomic():
        return _insert_membership(admin, user, grant, reason)


def remove_role(admin: AbstractBaseUser, membership: Membership, reason: str) -> None:
    """Take a role away (a reason is required); audited. Refused for one's own administrator
    role and for the last active trial-wide administrator's."""
    scope = require_admin(admin)
    reason = require_reason(reason, "removing a role needs a reason")
    if not scope.covers(membership.site_id):
        raise PermissionDenied("this role is at a site you do not administer")
    if membership.role == Role.ADMINISTRATOR and membership.user_id == admin.pk:
        raise InvalidInputError(
            "role", Role(membership.role).label, "you cannot remove your own administrator role"
        )
    with transaction.atomic():
        _lock_administrators()
        if _is_trial_wide_admin(membership) and _last_administrator(membership.user_id):
            raise InvalidInputError(
                "role",
                Role(membership.role).label,
                "the trial needs at least one active administrator",
            )
        old = audit.snapshot(membership)
        audit.record(admin, "delete", membership, old=old, new=None, reason=reason)
        membership.delete()


def set_active(admin: AbstractBaseUser, user: User, *, active: bool, reason: str) -> User:
    """Deactivate (sign-in refused, history kept) or reactivate `user` with a reason; audited.
    Refused for oneself and for the last active trial-wide administrator."""
    scope = require_admin(admin)
    reason = require_reason(
        reason, f"{'reactivating' if active else 'deactivating'} needs a reason"
    )
    sites = set(Membership.objects.filter(user=user).values_list("site_id", flat=True))
    if not scope.every_site and not (sites and all(scope.covers(site) for site in sites)):
        raise PermissionDenied("this user has roles at sites you do not administer")
    if user.pk == admin.pk:
        raise InvalidInputError("user", user.username, "you cannot deactivate yourself")
    if user.is_active == active:
        state = "active" if active else "deactivated"
        raise InvalidInputError("user", user.username, f"the user is already {state}")
    with transaction.atomic():
        _lock_administrators()
        if not active and _last_administrator(user.pk):
            raise InvalidInputError(
                "user", user.username, "the trial needs at least one active administrator"
            )
        old = _snapshot(user)
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit.record(admin, "update", user, old=old, new=_snapshot(user), reason=reason)
    return user


def history(user: User) -> QuerySet[AuditEntry]:
    """The audit entries of `user`'s account and roles, oldest first."""
    return AuditEntry.objects.filter(
        Q(table=User._meta.db_table, row_id=str(user.pk))
        | Q(table=Membership._meta.db_table, new__user=user.pk)
        | Q(table=Membership._meta.db_table, old__user=user.pk)
    ).order_by("at", "pk")


def _username(username: str) -> str:
    username = clean_text("username", username, max_length=150)
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as error:
        raise InvalidInputError("username", username, " ".join(error.messages)) from error
    if User.objects.filter(username__iexact=username).exists():
        raise InvalidInputError("username", username, "is taken: user names are unique")
    return username


def _email(email: str) -> str:
    email = clean_text("email", email, max_length=254, required=False)
    if email:
        try:
            validate_email(email)
        except ValidationError as error:
            raise InvalidInputError("email", email, "must be an e-mail address") from error
    return email


def _check_grant(scope: Scope, grant: RoleGrant) -> None:
    if grant.role not in Role.values:
        raise InvalidInputError("role", grant.role, "must be one of the trial's roles")
    if grant.site is None and grant.role not in ALL_SITES_ROLES:
        label = Role(grant.role).label
        raise InvalidInputError("site", "every site", f"the role {label} is given at one site")
    if not scope.covers(grant.site.pk if grant.site else None):
        where = grant.site.name if grant.site else "every site"
        raise PermissionDenied(f"you do not administer {where}")


def _insert_membership(
    admin: AbstractBaseUser, user: User, grant: RoleGrant, reason: str
) -> Membership:
    membership = Membership.objects.create(user=user, site=grant.site, role=grant.role)
    audit.record(
        admin, "insert", membership, old=None, new=audit.snapshot(membership), reason=reason
    )
    return membership


def _snapshot(user: User) -> dict[str, Any]:
    return {"id": user.pk, **{name: getattr(user, name) for name in USER_FIELDS}}


def _is_trial_wide_admin(membership: Membership) -> bool:
    return membership.role == Role.ADMINISTRATOR and membership.site_id is None


def _trial_wide_admins() -> QuerySet[Membership]:
    return Membership.objects.filter(
        role=Role.ADMINISTRATOR, site__isnull=True, user__is_active=True
    )


def _lock_administrators() -> None:
    """Lock the trial-wide administrators' memberships so that two administrators cannot
    each remove the other in parallel (PostgreSQL; SQLite serializes writers anyway)."""
    list(_trial_wide_admins().select_for_update().values_list("pk", flat=True))


def _last_administrator(user_id: int) -> bool:
    """Whether `user_id` is the only active trial-wide administrator."""
    admins = set(_trial_wide_admins().values_list("user_id", flat=True))
    return admins == {user_id}
