"""What happens to a participant after randomization: adverse events, tumour assessments, end of
treatment, follow-up and death. `services` validates, audits and versions every change; the
checks below repeat the simplest rules in the database as a last line of defence."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from startrt.protocol.vocabulary import (
    AdverseEventOutcome,
    Attribution,
    EndOfTreatmentReason,
    VitalStatus,
)
from startrt.web.trial.models import Patient


class Versioned(models.Model):
    """A record edited only with the version it was based on (`services` checks it)."""

    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class AdverseEvent(Versioned):
    """One adverse event: CTCAE v5.0 term and grade (1-5), seriousness, attribution, outcome."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="adverse_events")
    term = models.CharField(max_length=200)
    ctcae_grade = models.PositiveSmallIntegerField()
    onset_date = models.DateField()
    resolved_date = models.DateField(null=True, blank=True)
    serious = models.BooleanField()
    seriousness_criteria = models.JSONField(default=list)
    attribution_prrt = models.CharField(max_length=16, choices=Attribution.choices())
    attribution_capecitabine = models.CharField(max_length=16, choices=Attribution.choices())
    outcome = models.CharField(max_length=32, choices=AdverseEventOutcome.choices())

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ctcae_grade__gte=1, ctcae_grade__lte=5), name="ae_grade_1_to_5"
            ),
            models.CheckConstraint(
                condition=Q(resolved_date__isnull=True) | Q(resolved_date__gte=F("onset_date")),
                name="ae_resolved_not_before_onset",
            ),
        ]


class TumourAssessment(Versioned):
    """The RECIST 1.1 series as known at one assessment (baseline and follow-ups so far, in the
    `recist.parse_series` shape) and the responses computed from it (`evaluate_series`)."""

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="tumour_assessments"
    )
    assessment_date = models.DateField()
    series = models.JSONField()
    response = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "assessment_date"], name="one_assessment_per_date"
            ),
        ]


class EndOfTreatment(Versioned):
    patient = models.OneToOneField(
        Patient, on_delete=models.PROTECT, related_name="end_of_treatment"
    )
    date = models.DateField()
    reason = models.CharField(max_length=32, choices=EndOfTreatmentReason.choices())
    details = models.TextField(blank=True)


class FollowUp(Versioned):
    """A follow-up contact: vital status and whether progression has been seen (and when)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="follow_ups")
    date = models.DateField()
    status = models.CharField(max_length=8, choices=VitalStatus.choices())
    progression = models.BooleanField()
    progression_date = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "date"], name="one_follow_up_per_date"),
            models.CheckConstraint(
                condition=Q(progression=True, progression_date__isnull=False)
                | Q(progression=False, progression_date__isnull=True),
                name="progression_date_iff_progression",
            ),
        ]


class Death(Versioned):
    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="death")
    date = models.DateField()
    cause = models.CharField(max_length=200)
    related_to_treatment = models.BooleanField()
