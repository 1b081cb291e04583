"""Serious adverse event (SAE) reporting: the site's report clock, and whether an SAE is a
suspected unexpected serious adverse reaction (SUSAR) with the sponsor's expedited timelines.

Sources:
- ICH E2A, "Clinical Safety Data Management: Definitions and Standards for Expedited
  Reporting" (1994), II.B (serious), II.A.1 and III.A.1 (a reaction: "a causal relationship
  ... is at least a reasonable possibility"), II.C (unexpected: "not consistent with the
  applicable product information", nature or severity), III.B (fatal or life-threatening
  unexpected reactions within 7 calendar days, completed within 8 more; all other serious
  unexpected reactions within 15).
- Regulation (EU) No 536/2014, Art. 41(4): the investigator reports an SAE to the sponsor
  "without undue delay but not later than within 24 hours of obtaining knowledge" of it,
  followed where necessary by follow-up reports; Art. 42 and Annex III 2.4 (7 / 8 / 15 days).
- Communication from the Commission 2011/C 172/01 ("CT-3"), 7.2.3.2: a fatal or
  life-threatening reaction is unexpected unless the reference safety information (RSI) lists
  it as such; the RSI's expected reactions therefore carry the highest grade they cover.

Rules chosen here (stated, not hidden; the numbers are the protocol file's `[safety_reporting]`):
- The clock runs on elapsed time: the initial report is due `initial_report_hours` after the
  site became aware, whatever the wall clock of the site's zone does (a daylight-saving change
  neither adds nor removes an hour). A report at the due instant exactly is on time; one second
  later is late. "Late by N h" counts started hours (1 s late is 1 h late).
- A follow-up report is due `follow_up_report_days` after the latest report while the event's
  outcome is not final (recovered, recovered with sequelae or fatal are final).
- Suspected: the investigator's attribution to a product is one of `suspected_attributions`
  (START-01 v1.0: possible, probable, definite -- the reasonable possibility of ICH E2A;
  unlikely and unrelated are not; not applicable means the arm does not give the product).
- Expected: the CTCAE v5.0 term is listed in the product's RSI and its grade is at most the
  RSI's `max_expected_grade` for that product; any other term (an "Other, specify" term, a
  term recorded before terms were coded) is unexpected, so the doubt falls on reporting.
- SUSAR: serious, and for at least one investigational product both suspected and
  unexpected. Its expedited category is fatal or life-threatening when the seriousness
  criteria include death or life-threatening, otherwise other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from startrt.clinical.ctcae_terms import lookup
from startrt.protocol.decision import Decision
from startrt.protocol.vocabulary import (
    AdverseEventOutcome,
    Attribution,
    InvestigationalProduct,
    SeriousnessCriterion,
)
from startrt.validation import InvalidInputError

SUSAR_RULE = (
    "ICH E2A (1994) II.B, III.A.1, II.C and CT-3 (2011/C 172/01) 7.2.3.2: a SUSAR is serious, "
    "suspected (attribution a reasonable possibility) and unexpected (term and grade not in the "
    "product's reference safety information) for at least one investigational product"
)
FINAL_OUTCOMES = frozenset(
    {
        AdverseEventOutcome.RECOVERED,
        AdverseEventOutcome.RECOVERED_WITH_SEQUELAE,
        AdverseEventOutcome.FATAL,
    }
)
FATAL_OR_LIFE_THREATENING = frozenset(
    {SeriousnessCriterion.DEATH, SeriousnessCriterion.LIFE_THREATENING}
)
ONE_HOUR = timedelta(hours=1)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProductSafetyInformation(_Frozen):
    """A product's reference safety information: the expected adverse reactions as CTCAE v5.0
    terms, up to `max_expected_grade`, and the document they come from."""

    source: str = Field(min_length=1)
    max_expected_grade: int = Field(ge=1, le=5)
    terms: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ctcae_terms(self) -> ProductSafetyInformation:
        for term in self.terms:
            lookup(term)  # refuses a term not spelled as CTCAE v5.0 does, naming the closest
        repeated = sorted({term for term in self.terms if self.terms.count(term) > 1})
        if repeated:
            raise ValueError(f"terms listed twice: {repeated}")
        return self


class SafetyReporting(_Frozen):
    """The protocol's `[safety_reporting]` section."""

    initial_report_hours: int = Field(ge=1, le=72)
    follow_up_report_days: int = Field(ge=1, le=90)
    suspected_attributions: tuple[Attribution, ...] = Field(min_length=1)
    fatal_or_life_threatening_susar_days: int = Field(ge=1, le=30)
    fatal_or_life_threatening_completion_days: int = Field(ge=1, le=30)
    other_susar_days: int = Field(ge=1, le=30)
    reference_safety_information: dict[InvestigationalProduct, ProductSafetyInformation]

    @model_validator(mode="after")
    def _every_product(self) -> SafetyReporting:
        if Attribution.NOT_APPLICABLE in self.suspected_attributions:
            raise ValueError("suspected_attributions cannot hold not_applicable")
        given = self.reference_safety_information
        missing = [p.value for p in InvestigationalProduct if p not in given]
        if missing:
            raise ValueError(f"reference_safety_information needs every product; missing {missing}")
        return self


def _aware(name: str, moment: datetime) -> datetime:
    """`moment` in UTC: Python adds and subtracts times of one zone on the wall clock, so
    elapsed time is computed in UTC only; a time without a zone is refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInputError(name, moment.isoformat(), "needs a time zone (an aware time)")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class ReportClock:
    """A report's deadline and where it stands: submitted on time or late (by `hours_late`
    started hours), or not submitted and overdue (by `hours_overdue`) or still due."""

    due_at: datetime
    submitted_at: datetime | None
    on_time: bool | None
    late_by: timedelta
    hours_late: int

    @property
    def overdue(self) -> bool:
        """Not submitted and past the deadline (as of the `now` it was computed for)."""
        return self.submitted_at is None and self.hours_late > 0


def report_clock(due_at: datetime, submitted_at: datetime | None, now: datetime) -> ReportClock:
    """Where a report due at `due_at` stands: by `submitted_at` if submitted, else at `now`."""
    due_at = _aware("due_at", due_at)
    moment = _aware("submitted_at", submitted_at) if submitted_at else _aware("now", now)
    late_by = max(moment - due_at, timedelta(0))
    hours_late = math.ceil(late_by / ONE_HOUR)
    on_time = None if submitted_at is None else late_by == timedelta(0)
    return ReportClock(due_at, submitted_at, on_time, late_by, hours_late)


def initial_report_due(aware_at: datetime, rules: SafetyReporting) -> datetime:
    """When the site's initial report is due: `initial_report_hours` of elapsed time after the
    site became aware (computed in UTC, then shown in any zone)."""
    aware_at = _aware("aware_at", aware_at)
    return aware_at + timedelta(hours=rules.initial_report_hours)


def check_awareness(aware_at: datetime, onset_date: date, zone: tzinfo, now: datetime) -> None:
    """Refuse an awareness time after `now` or before the event's onset day (the day of
    `aware_at` in the site's `zone`)."""
    aware_at, now = _aware("aware_at", aware_at), _aware("now", now)
    if aware_at > now:
        raise InvalidInputError("aware_at", aware_at.isoformat(), "must not lie in the future")
    if aware_at.astimezone(zone).date() < onset_date:
        raise InvalidInputError(
            "aware_at",
            aware_at.isoformat(),
            f"must not be before the event's onset date {onset_date.isoformat()}",
        )


def follow_up_due(
    latest_report_at: datetime, outcome: AdverseEventOutcome, rules: SafetyReporting
) -> datetime | None:
    """When the next follow-up report is due, or None once the outcome is final."""
    if outcome in FINAL_OUTCOMES:
        return None
    latest_report_at = _aware("latest_report_at", latest_report_at)
    return latest_report_at + timedelta(days=rules.follow_up_report_days)


def is_suspected(attribution: Attribution, rules: SafetyReporting) -> bool:
    """Whether the attribution is a reasonable possibility of a causal relationship."""
    return attribution in rules.suspected_attributions


def is_expected(
    product: InvestigationalProduct, term: str, grade: int, rules: SafetyReporting
) -> bool:
    """Whether `term` at `grade` is an expected reaction to `product` by its RSI."""
    information = rules.reference_safety_information[product]
    return term in information.terms and grade <= information.max_expected_grade


class ProductAssessment(_Frozen):
    """One product's part of the SUSAR assessment."""

    product: InvestigationalProduct
    attribution: Attribution
    suspected: bool
    expected: bool
    susar: bool


ExpeditedCategory = Literal["fatal_or_life_threatening", "other"]


class SusarDecision(Decision):
    """Whether a serious adverse event is a SUSAR, per product, with the sponsor's expedited
    reporting category (None when it is no SUSAR)."""

    susar: bool
    products: tuple[ProductAssessment, ...]
    category: ExpeditedCategory | None


def assess_susar(
    *,
    serious: bool,
    term: str,
    grade: int,
    criteria: list[SeriousnessCriterion],
    attributions: dict[InvestigationalProduct, Attribution],
    rules: SafetyReporting,
    protocol: str,
) -> SusarDecision:
    """The SUSAR decision of an event as reported (`attributions`: the investigator's, per
    product; every product of the RSI is needed)."""
    if grade not in range(1, 6):
        raise InvalidInputError("ctcae_grade", grade, "must be a CTCAE grade 1-5")
    missing = [p.value for p in InvestigationalProduct if p not in attributions]
    if missing:
        raise InvalidInputError("attributions", sorted(attributions), f"missing {missing}")
    products = []
    for product in InvestigationalProduct:
        suspected = is_suspected(attributions[product], rules)
        expected = is_expected(product, term, grade, rules)
        products.append(
            ProductAssessment(
                product=product,
                attribution=attributions[product],
                suspected=suspected,
                expected=expected,
                susar=serious and suspected and not expected,
            )
        )
    susar = any(p.susar for p in products)
    category: ExpeditedCategory | None = None
    if susar:
        grave = FATAL_OR_LIFE_THREATENING & set(criteria)
        category = "fatal_or_life_threatening" if grave else "other"
    return SusarDecision(
        kind="susar_assessment",
        protocol=protocol,
        rule=SUSAR_RULE,
        inputs={
            "serious": serious,
            "term": term,
            "ctcae_grade": grade,
            "seriousness_criteria": [str(c) for c in criteria],
            "attributions": {str(p): str(a) for p, a in attributions.items()},
        },
        susar=susar,
        products=tuple(products),
        category=category,
    )


@dataclass(frozen=True)
class ExpeditedTimeline:
    """The sponsor's expedited report of a SUSAR to the authorities (information for the
    safety desk): day 0 is the sponsor's first knowledge; `completion_due` only for a fatal or
    life-threatening SUSAR."""

    category: ExpeditedCategory
    report_due: date
    completion_due: date | None


def expedited_timeline(
    category: ExpeditedCategory, sponsor_aware_on: date, rules: SafetyReporting
) -> ExpeditedTimeline:
    """Calendar-day deadlines from the sponsor's first knowledge (ICH E2A III.B)."""
    if category == "fatal_or_life_threatening":
        first = sponsor_aware_on + timedelta(days=rules.fatal_or_life_threatening_susar_days)
        completion = first + timedelta(days=rules.fatal_or_life_threatening_completion_days)
        return ExpeditedTimeline(category, first, completion)
    return ExpeditedTimeline(
        category, sponsor_aware_on + timedelta(days=rules.other_susar_days), None
    )
