"""What happens to a participant after randomization: adverse events, tumour assessments, end of
treatment, follow-up and death. `services` validates, audits and versions every change; the
checks below repeat the simplest rules in the database as a last line of defence."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from startrt.clinical.ctcae_terms import OTHER_SPECIFY_SUFFIX
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
    """One adverse event: CTCAE v5.0 term and grade (1-5), seriousness, attribution, outcome.

    `meddra_code` and `soc` are the term's, from `startrt.clinical.ctcae_terms` (never typed);
    both are empty for an event recorded before terms were coded whose text is no CTCAE term
    (migration 0003): a correction must then choose a term. `other_specify` names the event of
    an "<SOC> - Other, specify" term and is empty for every other term."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="adverse_events")
    term = models.CharField(max_length=200)
    meddra_code = models.CharField(max_length=8, blank=True)
    soc = models.CharField(max_length=100, blank=True)
    other_specify = models.CharField(max_length=200, blank=True, default="")
    ctcae_grade = models.PositiveSmallIntegerField()
    onset_date = models.DateField()
    resolved_date = models.DateField(null=True, blank=True)
    serious = models.BooleanField()
    seriousness_criteria = models.JSONField(default=list)
    attribution_prrt = models.CharField(max_length=16, choices=Attribution.choices())
    attribution_capecitabine = models.CharField(max_length=16, choices=Attribution.choices())
    outcome = models.CharField(max_length=32, choices=AdverseEventOutcome.choices())

    @property
    def coded_term(self) -> str:
        """The term as people read it, with the event's name for an "Other, specify" term."""
        return f"{self.term}: {self.other_specify}" if self.other_specify else self.term

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ctcae_grade__gte=1, ctcae_grade__lte=5), name="ae_grade_1_to_5"
            ),
            models.CheckConstraint(
                condition=Q(resolved_date__isnull=True) | Q(resolved_date__gte=F("onset_date")),
                name="ae_resolved_not_before_onset",
            ),
            models.CheckConstraint(
                condition=Q(other_specify="") | Q(term__endswith=OTHER_SPECIFY_SUFFIX),
                name="ae_other_specify_only_for_other_terms",
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
