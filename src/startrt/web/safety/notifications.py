"""The e-mail that tells the sponsor's safety desk of an SAE report (Django's e-mail framework:
files in DATA_DIR/mail by default, SMTP when configured; see `web/settings.py`).

The mail names the trial, the patient's pseudonymous trial ID and site, the event (CTCAE term
and grade, seriousness criteria, causality per product, outcome), when the site became aware,
the report's deadline and whether it was met, the SUSAR decision with the sponsor's expedited
deadlines, the narrative and the case page's path. It holds no allocation (arm, slot) and no
personal data: what a site user of the patient reads on the case page.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse

from startrt.protocol.definition import protocol_in_force
from startrt.protocol.safety_reporting import expedited_timeline, report_clock
from startrt.protocol.vocabulary import (
    AdverseEventOutcome,
    Attribution,
    InvestigationalProduct,
    SeriousnessCriterion,
)
from startrt.web.safety.models import SaeReport
from startrt.web.trial.dates import site_time, site_time_zone

CATEGORY_TEXT = {
    "fatal_or_life_threatening": "fatal or life-threatening SUSAR",
    "other": "SUSAR, not fatal or life-threatening",
}


def report_title(report: SaeReport) -> str:
    """ "Initial report" or "Follow-up report 2"."""
    return "Initial report" if report.initial else f"Follow-up report {report.number}"


def event_text(report: SaeReport) -> str:
    """The event as reported: "Febrile neutropenia, CTCAE grade 3" (with an Other, specify
    name after the term)."""
    term = f"{report.term}: {report.other_specify}" if report.other_specify else report.term
    return f"{term}, CTCAE grade {report.ctcae_grade}"


def timeliness_text(report: SaeReport) -> str:
    """ "On time", "Late by 3 h" (started hours), or "No deadline" after a final outcome."""
    if report.due_at is None:
        return "No deadline (follow-up after a final outcome)"
    clock = report_clock(report.due_at, report.submitted_at, report.submitted_at)
    return "On time" if clock.on_time else f"Late by {clock.hours_late} h"


def subject(report: SaeReport, *, first_susar: bool) -> str:
    flag = "SUSAR flagged: " if first_susar else ("SUSAR: " if report.susar else "")
    patient = report.patient
    return (
        f"[START-01 SAE] {flag}{report_title(report)}, {patient.trial_id} ({patient.site.name}): "
        f"{event_text(report)}"
    )


def body(report: SaeReport) -> str:
    """The mail's text (plain, one fact a line)."""
    patient, case = report.patient, report.case
    site = patient.site
    protocol = protocol_in_force(report.submitted_at.date())
    registrations = ", ".join(protocol.registrations)
    criteria = ", ".join(SeriousnessCriterion(c).label for c in report.seriousness_criteria)
    causality = "; ".join(
        f"{product.label}: {Attribution(getattr(report, f'attribution_{product}')).label}"
        for product in InvestigationalProduct
    )
    lines = [
        f"Trial: {protocol.id} ({registrations}), {case.protocol}",
        f"Report: {report_title(report)} of the serious adverse event",
        f"Patient (trial ID): {patient.trial_id}",
        f"Site: {site.name}",
        f"Event: {event_text(report)}",
        f"Onset date: {case.adverse_event.onset_date.isoformat()}",
        f"Seriousness criteria: {criteria or 'none recorded'}",
        f"Causality (investigator): {causality}",
        f"Outcome: {AdverseEventOutcome(report.outcome).label}",
        f"Site aware at: {site_time(case.aware_at, site)}",
        f"Report due at: {site_time(report.due_at, site)}",
        f"Submitted at: {site_time(report.submitted_at, site)} by {report.submitted_by}",
        f"Timeliness: {timeliness_text(report)}",
        f"SUSAR: {'Yes' if report.susar else 'No'} ({report.susar_decision.protocol})",
        *(f"  {line}" for line in susar_lines(report)),
        "",
        "Narrative:",
        report.narrative,
        "",
        "Case page: " + reverse("pages:sae", args=(patient.trial_id, case.pk)),
    ]
    return "\n".join(lines) + "\n"


def susar_lines(report: SaeReport) -> list[str]:
    """The report's SUSAR decision for people: each product suspected or not, expected or not,
    and for a SUSAR the sponsor's expedited deadlines (day 0: the report's day at the site,
    the sponsor's first knowledge)."""
    record = report.susar_decision.record
    lines = []
    for product in record["products"]:
        label = InvestigationalProduct(product["product"]).label
        suspected = "suspected" if product["suspected"] else "not suspected"
        expected = "expected" if product["expected"] else "unexpected"
        lines.append(f"{label}: {suspected}, {expected}")
    category = record["category"]
    if category is not None:
        rules = protocol_in_force(report.submitted_at.date()).safety_reporting
        assert rules is not None  # the report was decided under it
        day0 = report.submitted_at.astimezone(site_time_zone(report.patient.site)).date()
        timeline = expedited_timeline(category, day0, rules)
        text = f"Expedited report ({CATEGORY_TEXT[category]}) due by {timeline.report_due}"
        if timeline.completion_due is not None:
            text += f", completed by {timeline.completion_due}"
        lines.append(text + f" (day 0: {day0})")
    return lines


def send(report: SaeReport, *, first_susar: bool) -> tuple[list[str], str]:
    """Send the report's mail to the safety desk: (recipients, "") or ([], the error)."""
    recipients = list(settings.STARTRT_SAFETY_DESK_EMAIL)
    if not recipients:
        return [], "no safety desk address (STARTRT_SAFETY_DESK_EMAIL) is configured"
    message = EmailMessage(
        subject=subject(report, first_susar=first_susar), body=body(report), to=recipients
    )
    try:
        message.send(fail_silently=False)
    except Exception as error:  # the report is stored: any failure is recorded on it
        text = " ".join(f"{type(error).__name__}: {error}".split())  # one line of text
        return [], "".join(c for c in text if c.isprintable())[:500]
    return recipients, ""
