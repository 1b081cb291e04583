"""The analysis dataset (`analysis.dataset`) of one simulated trial: every screened candidate
with its baseline and screen failures, the cycles, capecitabine, labs, adverse events,
assessments, follow-up, deaths, ends of treatment and visits, dated from the trial's start date
and cut at the data cut-off.

Baseline and screen failures come from each candidate's screening record
(`population.screening_record`) as `assess_eligibility` reads it: the GFR the criteria use, one
row per failing criterion of a not-eligible candidate. A cycle's `activity_limited_by` is the
planner's limit (`engine.plan_outcome`) on the cycles given before it, which is how the course
planned that cycle; a capecitabine course's full dose is the course at the 100 % level for the
patient's BSA and CrCl, by the same decision provider that dispensed it. Primary site and
Ki-67 stay empty while the virtual population does not draw them.

Visits of each patient come from the protocol's schedule (`build_schedule` with the
administered dates); a standard-arm cycle keeps as many dosimetry imaging visits as the
parameter file gives it SPECT/CT sessions. Tumour assessments, progressions found at follow-up
and deaths are `simulation.endpoints.tumour_records`, the records the simulated PFS is derived
from, so the report's PFS of this dataset is the simulation's.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from startrt.analysis.dataset import SCHEMA, TABLES, TrialDataset, make_dataset
from startrt.clinical.capecitabine import TABLET_STRENGTHS_MG
from startrt.clinical.ctcae import LabTerm
from startrt.protocol.definition import Protocol
from startrt.protocol.eligibility import assess_eligibility
from startrt.protocol.enrolment import failure_reason
from startrt.protocol.schedule import VisitKind, build_schedule
from startrt.protocol.vocabulary import EndOfTreatmentReason, VitalStatus
from startrt.simulation.cohort import Cohort, Screening
from startrt.simulation.course import END_REASONS, ON_TREATMENT, TERMS, Course
from startrt.simulation.endpoints import Endpoints, cut_off_day, tumour_records
from startrt.simulation.engine import Decisions, History, plan_outcome
from startrt.simulation.parameters import GRADES, Parameters
from startrt.simulation.population import screening_record

Rows = list[dict[str, Any]]
BASELINE = tuple(
    column.name for column in SCHEMA["baseline"] if column.name not in ("trial_id", "who_grade")
)
FULL_DOSE_LEVEL_PERCENT = 100
KIDNEY_TERM = LabTerm.EGFR.ctcae_term  # "Chronic kidney disease", graded from the GFR
# treatment ended on the event's date, not at the schedule's end-of-treatment visit
ENDED_BY_EVENT = frozenset(
    {
        EndOfTreatmentReason.PROGRESSION,
        EndOfTreatmentReason.DEATH,
        EndOfTreatmentReason.LOST_TO_FOLLOW_UP,
    }
)


def trial_id(candidate: int) -> str:
    return f"SIM-{candidate + 1:04d}"


class _Builder:
    def __init__(
        self,
        parameters: Parameters,
        protocol: Protocol,
        decisions: Decisions,
        screening: Screening,
        cohort: Cohort,
        course: Course,
        ends: Endpoints,
    ) -> None:
        self.parameters, self.protocol, self.decisions = parameters, protocol, decisions
        self.screening, self.cohort, self.course, self.ends = screening, cohort, course, ends
        self.start = parameters.trial.start_date
        self.cut_off = self.start + timedelta(days=cut_off_day(parameters))
        self.tables: dict[str, Rows] = {name: [] for name in TABLES}
        self.lab_visits: set[tuple[int, date]] = set()
        self.records = tumour_records(
            assessments=ends.assessments,
            progression_found=ends.progression_found,
            response=ends.response,
            death_day=ends.death_day,
            follow_up_days=ends.follow_up_days,
            interval_days=protocol.assessments.interval_days,
        )
        self.first_assessment = np.cumsum(ends.assessments) - ends.assessments
        self.half_life_h = cohort.patients.value("kidney_half_life")

    def on(self, j: int, day: float) -> date:
        """Date of day `day` after patient j's randomization."""
        return self.start + timedelta(days=int(self.cohort.randomized_day[j]) + int(np.floor(day)))

    def add(self, table: str, j: int, when: date, **row: Any) -> None:
        """Add a row of randomized patient j unless it falls after the cut-off."""
        if when <= self.cut_off:
            self.tables[table].append({"trial_id": self.ids[j], **row})

    def build(self) -> dict[str, Rows]:
        self._patients()
        for j in range(len(self.cohort)):
            cycle_dates = self._cycles(j)
            self._visits(j, cycle_dates)
            self._follow_up(j)
        self._labs()
        return self.tables

    def _patients(self) -> None:
        screening, cohort = self.screening, self.cohort
        randomized = {int(c): j for j, c in enumerate(screening.randomized)}
        self.ids = [trial_id(int(c)) for c in screening.randomized]
        for c in range(len(screening.candidates)):
            screened = self.start + timedelta(days=int(screening.screening_day[c]))
            row: dict[str, Any] = {
                "trial_id": trial_id(c),
                "site": self.protocol.sites[int(screening.candidates.site[c])],
                "screened_on": screened,
                "eligible": bool(screening.eligible[c]),
                "randomized_on": None,
                "arm": None,
                "treatment_arm": None,
                "stratum": None,
            }
            j = randomized.get(c)
            if j is not None:
                row.update(
                    randomized_on=self.on(j, 0),
                    arm=cohort.randomized_arm[j],
                    treatment_arm=self.protocol.arms[int(cohort.arm[j])].id,
                    stratum=cohort.stratum[j],
                )
            self.tables["patients"].append(row)
            self._screened(c, screened)
            self.tables["visits"].append(
                {"trial_id": trial_id(c), "visit_on": screened, "kind": VisitKind.SCREENING}
            )

    def _screened(self, c: int, screened: date) -> None:
        """Candidate c's baseline and, when not eligible, its failing criteria."""
        record = screening_record(self.screening.candidates, c, screened)
        decision = assess_eligibility(record, self.protocol)
        values = {**record.model_dump(), **decision.derived}
        grade = GRADES[int(self.screening.candidates.grade[c]) - 1]
        self.tables["baseline"].append(
            {"trial_id": trial_id(c), **{name: values[name] for name in BASELINE}}
            | {"who_grade": grade}
        )
        for criterion in decision.failing():
            self.tables["screen_failures"].append(
                {
                    "trial_id": trial_id(c),
                    "criterion": criterion.id,
                    "reason": failure_reason(criterion),
                }
            )

    def _limited_by(self, j: int, cycle: int) -> str | None:
        """What held patient j's cycle below the full activity: the planner's limit on the
        cycles before it (None when full)."""
        c, given = self.course, slice(0, cycle - 1)
        history = History(
            activity_gbq=c.activity_gbq[[j], given],
            kidney_gy=c.kidney_measured_gy[[j], given],
            kidney_half_life_h=self.half_life_h[[j]],
            marrow_gy=c.marrow_gy[[j], given],
        )
        arm = self.protocol.arms[int(self.cohort.arm[j])].id
        return plan_outcome(arm, history.planner_cycles(0), self.protocol).limiting

    def _full_dose_mg(self, j: int, cycle: int) -> float:
        """Capecitabine (mg) of patient j's course of `cycle` at the 100 % dose level."""
        p = self.cohort.patients
        tablets = self.decisions.capecitabine_tablets(
            self.cohort.arm[[j]],
            cycle,
            p.height_cm[[j]],
            p.weight_kg[[j]],
            p.crcl_ml_min[[j]],
            np.array([FULL_DOSE_LEVEL_PERCENT]),
        )
        return float(
            sum(mg * int(count[0]) for mg, count in zip(TABLET_STRENGTHS_MG, tablets, strict=True))
        )

    def _sessions(self, j: int, cycle: int) -> int:
        arm = self.protocol.arms[int(self.cohort.arm[j])]
        if arm.dosimetry_guided:
            return self.decisions.cycle_visits(cycle, arm.capecitabine)[2]
        return int(self.parameters.resources.standard_arm_spect_sessions_per_cycle.value)

    def _cycles(self, j: int) -> dict[int, date]:
        c = self.course
        dates: dict[int, date] = {}
        for k in range(int(c.cycles[j])):
            given = self.on(j, c.day[j, k])
            dates[k + 1] = given
            sessions = self._sessions(j, k + 1)
            self.add(
                "cycles",
                j,
                given,
                cycle=k + 1,
                administered_on=given,
                activity_gbq=float(c.activity_gbq[j, k]),
                kidney_dose_gy=round(float(c.kidney_measured_gy[j, k]), 4) if sessions else None,
                marrow_dose_gy=round(float(c.marrow_gy[j, k]), 4),
                dosimetry_sessions=sessions,
                inpatient_days=self.parameters.resources.inpatient_days_per_cycle.value,
                activity_limited_by=self._limited_by(j, k + 1),
            )
            if c.tablets_500[j, k] + c.tablets_150[j, k]:
                self.add(
                    "capecitabine",
                    j,
                    given,
                    cycle=k + 1,
                    dispensed_on=given,
                    tablets_500=int(c.tablets_500[j, k]),
                    tablets_150=int(c.tablets_150[j, k]),
                    dose_level_percent=int(c.capecitabine_levels[j, k]),
                    full_dose_mg=self._full_dose_mg(j, k + 1),
                )
        return dates

    def _visits(self, j: int, cycle_dates: dict[int, date]) -> None:
        """Visits of the administered cycles from the protocol's schedule, and the end of
        treatment (at the schedule's end-of-treatment visit, or at the ending event)."""
        arm = self.protocol.arms[int(self.cohort.arm[j])]
        c = self.course
        self.add("visits", j, self.on(j, 0), visit_on=self.on(j, 0), kind=VisitKind.RANDOMIZATION)
        reason = END_REASONS[int(c.end_reason[j])]
        ended = self.on(j, c.end_day[j])
        by_event = reason in ENDED_BY_EVENT
        if cycle_dates:
            schedule = build_schedule(
                self.protocol.schedule,
                first_cycle_date=cycle_dates[1],
                planned_cycles=len(cycle_dates),
                administered=cycle_dates,
                with_capecitabine=arm.capecitabine,
            )
            imaging: dict[int | None, int] = {}
            for visit in schedule.visits:
                if visit.kind is VisitKind.END_OF_TREATMENT:
                    ended = ended if by_event else visit.visit_date
                    continue
                if visit.kind is VisitKind.DOSIMETRY_IMAGING:
                    imaging[visit.cycle_number] = imaging.get(visit.cycle_number, 0) + 1
                    if imaging[visit.cycle_number] > self._sessions(j, visit.cycle_number or 1):
                        continue
                if visit.kind is VisitKind.PRE_CYCLE_LAB:
                    self.lab_visits.add((j, visit.visit_date))
                self.add("visits", j, visit.visit_date, visit_on=visit.visit_date, kind=visit.kind)
        if reason != ON_TREATMENT:
            self.add("end_of_treatment", j, ended, ended_on=ended, reason=reason)

    def _follow_up(self, j: int) -> None:
        """Tumour assessments and the follow-up contact, death and end-of-follow-up labs of
        patient j, from `simulation.endpoints.tumour_records`."""
        ends, records = self.ends, self.records
        first = int(self.first_assessment[j])
        taken = slice(first, first + int(ends.assessments[j]))
        assessed = [self.on(j, day) for day in records.assessment_days[taken]]
        for when, shown in zip(assessed, records.assessment_responses[taken], strict=True):
            self.add("assessments", j, when, assessed_on=when, response=str(shown))
            self.add("visits", j, when, visit_on=when, kind=VisitKind.ASSESSMENT)
        died = bool(np.isfinite(records.death_days[j]))
        last = self.on(j, records.death_days[j] if died else ends.follow_up_days[j])
        self.add(
            "follow_up",
            j,
            last,
            contact_on=last,
            status=VitalStatus.DEAD if died else VitalStatus.ALIVE,
            progression_on=assessed[-1] if ends.progression_found[j] else None,
        )
        self.add("visits", j, last, visit_on=last, kind=VisitKind.FOLLOW_UP)
        if died:
            progressed = self.course.progression_day[j] < ends.death_day[j]
            cause = "progressive disease" if progressed else "other"
            self.add("deaths", j, last, died_on=last, cause=cause)
        self.add(
            "labs",
            j,
            last,
            drawn_on=last,
            term=LabTerm.EGFR.value,
            value=float(ends.gfr_end[j]),
            unit=LabTerm.EGFR.unit,
            grade=int(ends.kidney_grade[j]),
        )
        if ends.kidney_grade[j] >= 3:
            grade = int(ends.kidney_grade[j])
            self.add(
                "adverse_events",
                j,
                last,
                term=KIDNEY_TERM,
                grade=grade,
                serious=grade >= 4,
                onset_on=last,
            )

    def _labs(self) -> None:
        """Pre-cycle and nadir labs with CTCAE grades; nadirs of grade >= 3 as adverse events."""
        haematology = self.parameters.haematology
        lln = {term.value: haematology.term(term.value).lln for term in TERMS}
        lln[LabTerm.EGFR.value] = self.parameters.kidney.egfr_lln.value
        for record in self.course.labs:
            j, term = int(record["patient"]), LabTerm(str(record["term"]))
            value = float(record["value"])
            grade = int(self.decisions.grades(term, np.array([value]), lln[term.value])[0])
            when = self.on(j, float(record["day"]))
            self.add(
                "labs",
                j,
                when,
                drawn_on=when,
                term=term.ctcae_term,
                value=value,
                unit=term.unit,
                grade=grade,
            )
            if record["kind"] == "pre_cycle" and (j, when) not in self.lab_visits:
                self.lab_visits.add((j, when))  # a repeated check of a delayed cycle
                self.add("visits", j, when, visit_on=when, kind=VisitKind.PRE_CYCLE_LAB)
            if record["kind"] == "nadir" and grade >= 3:
                self.add(
                    "adverse_events",
                    j,
                    when,
                    term=term.ctcae_term,
                    grade=grade,
                    serious=grade >= 4,
                    onset_on=when,
                )


def trial_dataset(
    parameters: Parameters,
    protocol: Protocol,
    decisions: Decisions,
    screening: Screening,
    cohort: Cohort,
    course: Course,
    ends: Endpoints,
) -> TrialDataset:
    """The validated analysis dataset of one simulated trial (see the module docstring)."""
    builder = _Builder(parameters, protocol, decisions, screening, cohort, course, ends)
    tables = builder.build()
    return make_dataset(builder.cut_off, protocol.label, "simulation", tables)
