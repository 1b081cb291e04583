"""Data freeze and database lock by a data manager (or administrator), one transaction per
action, each audited with who, when and why (`trial.audit`; the reason is the entry's reason).

- Lock the database at a data cut-off (a date that happened: from the trial start to today):
  every clinical table refuses INSERT, UPDATE and DELETE (`lock_guard`) until it is unlocked,
  with a reason. The lock row keeps the SHA-256 of the clinical data as locked
  (`snapshot_sha256`); `snapshot_unchanged` recomputes it. Locks are kept for good; locking
  again is a new lock.
- Freeze one patient's records (every row of the patient in the clinical tables; data queries
  and verification go on) and unfreeze them, with a reason.

The canonical dump the checksum is taken of (`canonical_dump`): a JSON object with one member
per locked table (`lock_guard.locked_models`), named by the table; its value an object with
"columns" (the table's column names, sorted) and "rows" (each row's values in that column
order, rows ordered by primary key); values as JSON: null, true/false, integers, floats (the
shortest text reading back as the same float), text; decimals as text; dates and times in ISO
8601 (times in UTC, "+00:00"); JSON columns as the JSON they hold. Serialized with sorted keys,
no spaces (separators "," and ":"), non-ASCII kept, encoded UTF-8; the checksum is the SHA-256
of those bytes in hex. On PostgreSQL the lock takes SHARE locks on the locked tables first, so
no change can commit between the checksum and the lock (`_hold_writers` says the exception).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from startrt.validation import InvalidInputError
from startrt.web.monitoring import lock_guard
from startrt.web.monitoring.models import DatabaseLock, PatientFreeze
from startrt.web.trial import audit, dates
from startrt.web.trial.changes import require_reason
from startrt.web.trial.models import Membership, Patient, Role

LOCK_ROLES: tuple[Role, ...] = (Role.DATA_MANAGER, Role.ADMINISTRATOR)


def may_lock(user: AbstractBaseUser) -> bool:
    """Whether the user freezes and locks: a data manager or administrator (of every site)."""
    roles = [role.value for role in LOCK_ROLES]
    return Membership.objects.filter(user=user, site__isnull=True, role__in=roles).exists()


def require_lock_role(user: AbstractBaseUser) -> None:
    """Refuse (PermissionDenied) anyone but a data manager or administrator."""
    if not may_lock(user):
        names = ", ".join(role.label for role in LOCK_ROLES)
        raise PermissionDenied(f"needs the role {names}")


# --- the snapshot checksum -----------------------------------------------------------------


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)  # UUID and the like: their text


def canonical_dump() -> bytes:
    """The clinical data as the canonical JSON document the checksum is taken of (module
    docstring)."""
    document: dict[str, Any] = {}
    for model in lock_guard.locked_models():
        fields = sorted(model._meta.concrete_fields, key=lambda field: field.column)
        rows = model._default_manager.order_by("pk").values_list(*(f.attname for f in fields))
        document[model._meta.db_table] = {
            "columns": [field.column for field in fields],
            "rows": [[_canonical(value) for value in row] for row in rows.iterator()],
        }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def snapshot_sha256() -> str:
    """SHA-256 (hex) of the canonical dump of the clinical data now."""
    return hashlib.sha256(canonical_dump()).hexdigest()


def snapshot_unchanged(lock: DatabaseLock) -> bool:
    """Whether the clinical data are still those the lock's checksum was taken of."""
    return snapshot_sha256() == lock.snapshot_sha256


# --- lock and unlock -----------------------------------------------------------------------


def _hold_writers() -> None:
    """On PostgreSQL, keep the writers of the locked tables out until this transaction ends
    (SHARE mode: reads go on). PostgreSQL lets only a role that may UPDATE a table lock it so:
    the application's role may not update signatures (append-only), so a signature committed
    in the instant between the checksum and the lock is not held off; it shows as CHANGED at
    the next verification. SQLite's writers are serialized already (BEGIN IMMEDIATE)."""
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name "
            "WHERE has_table_privilege(quote_ident(name), 'UPDATE')",
            [[model._meta.db_table for model in lock_guard.locked_models()]],
        )
        tables = ", ".join(quote(name) for (name,) in cursor.fetchall())
        if tables:
            cursor.execute(f"LOCK TABLE {tables} IN SHARE MODE")


@transaction.atomic
def lock_database(user: AbstractBaseUser, cutoff_date: object, reason: object) -> DatabaseLock:
    """Lock the database at the data cut-off `cutoff_date`, with the reason; refused while a
    lock is in force."""
    require_lock_role(user)
    cutoff = dates.require_happened("cutoff_date", cutoff_date)
    why = require_reason(reason, "locking the database needs a reason")
    _hold_writers()
    if (current := lock_guard.active_lock()) is not None:
        raise InvalidInputError("lock", "database", lock_guard.lock_text(current))
    lock = DatabaseLock(
        cutoff_date=cutoff,
        reason=why,
        locked_by=user,
        locked_at=timezone.now(),
        snapshot_sha256=snapshot_sha256(),
    )
    lock.save()
    audit.record(user, "insert", lock, old=None, new=audit.snapshot(lock), reason=why)
    return lock


@transaction.atomic
def unlock_database(user: AbstractBaseUser, reason: object) -> DatabaseLock:
    """Unlock the database, with the reason (the lock is kept, ended)."""
    require_lock_role(user)
    why = require_reason(reason, "unlocking the database needs a reason")
    lock = DatabaseLock.objects.select_for_update().filter(unlocked_at__isnull=True).first()
    if lock is None:
        raise InvalidInputError("lock", "database", "the database is not locked")
    old = audit.snapshot(lock)
    lock.unlocked_at, lock.unlocked_by, lock.unlock_reason = timezone.now(), user, why
    # only these columns: the append-only trigger and the app's grants allow no other
    lock.save(update_fields=["unlocked_at", "unlocked_by", "unlock_reason"])
    audit.record(user, "update", lock, old=old, new=audit.snapshot(lock), reason=why)
    return lock


# --- freeze and unfreeze a patient ---------------------------------------------------------


@transaction.atomic
def freeze_patient(user: AbstractBaseUser, patient: Patient, reason: object) -> PatientFreeze:
    """Freeze every record of `patient`, with the reason; refused while frozen already."""
    require_lock_role(user)
    why = require_reason(reason, "freezing a patient's records needs a reason")
    Patient.objects.select_for_update().get(pk=patient.pk)
    if (current := lock_guard.active_freeze(patient)) is not None:
        raise InvalidInputError("patient", patient.trial_id, lock_guard.freeze_text(current))
    freeze = PatientFreeze(patient=patient, reason=why, frozen_by=user, frozen_at=timezone.now())
    freeze.save()
    new = audit.snapshot(freeze)
    audit.record(
        user, "insert", freeze, old=None, new=new, reason=why, patient_trial_id=patient.trial_id
    )
    return freeze


@transaction.atomic
def unfreeze_patient(user: AbstractBaseUser, patient: Patient, reason: object) -> PatientFreeze:
    """Lift the freeze of `patient`'s records, with the reason (the freeze is kept, ended)."""
    require_lock_role(user)
    why = require_reason(reason, "unfreezing a patient's records needs a reason")
    freeze = (
        PatientFreeze.objects.select_for_update()
        .filter(patient=patient, unfrozen_at__isnull=True)
        .first()
    )
    if freeze is None:
        raise InvalidInputError("patient", patient.trial_id, "the patient's records are not frozen")
    old = audit.snapshot(freeze)
    freeze.unfrozen_at, freeze.unfrozen_by, freeze.unfreeze_reason = timezone.now(), user, why
    freeze.save(update_fields=["unfrozen_at", "unfrozen_by", "unfreeze_reason"])
    new = audit.snapshot(freeze)
    audit.record(
        user, "update", freeze, old=old, new=new, reason=why, patient_trial_id=patient.trial_id
    )
    return freeze


# --- for the report ------------------------------------------------------------------------


def report_statement() -> str:
    """The report's sentence on the lock: the lock in force, its cut-off, its checksum and
    whether the data are still those it was taken of; else that the database is not locked."""
    lock = lock_guard.active_lock()
    if lock is None:
        return "Database not locked: the data may still change."
    at = lock.locked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    state = "verified unchanged" if snapshot_unchanged(lock) else "CHANGED since the lock"
    return (
        f"Database locked at {at} (cut-off {lock.cutoff_date.isoformat()}), "
        f"snapshot SHA-256 {lock.snapshot_sha256}, {state}."
    )
