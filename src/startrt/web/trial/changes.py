"""How services write trial data: rows locked at the version the user saw, every insert and
change audited, a change with its reason (one implementation for every app)."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from startrt.validation import InvalidInputError, clean_text, text_problem
from startrt.web.monitoring.lock_guard import refuse_change
from startrt.web.trial import audit
from startrt.web.trial.models import Patient


class StaleVersionError(InvalidInputError):
    """The record changed since the user loaded it; reload and apply the change again."""


Versioned = TypeVar("Versioned", bound=models.Model)


def check_version(instance: models.Model, expected_version: int | None, what: str = "") -> None:
    """Refuse an edit based on another version than the row's current one."""
    current = instance.version  # type: ignore[attr-defined]
    if expected_version != current:
        name = what or str(instance._meta.verbose_name)
        raise StaleVersionError(
            "expected_version", expected_version, f"the {name} is at version {current}: reload it"
        )


def locked(instance: Versioned, expected_version: int | None, what: str = "") -> Versioned:
    """The row again, locked for this transaction, if still at the version the user saw."""
    current = type(instance)._default_manager.select_for_update().get(pk=instance.pk)
    check_version(current, expected_version, what)
    return current


def insert(user: AbstractBaseUser, instance: Versioned, patient: Patient) -> Versioned:
    """Save a new row and audit it (refused while the database is locked or the patient frozen)."""
    refuse_change(instance, patient)
    instance.save()
    audit.record(
        user,
        "insert",
        instance,
        old=None,
        new=audit.snapshot(instance),
        patient_trial_id=patient.trial_id,
    )
    return instance


def require_reason(reason: object, rule: str) -> str:
    """A non-blank reason, stripped, checked as free text (`validation.clean_text`)."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("reason", reason, rule)
    return clean_text("reason", reason, max_length=2000, multiline=True)


def update(
    user: AbstractBaseUser,
    instance: Versioned,
    patient: Patient,
    changes: dict[str, Any],
    reason: str,
) -> Versioned:
    """Apply `changes`, raise the version, save and audit old and new values with `reason`."""
    if not reason.strip():
        raise InvalidInputError("reason", reason, "a change after first entry needs a reason")
    problem = text_problem(reason, multiline=True)  # free text: the rule of validation.clean_text
    if problem is not None:
        raise InvalidInputError("reason", reason, problem)
    refuse_change(instance, patient)
    old = audit.snapshot(instance)
    for name, value in changes.items():
        setattr(instance, name, value)
    instance.version += 1  # type: ignore[attr-defined]
    instance.save()
    audit.record(
        user,
        "update",
        instance,
        old=old,
        new=audit.snapshot(instance),
        reason=reason,
        patient_trial_id=patient.trial_id,
    )
    return instance
