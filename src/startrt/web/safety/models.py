"""A serious adverse event (SAE) case and its reports to the sponsor's safety desk. The clock,
the SUSAR rule and the reference safety information are `startrt.protocol.safety_reporting`;
`services` writes these rows, audited."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from startrt.protocol.vocabulary import AdverseEventOutcome, Attribution
from startrt.web.events.models import AdverseEvent
from startrt.web.trial.models import Decision, Patient


class SeriousAdverseEvent(models.Model):
    """The SAE case of one serious adverse event: when the site became aware of it, and when
    the initial report is due by the protocol version in force then (`protocol`)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="sae_cases")
    adverse_event = models.OneToOneField(
        AdverseEvent, on_delete=models.PROTECT, related_name="sae_case"
    )
    aware_at = models.DateTimeField()
    initial_report_due_at = models.DateTimeField()
    protocol = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "serious adverse event"
        constraints = [
            models.CheckConstraint(
                condition=Q(initial_report_due_at__gt=models.F("aware_at")),
                name="sae_due_after_awareness",
            ),
        ]


class SaeReport(models.Model):
    """One report of an SAE case to the safety desk: the initial report (number 0) or follow-up
    `number`. It keeps the event as reported (term, grade, criteria, causality, outcome), the
    deadline it answered, the SUSAR decision made from it and the notification sent."""

    case = models.ForeignKey(SeriousAdverseEvent, on_delete=models.PROTECT, related_name="reports")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="sae_reports")
    number = models.PositiveSmallIntegerField()
    due_at = models.DateTimeField(null=True, blank=True)  # none after a final outcome
    submitted_at = models.DateTimeField()
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sae_reports"
    )
    narrative = models.TextField()
    term = models.CharField(max_length=200)
    other_specify = models.CharField(max_length=200, blank=True, default="")
    ctcae_grade = models.PositiveSmallIntegerField()
    seriousness_criteria = models.JSONField(default=list)
    attribution_prrt = models.CharField(max_length=16, choices=Attribution.choices())
    attribution_capecitabine = models.CharField(max_length=16, choices=Attribution.choices())
    outcome = models.CharField(max_length=32, choices=AdverseEventOutcome.choices())
    susar = models.BooleanField()
    susar_decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="+")
    notified_at = models.DateTimeField(null=True, blank=True)
    notified_to = models.JSONField(default=list)
    notification_error = models.TextField(blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SAE report"
        constraints = [
            models.UniqueConstraint(fields=["case", "number"], name="one_sae_report_per_number"),
            models.CheckConstraint(
                condition=Q(ctcae_grade__gte=1, ctcae_grade__lte=5), name="sae_grade_1_to_5"
            ),
        ]

    @property
    def initial(self) -> bool:
        return self.number == 0
