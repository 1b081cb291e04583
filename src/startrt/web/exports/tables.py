"""What an export contains, shared by the CSV and ODM writers: every model of the installed
trial apps (new tables are exported without code changes), only the rows of patients the user
may see, never the concealed part of the randomization (to anyone but the statistician not even
a taken slot's place in the list, nor in the audit trail: `trial.concealment`), and values as
plain text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import F, Q, QuerySet
from django.utils.duration import duration_iso_string

from startrt.web.trial import concealment
from startrt.web.trial.models import AuditEntry, Membership, Patient, Role
from startrt.web.trial.permissions import visible_patients

TRIAL_APPS = ("trial", "treatment", "events", "medications", "safety")
EXPORT_ROLES = frozenset(
    str(role) for role in (Role.STATISTICIAN, Role.MONITOR, Role.ADMINISTRATOR)
)
# not trial data: access control (user <-> role), and the audit trail has its own file
EXCLUDED_MODELS = frozenset({"trial.membership", "trial.auditentry"})
# the stored list holds every slot, future ones included: allocation concealment
# the list itself, and the block of a taken slot (with the slots taken so far it would reveal
# the remaining arms of an open block); to anyone but the statistician the slot's whole place
# in the list (`concealed_fields`)
CONCEALED_FIELDS = {
    "trial.randomizationlist": frozenset({"csv"}),
    "trial.slot": frozenset({"block", "block_size"}),
}
# free slots are future allocations: only slots already taken are exported (the patient
# filter drops them as well; this rule states it whatever becomes of that filter)
ROW_FILTERS = {"trial.slot": Q(patient__isnull=False)}
AUDIT_TRAIL = "audit_trail"
TRIAL_ID = "trial_id"
_TRIAL_ID_ALIAS = "export_subject_trial_id"
_MAX_PATH_DEPTH = 4


@dataclass(frozen=True)
class Table:
    """One exported table: its model, exported fields and the foreign-key path to the patient
    ("" for the patient table itself, None when the rows belong to no patient)."""

    name: str
    model: type[models.Model]
    fields: tuple[models.Field[Any, Any], ...]
    patient_path: str | None

    @property
    def adds_trial_id(self) -> bool:
        """Linked to a patient through a foreign key: the patient's trial_id is added."""
        return bool(self.patient_path)

    @property
    def columns(self) -> tuple[str, ...]:
        """Field names (foreign keys as <name>_id), led by the patient's trial_id if linked."""
        names = tuple(field.attname for field in self.fields)
        return (TRIAL_ID, *names) if self.adds_trial_id else names


def require_export_role(user: AbstractBaseUser) -> None:
    """Refuse (PermissionDenied) unless the user is a statistician, monitor or administrator."""
    roles = Membership.objects.filter(user=user).values_list("role", flat=True)
    if not user.is_active or not EXPORT_ROLES & set(roles):
        raise PermissionDenied("exports need the role statistician, monitor or administrator")


@contextmanager
def consistent_snapshot() -> Iterator[None]:
    """One read-only transaction for a whole export, so that its tables agree with each other
    (REPEATABLE READ on PostgreSQL; SQLite reads one snapshot within a transaction)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def trial_tables(user: AbstractBaseUser) -> list[Table]:
    """A table per model of the installed trial apps, in app then model order, with the
    fields `user` may read."""
    hidden = concealed_fields(user)
    return [
        _table(model._meta.db_table, model, hidden.get(model._meta.label_lower, frozenset()))
        for label in TRIAL_APPS
        for model in _installed_models(label)
        if model._meta.label_lower not in EXCLUDED_MODELS
    ]


def concealed_fields(user: AbstractBaseUser) -> dict[str, frozenset[str]]:
    """The fields left out per model: CONCEALED_FIELDS, and a taken slot's place in the list
    (`concealment.SLOT_IDENTITY`) for anyone but the statistician."""
    if concealment.sees_the_list(user):
        return CONCEALED_FIELDS
    slot = concealment.SLOT_KIND
    return {**CONCEALED_FIELDS, slot: CONCEALED_FIELDS[slot] | concealment.SLOT_IDENTITY}


def _installed_models(app_label: str) -> list[type[models.Model]]:
    try:
        return list(apps.get_app_config(app_label).get_models())
    except LookupError:  # that part of the trial is not installed
        return []


def audit_table() -> Table:
    return _table(AUDIT_TRAIL, AuditEntry)


def audit_rows(
    entries: Iterable[AuditEntry], user: AbstractBaseUser
) -> Iterator[dict[str, str | None]]:
    """Audit entries as `user` may read them (`concealment.readable`), as {column: text}."""
    fields = audit_table().fields
    for entry in concealment.readable(entries, user):
        yield {field.attname: as_text(field, getattr(entry, field.attname)) for field in fields}


def _table(name: str, model: type[models.Model], hidden: frozenset[str] = frozenset()) -> Table:
    fields = tuple(
        field
        for field in model._meta.concrete_fields
        if field.name not in hidden and "password" not in field.name
    )
    return Table(name, model, fields, patient_path(model))


def patient_path(model: type[models.Model]) -> str | None:
    """The shortest chain of foreign keys from `model` to Patient ("course__patient")."""
    frontier: list[tuple[type[models.Model], str]] = [(model, "")]
    seen = {model}
    for _ in range(_MAX_PATH_DEPTH + 1):
        following: list[tuple[type[models.Model], str]] = []
        for current, path in frontier:
            if current is Patient:
                return path
            for field in current._meta.concrete_fields:
                target = field.related_model if field.is_relation else None
                if isinstance(target, type) and target not in seen:
                    seen.add(target)
                    following.append((target, f"{path}__{field.name}" if path else field.name))
        frontier = following
    return None


def rows(table: Table, user: AbstractBaseUser) -> Iterator[dict[str, str | None]]:
    """The table's rows the user may see, as {column: text or None}, in primary-key order."""
    if table.model is AuditEntry:
        yield from audit_rows(_visible(table, user).order_by("pk").iterator(), user)
        return
    fields = {field.attname: field for field in table.fields}
    extra = [_TRIAL_ID_ALIAS] if table.adds_trial_id else []
    for values in _visible(table, user).values(*fields, *extra).order_by("pk").iterator():
        row = {TRIAL_ID: values[_TRIAL_ID_ALIAS]} if table.adds_trial_id else {}
        row.update({name: as_text(field, values[name]) for name, field in fields.items()})
        yield row


def _visible(table: Table, user: AbstractBaseUser) -> QuerySet[Any]:
    label = table.model._meta.label_lower
    queryset = table.model._default_manager.filter(ROW_FILTERS.get(label, Q()))
    patients = visible_patients(user)
    if table.model is AuditEntry:
        return queryset.filter(
            Q(patient_trial_id="") | Q(patient_trial_id__in=patients.values("trial_id"))
        )
    if table.patient_path is None:
        return queryset
    if table.patient_path == "":
        return queryset.filter(pk__in=patients.values("pk"))
    return queryset.filter(**{f"{table.patient_path}__in": patients.values("pk")}).annotate(
        **{_TRIAL_ID_ALIAS: F(f"{table.patient_path}__trial_id")}
    )


def as_text(field: models.Field[Any, Any], value: Any) -> str | None:
    """A stored value as text (None when missing): JSON text for JSON fields, ISO 8601 for
    dates, times and durations, true/false, foreign keys as ids, binary data as hex."""
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(duration_iso_string(value))
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)  # text, integers, decimals, UUIDs, file names
