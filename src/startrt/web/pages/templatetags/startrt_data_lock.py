"""Template tags of the data lock: whether to show the link to the data-lock page, and the
banner every page shows while the database is locked (and a frozen patient's pages while the
patient's records are frozen)."""

from __future__ import annotations

from django import template
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from startrt.web.monitoring import data_lock, lock_guard
from startrt.web.trial.models import Patient

register = template.Library()


@register.filter
def locks_data(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether `user` freezes and locks: {% if user|locks_data %}."""
    return not isinstance(user, AnonymousUser) and data_lock.may_lock(user)


@register.inclusion_tag("pages/data_lock/banner.html")
def data_lock_banner(patient: object = None) -> dict[str, str]:
    """The lock in force, and the freeze of `patient` (on a patient's pages), for people."""
    lock = lock_guard.active_lock()
    freeze = lock_guard.active_freeze(patient) if isinstance(patient, Patient) else None
    texts = [
        lock_guard.lock_text(lock) if lock else "",
        lock_guard.freeze_text(freeze) if freeze else "",
    ]
    return {"lock": _sentence(texts[0]), "freeze": _sentence(texts[1])}


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}." if text else ""
