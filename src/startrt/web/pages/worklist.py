"""The home page's worklist: what each of the user's roles has to do today or is late with, one
link away, for the patients of the sites where the user holds that role; and, for the all-site
roles (monitor, statistician, administrator), a read-only overview of every overdue task.

What is due is read from the stored state and the protocol: a planned cycle's pre-cycle labs
are due `schedule.pre_cycle_lab_days_before` days before its planned date (and missing while
no panel of it was drawn since that day or its latest panel is incomplete); its release and
administration on its planned date; its dosimetry on the day of the protocol's last imaging
session (`schedule.imaging_day_after_cycle`); capecitabine with its cycle, for the arm's cycles
that give it (`protocol.capecitabine.gives_capecitabine`). Tasks the protocol gives no date
(an incomplete screening, a randomization, a plan to propose or accept) are listed with the
day they arose, never as overdue. What a service would refuse is not offered: a release waits
for a 'go' of the labs, for the signature of the cycle's deviations and for a plan made on the
current doses (`doses.plan_outdated`). Tumour assessments, the end of treatment and follow-up
contacts not entered are the nurse's and the investigator's from their due day on
(`protocol.expected_forms`; the missing-data report lists them once past the grace days).

`patient_rows` gives the patient list's columns for a page of patients in a fixed number of
queries: status (`protocol.participation`), arm, current cycle, next cycle date and the
cumulative kidney dose (`protocol.kidney_budget`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from startrt import fields
from startrt.protocol.capecitabine import gives_capecitabine
from startrt.protocol.course import Course
from startrt.protocol.definition import Protocol
from startrt.protocol.expected_forms import FormKind, dosimetry_due_day, pre_cycle_lab_day
from startrt.protocol.kidney_budget import (
    PERCENT_OF_LIMIT,
    kidney_dose_rows,
    limit_text,
    quantity_text,
)
from startrt.protocol.participation import ParticipantStatus, participant_status
from startrt.protocol.vocabulary import EndOfTreatmentReason
from startrt.web.medications.services import awaiting_acknowledgement
from startrt.web.monitoring.models import Query
from startrt.web.monitoring.services import query_subject
from startrt.web.pages.missing_data import missing_of, with_entries
from startrt.web.safety import services as safety
from startrt.web.treatment.doses import measured_course, plan_outdated
from startrt.web.treatment.models import (
    CapecitabinePrescription,
    Cycle,
    Deviation,
    Dispensing,
    LabPanel,
    PlanProposal,
)
from startrt.web.trial.dates import site_time
from startrt.web.trial.models import Membership, Patient, Role
from startrt.web.trial.permissions import ALL_SITES_ROLES
from startrt.web.trial.services import current_protocol


@dataclass(frozen=True)
class WorkItem:
    """One task: the patient, what to do, the day it is due (`scheduled`: a protocol date)
    or arose (otherwise), how many days it is overdue (0: due today or not scheduled)."""

    trial_id: str
    site: str
    task: str
    due: date
    url: str
    scheduled: bool
    days_overdue: int


@dataclass(frozen=True)
class Worklist:
    """A role's tasks (for the overview: every overdue task of the sites)."""

    title: str
    items: tuple[WorkItem, ...]


class _Items:
    """Collects the tasks due by `today`, linking each to its page."""

    def __init__(self, today: date) -> None:
        self.today = today
        self.items: list[WorkItem] = []

    def add(
        self,
        patient: Patient,
        task: str,
        due: date,
        url: str,
        *,
        scheduled: bool,
        late_days: int | None = None,
    ) -> None:
        """A task due on `due` (a scheduled one only once due); `late_days` overrides the days
        late counted from `due`, for a deadline kept to the hour."""
        if scheduled and due > self.today and late_days is None:
            return
        late = late_days if late_days is not None else (self.today - due).days if scheduled else 0
        item = WorkItem(patient.trial_id, patient.site.name, task, due, url, scheduled, late)
        self.items.append(item)


def cycle_url(trial_id: str, number: int) -> str:
    """The cycle's page, or the treatment page at the cycle where there is none."""
    try:
        return reverse("pages:cycle", args=(trial_id, number))
    except NoReverseMatch:
        return reverse("pages:treatment", args=(trial_id,)) + f"#cycle-{number}"


def _patient_url(patient: Patient) -> str:
    return reverse("pages:patient", args=(patient.trial_id,))


def _latest_panel(cycle: Cycle) -> LabPanel | None:
    panels = cycle.lab_panels.all()  # prefetched in drawn order
    return panels[len(panels) - 1] if panels else None


def _planned_cycles(patients: QuerySet[Patient]) -> QuerySet[Cycle]:
    return (
        Cycle.objects.filter(patient__in=patients, status=Cycle.Status.PLANNED)
        .select_related("patient__site")
        .prefetch_related(
            Prefetch("lab_panels", queryset=LabPanel.objects.order_by("drawn_at", "id")),
            Prefetch("deviations", queryset=Deviation.objects.awaiting_signature()),
        )
        .order_by("patient__trial_id", "number")
    )


def _lab_day(cycle: Cycle, protocol: Protocol) -> date:
    return pre_cycle_lab_day(cycle.planned_date, protocol.schedule)


def _screenings(patients: QuerySet[Patient], items: _Items, *, investigator: bool) -> None:
    """Screenings not decided (nurse) and eligible patients not randomized (both roles)."""
    waiting = patients.filter(allocation__isnull=True).select_related("site", "screening")
    for patient in waiting.order_by("trial_id"):
        screening = getattr(patient, "screening", None)
        url = _patient_url(patient)
        if screening is not None and screening.eligible is True:
            task = "Randomize (sign)" if investigator else "Eligible: awaiting randomization"
            items.add(patient, task, timezone.localdate(screening.updated_at), url, scheduled=False)
        elif not investigator and (screening is None or screening.eligible is None):
            since = patient.registered_at if screening is None else screening.updated_at
            task = "Enter the screening record" if screening is None else "Complete the screening"
            items.add(patient, task, timezone.localdate(since), url, scheduled=False)


def nurse_tasks(patients: QuerySet[Patient], protocol: Protocol, items: _Items) -> None:
    """Pre-cycle labs to enter, administrations to record, screenings to complete."""
    for cycle in _planned_cycles(patients):
        patient, url = cycle.patient, cycle_url(cycle.patient.trial_id, cycle.number)
        if cycle.released_by:
            task = f"Record the administration of cycle {cycle.number}"
            items.add(patient, task, cycle.planned_date, url, scheduled=True)
            continue
        lab_day, panel = _lab_day(cycle, protocol), _latest_panel(cycle)
        if (
            panel is None
            or timezone.localdate(panel.drawn_at) < lab_day
            or panel.decision["action"] == "incomplete"
        ):
            task = f"Enter pre-cycle labs for cycle {cycle.number}"
            items.add(patient, task, lab_day, url, scheduled=True)
    _screenings(patients, items, investigator=False)
    _event_forms(patients, protocol, items)
    _open_queries(patients, items)
    _sae_reports(patients, items)


def investigator_tasks(patients: QuerySet[Patient], protocol: Protocol, items: _Items) -> None:
    """Deviations to sign, releases to sign, cycles the labs delay or stop, randomizations."""
    for cycle in _planned_cycles(patients):
        patient, url = cycle.patient, cycle_url(cycle.patient.trial_id, cycle.number)
        deviations = list(cycle.deviations.all())
        for deviation in deviations:
            task = f"Sign the protocol deviation of cycle {cycle.number}"
            items.add(
                patient, task, cycle.planned_date, f"{url}#deviation-{deviation.pk}", scheduled=True
            )
        panel = _latest_panel(cycle)
        if (
            cycle.released_by
            or panel is None
            or timezone.localdate(panel.drawn_at) < _lab_day(cycle, protocol)
        ):
            continue
        action = panel.decision["action"]
        if action in ("delay", "stop"):
            task = f"Labs say {action} for cycle {cycle.number}: reschedule or cancel"
            items.add(patient, task, cycle.planned_date, url, scheduled=True)
        elif action == "go" and not deviations and not plan_outdated(cycle):
            task = f"Release cycle {cycle.number} (sign)"
            items.add(patient, task, cycle.planned_date, url, scheduled=True)
    _screenings(patients, items, investigator=True)
    _event_forms(patients, protocol, items)
    _medication_deviations(patients, items)
    _open_queries(patients, items)
    _sae_reports(patients, items)


def _medication_deviations(patients: QuerySet[Patient], items: _Items) -> None:
    """Prohibited-therapy deviations to acknowledge, since the day they were recorded."""
    for deviation in awaiting_acknowledgement(patients).order_by("recorded_at", "pk"):
        task = f"Acknowledge the prohibited-therapy deviation: {deviation.medication.drug_name}"
        url = reverse("pages:medications", args=(deviation.patient.trial_id,))
        since = timezone.localdate(deviation.recorded_at)
        url += f"#deviation-{deviation.pk}"
        items.add(deviation.patient, task, since, url, scheduled=False)


EVENT_FORMS = (FormKind.TUMOUR_ASSESSMENT, FormKind.END_OF_TREATMENT, FormKind.FOLLOW_UP)


def _event_forms(patients: QuerySet[Patient], protocol: Protocol, items: _Items) -> None:
    """Tumour assessments, the end of treatment and follow-up contacts due and not entered."""
    for due in missing_of(with_entries(patients), protocol, items.today, past_grace=False):
        label = due.form.label
        if due.form.kind in EVENT_FORMS:
            task = f"Enter {label[0].lower()}{label[1:]}"
            items.add(due.patient, task, due.form.due, due.url, scheduled=True)


def _sae_reports(patients: QuerySet[Patient], items: _Items) -> None:
    """SAE reports to submit (the initial one within 24 h of awareness, then follow-ups): a
    task from the day the site became aware; once past its deadline, overdue by the started
    days (at least one, so that it heads the lists and the overview). A serious adverse event
    without an SAE case is to be reported, listed from the day its record was last saved."""
    for event in safety.unreported_serious_events(patients):
        task = f"Report the serious adverse event {event.coded_term} as an SAE"
        url = reverse("pages:open_sae", args=(event.patient.trial_id, event.pk))
        since = timezone.localdate(event.updated_at)
        items.add(event.patient, task, since, url, scheduled=False)
    for state in safety.open_cases(patients):
        case, clock = state.case, state.next_clock
        if clock is None:  # open_cases lists only cases with a report due
            continue
        number = state.follow_ups + 1
        what = "the initial SAE report" if clock is state.initial else f"SAE follow-up {number}"
        task = f"Submit {what} of {case.adverse_event.coded_term}"
        url = reverse("pages:sae", args=(case.patient.trial_id, case.pk))
        if not clock.overdue:
            task += f" (due {site_time(clock.due_at, case.patient.site)})"
            items.add(case.patient, task, timezone.localdate(case.aware_at), url, scheduled=False)
            continue
        task += f" (overdue by {clock.hours_late} h)"
        late_days = -(-clock.hours_late // 24)  # started days, at least one
        due_on = timezone.localdate(clock.due_at)
        items.add(case.patient, task, due_on, url, scheduled=True, late_days=late_days)


def _open_queries(patients: QuerySet[Patient], items: _Items) -> None:
    """Open data queries to answer (or to correct the value), since the day they were raised."""
    queries = Query.objects.filter(patient__in=patients, status=Query.Status.OPEN)
    for query in queries.select_related("patient__site").order_by("raised_at", "pk"):
        patient = query.patient
        items.add(
            patient,
            f"Answer the data query on {query_subject(query)}",
            timezone.localdate(query.raised_at),
            reverse("pages:query", args=(patient.trial_id, query.pk)),
            scheduled=False,
        )


def physicist_tasks(patients: QuerySet[Patient], protocol: Protocol, items: _Items) -> None:
    """Dosimetry to enter, plans to accept, to propose, or to make again on corrected doses."""
    unmeasured = Cycle.objects.filter(
        patient__in=patients, status=Cycle.Status.ADMINISTERED, dosimetry__isnull=True
    ).select_related("patient__site")
    for cycle in unmeasured.order_by("patient__trial_id", "number"):
        due = dosimetry_due_day(timezone.localdate(cycle.infusion_start), protocol.schedule)
        task = f"Enter or upload the dosimetry of cycle {cycle.number}"
        items.add(
            cycle.patient,
            task,
            due,
            cycle_url(cycle.patient.trial_id, cycle.number),
            scheduled=True,
        )
    on_treatment = (
        patients.filter(allocation__isnull=False, end_of_treatment__isnull=True)
        .select_related("site")
        .prefetch_related(
            Prefetch(
                "cycles", queryset=Cycle.objects.select_related("dosimetry").order_by("number")
            ),
            Prefetch("plan_proposals", queryset=PlanProposal.objects.order_by("id")),
        )
    )
    for patient in on_treatment.order_by("trial_id"):
        _planning_task(patient, protocol, items)


def _planning_task(patient: Patient, protocol: Protocol, items: _Items) -> None:
    cycles, proposals = list(patient.cycles.all()), list(patient.plan_proposals.all())
    latest = proposals[-1] if proposals else None
    given = [cycle for cycle in cycles if cycle.status == Cycle.Status.ADMINISTERED]
    waiting = [cycle for cycle in cycles if cycle.status != Cycle.Status.ADMINISTERED]
    if latest is not None and latest.status == PlanProposal.Status.PROPOSED:
        task = f"Accept or override the plan for cycle {latest.for_cycle}"
        since = timezone.localdate(latest.proposed_at)
        items.add(
            patient, task, since, cycle_url(patient.trial_id, latest.for_cycle), scheduled=False
        )
        return
    if waiting:
        cycle = waiting[0]
        if plan_outdated(cycle):
            task = f"Ask the planner again for cycle {cycle.number}: doses corrected since its plan"
            items.add(
                patient,
                task,
                timezone.localdate(),
                cycle_url(patient.trial_id, cycle.number),
                scheduled=False,
            )
        return
    if (
        latest is not None
        and latest.status in PlanProposal.DECIDED
        and (latest.plan["action"] == "stop" or latest.for_cycle > len(given))
    ):
        return  # the course ended, or the decided cycle is not recorded yet
    last = given[-1] if given else None
    measured = last is None or getattr(last, "dosimetry", None) is not None
    if not measured and protocol.arm(patient.allocation.treatment_arm).dosimetry_guided:
        return  # the dosimetry comes first: the planner of a guided arm reads it
    number = len(given) + 1
    if last is None:
        since = patient.allocation.allocated_at
    else:
        since = last.dosimetry.entered_at if measured else last.infusion_end
    items.add(
        patient,
        f"Propose the plan for cycle {number}",
        timezone.localdate(since),
        cycle_url(patient.trial_id, number),
        scheduled=False,
    )


def pharmacist_tasks(patients: QuerySet[Patient], protocol: Protocol, items: _Items) -> None:
    """Capecitabine to prescribe and to dispense for the released or given cycles of arms
    that give it."""
    cycles = (
        Cycle.objects.filter(patient__in=patients, patient__allocation__isnull=False)
        .exclude(status=Cycle.Status.CANCELLED)
        .exclude(status=Cycle.Status.PLANNED, released_by="")
        .select_related("patient__site", "patient__allocation", "capecitabine_prescription")
        .order_by("patient__trial_id", "number")
    )
    dispensed = set(
        Dispensing.objects.filter(prescription__cycle__in=cycles).values_list(
            "prescription_id", flat=True
        )
    )
    for cycle in cycles:
        patient = cycle.patient
        if not gives_capecitabine(patient.allocation.treatment_arm, cycle.number, protocol):
            continue
        day = (
            timezone.localdate(cycle.infusion_start) if cycle.infusion_start else cycle.planned_date
        )
        url = reverse("pages:capecitabine", args=(patient.trial_id,))
        prescription: CapecitabinePrescription | None = getattr(
            cycle, "capecitabine_prescription", None
        )
        if prescription is None:
            items.add(
                patient,
                f"Prescribe capecitabine for cycle {cycle.number}",
                day,
                url,
                scheduled=True,
            )
        elif prescription.pk not in dispensed:
            items.add(
                patient, f"Dispense capecitabine for cycle {cycle.number}", day, url, scheduled=True
            )


Tasks = Callable[[QuerySet[Patient], Protocol, _Items], None]
ROLE_TASKS: dict[Role, Tasks] = {
    Role.RESEARCH_NURSE: nurse_tasks,
    Role.INVESTIGATOR: investigator_tasks,
    Role.PHYSICIST: physicist_tasks,
    Role.PHARMACIST: pharmacist_tasks,
}


def _sorted(items: Iterable[WorkItem]) -> tuple[WorkItem, ...]:
    return tuple(
        sorted(items, key=lambda i: (-i.days_overdue, not i.scheduled, i.due, i.trial_id, i.task))
    )


def worklists(user: AbstractBaseUser, today: date | None = None) -> list[Worklist]:
    """The user's worklists: one per role held at a site (that role's sites' patients), and
    the overdue overview for an all-site role."""
    today = timezone.localdate() if today is None else today
    protocol = current_protocol()
    sites: dict[str, set[int | None]] = {}
    for role, site_id in Membership.objects.filter(user=user).values_list("role", "site_id"):
        sites.setdefault(role, set()).add(site_id)
    lists = []
    for role, tasks in ROLE_TASKS.items():
        if role.value in sites:
            items = _Items(today)
            tasks(Patient.objects.filter(site__in=sites[role.value]), protocol, items)
            lists.append(Worklist(role.label, _sorted(items.items)))
    if any(role.value in sites for role in ALL_SITES_ROLES):
        items = _Items(today)
        for tasks in ROLE_TASKS.values():
            tasks(Patient.objects.all(), protocol, items)
        # a task of both the nurse and the investigator is listed once
        overdue = {item for item in items.items if item.days_overdue > 0}
        lists.append(Worklist("Overdue at every site (read-only overview)", _sorted(overdue)))
    return lists


# --- the patient list --------------------------------------------------------------------


@dataclass(frozen=True)
class PatientRow:
    """A patient as the list shows them: the arm (its label, and its name: the label up to a
    colon) only once allocated; the cumulative kidney dose the protocol's renal limit reads
    (mean, worse or one kidney: its side when one governs), its share of the limit and the
    limit's state (within, reached, exceeded) after the cycles measured so far."""

    patient: Patient
    status: ParticipantStatus
    arm: str
    arm_name: str
    current_cycle: str
    next_cycle_date: date | None
    kidney_dose: str
    percent_of_limit: str
    kidney_limit_state: str


def renal_limit_text() -> str:
    """The limit the list's percentages are of: "30 Gy, mean-kidney dose"."""
    limit = current_protocol().renal_limit
    return f"{limit_text(limit)}, {quantity_text(limit)}"


def patients_for_list(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """`patients` with what `patient_rows` reads, fetched in a fixed number of queries."""
    cycles = Cycle.objects.select_related("dosimetry").order_by("number")
    return patients.select_related(
        "site", "screening", "allocation", "end_of_treatment", "death"
    ).prefetch_related(Prefetch("cycles", queryset=cycles))


def _measured_course(cycles: list[Cycle]) -> Course:
    """`doses.measured_course` of prefetched cycles and their results."""
    given = [cycle for cycle in cycles if cycle.status == Cycle.Status.ADMINISTERED]
    results = {cycle.pk: cycle.dosimetry for cycle in given if hasattr(cycle, "dosimetry")}
    return measured_course(given, results)


def _kidney_columns(cycles: list[Cycle], protocol: Protocol) -> tuple[str, str, str]:
    """The cumulative the limit reads (its side when one kidney governs), its share of the
    limit and the limit state ("" before any measured cycle)."""
    rows = kidney_dose_rows(_measured_course(cycles), protocol.renal_limit)
    if not rows or rows[-1].cumulative_limited_gy is None:
        return "", "", ""
    last = rows[-1]
    dose = fields.format_value(
        "cumulative_kidney_dose_gy", last.cumulative_limited_gy, with_unit=True
    )
    if last.governing_side is not None:
        dose += f" ({last.governing_side})"
    share = fields.format_value(PERCENT_OF_LIMIT, last.percent_of_kidney_limit, with_unit=True)
    return dose, share, last.state or ""


def patient_rows(patients: Iterable[Patient]) -> list[PatientRow]:
    """The list's rows of `patients` (fetched by `patients_for_list`)."""
    protocol = current_protocol()
    rows = []
    for patient in patients:
        screening = getattr(patient, "screening", None)
        allocation = getattr(patient, "allocation", None)
        end = getattr(patient, "end_of_treatment", None)
        cycles = list(patient.cycles.all())
        current = cycles[-1] if cycles else None
        planned = next((c for c in cycles if c.status == Cycle.Status.PLANNED), None)
        status = participant_status(
            eligible=None if screening is None else screening.eligible,
            randomized=allocation is not None,
            cycle_given=any(c.status == Cycle.Status.ADMINISTERED for c in cycles),
            end_of_treatment=None if end is None else EndOfTreatmentReason(end.reason),
            died=hasattr(patient, "death"),
        )
        dose, share, state = _kidney_columns(cycles, protocol)
        arm = protocol.arm(allocation.treatment_arm).label if allocation else ""
        rows.append(
            PatientRow(
                patient=patient,
                status=status,
                arm=arm,
                arm_name=arm.partition(":")[0],
                current_cycle=""
                if current is None
                else f"{current.number} ({current.get_status_display().lower()})",
                next_cycle_date=None if planned is None else planned.planned_date,
                kidney_dose=dose,
                percent_of_limit=share,
                kidney_limit_state=state,
            )
        )
    return rows
