"""Electronic signatures: who signed which record, when, with what meaning, and a SHA-256 of the
record's content as signed. A signature stays active (the record locked) until it is unlocked
with a reason; it is never deleted."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from startrt.web.trial.models import Patient


class Meaning(models.TextChoices):
    """What the signer attests (21 CFR 11.50: review, approval, responsibility, authorship)."""

    AUTHORSHIP = "authorship", "Authorship: I entered this record and it is correct"
    REVIEW = "review", "Review: I have reviewed this record"
    APPROVAL = "approval", "Approval: I approve this record"
    RESPONSIBILITY = "responsibility", "Responsibility: I take responsibility for this action"


class Signature(models.Model):
    """One signature of one record (`kind` is the model label, e.g. "trial.screening")."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="signatures")
    kind = models.CharField(max_length=64)
    record_id = models.CharField(max_length=64)
    meaning = models.CharField(max_length=16, choices=Meaning.choices)
    content_sha256 = models.CharField(max_length=64)
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures"
    )
    signer_username = models.CharField(max_length=150)
    signer_full_name = models.CharField(max_length=300, blank=True)
    signed_at = models.DateTimeField(auto_now_add=True)
    unlocked_at = models.DateTimeField(null=True, blank=True)
    unlocked_by = models.CharField(max_length=150, blank=True)
    unlock_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "record_id", "signer", "meaning"],
                condition=models.Q(unlocked_at__isnull=True),
                name="one_active_signature_per_signer_and_meaning",
            ),
        ]
        indexes = [models.Index(fields=["kind", "record_id"])]

    @property
    def active(self) -> bool:
        """Whether the signature still locks its record."""
        return self.unlocked_at is None
