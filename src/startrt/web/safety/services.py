"""Serious adverse event reporting: one transaction per action, every insert and change audited
(`trial.changes`). The rules are `startrt.protocol.safety_reporting`, read from the protocol
version in force (`current_protocol`).

Who does what (stated, not hidden):
- The research nurse or investigator of the patient's site opens the SAE case of a serious
  adverse event (with the time the site became aware of it), corrects that time (with a reason)
  and submits the initial report and the follow-up reports; others get PermissionDenied.
- The sponsor's safety desk is not a user: it receives each report by e-mail
  (`notifications`). Monitors (and every all-site role) read every site's cases; other staff
  read their sites' (`visible_cases`).
- A report keeps the event as the adverse-event record stands when it is submitted: its
  causality is the investigator's attribution on that record (corrected there, audited, with a
  reason), so there is one causality per event, and a follow-up after a correction carries the
  new one. Each report stores a new SUSAR decision made from what it reports.
- A report is submitted now (the server's clock, UTC): its time is never typed. The initial
  report's deadline is fixed when the case is opened (and moved by a corrected awareness time);
  a follow-up's is `follow_up_report_days` after the previous report while the outcome is not
  final (a follow-up after a final outcome has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from startrt.protocol.definition import Protocol
from startrt.protocol.safety_reporting import (
    ReportClock,
    SafetyReporting,
    SusarDecision,
    assess_susar,
    check_awareness,
    follow_up_due,
    initial_report_due,
    report_clock,
)
from startrt.protocol.vocabulary import (
    AdverseEventOutcome,
    Attribution,
    InvestigationalProduct,
    SeriousnessCriterion,
)
from startrt.validation import InvalidInputError, clean_text
from startrt.web.events.models import AdverseEvent
from startrt.web.safety import notifications
from startrt.web.safety.models import SaeReport, SeriousAdverseEvent
from startrt.web.trial.changes import insert, locked, require_reason, update
from startrt.web.trial.dates import site_time_zone
from startrt.web.trial.models import Patient
from startrt.web.trial.permissions import require_role, visible_patients
from startrt.web.trial.services import ENTRY_ROLES, current_protocol, store_decision

NARRATIVE_MAX_CHARS = 10_000


def safety_rules(protocol: Protocol) -> SafetyReporting:
    """The protocol's `[safety_reporting]`; a version without it takes no SAE reports."""
    if protocol.safety_reporting is None:
        raise InvalidInputError(
            "protocol", protocol.label, "has no [safety_reporting] section: SAE reports refused"
        )
    return protocol.safety_reporting


def visible_cases(user: AbstractBaseUser) -> QuerySet[SeriousAdverseEvent]:
    """The SAE cases the user may read: their sites' patients' (every site for all-site roles)."""
    return SeriousAdverseEvent.objects.filter(patient__in=visible_patients(user))


def _aware_at(aware_at: datetime) -> datetime:
    if not isinstance(aware_at, datetime):
        raise InvalidInputError("aware_at", aware_at, "must be a date and time")
    if timezone.is_naive(aware_at):
        raise InvalidInputError("aware_at", aware_at.isoformat(), "needs a time zone")
    return aware_at


def _check_aware(event: AdverseEvent, aware_at: datetime) -> None:
    check_awareness(
        _aware_at(aware_at), event.onset_date, site_time_zone(event.patient.site), timezone.now()
    )


@transaction.atomic
def open_case(
    user: AbstractBaseUser, event: AdverseEvent, aware_at: datetime
) -> SeriousAdverseEvent:
    """Open the SAE case of a serious adverse event: the site became aware of it at `aware_at`
    (a time with its zone), so the initial report is due by the protocol's clock."""
    require_role(user, event.patient.site, *ENTRY_ROLES)
    event = AdverseEvent.objects.select_for_update().get(pk=event.pk)
    if not event.serious:
        raise InvalidInputError(
            "serious", False, "only a serious adverse event is reported as an SAE"
        )
    if SeriousAdverseEvent.objects.filter(adverse_event=event).exists():
        raise InvalidInputError("adverse_event", event.term, "has an SAE case already")
    _check_aware(event, aware_at)
    protocol = current_protocol()
    case = SeriousAdverseEvent(
        patient=event.patient,
        adverse_event=event,
        aware_at=aware_at,
        initial_report_due_at=initial_report_due(aware_at, safety_rules(protocol)),
        protocol=protocol.label,
    )
    return insert(user, case, event.patient)


@transaction.atomic
def correct_awareness(
    user: AbstractBaseUser,
    case: SeriousAdverseEvent,
    aware_at: datetime,
    *,
    reason: str,
    expected_version: int | None,
) -> SeriousAdverseEvent:
    """Correct when the site became aware (a typing error, a later-found earlier note), with a
    reason: the initial report's deadline moves with it (on the submitted initial report too,
    so its timeliness is judged again)."""
    require_role(user, case.patient.site, *ENTRY_ROLES)
    reason = require_reason(reason, "a correction of the awareness time needs a reason")
    current = locked(case, expected_version, "SAE case")
    _check_aware(current.adverse_event, aware_at)
    due = initial_report_due(aware_at, safety_rules(current_protocol()))
    initial = SaeReport.objects.select_for_update().filter(case=current, number=0).first()
    if initial is not None:  # its timeliness is judged by the corrected deadline
        update(user, initial, current.patient, {"due_at": due}, reason)
    changes = {"aware_at": aware_at, "initial_report_due_at": due}
    return update(user, current, current.patient, changes, reason)


def _narrative(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("narrative", text, "a report needs its narrative")
    return clean_text("narrative", text.strip(), max_length=NARRATIVE_MAX_CHARS, multiline=True)


def _susar(event: AdverseEvent, protocol: Protocol) -> SusarDecision:
    return assess_susar(
        serious=event.serious,
        term=event.term,
        grade=event.ctcae_grade,
        criteria=[SeriousnessCriterion(c) for c in event.seriousness_criteria],
        attributions={
            InvestigationalProduct.PRRT: Attribution(event.attribution_prrt),
            InvestigationalProduct.CAPECITABINE: Attribution(event.attribution_capecitabine),
        },
        rules=safety_rules(protocol),
        protocol=protocol.label,
    )


def _submit(
    user: AbstractBaseUser, case: SeriousAdverseEvent, narrative: str, *, initial: bool
) -> SaeReport:
    require_role(user, case.patient.site, *ENTRY_ROLES)
    text = _narrative(narrative)
    case = SeriousAdverseEvent.objects.select_for_update().get(pk=case.pk)
    reports = list(case.reports.order_by("number"))
    if initial and reports:
        raise InvalidInputError("number", 0, "the initial report is submitted already")
    if not initial and not reports:
        raise InvalidInputError("number", 1, "a follow-up needs the initial report first")
    protocol = current_protocol()
    if initial:
        due: datetime | None = case.initial_report_due_at
    else:
        previous = reports[-1]
        rules = safety_rules(protocol)
        due = follow_up_due(previous.submitted_at, AdverseEventOutcome(previous.outcome), rules)
    event = case.adverse_event
    decision = _susar(event, protocol)
    stored = store_decision(user, case.patient, decision)
    report = SaeReport(
        case=case,
        patient=case.patient,
        number=len(reports),
        due_at=due,
        submitted_at=timezone.now(),
        submitted_by=user,
        narrative=text,
        term=event.term,
        other_specify=event.other_specify,
        ctcae_grade=event.ctcae_grade,
        seriousness_criteria=list(event.seriousness_criteria),
        attribution_prrt=event.attribution_prrt,
        attribution_capecitabine=event.attribution_capecitabine,
        outcome=event.outcome,
        susar=decision.susar,
        susar_decision=stored,
    )
    insert(user, report, case.patient)
    transaction.on_commit(lambda: notify(user, report.pk))
    return report


@transaction.atomic
def submit_initial_report(
    user: AbstractBaseUser, case: SeriousAdverseEvent, narrative: str
) -> SaeReport:
    """The site's initial report of the case (once); the safety desk is notified on commit."""
    return _submit(user, case, narrative, initial=True)


@transaction.atomic
def submit_follow_up(
    user: AbstractBaseUser, case: SeriousAdverseEvent, narrative: str
) -> SaeReport:
    """The next follow-up report (new information, the outcome); notified on commit."""
    return _submit(user, case, narrative, initial=False)


def notify(user: AbstractBaseUser, report_id: int) -> SaeReport:
    """Send the report's notification to the safety desk and record it on the report (time and
    recipients, or the error), audited. Called after the report is committed, and again from
    the case page when a notification failed (by an entry role of the site)."""
    report = SaeReport.objects.select_related("case__adverse_event", "patient__site").get(
        pk=report_id
    )
    require_role(user, report.patient.site, *ENTRY_ROLES)
    previous = _previous_susar(report)
    recipients, error = notifications.send(report, first_susar=report.susar and not previous)
    with transaction.atomic():
        current = SaeReport.objects.select_for_update().get(pk=report.pk)
        changes: dict[str, Any]
        if error:
            changes = {"notification_error": error}
            reason = f"notification to the safety desk failed: {error}"
        else:
            changes = {"notified_at": timezone.now(), "notified_to": recipients}
            changes |= {"notification_error": ""}
            reason = "notification sent to the safety desk: " + ", ".join(recipients)
        return update(user, current, current.patient, changes, reason)


def _previous_susar(report: SaeReport) -> bool:
    return SaeReport.objects.filter(case=report.case, number__lt=report.number, susar=True).exists()


# --- where a case stands ------------------------------------------------------------------


@dataclass(frozen=True)
class CaseStatus:
    """A case as the listing shows it: the initial report's clock, the follow-ups, the next
    follow-up's clock (None once the outcome is final or before the initial report), whether
    the latest report is a SUSAR, and one status for people."""

    case: SeriousAdverseEvent
    initial: ReportClock
    follow_ups: int
    next_follow_up: ReportClock | None
    susar: bool | None
    status: str

    @property
    def next_clock(self) -> ReportClock | None:
        """The clock of the next report to submit: the initial one until it is submitted, then
        the next follow-up's (None: nothing due)."""
        return self.initial if self.initial.submitted_at is None else self.next_follow_up

    @property
    def next_due_at(self) -> datetime | None:
        """The deadline of the next report to submit (None: nothing due)."""
        return None if self.next_clock is None else self.next_clock.due_at

    @property
    def overdue(self) -> bool:
        """A report overdue: the initial one, or the next follow-up."""
        follow_up = self.next_follow_up is not None and self.next_follow_up.overdue
        return self.initial.overdue or follow_up


def case_status(case: SeriousAdverseEvent, now: datetime | None = None) -> CaseStatus:
    """Where `case` stands at `now` (reports prefetched in number order or read)."""
    now = timezone.now() if now is None else now
    reports = sorted(case.reports.all(), key=lambda r: r.number)
    initial_report = reports[0] if reports else None
    initial = report_clock(
        case.initial_report_due_at, initial_report and initial_report.submitted_at, now
    )
    next_follow_up = None
    if reports:
        latest = reports[-1]
        rules = safety_rules(current_protocol())
        due = follow_up_due(latest.submitted_at, AdverseEventOutcome(latest.outcome), rules)
        next_follow_up = None if due is None else report_clock(due, None, now)
    status = _status_text(initial, next_follow_up, reports)
    susar = reports[-1].susar if reports else None
    return CaseStatus(case, initial, max(len(reports) - 1, 0), next_follow_up, susar, status)


def _status_text(
    initial: ReportClock, next_follow_up: ReportClock | None, reports: list[SaeReport]
) -> str:
    if not reports:
        return "Initial report overdue" if initial.overdue else "Initial report due"
    if next_follow_up is None:
        return "Outcome final: no follow-up due"
    return "Follow-up overdue" if next_follow_up.overdue else "Follow-up due"


def unreported_serious_events(patients: QuerySet[Patient]) -> QuerySet[AdverseEvent]:
    """Serious adverse events of `patients` without an SAE case (to be reported)."""
    return (
        AdverseEvent.objects.filter(patient__in=patients, serious=True, sae_case__isnull=True)
        .select_related("patient__site")
        .order_by("onset_date", "pk")
    )


def open_cases(patients: QuerySet[Patient]) -> list[CaseStatus]:
    """The cases of `patients` with a report to submit (initial or follow-up), by deadline."""
    cases = (
        SeriousAdverseEvent.objects.filter(patient__in=patients)
        .select_related("patient__site", "adverse_event")
        .prefetch_related("reports")
    )
    now = timezone.now()
    statuses = [case_status(case, now) for case in cases]
    waiting = [s for s in statuses if s.next_due_at is not None]
    return sorted(waiting, key=lambda s: (s.next_due_at, s.case.pk))
