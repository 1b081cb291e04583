"""The one gateway to the audit trail: every insert, change and deletion of trial data is
recorded with who, when (UTC, by the database clock of the row), what (old and new values) and
why (a reason is required for any change after first entry). Entries are hash-chained
(`trial.chain`): `startrt audit verify` finds an edited, deleted, inserted or reordered one."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.forms.models import model_to_dict

from startrt.validation import InvalidInputError
from startrt.web.trial import chain
from startrt.web.trial.models import AuditEntry

User = AbstractBaseUser | AnonymousUser


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The row's field values as JSON-ready data."""
    values = model_to_dict(instance)
    values["id"] = instance.pk
    encoder = DjangoJSONEncoder()
    return {key: _plain(value, encoder) for key, value in values.items()}


def _plain(value: Any, encoder: DjangoJSONEncoder) -> Any:
    if isinstance(value, str | int | float | bool | dict | list) or value is None:
        return value
    return encoder.default(value)


def record(
    user: User,
    action: str,
    instance: models.Model,
    *,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    reason: str = "",
    patient_trial_id: str = "",
) -> AuditEntry:
    """Append one audit entry (call inside the transaction of the change itself)."""
    if action == "update" and not reason.strip():
        raise InvalidInputError("reason", reason, "a change after first entry needs a reason")
    entry = AuditEntry(
        user_id_at_time=getattr(user, "pk", None),
        username=getattr(user, "username", "") or "anonymous",
        action=action,
        table=instance._meta.db_table,
        row_id=str(instance.pk),
        patient_trial_id=patient_trial_id,
        old=old,
        new=new,
        reason=reason,
    )
    return chain.append(entry)  # hash-chained to the last entry, under the chain's lock
