"""The treatment course of a randomized participant: cycles, pre-cycle labs, capecitabine,
dosimetry and the cycle planner's proposals. Rules live in the library (startrt.protocol,
startrt.clinical, startrt.dosimetry); `services` validates, audits and versions every change,
and the checks below repeat the simplest rules in the database as a last line of defence."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from startrt.protocol.course import ACTIVITY_GBQ_MAX, KIDNEY_DOSE_GY_MAX, KIDNEY_DOSE_SD_GY_MAX
from startrt.protocol.overrides import DeviationKind
from startrt.web.trial.models import Patient, Site

INPATIENT_DAYS_MAX = 60.0  # software plausibility limit of one cycle's hospital stay
IMAGING_SESSIONS_MAX = 10  # software plausibility limit (the protocol images 4 times)


def _activity_check(field: str, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__isnull": True})
        | Q(**{f"{field}__gt": 0, f"{field}__lte": ACTIVITY_GBQ_MAX}),
        name=name,
    )


class Cycle(models.Model):
    """One PRRT cycle: planned (with the accepted plan's activity), released after labs 'go'
    (signed; the signature covers `signed_fields`), administered (activity, lot, infusion
    times, days in hospital) or cancelled. Its protocol deviations (a date outside the window,
    a planned activity past the proposal or a limit) are `deviations`."""

    signed_fields = (
        "id",
        "patient",
        "number",
        "planned_date",
        "planned_activity_gbq",
        "released_by",
        "released_at",
    )
    """What a release signature attests: the plan as released, not the later administration."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ADMINISTERED = "administered", "Administered"
        CANCELLED = "cancelled", "Cancelled"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="cycles")
    number = models.PositiveSmallIntegerField()
    planned_date = models.DateField()
    planned_activity_gbq = models.FloatField()
    administered_activity_gbq = models.FloatField(null=True, blank=True)
    lot = models.CharField(max_length=64, blank=True)
    infusion_start = models.DateTimeField(null=True, blank=True)
    infusion_end = models.DateTimeField(null=True, blank=True)
    inpatient_days = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    released_by = models.CharField(max_length=150, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["patient", "number"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "number"], name="one_cycle_per_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="cycles_numbered_from_1"),
            _activity_check("planned_activity_gbq", "planned_activity_0_15_gbq"),
            _activity_check("administered_activity_gbq", "administered_activity_0_15_gbq"),
            models.CheckConstraint(
                condition=Q(infusion_end__isnull=True)
                | Q(infusion_start__isnull=True)
                | Q(infusion_end__gt=F("infusion_start")),
                name="infusion_ends_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(status="administered")
                | Q(
                    administered_activity_gbq__isnull=False,
                    infusion_start__isnull=False,
                    infusion_end__isnull=False,
                ),
                name="administered_cycle_complete",
            ),
            models.CheckConstraint(
                condition=Q(inpatient_days__isnull=True)
                | Q(inpatient_days__gte=0, inpatient_days__lte=INPATIENT_DAYS_MAX),
                name="inpatient_days_0_60",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} cycle {self.number}"

    @property
    def window_deviation(self) -> str:
        """What the cycle's standing window deviation says ("" when its date is in the window)."""
        deviation = self.deviations.standing().filter(kind=DeviationKind.WINDOW).last()
        return "" if deviation is None else deviation.description


class LabPanel(models.Model):
    """Laboratory values drawn at one time (PatientLabs fields and each value's LLN/ULN), their
    CTCAE v5.0 grades and the pre-cycle decision (go, delay, stop or incomplete)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lab_panels")
    cycle = models.ForeignKey(
        Cycle, on_delete=models.PROTECT, null=True, blank=True, related_name="lab_panels"
    )
    drawn_at = models.DateTimeField()
    values = models.JSONField()
    grades = models.JSONField()
    decision = models.JSONField()
    entered_by = models.CharField(max_length=150)
    entered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "drawn_at", "id"]


class CapecitabinePrescription(models.Model):
    """The capecitabine dose of one cycle's course, as the library computed it."""

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="capecitabine_prescriptions"
    )
    cycle = models.OneToOneField(
        Cycle, on_delete=models.PROTECT, related_name="capecitabine_prescription"
    )
    dose = models.JSONField()
    prescribed_by = models.CharField(max_length=150)
    prescribed_at = models.DateTimeField(auto_now_add=True)


class Dispensing(models.Model):
    """Tablets handed out against a prescription."""

    prescription = models.ForeignKey(
        CapecitabinePrescription, on_delete=models.PROTECT, related_name="dispensings"
    )
    tablets_500 = models.PositiveIntegerField()
    tablets_150 = models.PositiveIntegerField()
    dispensed_by = models.CharField(max_length=150)
    dispensed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(tablets_500__gt=0) | Q(tablets_150__gt=0),
                name="dispensing_not_empty",
            )
        ]


class DosimetryResult(models.Model):
    """The absorbed doses of one administered cycle: entered, or computed from a study folder
    (`study_path` under DATA_DIR/studies); `imaging_sessions` counts the SPECT/CT sessions
    (a computed result's time points)."""

    class Source(models.TextChoices):
        ENTERED = "entered", "Entered"
        COMPUTED = "computed", "Computed from the study"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="dosimetry_results")
    cycle = models.OneToOneField(Cycle, on_delete=models.PROTECT, related_name="dosimetry")
    left_kidney_dose_gy = models.FloatField()
    right_kidney_dose_gy = models.FloatField()
    kidney_effective_half_life_h = models.FloatField(null=True, blank=True)
    marrow_dose_gy = models.FloatField(null=True, blank=True)
    # standard uncertainties (EANM, Gear 2018) and the share of their variance that every
    # cycle of the patient shares (calibration, method): `protocol.course.CycleDose`
    left_kidney_dose_sd_gy = models.FloatField(null=True, blank=True)
    right_kidney_dose_sd_gy = models.FloatField(null=True, blank=True)
    kidney_dose_sd_systematic_share = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    study_path = models.CharField(max_length=500, blank=True)
    imaging_sessions = models.PositiveSmallIntegerField(null=True, blank=True)
    entered_by = models.CharField(max_length=150)
    entered_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(left_kidney_dose_gy__gte=0, left_kidney_dose_gy__lte=KIDNEY_DOSE_GY_MAX)
                & Q(right_kidney_dose_gy__gte=0, right_kidney_dose_gy__lte=KIDNEY_DOSE_GY_MAX),
                name="kidney_doses_0_100_gy",
            ),
            models.CheckConstraint(
                condition=(
                    Q(left_kidney_dose_sd_gy__isnull=True)
                    | Q(
                        left_kidney_dose_sd_gy__gte=0,
                        left_kidney_dose_sd_gy__lte=KIDNEY_DOSE_SD_GY_MAX,
                    )
                )
                & (
                    Q(right_kidney_dose_sd_gy__isnull=True)
                    | Q(
                        right_kidney_dose_sd_gy__gte=0,
                        right_kidney_dose_sd_gy__lte=KIDNEY_DOSE_SD_GY_MAX,
                    )
                )
                & (
                    Q(kidney_dose_sd_systematic_share__isnull=True)
                    | Q(
                        kidney_dose_sd_systematic_share__gte=0,
                        kidney_dose_sd_systematic_share__lte=1,
                    )
                ),
                name="kidney_dose_uncertainty_plausible",
            ),
            models.CheckConstraint(
                condition=Q(imaging_sessions__isnull=True)
                | Q(imaging_sessions__gte=1, imaging_sessions__lte=IMAGING_SESSIONS_MAX),
                name="imaging_sessions_1_10",
            ),
        ]


class PlanProposal(models.Model):
    """The planner's proposal for the next cycle (`plan_next_cycle`), which the physicist
    accepts or overrides with a reason and another activity; an undecided proposal is
    superseded when the doses or activities it was computed from are corrected."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        ACCEPTED = "accepted", "Accepted"
        OVERRIDDEN = "overridden", "Overridden"
        SUPERSEDED = "superseded", "Superseded (its inputs were corrected)"

    DECIDED = (Status.ACCEPTED, Status.OVERRIDDEN)
    """The statuses of a proposal the physicist decided (accepted, or overrode)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="plan_proposals")
    for_cycle = models.PositiveSmallIntegerField()
    plan = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.CharField(max_length=150)
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    override_activity_gbq = models.FloatField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["patient", "id"]
        constraints = [
            _activity_check("override_activity_gbq", "override_activity_0_15_gbq"),
            models.CheckConstraint(
                condition=~Q(status="overridden")
                | Q(override_activity_gbq__isnull=False) & ~Q(reason=""),
                name="override_has_activity_and_reason",
            ),
        ]


class DeviationQuerySet(models.QuerySet["Deviation"]):
    def standing(self) -> DeviationQuerySet:
        """The deviations not withdrawn, oldest first."""
        return self.filter(withdrawn_at__isnull=True).order_by("recorded_at", "id")

    def awaiting_signature(self) -> DeviationQuerySet:
        """Standing deviations of a planned activity not yet signed by the investigator."""
        return self.standing().filter(kind=DeviationKind.ACTIVITY, signed_at__isnull=True)


class Deviation(models.Model):
    """A protocol deviation of one cycle (`protocol.overrides.DeviationKind`): its date outside
    the protocol window, confirmed by the investigator who moved it; or its planned activity
    (the physicist's override above the planner's proposal, past a dose limit, or unchecked for
    want of dosimetry), which the investigator signs with the password (`signed_by`,
    `signed_at`) before the cycle is released or given. `description` is the library's account
    of what departs from the protocol, `reason` the person's; `decision` keeps the library's
    check with the plan it read, `predicted_cumulative_kidney_gy` its prediction. A deviation
    that no longer applies (the cycle moved back into its window, re-planned or cancelled) is
    withdrawn with a reason, never deleted."""

    signed_fields = (
        "id",
        "patient",
        "cycle",
        "proposal",
        "kind",
        "description",
        "reason",
        "planned_activity_gbq",
        "predicted_cumulative_kidney_gy",
        "decision",
        "recorded_by",
        "signed_by",
        "signed_at",
    )
    """What the investigator's signature attests: the deviation as signed, not its later
    withdrawal."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="deviations")
    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="deviations")
    proposal = models.ForeignKey(
        PlanProposal,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deviations",
    )
    kind = models.CharField(
        max_length=16, choices=[(kind.value, kind.value) for kind in DeviationKind]
    )
    description = models.TextField()
    reason = models.TextField()
    planned_activity_gbq = models.FloatField(null=True, blank=True)
    predicted_cumulative_kidney_gy = models.FloatField(null=True, blank=True)
    decision = models.JSONField(default=dict, blank=True)
    recorded_by = models.CharField(max_length=150)
    recorded_at = models.DateTimeField(auto_now_add=True)
    signed_by = models.CharField(max_length=150, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    objects = DeviationQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "recorded_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason="") & ~Q(description=""), name="deviation_described"
            ),
            models.CheckConstraint(
                condition=Q(signed_at__isnull=True, signed_by="")
                | Q(signed_at__isnull=False) & ~Q(signed_by=""),
                name="deviation_signed_by_and_at",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True, withdrawn_reason="")
                | Q(withdrawn_at__isnull=False) & ~Q(withdrawn_reason=""),
                name="deviation_withdrawn_with_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cycle} deviation ({self.kind})"

    @property
    def awaiting_signature(self) -> bool:
        """A standing deviation of a planned activity the investigator has not signed."""
        return self.kind == DeviationKind.ACTIVITY and not self.signed_at and not self.withdrawn_at


class StudyJob(models.Model):
    """A study uploaded for a cycle's dosimetry and computed on the task queue
    (`treatment.study_tasks`): what the upload asked (replacement version and reason, the
    patient's confirmation), the state and current step shown on the page, the refusal that
    failed it (field, value, rule), and, once done, the stored result and its version (a
    later correction makes the figures outdated), the figures folder
    (under DATA_DIR/studies) and the per-VOI summary of the figures' voxel dosimetry. The
    queue's own row (`task_id`) holds the run."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="study_jobs")
    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="study_jobs")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    upload_name = models.CharField(max_length=255)
    staging_path = models.CharField(max_length=500, blank=True)  # until the task takes it
    reason = models.TextField(blank=True)
    expected_version = models.PositiveIntegerField(null=True, blank=True)
    patient_confirmed = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    step = models.CharField(max_length=64, blank=True)
    error_field = models.CharField(max_length=100, blank=True)
    error_value = models.TextField(blank=True)
    error_rule = models.TextField(blank=True)
    result = models.ForeignKey(
        DosimetryResult, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    result_version = models.PositiveIntegerField(null=True, blank=True)  # as the job stored it
    figures_path = models.CharField(max_length=500, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class SiteLabRange(models.Model):
    """A site laboratory's reference range for one test (a graded lab field such as
    `hemoglobin_g_l`), in the field's unit, in force from `valid_from`: the lab form is
    prefilled with each test's latest range in force, and a panel stores the limits it used.
    A new range is a new row (the history stays); every row is audited."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="lab_ranges")
    test = models.CharField(max_length=64)
    lower_limit = models.FloatField(null=True, blank=True)
    upper_limit = models.FloatField(null=True, blank=True)
    unit = models.CharField(max_length=32)
    valid_from = models.DateField()
    set_by = models.CharField(max_length=150)
    set_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site", "test", "valid_from", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "test", "valid_from"], name="one_lab_range_per_site_test_day"
            ),
            models.CheckConstraint(
                condition=Q(lower_limit__isnull=False) | Q(upper_limit__isnull=False),
                name="lab_range_has_a_limit",
            ),
            models.CheckConstraint(
                condition=Q(lower_limit__isnull=True)
                | Q(upper_limit__isnull=True)
                | Q(lower_limit__lt=F("upper_limit")),
                name="lab_range_lower_below_upper",
            ),
        ]
