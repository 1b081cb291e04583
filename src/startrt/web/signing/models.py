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

    @property
    def locks(self) -> bool:
        """Whether a signature with this meaning locks its record against changes until it is
        unlocked: authorship, approval (the investigator's eligibility signature) and
        responsibility (randomization, a cycle's release) do; a review (a monitor's, a
        physicist's, a pharmacist's) attests that the record was read, and the site may still
        correct it (the review then shows as "changed since signed")."""
        return self is not Meaning.REVIEW


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
    # the hash chain (trial.chain; written when signing, checked by `startrt audit verify`)
    prev_hash = models.CharField(max_length=64, editable=False)
    row_hash = models.CharField(max_length=64, editable=False)

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
        """Whether the signature stands (not unlocked)."""
        return self.unlocked_at is None

    @property
    def locks(self) -> bool:
        """Whether the signature locks its record: it stands and its meaning locks."""
        return self.active and Meaning(self.meaning).locks


class SigningFailure(models.Model):
    """One refused signing attempt (a wrong password or one-time code). Counted per user over
    `settings.SIGNING_COOLOFF_MINUTES`: `SIGNING_FAILURE_LIMIT` of them lock the user's signing
    (not their login) until the oldest leaves the window. Never changed; each is audited."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signing_failures"
    )
    username = models.CharField(max_length=150)
    factor = models.CharField(max_length=16)  # "password" or "otp_token": what was wrong
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "at"])]


class SigningToken(models.Model):
    """A short-lived signing token (21 CFR 11.200(a)(1)(i)): issued after the password (and the
    second factor) were checked, it stands for them in later signatures of the same user in the
    same signed-in session until `expires_at` or logout (`revoked_at`). Only SHA-256 digests of
    the token and of the session key are stored, never the token itself."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signing_tokens"
    )
    token_sha256 = models.CharField(max_length=64, unique=True)
    session_sha256 = models.CharField(max_length=64, db_index=True)
    issued_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
