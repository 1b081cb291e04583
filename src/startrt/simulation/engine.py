"""The protocol engine's decisions for many virtual patients at once.

`EngineDecisions` calls the clinic's code for every patient and decision: the screening record
through `assess_eligibility`, the dose ledger through `plan_next_cycle`, the pre-cycle labs
through `check_pre_cycle_labs`, the capecitabine course through `capecitabine_decision`. It is
what one trial run (`simulate_trial`) uses. `simulation.tabulated.TabulatedDecisions` gives the
same answers for replicate trials. Decisions both make the same way (CTCAE grades, capecitabine dose
modification, arm assignment, visit counts) are made once per distinct input, here in
`Decisions`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from startrt.clinical.capecitabine import dose_modification
from startrt.clinical.ctcae import LabTerm, grade_lab
from startrt.protocol.arm_assignment import assign_treatment_arm
from startrt.protocol.capecitabine import capecitabine_decision
from startrt.protocol.course import CycleDose
from startrt.protocol.criteria import Criterion, Status
from startrt.protocol.cycle_labs import check_pre_cycle_labs
from startrt.protocol.cycle_planning import CyclePlan, plan_next_cycle
from startrt.protocol.definition import Protocol
from startrt.protocol.eligibility import assess_eligibility
from startrt.protocol.schedule import VisitKind, build_schedule
from startrt.protocol.screening import (
    DERIVED_FIELDS,
    PatientLabs,
)
from startrt.simulation.arrays import Bools, Floats, Ints
from startrt.simulation.population import CONSTANT_FIELDS, Candidates, screening_record
from startrt.simulation.tables import Memo
from startrt.validation import InvalidInputError

PLAN_ACTIONS = ("dosimetry needed", "stop", "reduced", "full")
LIMITING = (None, "kidney", "marrow", "cycles", "dosimetry")
LAB_ACTIONS = ("go", "delay", "stop", "incomplete")
STATUSES = (Status.MET, Status.NOT_MET, Status.MISSING)
LAB_FIELDS = (
    "hemoglobin_g_l",
    "platelets_10e9_l",
    "leukocytes_10e9_l",
    "neutrophils_10e9_l",
    "measured_gfr_ml_min_173",
)
SIMULATED_SCREENING_FIELDS = frozenset(
    {
        "sex",
        "age_years",
        "weight_kg",
        "height_cm",
        "ecog",
        "krenning_score",
        "fdg_pet_positive",
        "sstr_negative_lesions",
        "measured_gfr_ml_min_173",
        "creatinine_umol_l",
        "hemoglobin_g_l",
        "platelets_10e9_l",
        "leukocytes_10e9_l",
        "neutrophils_10e9_l",
        "albumin_g_l",
        "screening_date",
        "progression_imaging_date",
    }
)


@dataclass(frozen=True)
class PlanOutcome:
    """What the planner decided for the next cycle (the part the simulation acts on)."""

    action: str
    activity_gbq: float
    limiting: str | None


@dataclass(frozen=True)
class Plans:
    """Plans for many patients: action and limiting as indices into PLAN_ACTIONS / LIMITING."""

    action: Ints
    activity_gbq: Floats
    limiting: Ints


@dataclass(frozen=True)
class History:
    """The cycles given so far to some patients: (patients, cycles) arrays of the administered
    activity and the measured (mean-kidney) dose, and each patient's kidney effective
    half-life (h) and per-cycle marrow dose (Gy)."""

    activity_gbq: Floats
    kidney_gy: Floats
    kidney_half_life_h: Floats
    marrow_gy: Floats

    @property
    def cycles(self) -> int:
        return int(self.activity_gbq.shape[1])

    def planner_cycles(self, i: int) -> tuple[CycleDose, ...]:
        """Patient i's cycles in the course model (one kidney value: left = right)."""
        return tuple(
            CycleDose(
                activity_gbq=float(self.activity_gbq[i, j]),
                left_kidney_dose_gy=float(self.kidney_gy[i, j]),
                right_kidney_dose_gy=float(self.kidney_gy[i, j]),
                kidney_effective_half_life_h=float(self.kidney_half_life_h[i]),
                marrow_dose_gy=float(self.marrow_gy[i, j]),
            )
            for j in range(self.cycles)
        )


@dataclass(frozen=True)
class LabValues:
    """Pre-cycle laboratory values of many patients, at reporting precision."""

    hemoglobin_g_l: Floats
    platelets_10e9_l: Floats
    leukocytes_10e9_l: Floats
    neutrophils_10e9_l: Floats
    measured_gfr_ml_min_173: Floats

    def labs(self, i: int) -> PatientLabs:
        return PatientLabs(**{name: float(getattr(self, name)[i]) for name in LAB_FIELDS})


def plan_outcome(arm: str, cycles: tuple[CycleDose, ...], protocol: Protocol) -> PlanOutcome:
    plan = plan_next_cycle(arm, cycles, protocol)
    return PlanOutcome(plan.action, plan.activity_gbq, plan.limiting)


def plans_of(outcomes: list[PlanOutcome]) -> Plans:
    return Plans(
        action=np.array([PLAN_ACTIONS.index(o.action) for o in outcomes], dtype=np.int64),
        activity_gbq=np.array([o.activity_gbq for o in outcomes], dtype=np.float64),
        limiting=np.array([LIMITING.index(o.limiting) for o in outcomes], dtype=np.int64),
    )


def require_simulated_fields(protocol: Protocol) -> None:
    """Refuse a protocol whose criteria read a value the virtual patients do not have."""
    known = SIMULATED_SCREENING_FIELDS | set(CONSTANT_FIELDS) | DERIVED_FIELDS
    for criterion in (*protocol.eligibility.inclusion, *protocol.eligibility.exclusion):
        for name in criterion_fields(criterion):
            if name not in known:
                raise InvalidInputError(
                    f"protocol eligibility {criterion.id}", name, "is not simulated"
                )
    for condition in protocol.cycle_conditions:
        for name in criterion_fields(condition):
            if name not in {*LAB_FIELDS, "gfr_ml_min_173"}:
                raise InvalidInputError(
                    f"protocol cycle condition {condition.id}", name, "is not simulated"
                )


def criterion_fields(criterion: Criterion) -> list[str]:
    names = [criterion.field]
    if criterion.applies_if is not None:
        names.append(criterion.applies_if)
    if criterion.relative_to is not None:
        names.append(f"{criterion.field}_{criterion.relative_to}")
    return names


class Decisions(ABC):
    """A decision provider. Those every provider makes the same way (once per distinct
    input, exact) are here; eligibility, planning, labs and capecitabine are the providers'."""

    def __init__(self, protocol: Protocol, start_date: date) -> None:
        require_simulated_fields(protocol)
        self.protocol = protocol
        self.start_date = start_date
        self.arm_ids = tuple(arm.id for arm in protocol.arms)
        self._memos: dict[str, Memo[Any]] = {}
        self._visits: dict[tuple[int, bool], tuple[int, int, int]] = {}

    def memo(self, name: str) -> Memo[Any]:
        return self._memos.setdefault(name, Memo())

    def treatment_arms(self, randomized: list[str], fdg_positive: Bools) -> Ints:
        """The treatment arm (index into protocol.arms) from allocation and FDG-PET."""
        allocated = self.protocol.randomization.arms
        keys = np.column_stack(
            [[allocated.index(arm) for arm in randomized], fdg_positive.astype(np.int64)]
        )

        def assign(i: int) -> int:
            decision = assign_treatment_arm(randomized[i], bool(fdg_positive[i]), self.protocol)
            return self.arm_ids.index(decision.arm)

        return self.memo("arm").map_array(keys, assign, np.int64)

    def grades(self, term: LabTerm, values: Floats, lln: float) -> Ints:
        """CTCAE v5.0 grades of lab values (one engine call per distinct value)."""

        def grade(i: int) -> int:
            return grade_lab(term, float(values[i]), lln=lln).grade

        return self.memo(f"grade:{term}:{lln}").map_array(values, grade, np.int64)

    def capecitabine_modification(
        self, grade: Ints, occurrence: Ints, level: Ints
    ) -> tuple[Bools, Ints]:
        """SmPC dose modification after a toxicity: (discontinue, next dose level %)."""
        keys = np.column_stack([grade, occurrence, level])

        def modify(i: int) -> tuple[bool, int]:
            result = dose_modification(int(grade[i]), int(occurrence[i]), int(level[i]))
            resume = result.resume_level_percent
            return result.action == "discontinue", int(level[i]) if resume is None else resume

        answers = self.memo("capecitabine_modification").map_array(keys, modify, np.int64)
        return answers[:, 0].astype(np.bool_), answers[:, 1]

    def _capecitabine_course(
        self, arm: int, cycle: int, height_cm: float, weight_kg: float, crcl: float, level: int
    ) -> tuple[int, int]:
        """Tablets of the cycle's course (500 mg, 150 mg) by `capecitabine_decision`; a course
        the decision does not allow (e.g. CrCl < 30 ml/min) is refused."""
        decision = capecitabine_decision(
            self.arm_ids[arm],
            cycle,
            height_cm=height_cm,
            weight_kg=weight_kg,
            crcl_ml_min=crcl,
            dose_level_percent=level,
            protocol=self.protocol,
        )
        if decision.course_tablets is None or not decision.prescribable:
            raise InvalidInputError("crcl_ml_min", crcl, decision.reason)
        return decision.course_tablets[500], decision.course_tablets[150]

    @property
    def interval_days(self) -> int:
        """Days from one administered cycle to the next one's target date (the schedule)."""
        schedule = build_schedule(
            self.protocol.schedule,
            first_cycle_date=self.start_date,
            planned_cycles=2,
            with_capecitabine=False,
        )
        return (schedule.cycle(2).target_date - schedule.cycle(1).target_date).days

    def cycle_visits(self, cycle: int, with_capecitabine: bool) -> tuple[int, int, int]:
        """Visit days the schedule ties to a cycle: (all, those without dosimetry imaging,
        dosimetry imaging sessions)."""
        key = (cycle, with_capecitabine)
        if key not in self._visits:
            schedule = build_schedule(
                self.protocol.schedule,
                first_cycle_date=self.start_date,
                planned_cycles=cycle,
                with_capecitabine=with_capecitabine,
            )
            tied = [visit for visit in schedule.visits if visit.cycle_number == cycle]
            imaging = [visit for visit in tied if visit.kind is VisitKind.DOSIMETRY_IMAGING]
            plain = {visit.visit_date for visit in tied if visit not in imaging}
            self._visits[key] = (
                len({visit.visit_date for visit in tied}),
                len(plain),
                len(imaging),
            )
        return self._visits[key]

    @abstractmethod
    def eligible(self, candidates: Candidates, screening_dates: list[date]) -> Bools:
        """Whether each candidate is eligible (`assess_eligibility` says True)."""

    @abstractmethod
    def plan(self, arms: Ints, history: History) -> Plans:
        """The next cycle's plan (`plan_next_cycle`) of patients of `arms` after `history`."""

    @abstractmethod
    def lab_actions(self, labs: LabValues, weeks_delayed: float) -> Ints:
        """`check_pre_cycle_labs` actions (indices into LAB_ACTIONS)."""

    @abstractmethod
    def capecitabine_tablets(
        self, arm: Ints, cycle: int, height_cm: Ints, weight_kg: Ints, crcl: Floats, level: Ints
    ) -> tuple[Ints, Ints]:
        """500 mg and 150 mg tablets of cycle `cycle`'s course for patients of `arm` (index
        into protocol.arms) at dose `level` (%), by `capecitabine_decision`."""


class EngineDecisions(Decisions):
    """Every decision by the engine, patient by patient (see the module docstring); the
    cycle plans are kept, as the clinic stores them, in `plan_records`."""

    def __init__(self, protocol: Protocol, start_date: date) -> None:
        super().__init__(protocol, start_date)
        self.plan_records: list[tuple[str, CyclePlan]] = []

    def eligible(self, candidates: Candidates, screening_dates: list[date]) -> Bools:
        decisions = [
            assess_eligibility(screening_record(candidates, i, day), self.protocol).eligible
            for i, day in enumerate(screening_dates)
        ]
        return np.array([decision is True for decision in decisions], dtype=np.bool_)

    def plan(self, arms: Ints, history: History) -> Plans:
        outcomes = []
        for i, arm in enumerate(arms):
            plan = plan_next_cycle(self.arm_ids[arm], history.planner_cycles(i), self.protocol)
            self.plan_records.append((self.arm_ids[arm], plan))
            outcomes.append(PlanOutcome(plan.action, plan.activity_gbq, plan.limiting))
        return plans_of(outcomes)

    def lab_actions(self, labs: LabValues, weeks_delayed: float) -> Ints:
        actions = [
            check_pre_cycle_labs(labs.labs(i), self.protocol, weeks_delayed=weeks_delayed).action
            for i in range(len(labs.hemoglobin_g_l))
        ]
        return np.array([LAB_ACTIONS.index(a) for a in actions], dtype=np.int64)

    def capecitabine_tablets(
        self, arm: Ints, cycle: int, height_cm: Ints, weight_kg: Ints, crcl: Floats, level: Ints
    ) -> tuple[Ints, Ints]:
        tablets = [
            self._capecitabine_course(int(a), cycle, float(h), float(w), float(c), int(v))
            for a, h, w, c, v in zip(arm, height_cm, weight_kg, crcl, level, strict=True)
        ]
        return (
            np.array([t[0] for t in tablets], dtype=np.int64),
            np.array([t[1] for t in tablets], dtype=np.int64),
        )
