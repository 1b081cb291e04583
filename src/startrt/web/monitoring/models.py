"""What monitors do with the trial's records: data queries on a field of a record, answered by
the site, closed (or re-opened) by the monitor; and source-data verification of a record at a
version. Both point at a record by its type (`label_lower`, "events.adverseevent") and row;
`services` writes them, audited, and says which record types qualify."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from startrt.web.trial.models import Patient


class Query(models.Model):
    """A data query on one field of a record: raised with a text (open), answered by the site
    (answered), closed by the monitor (closed) and re-opened (open again)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ANSWERED = "answered", "Answered"
        CLOSED = "closed", "Closed"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="queries")
    record_type = models.CharField(max_length=64)
    record_id = models.PositiveBigIntegerField()
    field_name = models.CharField(max_length=128)
    record_version = models.PositiveIntegerField()  # the record's version when raised
    text = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="raised_queries"
    )
    raised_at = models.DateTimeField(auto_now_add=True)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="answered_queries",
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="closed_queries",
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "data query"
        verbose_name_plural = "data queries"
        indexes = [models.Index(fields=["record_type", "record_id"])]


class Verification(models.Model):
    """A record's source-data verification: the record's version the monitor verified. The
    record counts as verified while its current version is still that one."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="verifications")
    record_type = models.CharField(max_length=64)
    record_id = models.PositiveBigIntegerField()
    record_version = models.PositiveIntegerField()
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="verifications"
    )
    verified_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = "source-data verification"
        constraints = [
            models.UniqueConstraint(
                fields=["record_type", "record_id"], name="one_verification_per_record"
            ),
        ]


class DatabaseLock(models.Model):
    """A lock of the trial's database at a data cut-off: from `locked_at` until `unlocked_at`
    every clinical table refuses INSERT, UPDATE and DELETE (`data_lock`). Rows are kept for good
    (append-only; the unlock is set once); locking again is a new row."""

    cutoff_date = models.DateField()
    reason = models.TextField()
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="database_locks"
    )
    locked_at = models.DateTimeField()
    snapshot_sha256 = models.CharField(max_length=64)
    unlocked_at = models.DateTimeField(null=True, blank=True)
    unlocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="database_unlocks",
    )
    unlock_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "database lock"


class PatientFreeze(models.Model):
    """A freeze of one patient's records: from `frozen_at` until `unfrozen_at` the patient's
    rows in the clinical tables refuse INSERT, UPDATE and DELETE (data queries and source-data
    verification go on). Append-only like the lock; freezing again is a new row."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="freezes")
    reason = models.TextField()
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="patient_freezes"
    )
    frozen_at = models.DateTimeField()
    unfrozen_at = models.DateTimeField(null=True, blank=True)
    unfrozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="patient_unfreezes",
    )
    unfreeze_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "patient freeze"
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(unfrozen_at__isnull=True),
                name="one_active_freeze_per_patient",
            ),
        ]
