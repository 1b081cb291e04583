"""The trial's data. Business rules live in the library (startrt.protocol, startrt.clinical);
these tables persist their inputs and decisions. Every change goes through `services`, which
audits it (`audit.AuditEntry`, append-only at the database level)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from startrt.clinical.sex import Sex


class Role(models.TextChoices):
    INVESTIGATOR = "investigator", "Investigator"
    RESEARCH_NURSE = "research_nurse", "Research nurse"
    PHYSICIST = "physicist", "Medical physicist"
    PHARMACIST = "pharmacist", "Pharmacist"
    MONITOR = "monitor", "Monitor (all sites)"
    DATA_MANAGER = "data_manager", "Data manager (all sites)"
    STATISTICIAN = "statistician", "Statistician"
    ADMINISTRATOR = "administrator", "Administrator"


class Site(models.Model):
    """A participating hospital; `name` is the protocol's site name (a stratification level)."""

    name = models.CharField(max_length=64, unique=True)
    code = models.CharField(max_length=8, unique=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role at a site; site None means every site (monitors, data managers,
    statisticians, administrators)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True)
    role = models.CharField(max_length=32, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "site", "role"], name="one_role_per_site"),
            models.CheckConstraint(
                condition=models.Q(site__isnull=False)
                | models.Q(role__in=["monitor", "data_manager", "statistician", "administrator"]),
                name="site_roles_need_a_site",
            ),
        ]


class Patient(models.Model):
    """A trial participant under a pseudonymous trial ID: no name or personal number is stored."""

    trial_id = models.CharField(max_length=32, unique=True)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="patients")
    sex = models.CharField(max_length=8, choices=[(sex.value, sex.value) for sex in Sex])
    registered_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return self.trial_id


class Consent(models.Model):
    """A signed informed consent: the version of the form and the date it was signed (a new
    form version after an amendment is a new row)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    form_version = models.CharField(max_length=32)
    signed_on = models.DateField()
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "form_version"], name="one_consent_per_form_version"
            ),
        ]


class Screening(models.Model):
    """The screening record (validated by startrt.protocol.screening) and its eligibility."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="screening")
    record = models.JSONField()
    eligible = models.BooleanField(null=True)
    protocol = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)


class Decision(models.Model):
    """A decision the system made, stored as made: kind, inputs, rule, protocol version."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="decisions")
    kind = models.CharField(max_length=32)
    protocol = models.CharField(max_length=64)
    rule = models.TextField()
    record = models.JSONField()
    made_at = models.DateTimeField(auto_now_add=True)
    made_by = models.CharField(max_length=150)


class RandomizationList(models.Model):
    """A concealed allocation list; its SHA-256 was published before the first allocation."""

    name = models.CharField(max_length=64, unique=True)
    protocol = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64, unique=True)
    csv = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    active = models.BooleanField(default=True)


class Slot(models.Model):
    """One row of a list; taken by at most one patient, under a row lock, never given back."""

    listing = models.ForeignKey(RandomizationList, on_delete=models.PROTECT, related_name="slots")
    stratum = models.CharField(max_length=128)
    sequence = models.PositiveIntegerField()
    block = models.PositiveIntegerField()
    block_size = models.PositiveIntegerField()
    arm = models.CharField(max_length=32)
    patient = models.OneToOneField(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="allocation"
    )
    treatment_arm = models.CharField(max_length=32, blank=True)
    allocated_at = models.DateTimeField(null=True, blank=True)
    allocated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["listing", "stratum", "sequence"], name="one_slot_per_position"
            ),
        ]
        indexes = [models.Index(fields=["listing", "stratum", "sequence"])]


class AuditEntry(models.Model):
    """Who changed what, when (UTC) and why; old and new values. Append-only: triggers in the
    database refuse UPDATE and DELETE on this table (migration 0002); hash-chained (0004)."""

    at = models.DateTimeField(auto_now_add=True)
    user_id_at_time = models.BigIntegerField(null=True)
    username = models.CharField(max_length=150)
    action = models.CharField(
        max_length=8, choices=[(a, a) for a in ("insert", "update", "delete")]
    )
    table = models.CharField(max_length=64)
    row_id = models.CharField(max_length=64)
    patient_trial_id = models.CharField(max_length=32, blank=True)
    old = models.JSONField(null=True)
    new = models.JSONField(null=True)
    reason = models.TextField(blank=True)
    # the hash chain (trial.chain; written by audit.record, checked by `startrt audit verify`)
    prev_hash = models.CharField(max_length=64, editable=False)
    row_hash = models.CharField(max_length=64, editable=False)

    class Meta:
        indexes = [models.Index(fields=["patient_trial_id", "at"])]
