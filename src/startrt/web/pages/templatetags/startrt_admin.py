"""Template filter of the user administration: whether to show the link to the users' pages."""

from __future__ import annotations

from django import template
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from startrt.web.trial.users import admin_scope

register = template.Library()


@register.filter
def administers(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether `user` is an administrator: {% if user|administers %}."""
    return not isinstance(user, AnonymousUser) and admin_scope(user) is not None
