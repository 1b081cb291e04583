"""Data queries and source-data verification (SDV): one transaction per action, every step
audited through `trial.changes` (who, when, the text as the step's reason).

Rules chosen here (stated, not hidden):
- Monitors, data managers and administrators raise, close and re-open queries and verify
  records; research nurses and investigators of the patient's site answer. Anyone
  else is refused (PermissionDenied); a query is read by whoever may read its patient.
- A query points at one field of a record of `RECORD_TYPES` (never a randomization slot:
  nothing of the concealed list is queried); a JSON record (the screening's) by its keys
  ("record.ecog"). The site corrects a value through the record's own audited correction;
  the query shows the record's changes audited since it was raised.
- States: open -> answered (the site's text) -> closed (the monitor's note); open -> closed;
  closed -> open (re-opened, with the monitor's note). Each step is based on the version of the
  query the user saw (`StaleVersionError` otherwise).
- A record is verified at its version; it counts as verified only while its current version
  is still that one (a correction raises the version and so resets it, no trigger needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from startrt import fields
from startrt.validation import InvalidInputError, clean_text
from startrt.web.events.models import (
    AdverseEvent,
    Death,
    EndOfTreatment,
    FollowUp,
    TumourAssessment,
)
from startrt.web.monitoring.models import Query, Verification
from startrt.web.treatment.models import Cycle, DosimetryResult
from startrt.web.trial import audit
from startrt.web.trial.changes import insert, locked, update
from startrt.web.trial.models import AuditEntry, Consent, Patient, Role, Screening
from startrt.web.trial.permissions import require_role, visible_patients
from startrt.web.trial.services import ENTRY_ROLES

MONITORING_ROLES: tuple[Role, ...] = (Role.MONITOR, Role.DATA_MANAGER, Role.ADMINISTRATOR)
RECORD_TYPES: dict[str, type[models.Model]] = {
    model._meta.label_lower: model
    for model in (
        Screening,
        Consent,
        Cycle,
        DosimetryResult,
        AdverseEvent,
        TumourAssessment,
        EndOfTreatment,
        FollowUp,
        Death,
    )
}
"""The forms monitors query and verify: the versioned records of a patient."""
UNQUERIED = frozenset({"id", "patient", "version", "updated_at"})
"""A record's bookkeeping: no value entered from a source."""
QUERY_TEXT_LENGTH = 2000


def record_model(record_type: str) -> type[models.Model]:
    """The model of a record type ("events.adverseevent"); InvalidInputError for any other."""
    model = RECORD_TYPES.get(record_type)
    if model is None:
        raise InvalidInputError(
            "record_type", record_type, f"one of the monitored forms: {', '.join(RECORD_TYPES)}"
        )
    return model


def record_of(record_type: str, record_id: int) -> models.Model:
    """The record of `record_type` with id `record_id` (Model.DoesNotExist when none)."""
    return (
        record_model(record_type)._default_manager.select_related("patient__site").get(pk=record_id)
    )


def queryable_fields(record: models.Model) -> tuple[str, ...]:
    """The fields of `record` a query can point at: its entered values, a JSON record's by key
    ("record.ecog")."""
    names: list[str] = []
    for field in record._meta.concrete_fields:
        if field.name in UNQUERIED or field.auto_created:
            continue
        value = getattr(record, field.attname)
        if isinstance(field, models.JSONField) and isinstance(value, dict):
            names.extend(f"{field.name}.{key}" for key in value)
        else:
            names.append(field.name)
    return tuple(names)


def field_value(record: models.Model, field_name: str) -> object:
    """The current value of `field_name` ("record.ecog": a key of a JSON record)."""
    name, _, key = field_name.partition(".")
    value = getattr(record, name)
    return value.get(key) if key and isinstance(value, dict) else value


def field_label(field_name: str) -> str:
    """The label of a queried field for people ("record.ecog" -> ECOG's label)."""
    return fields.label(field_name.rsplit(".", 1)[-1])


def record_name(record: models.Model) -> str:
    """The record as people know it ("Adverse event", "Cycle 2") and, for a record a patient
    has several of, the date that tells them apart ("Adverse event of 2025-04-02")."""
    name = audit.record_name(type(record), str(record.pk), audit.snapshot(record))
    dated = next(
        (
            f
            for f in record._meta.concrete_fields
            if isinstance(f, models.DateField) and not (f.auto_now or f.auto_now_add)
        ),
        None,
    )
    value = None if dated is None else getattr(record, dated.attname)
    if value is None or isinstance(record, Cycle):
        return name
    day = value.date() if hasattr(value, "date") else value
    return f"{name} of {day.isoformat()}"


def _text(field: str, value: object) -> str:
    return clean_text(field, value, max_length=QUERY_TEXT_LENGTH, multiline=True)


@transaction.atomic
def raise_query(user: AbstractBaseUser, record: models.Model, field_name: str, text: str) -> Query:
    """Raise an open query on `field_name` of `record` (a monitor's or administrator's)."""
    record_type = record._meta.label_lower
    record_model(record_type)
    patient: Patient = record.patient
    require_role(user, patient.site, *MONITORING_ROLES)
    if field_name not in queryable_fields(record):
        raise InvalidInputError(
            "field_name",
            field_name,
            "one of the record's fields: " + ", ".join(queryable_fields(record)),
        )
    query = Query(
        patient=patient,
        record_type=record_type,
        record_id=record.pk,
        field_name=field_name,
        record_version=record.version,
        text=_text("text", text),
        raised_by=user,
    )
    return insert(user, query, patient)


def _step(
    user: AbstractBaseUser,
    query: Query,
    expected_version: int | None,
    allowed_from: tuple[str, ...],
    changes: dict[str, Any],
    text: str,
) -> Query:
    current = locked(query, expected_version, "query")
    if current.status not in allowed_from:
        names = " or ".join(Query.Status(status).label.lower() for status in allowed_from)
        raise InvalidInputError("status", current.status, f"the step needs a query {names}")
    return update(user, current, query.patient, changes, reason=text)


@transaction.atomic
def answer_query(
    user: AbstractBaseUser, query: Query, text: str, *, expected_version: int | None
) -> Query:
    """The site's answer to an open query (a nurse's or investigator's of the patient's site)."""
    require_role(user, query.patient.site, *ENTRY_ROLES)
    answer = _text("answer", text)
    changes = {
        "status": Query.Status.ANSWERED,
        "answer": answer,
        "answered_by": user,
        "answered_at": timezone.now(),
    }
    return _step(user, query, expected_version, (Query.Status.OPEN,), changes, answer)


@transaction.atomic
def close_query(
    user: AbstractBaseUser, query: Query, note: str, *, expected_version: int | None
) -> Query:
    """Close an open or answered query, with the monitor's note."""
    require_role(user, query.patient.site, *MONITORING_ROLES)
    note = _text("note", note)
    changes = {"status": Query.Status.CLOSED, "closed_by": user, "closed_at": timezone.now()}
    allowed = (Query.Status.OPEN, Query.Status.ANSWERED)
    return _step(user, query, expected_version, allowed, changes, note)


@transaction.atomic
def reopen_query(
    user: AbstractBaseUser, query: Query, note: str, *, expected_version: int | None
) -> Query:
    """Re-open a closed query, with the monitor's note: it is open again for the site."""
    require_role(user, query.patient.site, *MONITORING_ROLES)
    note = _text("note", note)
    changes = {"status": Query.Status.OPEN, "closed_by": None, "closed_at": None}
    return _step(user, query, expected_version, (Query.Status.CLOSED,), changes, note)


def visible_queries(user: AbstractBaseUser) -> QuerySet[Query]:
    """The queries the user may read: their sites' patients' (every site for all-site roles)."""
    return Query.objects.filter(patient__in=visible_patients(user))


def days_open(query: Query, today: date | None = None) -> int:
    """Days from raising to closing (to `today` while not closed), in the server's zone."""
    if query.closed_at is not None:
        last = timezone.localdate(query.closed_at)
    else:
        last = today or timezone.localdate()
    return (last - timezone.localdate(query.raised_at)).days


def query_steps(query: Query) -> list[AuditEntry]:
    """The query's audited steps in order: raised, then each answer, closing, re-opening."""
    return list(
        AuditEntry.objects.filter(table=Query._meta.db_table, row_id=str(query.pk)).order_by("pk")
    )


def changes_since_raised(query: Query) -> list[AuditEntry]:
    """The record's audited changes made since the query was raised (its corrections)."""
    table = record_model(query.record_type)._meta.db_table
    return list(
        AuditEntry.objects.filter(
            table=table, row_id=str(query.record_id), action="update", at__gte=query.raised_at
        ).order_by("pk")
    )


# --- source-data verification -----------------------------------------------------------


@transaction.atomic
def verify(
    user: AbstractBaseUser, record: models.Model, *, expected_version: int | None
) -> Verification:
    """Mark `record` verified at `expected_version`, the version the monitor compared with the
    source (refused when the record moved on since, or is verified at it already)."""
    record_model(record._meta.label_lower)
    patient: Patient = record.patient
    require_role(user, patient.site, *MONITORING_ROLES)
    current = locked(record, expected_version)
    version: int = current.version
    key = {"record_type": record._meta.label_lower, "record_id": record.pk}
    stored = Verification.objects.select_for_update().filter(**key).first()
    values = {"record_version": version, "verified_by": user, "verified_at": timezone.now()}
    if stored is None:
        return insert(user, Verification(patient=patient, **key, **values), patient)
    if stored.record_version == version:
        raise InvalidInputError(
            "record_version", version, "the record is verified at this version already"
        )
    reason = f"verified again at version {version} (verified at version {stored.record_version})"
    return update(user, stored, patient, values, reason=reason)


def is_verified(record: models.Model) -> bool:
    """Whether `record` is verified at its current version."""
    return Verification.objects.filter(
        record_type=record._meta.label_lower,
        record_id=record.pk,
        record_version=record.version,
    ).exists()


def _verified_now(record_type: str) -> Exists:
    return Exists(
        Verification.objects.filter(
            record_type=record_type, record_id=OuterRef("pk"), record_version=OuterRef("version")
        )
    )


@dataclass(frozen=True)
class Progress:
    """SDV progress of one form at one site: records verified at their current version, of all."""

    site: str
    form: str
    verified: int
    total: int

    @property
    def percent_verified(self) -> int:
        """The verified share of the records in whole percent."""
        return round(100 * self.verified / self.total)


def sdv_progress(patients: QuerySet[Patient]) -> list[Progress]:
    """Progress by site and form (record type) over `patients`' records, one query per form."""
    rows: list[Progress] = []
    for record_type, model in RECORD_TYPES.items():
        counts = (
            model._default_manager.filter(patient__in=patients)
            .annotate(verified_now=_verified_now(record_type))
            .values("patient__site__name")
            .annotate(total=Count("pk"), verified=Count("pk", filter=Q(verified_now=True)))
            .order_by("patient__site__name")
        )
        form = audit.table_name(model._meta.db_table)
        rows.extend(
            Progress(row["patient__site__name"], form, row["verified"], row["total"])
            for row in counts
        )
    return sorted(rows, key=lambda row: (row.site, row.form))


def records_of(patient: Patient) -> list[tuple[str, models.Model, bool]]:
    """The patient's monitored records: (record type, record, verified at its version)."""
    rows: list[tuple[str, models.Model, bool]] = []
    for record_type, model in RECORD_TYPES.items():
        records = model._default_manager.filter(patient=patient).annotate(
            verified_now=_verified_now(record_type)
        )
        rows.extend((record_type, record, record.verified_now) for record in records.order_by("pk"))
    return rows


def query_subject(query: Query) -> str:
    """What a query is about for people: its record's form and its field ("Adverse event:
    CTCAE grade")."""
    form = audit.table_name(record_model(query.record_type)._meta.db_table)
    return f"{form}: {field_label(query.field_name)}"
