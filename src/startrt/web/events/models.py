"""What happens to a participant after randomization: adverse events, tumour assessments, end of
treatment, follow-up and death. `services` validates, audits and versions every change; the
checks below repeat the simplest rules in the database as a last line of defence."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from startrt.web.trial.models import Patient


class Seriousness(models.TextChoices):
    """Criteria making an adverse event serious (ICH E2A, 1994)."""

    DEATH = "death", "Results in death"
    LIFE_THREATENING = "life_threatening", "Life-threatening"
    HOSPITALISATION = "hospitalisation", "Requires or prolongs hospitalisation"
    DISABILITY = "disability", "Persistent or significant disability or incapacity"
    CONGENITAL_ANOMALY = "congenital_anomaly", "Congenital anomaly or birth defect"
    OTHER_IMPORTANT = "other_important", "Other important medical event"


class Attribution(models.TextChoices):
    """Relatedness of an event to a treatment; not applicable when the arm does not give it."""

    UNRELATED = "unrelated", "Unrelated"
    UNLIKELY = "unlikely", "Unlikely"
    POSSIBLE = "possible", "Possible"
    PROBABLE = "probable", "Probable"
    DEFINITE = "definite", "Definite"
    NOT_APPLICABLE = "not_applicable", "Not applicable (not given in this arm)"


class Outcome(models.TextChoices):
    """Outcome of an adverse event (the CDISC SDTM OUT codelist)."""

    RECOVERED = "recovered", "Recovered / resolved"
    RECOVERING = "recovering", "Recovering / resolving"
    NOT_RECOVERED = "not_recovered", "Not recovered / not resolved"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae", "Recovered / resolved with sequelae"
    FATAL = "fatal", "Fatal"
    UNKNOWN = "unknown", "Unknown"


class EndReason(models.TextChoices):
    COMPLETED = "completed", "Completed protocol treatment"
    RENAL_LIMIT = "renal_limit", "Cumulative kidney dose limit reached"
    TOXICITY = "toxicity", "Toxicity"
    PROGRESSION = "progression", "Progression"
    WITHDRAWAL = "withdrawal", "Withdrawal of consent"
    DEATH = "death", "Death"
    OTHER = "other", "Other (see details)"


class VitalStatus(models.TextChoices):
    ALIVE = "alive", "Alive"
    DEAD = "dead", "Dead"
    LOST = "lost", "Lost to follow-up"


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
    attribution_prrt = models.CharField(max_length=16, choices=Attribution.choices)
    attribution_capecitabine = models.CharField(max_length=16, choices=Attribution.choices)
    outcome = models.CharField(max_length=32, choices=Outcome.choices)

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
    reason = models.CharField(max_length=16, choices=EndReason.choices)
    details = models.TextField(blank=True)


class FollowUp(Versioned):
    """A follow-up contact: vital status and whether progression has been seen (and when)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="follow_ups")
    date = models.DateField()
    status = models.CharField(max_length=8, choices=VitalStatus.choices)
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
