"""Concomitant medications of a participant and the protocol deviations the prohibited ones make
(`protocol.concomitant_therapy`). `services` validates, audits and versions every change; the
checks below repeat the simplest rules in the database as a last line of defence.

The deviations live here, not in `treatment.Deviation`: that table ties each deviation to a
cycle, and a prohibited therapy may precede any cycle (a washout deviation) or span several."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from startrt.protocol.vocabulary import MedicationRoute, TherapyFinding
from startrt.web.events.models import Versioned
from startrt.web.trial.models import Patient


class ConcomitantMedication(Versioned):
    """One medication: drug name and WHO ATC code, indication, start and stop days (no stop:
    ongoing), dose and route when known, and the protocol rule's latest finding on it."""

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="concomitant_medications"
    )
    drug_name = models.CharField(max_length=200)
    atc_code = models.CharField(max_length=7)
    indication = models.CharField(max_length=200)
    start_date = models.DateField()
    stop_date = models.DateField(null=True, blank=True)
    dose = models.CharField(max_length=200, blank=True)
    route = models.CharField(max_length=16, choices=MedicationRoute.choices(), blank=True)
    finding = models.CharField(max_length=32, choices=TherapyFinding.choices())
    finding_description = models.TextField()

    class Meta:
        verbose_name = "concomitant medication"
        constraints = [
            models.CheckConstraint(
                condition=Q(stop_date__isnull=True) | Q(stop_date__gte=F("start_date")),
                name="medication_stop_not_before_start",
            ),
        ]

    @property
    def ongoing(self) -> bool:
        return self.stop_date is None


class MedicationDeviationQuerySet(models.QuerySet["MedicationDeviation"]):
    def standing(self) -> MedicationDeviationQuerySet:
        """The deviations not withdrawn, oldest first."""
        return self.filter(withdrawn_at__isnull=True).order_by("recorded_at", "id")

    def awaiting_acknowledgement(self) -> MedicationDeviationQuerySet:
        """Standing deviations the investigator has not acknowledged."""
        return self.standing().filter(acknowledged_at__isnull=True)


class MedicationDeviation(models.Model):
    """A protocol deviation of a prohibited therapy (finding `concomitant` or `washout`):
    `description` is the library's account, `decision` its check with what it read. The
    investigator acknowledges it with a reason (`acknowledged_by`, `acknowledged_at`,
    `acknowledgement`). A deviation that no longer applies (the medication corrected) is
    withdrawn with a reason, never deleted."""

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="medication_deviations"
    )
    medication = models.ForeignKey(
        ConcomitantMedication, on_delete=models.PROTECT, related_name="deviations"
    )
    finding = models.CharField(
        max_length=32,
        choices=[(f.value, f.label) for f in TherapyFinding if f.deviation],
    )
    description = models.TextField()
    decision = models.JSONField()
    recorded_by = models.CharField(max_length=150)
    recorded_at = models.DateTimeField(auto_now_add=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement = models.TextField(blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    objects = MedicationDeviationQuerySet.as_manager()

    class Meta:
        verbose_name = "prohibited-therapy deviation"
        ordering = ["patient", "recorded_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(finding__in=[f.value for f in TherapyFinding if f.deviation]),
                name="medication_deviation_finding",
            ),
            models.CheckConstraint(
                condition=~Q(description=""), name="medication_deviation_described"
            ),
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True, acknowledged_by="", acknowledgement="")
                | Q(acknowledged_at__isnull=False)
                & ~Q(acknowledged_by="")
                & ~Q(acknowledgement=""),
                name="medication_deviation_acknowledged_by_at_why",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True, withdrawn_reason="")
                | Q(withdrawn_at__isnull=False) & ~Q(withdrawn_reason=""),
                name="medication_deviation_withdrawn_with_reason",
            ),
        ]

    @property
    def awaiting_acknowledgement(self) -> bool:
        return self.acknowledged_at is None and self.withdrawn_at is None
