"""Missing and overdue data of stored patients: what each randomized patient has entered, read
into `protocol.expected_forms.PatientFacts` in a fixed number of queries (six, for any number
of patients), the forms missing on a day, each with the page where it is entered.

Days are read as `timezone.localdate` reads them (as the worklist does): a cycle is given on
the day its infusion started, a panel drawn on its draw day. Progression is the earliest of a
follow-up's progression date and a RECIST 1.1 time point with overall response PD.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from startrt.clinical.recist import Response
from startrt.protocol.definition import Protocol
from startrt.protocol.expected_forms import (
    CycleFacts,
    ExpectedForm,
    FormKind,
    PatientFacts,
    expected_forms,
)
from startrt.protocol.vocabulary import EndOfTreatmentReason
from startrt.web.events.models import FollowUp, TumourAssessment
from startrt.web.treatment.models import Cycle, LabPanel, PlanProposal
from startrt.web.trial.models import Patient


@dataclass(frozen=True)
class MissingForm:
    """A missing form of a patient and the page where it is entered."""

    patient: Patient
    form: ExpectedForm
    url: str


def with_entries(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """The randomized `patients` with what `facts_of` reads, fetched in six queries."""
    return (
        patients.filter(allocation__isnull=False)
        .select_related("site", "allocation", "end_of_treatment", "death")
        .prefetch_related(
            Prefetch(
                "cycles", queryset=Cycle.objects.select_related("dosimetry").order_by("number")
            ),
            Prefetch(
                "lab_panels",
                queryset=LabPanel.objects.only("patient_id", "cycle_id", "drawn_at", "decision"),
            ),
            Prefetch(
                "tumour_assessments",
                queryset=TumourAssessment.objects.only("patient_id", "assessment_date", "response"),
            ),
            Prefetch("follow_ups", queryset=FollowUp.objects.order_by("date")),
            Prefetch("plan_proposals", queryset=PlanProposal.objects.order_by("id")),
        )
        .order_by("site__name", "trial_id")
    )


def facts_of(patient: Patient, protocol: Protocol) -> PatientFacts:
    """What is entered for `patient` (fetched by `with_entries`), as the library reads it."""
    arm = protocol.arm(patient.allocation.treatment_arm)
    panels = list(patient.lab_panels.all())
    complete = [p for p in panels if p.decision.get("action") != "incomplete"]
    cycles = tuple(_cycle_facts(cycle, complete) for cycle in patient.cycles.all())
    decided = [p for p in patient.plan_proposals.all() if p.status in PlanProposal.DECIDED]
    end = getattr(patient, "end_of_treatment", None)
    death = getattr(patient, "death", None)
    return PatientFacts(
        randomized_on=timezone.localdate(patient.allocation.allocated_at),
        dosimetry_guided=arm.dosimetry_guided,
        fixed_cycles=arm.fixed_cycles,
        cycles=cycles,
        course_stopped=bool(decided) and decided[-1].plan.get("action") == "stop",
        lab_check_days=tuple(timezone.localdate(p.drawn_at) for p in panels if p.cycle_id is None),
        assessment_days=tuple(a.assessment_date for a in patient.tumour_assessments.all()),
        end_of_treatment_on=None if end is None else end.date,
        end_of_treatment_reason=None if end is None else EndOfTreatmentReason(end.reason),
        follow_up_days=tuple(f.date for f in patient.follow_ups.all()),
        progression_on=_progression(patient),
        died_on=None if death is None else death.date,
    )


def missing_of(
    patients: Iterable[Patient], protocol: Protocol, today: date, *, past_grace: bool = True
) -> list[MissingForm]:
    """The missing forms of `patients` (fetched by `with_entries`) on `today`, patient by
    patient, each by due day; with `past_grace` False every form due and not entered (the
    worklist's tasks, from their due day on)."""
    return [
        MissingForm(patient, form, form_url(patient, form))
        for patient in patients
        for form in expected_forms(facts_of(patient, protocol), protocol, today)
        if (form.missing if past_grace else not form.entered)
    ]


def form_url(patient: Patient, form: ExpectedForm) -> str:
    """Where `form` is entered: its cycle's page, the treatment page (laboratory checks after a
    cycle are entered with the treatment's panels) or the events page at its kind."""
    trial_id = patient.trial_id
    if form.kind is FormKind.LAB_CHECK:
        return reverse("pages:treatment", args=(trial_id,))
    if form.cycle_number is not None:
        return reverse("pages:cycle", args=(trial_id, form.cycle_number))
    anchor = form.kind.value.replace("_", "-")
    return reverse("pages:events", args=(trial_id,)) + f"#{anchor}"


def _cycle_facts(cycle: Cycle, complete_panels: list[LabPanel]) -> CycleFacts:
    given = cycle.status == Cycle.Status.ADMINISTERED and cycle.infusion_start is not None
    return CycleFacts(
        number=cycle.number,
        planned_on=cycle.planned_date,
        given_on=timezone.localdate(cycle.infusion_start) if given else None,
        cancelled=cycle.status == Cycle.Status.CANCELLED,
        pre_cycle_panel_days=tuple(
            timezone.localdate(p.drawn_at) for p in complete_panels if p.cycle_id == cycle.pk
        ),
        dosimetry_entered=hasattr(cycle, "dosimetry"),
    )


def _progression(patient: Patient) -> date | None:
    days = [f.progression_date for f in patient.follow_ups.all() if f.progression_date]
    for assessment in patient.tumour_assessments.all():
        points = assessment.response.get("assessments", [])
        days += [
            date.fromisoformat(p["date"]) for p in points if p.get("overall") == Response.PD.value
        ]
    return min(days, default=None)
