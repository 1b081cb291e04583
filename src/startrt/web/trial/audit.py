"""The one gateway to the audit trail: every insert, change and deletion of trial data is
recorded with who, when (UTC, by the database clock of the row), what (old and new values) and
why (a reason is required for any change after first entry). Entries are hash-chained
(`trial.chain`): `startrt audit verify` finds an edited, deleted, inserted or reordered one.

People read an entry (`for_people`) with the record named as they know it ("Cycle 2", "Lab
panel of cycle 2", "Eligibility decision"), never its table and row id, and each changed value
by its field's label and formatted by `startrt.fields`; `record_name` names a signed record
the same way on the patient page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from typing import Any

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.forms.models import model_to_dict

from startrt import fields
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


ACTIONS = {"insert": "Entered", "update": "Changed", "delete": "Deleted"}
UNSHOWN = frozenset({"id", "patient", "record_id"})
"""Values an entry carries that the page already says (the row id and the patient) or that
only point at another row (a query's or verification's record id: the record is named)."""


@dataclass(frozen=True)
class Change:
    """One value an entry changed, for people: the field's label, old and new as text."""

    label: str
    old: str
    new: str


@dataclass(frozen=True)
class EntryForPeople:
    """An audit entry as people read it (`entry` is the stored one)."""

    entry: AuditEntry
    record: str
    action: str
    changes: tuple[Change, ...]


def model_of_table(table: str) -> type[models.Model] | None:
    """The model stored in `table` (None for a table no installed model has)."""
    return next((m for m in apps.get_models() if m._meta.db_table == table), None)


def table_name(table: str) -> str:
    """A record type for people: "treatment_labpanel" -> "Lab panel"."""
    model = model_of_table(table)
    name = str(model._meta.verbose_name) if model else table.rsplit("_", 1)[-1]
    return name[:1].upper() + name[1:]


def record_name(model: type[models.Model] | None, row_id: str, values: dict[str, Any]) -> str:
    """The record as people know it: "Cycle 2", "Lab panel of cycle 2", "Eligibility decision",
    "Signature of cycle 2"; from the entry's values, else the stored row."""
    if model is None:
        return "Record"
    kind = str(model._meta.verbose_name)
    label = model._meta.label_lower
    if label == "treatment.cycle":
        number = values.get("number") or _field_of(model, row_id, "number")
        return f"Cycle {number}" if number else "Cycle"
    if label == "trial.decision" and values.get("kind"):
        return f"{fields.choice_label(str(values['kind']))} decision"
    if label == "signing.signature" and values.get("kind"):
        signed = apps.get_model(str(values["kind"]))
        name = record_name(signed, str(values.get("record_id", "")), {})
        return f"Signature of {name[:1].lower()}{name[1:]}"
    if label == "trial.slot":
        return "Randomization allocation"
    cycle_id = values.get("cycle") or _field_of(model, row_id, "cycle_id")
    if cycle_id and any(f.name == "cycle" for f in model._meta.fields):
        cycle = record_name(apps.get_model("treatment.cycle"), str(cycle_id), {})
        return f"{kind[:1].upper()}{kind[1:]} of {cycle[:1].lower()}{cycle[1:]}"
    return kind[:1].upper() + kind[1:]


def _field_of(model: type[models.Model], row_id: str, name: str) -> Any:
    if not row_id or not any(f.attname == name for f in model._meta.fields):
        return None
    return model._default_manager.filter(pk=row_id).values_list(name, flat=True).first()


def for_people(entry: AuditEntry, zone: tzinfo) -> EntryForPeople:
    """`entry` for people: its record's name, its action, and each value it changed (every
    value of an insert) with its label, formatted, times in `zone` (the site's); values the
    page already says left out."""
    model = model_of_table(entry.table)
    text = _Text(model, zone)
    values = {**(entry.old or {}), **(entry.new or {})}
    before, after = _flat(entry.old), _flat(entry.new)
    changes = tuple(
        Change(
            fields.label(key.rsplit(".", 1)[-1]),
            text(key, before.get(key)) if entry.old is not None else "",
            text(key, after.get(key)) if entry.new is not None else "",
        )
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key) and key not in UNSHOWN
    )
    name = record_name(model, entry.row_id, values)
    return EntryForPeople(entry, name, ACTIONS.get(entry.action, entry.action), changes)


def _flat(values: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested values flattened to dotted keys: {"record": {"ecog": 1}} -> {"record.ecog": 1}."""
    flat: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass(frozen=True)
class _Text:
    """Stored values of one model's rows as text for people, times in `zone`."""

    model: type[models.Model] | None
    zone: tzinfo

    def __call__(self, key: str, value: Any) -> str:
        """A choice by its label, a foreign key by the record's name, a time in the zone, a
        list item by item, a mapping as "label: value" pairs, a number rounded for its field."""
        name = key.rsplit(".", 1)[-1]
        if isinstance(value, list):
            items = [self(name, item) for item in value]
            return "; ".join(items) if items else fields.EMPTY
        if isinstance(value, dict):
            return " · ".join(self._pair(k, v) for k, v in value.items())
        field = _field(self.model, key)
        if field is not None and field.is_relation and value is not None:
            return _related(field, value)
        choices = {str(k): str(v) for k, v in (getattr(field, "choices", None) or [])}
        if isinstance(value, str) and value in choices:
            return choices[value]
        if isinstance(value, str) and value in _model_labels():  # a signature's kind
            return _model_labels()[value]
        if isinstance(value, str) and _IDENTIFIER.fullmatch(value):
            return fields.choice_label(value)
        if isinstance(value, str) and _INSTANT.match(value):
            return self._time(value)
        return fields.format_value(name, value)

    def _pair(self, key: str, value: Any) -> str:
        """One value of a mapping: "Diameter (mm): 50"; a mapping by key, "Target (mm): L1 48"."""
        if isinstance(value, dict):
            shown = ", ".join(f"{k} {self(key, v)}" for k, v in value.items())
            return f"{fields.label(key)}: {shown or fields.EMPTY}"
        return f"{fields.label(key)}: {self(key, value)}"

    def _time(self, text: str) -> str:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return text
        local = moment.astimezone(self.zone)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


_IDENTIFIER = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
"""A stored value that is a value set's member ("not_applicable"), read as words."""
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
"""A stored date and time (ISO 8601, as the snapshot writes it)."""


@cache
def _model_labels() -> dict[str, str]:
    """Each record type as stored ("trial.screening") and as people read it ("Screening")."""
    return {m._meta.label_lower: table_name(m._meta.db_table) for m in apps.get_models()}


def _field(model: type[models.Model] | None, key: str) -> models.Field[Any, Any] | None:
    if model is None or "." in key:
        return None
    return next((f for f in model._meta.fields if key in (f.attname, f.name)), None)


def _related(field: models.Field[Any, Any], pk: Any) -> str:
    """The record a foreign key points to, by its own name (a site's, a user's)."""
    related = field.related_model
    assert related is not None
    assert not isinstance(related, str)
    row = related._default_manager.filter(pk=pk).first()
    if row is None or type(row).__str__ is models.Model.__str__:
        name = str(related._meta.verbose_name)
        return name[:1].upper() + name[1:]
    return str(row)
