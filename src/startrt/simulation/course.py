"""The treatment course of randomized virtual patients, cycle by cycle, vectorised over
patients: the protocol engine decides (through a decision provider), the outcome models of
`simulation.outcomes` respond.

For each cycle k, for every patient still on treatment:
1. the cycle planner decides from the doses measured so far (stop ends treatment);
2. pre-cycle labs are drawn `pre_cycle_lab_days_before` the target day (previous cycle +
   the schedule's interval; cycle 1 `randomization_to_first_cycle_days` after
   randomization); `check_pre_cycle_labs` says go, delay or stop; a delayed cycle's labs are
   repeated every `lab_recheck_weeks` with the weeks delayed so far (the engine stops at its
   maximum delay);
3. progression, death or loss to follow-up before a lab draw or the cycle ends treatment;
4. the cycle is given: kidney (true and measured, `Dosimetry.kidney`: the planner's population
   prior), tumour and marrow doses, BED, capecitabine for CAP-dTOC in its
   first cycles (course from `capecitabine_decision`, level modified after toxicity by
   `dose_modification`),
   the nadir blood counts and their CTCAE grades, and the resources used.
Each replicate's per-cycle numbers come from stream (replicate, CYCLE, k), one row per patient
on treatment (in order), so a patient's course does not depend on other replicates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from startrt.clinical.ctcae import LabTerm
from startrt.protocol.capecitabine import gives_capecitabine
from startrt.protocol.definition import Protocol
from startrt.protocol.vocabulary import EndOfTreatmentReason
from startrt.simulation.arrays import Bools, Floats, Ints
from startrt.simulation.cohort import Cohort
from startrt.simulation.engine import (
    LAB_ACTIONS,
    LIMITING,
    PLAN_ACTIONS,
    Decisions,
    History,
    LabValues,
)
from startrt.simulation.outcomes import (
    HazardClock,
    PfsModel,
    assessment_finding,
    bed_per_gy2,
    exponential_days,
    gfr_at,
    linear_predictor,
)
from startrt.simulation.parameters import GRADES, HAEMATOLOGY_TERMS, Parameters
from startrt.simulation.population import lognormal_factor
from startrt.simulation.streams import CYCLE, stream
from startrt.validation import InvalidInputError

# Why treatment ended (`Course.end_reason` indexes END_REASONS). ON_TREATMENT: not ended, also
# when the simulation horizon (max_cycles) came first; a stop by the pre-cycle labs is toxicity.
ON_TREATMENT = "on_treatment"
END_REASONS: tuple[str, ...] = (
    ON_TREATMENT,
    EndOfTreatmentReason.RENAL_LIMIT,
    EndOfTreatmentReason.MARROW_LIMIT,
    EndOfTreatmentReason.COMPLETED,
    EndOfTreatmentReason.TOXICITY,
    EndOfTreatmentReason.PROGRESSION,
    EndOfTreatmentReason.DEATH,
    EndOfTreatmentReason.LOST_TO_FOLLOW_UP,
)
RENAL_LIMIT, MARROW_LIMIT, CYCLES_GIVEN, LAB_VALUES, PROGRESSION, DEATH, LOST = range(1, 8)
_PLANNER_REASON = {
    None: CYCLES_GIVEN,
    "kidney": RENAL_LIMIT,
    "marrow": MARROW_LIMIT,
    "cycles": CYCLES_GIVEN,
    # no plan without plausible kidney dosimetry; the model has no repeat imaging, so the
    # course ends for renal safety (a measured Gy/GBq outside 0.02-5 is > 6 SD from the median)
    "dosimetry": RENAL_LIMIT,
}
TERMS = tuple(LabTerm(name) for name in HAEMATOLOGY_TERMS)
# Reporting precision (value = code / scale) of the pre-cycle labs and of each nadir term.
LAB_SCALES = (1, 1, 10, 10, 1)  # Hb, platelets, leukocytes, neutrophils, GFR
NADIR_SCALES = (1, 1, 10, 10, 10)  # anemia, platelets, wbc, neutrophils, lymphocytes
_LAB_LIMITS = ((20.0, 250.0), (0.0, 2000.0), (0.0, 500.0), (0.0, 200.0), (0.0, 250.0))


def lab_checks_per_cycle(parameters: Parameters, protocol: Protocol) -> int:
    """Lab draws a cycle may need: the first and one per recheck until the maximum delay."""
    recheck = parameters.trial.lab_recheck_weeks
    return math.ceil(protocol.treatment.max_cycle_delay_weeks / recheck) + 1


def draws_per_cycle(parameters: Parameters, protocol: Protocol) -> int:
    """Normal draws per patient and cycle: kidney (2), tumour (1), 5 labs per check, nadirs."""
    return 3 + 5 * lab_checks_per_cycle(parameters, protocol) + len(TERMS)


@dataclass
class Course:
    """Per patient (P) and per cycle (P x max_cycles) results; days from randomization."""

    cycles: Ints
    day: Floats
    activity_gbq: Floats
    kidney_true_gy: Floats
    kidney_measured_gy: Floats
    tumour_gy: Floats
    marrow_gy: Floats
    kidney_bed_gy: Floats
    tablets_500: Ints
    tablets_150: Ints
    lab_draws: Ints
    visits: Ints
    spect_sessions: Ints
    inpatient_days: Floats
    worst_grade: Ints  # P x terms: worst nadir grade per haematological term
    end_reason: Ints
    end_day: Floats  # day treatment ended (the last cycle, or the event that ended it)
    renal_limit_reached: Bools  # the planner reduced or stopped for the kidney limit
    progression_day: Floats
    death_before_progression_day: Floats
    dropout_day: Floats
    bed_sum_gy: Floats
    bed_time_sum_gy_days: Floats
    capecitabine_levels: Ints  # dose level (%) of each cycle's capecitabine, 0 when none
    labs: list[dict[str, float | int | str]] = field(default_factory=list)

    @property
    def cumulative_tumour_gy(self) -> Floats:
        total: Floats = self.tumour_gy.sum(axis=1)
        return total


def run_course(
    cohort: Cohort,
    parameters: Parameters,
    protocol: Protocol,
    decisions: Decisions,
    seed: int,
    *,
    record_labs: bool = False,
) -> Course:
    """Treat every patient of `cohort` until treatment ends (see the module docstring)."""
    return _CourseRun(cohort, parameters, protocol, decisions, seed, record_labs).run()


class _CourseRun:
    def __init__(
        self,
        cohort: Cohort,
        parameters: Parameters,
        protocol: Protocol,
        decisions: Decisions,
        seed: int,
        record_labs: bool,
    ) -> None:
        self.cohort, self.parameters, self.protocol = cohort, parameters, protocol
        self.decisions, self.seed, self.record_labs = decisions, seed, record_labs
        self.patients = cohort.patients
        n, cycles = len(cohort), parameters.trial.max_cycles
        arms = protocol.arms
        self.with_capecitabine = np.array([a.capecitabine for a in arms])[cohort.arm]
        self.guided = np.array([a.dosimetry_guided for a in arms])[cohort.arm]
        self.half_life_h = self.patients.value("kidney_half_life")
        limit = protocol.renal_limit
        self.bed_q = bed_per_gy2(self.half_life_h, limit)
        model = PfsModel.of(parameters)
        self.model = model
        efficacy = parameters.efficacy
        self.clock = HazardClock(
            model,
            linear_predictor(
                parameters, self.patients.fdg_positive, self.patients.grade, self.with_capecitabine
            ),
            self.patients.progression_draw.copy(),
            np.zeros(n),
            np.full(n, math.inf),
        )
        self.death_day = exponential_days(
            self.patients.death_draw, efficacy.death_before_progression_per_year.value
        )
        self.dropout_day = exponential_days(
            self.patients.dropout_draw, efficacy.dropout_per_year.value
        )
        self.course = Course(
            cycles=np.zeros(n, np.int64),
            day=np.full((n, cycles), np.nan),
            activity_gbq=np.zeros((n, cycles)),
            kidney_true_gy=np.zeros((n, cycles)),
            kidney_measured_gy=np.zeros((n, cycles)),
            tumour_gy=np.zeros((n, cycles)),
            marrow_gy=np.zeros((n, cycles)),
            kidney_bed_gy=np.zeros((n, cycles)),
            tablets_500=np.zeros((n, cycles), np.int64),
            tablets_150=np.zeros((n, cycles), np.int64),
            lab_draws=np.zeros((n, cycles), np.int64),
            visits=np.zeros(n, np.int64),
            spect_sessions=np.zeros(n, np.int64),
            inpatient_days=np.zeros(n),
            worst_grade=np.zeros((n, len(TERMS)), np.int64),
            end_reason=np.zeros(n, np.int64),
            end_day=np.zeros(n),
            renal_limit_reached=np.zeros(n, np.bool_),
            progression_day=self.clock.progression_days,
            death_before_progression_day=self.death_day,
            dropout_day=self.dropout_day,
            bed_sum_gy=np.zeros(n),
            bed_time_sum_gy_days=np.zeros(n),
            capecitabine_levels=np.zeros((n, cycles), np.int64),
        )
        self.active = np.ones(n, np.bool_)
        self.cumulative_marrow_gy = np.zeros(n)
        self.cumulative_tumour_gy = np.zeros(n)
        self.capecitabine_level = np.full(n, 100, np.int64)
        self.capecitabine_stopped = np.zeros(n, np.bool_)
        self.toxicity_occurrences = np.zeros((n, 5), np.int64)  # by grade
        self.checks = lab_checks_per_cycle(parameters, protocol)

    # ---------------------------------------------------------------------------------------

    def run(self) -> Course:
        trial = self.parameters.trial
        interval = self.decisions.interval_days
        for k in range(1, trial.max_cycles + 1):
            index = np.flatnonzero(self.active)
            if not index.size:
                break
            draws = self._draws(k, index)
            if k == 1:
                planned = np.full(index.size, float(trial.randomization_to_first_cycle_days))
            else:
                planned = self.course.day[index, k - 2] + interval
            index, planned, draws, activity = self._plan(k, index, planned, draws)
            released, day, lab_draws = self._labs(index, planned, draws)
            index, activity = index[released], activity[released]
            draws = draws[released]
            keep = ~self._events(index, day)
            self._give(k, index[keep], day[keep], activity[keep], draws[keep], lab_draws[keep])
        rest = np.flatnonzero(self.active)
        self._end(rest, END_REASONS.index(ON_TREATMENT), self.course.end_day[rest])
        everyone = np.arange(len(self.cohort))
        self.clock.finish(everyone, self._multiplier(everyone))
        return self.course

    def _draws(self, k: int, index: NDArray[np.intp]) -> Floats:
        """N(0, 1) draws of cycle k for the patients `index` (one row each, in order), from
        each replicate's stream (replicate, CYCLE, k)."""
        columns = draws_per_cycle(self.parameters, self.protocol)
        replicates = self.cohort.replicate[index]
        blocks = []
        for r in np.unique(replicates):
            count = int(np.count_nonzero(replicates == r))
            blocks.append(stream(self.seed, int(r), CYCLE, k).standard_normal((count, columns)))
        return np.concatenate(blocks)

    def _multiplier(self, index: NDArray[np.intp]) -> Floats:
        return self.model.dose_multiplier(self.cumulative_tumour_gy[index])

    def _end(self, index: NDArray[np.intp], reason: int | Ints, day: Floats) -> None:
        self.active[index] = False
        self.course.end_reason[index] = reason
        self.course.end_day[index] = day

    def _plan(
        self, k: int, index: NDArray[np.intp], planned: Floats, draws: Floats
    ) -> tuple[NDArray[np.intp], Floats, Floats, Floats]:
        """The planner's decision for cycle k; stopped patients end treatment."""
        c = self.course
        history = History(
            activity_gbq=c.activity_gbq[index, : k - 1],
            kidney_gy=c.kidney_measured_gy[index, : k - 1],
            kidney_half_life_h=self.half_life_h[index],
            marrow_gy=c.marrow_gy[index, : k - 1],
        )
        plans = self.decisions.plan(self.cohort.arm[index], history)
        kidney = plans.limiting == LIMITING.index("kidney")
        c.renal_limit_reached[index[kidney]] = True
        stop = np.isin(
            plans.action, [PLAN_ACTIONS.index("stop"), PLAN_ACTIONS.index("dosimetry needed")]
        )
        if stop.any():
            reasons = np.array([_PLANNER_REASON[LIMITING[i]] for i in plans.limiting[stop]])
            last = c.day[index[stop], k - 2] if k > 1 else np.zeros(int(stop.sum()))
            self._end(index[stop], reasons, last)
        go = ~stop
        return index[go], planned[go], draws[go], plans.activity_gbq[go]

    def _labs(
        self, index: NDArray[np.intp], planned: Floats, draws: Floats
    ) -> tuple[NDArray[np.intp], Floats, Ints]:
        """Pre-cycle lab checks with delays: which of the patients are released (positions),
        their cycle day and the number of lab draws it took."""
        schedule = self.protocol.schedule
        recheck = self.parameters.trial.lab_recheck_weeks
        released = np.zeros(index.size, np.bool_)
        day = np.full(index.size, np.nan)
        draws_used = np.zeros(index.size, np.int64)
        pending = np.arange(index.size)
        for j in range(self.checks):
            if not pending.size:
                break
            drawn_on = planned[pending] - schedule.pre_cycle_lab_days_before + 7 * recheck * j
            events = self._events(index[pending], drawn_on)
            pending = pending[~events]
            drawn_on = drawn_on[~events]
            labs = self._lab_values(index[pending], drawn_on, draws[pending, 3 + 5 * j : 8 + 5 * j])
            if self.record_labs:
                self._record_labs(index[pending], drawn_on, labs, "pre_cycle")
            actions = self.decisions.lab_actions(labs, weeks_delayed=float(recheck * j))
            draws_used[pending] = j + 1
            if (actions == LAB_ACTIONS.index("incomplete")).any():
                raise InvalidInputError("labs", "incomplete", "the simulated labs miss a value")
            go = actions == LAB_ACTIONS.index("go")
            released[pending[go]] = True
            day[pending[go]] = planned[pending[go]] + 7 * recheck * j
            stop = actions == LAB_ACTIONS.index("stop")
            self._end(index[pending[stop]], LAB_VALUES, drawn_on[stop])
            pending = pending[actions == LAB_ACTIONS.index("delay")]
        self._end(index[pending], LAB_VALUES, planned[pending])
        return np.flatnonzero(released), day[released], draws_used[released]

    def _lab_values(self, index: NDArray[np.intp], day: Floats, z: Floats) -> LabValues:
        """Pre-cycle values: counts recovering towards a marrow-dose-lowered baseline, GFR."""
        p = self.patients
        haematology = self.parameters.haematology
        baselines = (
            (p.hemoglobin_g_l, haematology.anemia),
            (p.platelets, haematology.platelets),
            (p.value("leukocytes"), haematology.wbc),
            (p.value("neutrophils"), haematology.neutrophils),
        )
        values = []
        for column, (baseline, model) in enumerate(baselines):
            expected = baseline[index] * np.exp(
                -model.recovery_loss_per_gy * self.cumulative_marrow_gy[index]
            )
            values.append(expected * lognormal_factor(model.lab_cv, z[:, column]))
        gfr = gfr_at(
            self.parameters,
            p.gfr_true[index],
            day,
            self.course.bed_sum_gy[index],
            self.course.bed_time_sum_gy_days[index],
        )
        cv = self.parameters.kidney.gfr_measurement_cv.value
        values.append(gfr * lognormal_factor(cv, z[:, 4]))
        reported = [
            np.clip(np.rint(v * scale) / scale, low, high)
            for v, scale, (low, high) in zip(values, LAB_SCALES, _LAB_LIMITS, strict=True)
        ]
        return LabValues(*reported)

    def _events(self, index: NDArray[np.intp], day: Floats) -> Bools:
        """End treatment of patients whose progression (as the scheduled tumour assessments
        find it), death or loss to follow-up comes before `day`; True for them."""
        progressed = self.clock.advance(index, day, self._multiplier(index))
        interval = self.protocol.assessments.interval_days
        found_on = assessment_finding(self.clock.progression_days[index], interval) * interval
        first = np.minimum.reduce(
            [
                np.where(progressed, found_on, np.inf),
                self.death_day[index],
                self.dropout_day[index],
            ]
        )
        ended = first < day
        reason = np.select(
            [np.where(progressed, found_on, np.nan) == first, first == self.death_day[index]],
            [PROGRESSION, DEATH],
            LOST,
        )
        self._end(index[ended], reason[ended], first[ended])
        result: Bools = ended
        return result

    def _give(
        self,
        k: int,
        index: NDArray[np.intp],
        day: Floats,
        activity: Floats,
        z: Floats,
        lab_draws: Ints,
    ) -> None:
        """Administer cycle k: doses, capecitabine, nadirs, resources."""
        p, c, dosimetry = self.patients, self.course, self.parameters.dosimetry
        j = k - 1
        model = dosimetry.kidney
        kidney = (
            p.kidney_gy_per_gbq[index]
            * (1.0 + model.rise_per_cycle) ** j
            * lognormal_factor(model.cycle_cv, z[:, 0])
            * activity
        )
        # measurement error: a systematic part (the patient's, every cycle) and an
        # independent part, splitting the log variance by the systematic share
        share = model.systematic_share
        error = math.sqrt(share) * p.kidney_measurement_draw[index] + math.sqrt(1 - share) * z[:, 1]
        measured = np.minimum(kidney * lognormal_factor(model.measurement_cv, error), 100.0)
        fall = np.array([dosimetry.tumour_fall_per_cycle.of(g) for g in GRADES])
        tumour = (
            p.tumour_gy_per_gbq[index]
            * (1.0 - fall[p.grade[index] - 1]) ** j
            * lognormal_factor(dosimetry.tumour_cycle_cv.value, z[:, 2])
            * activity
        )
        marrow = p.marrow_gy_per_gbq[index] * activity
        bed = kidney + self.bed_q[index] * kidney**2
        c.day[index, j] = day
        c.activity_gbq[index, j] = activity
        c.kidney_true_gy[index, j] = kidney
        c.kidney_measured_gy[index, j] = measured
        c.tumour_gy[index, j] = tumour
        c.marrow_gy[index, j] = marrow
        c.kidney_bed_gy[index, j] = bed
        c.lab_draws[index, j] = lab_draws
        c.bed_sum_gy[index] += bed
        self.cumulative_tumour_gy[index] += tumour
        c.bed_time_sum_gy_days[index] += bed * day
        c.cycles[index] = k
        c.end_day[index] = day
        capecitabine = self._capecitabine(k, index)
        self._nadirs(index, day, z[:, -len(TERMS) :], marrow, capecitabine)
        self.cumulative_marrow_gy[index] += marrow
        self._resources(k, index, lab_draws)

    def _capecitabine(self, k: int, index: NDArray[np.intp]) -> Floats:
        """Dispense capecitabine for this cycle; the dose level given (0 when none)."""
        arm_ids = self.decisions.arm_ids
        offered = np.array([gives_capecitabine(arm, k, self.protocol) for arm in arm_ids])
        arms = self.cohort.arm[index]
        gets = offered[arms] & ~self.capecitabine_stopped[index]
        level = np.where(gets, self.capecitabine_level[index], 0)
        who = index[gets]
        if who.size:
            p = self.patients
            tablets_500, tablets_150 = self.decisions.capecitabine_tablets(
                arms[gets], k, p.height_cm[who], p.weight_kg[who], p.crcl_ml_min[who], level[gets]
            )
            self.course.tablets_500[who, k - 1] = tablets_500
            self.course.tablets_150[who, k - 1] = tablets_150
            self.course.capecitabine_levels[who, k - 1] = level[gets]
        result: Floats = level / 100.0
        return result

    def _nadirs(
        self, index: NDArray[np.intp], day: Floats, z: Floats, marrow: Floats, level: Floats
    ) -> None:
        """Nadir counts and CTCAE grades of the cycle; capecitabine dose modification."""
        p, haematology = self.patients, self.parameters.haematology
        baselines = (
            p.hemoglobin_g_l,
            p.platelets,
            p.value("leukocytes"),
            p.value("neutrophils"),
            p.value("lymphocytes"),
        )
        worst = np.zeros(index.size, np.int64)
        nadir_day = (
            day
            + self.protocol.schedule.lab_check_days_after_cycle[
                len(self.protocol.schedule.lab_check_days_after_cycle) // 2
            ]
        )
        for column, (term, baseline) in enumerate(zip(TERMS, baselines, strict=True)):
            model = haematology.term(term.value)
            expected = baseline[index] * np.exp(
                -model.recovery_loss_per_gy * self.cumulative_marrow_gy[index]
                - model.nadir_drop_per_gy * marrow
                - model.capecitabine_nadir_drop * level
                + model.nadir_sd * z[:, column]
            )
            scale = NADIR_SCALES[column]
            value = np.rint(expected * scale) / scale
            grade = self.decisions.grades(term, value, model.lln)
            self.course.worst_grade[index, column] = np.maximum(
                self.course.worst_grade[index, column], grade
            )
            worst = np.maximum(worst, grade)
            if self.record_labs:
                for i, v, g, d in zip(index, value, grade, nadir_day, strict=True):
                    self.course.labs.append(
                        {
                            "patient": int(i),
                            "day": float(d),
                            "term": term.value,
                            "value": float(v),
                            "grade": int(g),
                            "kind": "nadir",
                        }
                    )
        self._modify_capecitabine(index, worst, level > 0)

    def _modify_capecitabine(self, index: NDArray[np.intp], grade: Ints, given: Bools) -> None:
        toxic = given & (grade >= 2)
        who, grade = index[toxic], grade[toxic]
        if not who.size:
            return
        self.toxicity_occurrences[who, grade] += 1
        stop, level = self.decisions.capecitabine_modification(
            grade, self.toxicity_occurrences[who, grade], self.capecitabine_level[who]
        )
        self.capecitabine_stopped[who] |= stop
        self.capecitabine_level[who] = level

    def _resources(self, k: int, index: NDArray[np.intp], lab_draws: Ints) -> None:
        c, resources = self.course, self.parameters.resources
        for arm in np.unique(self.cohort.arm[index]):
            mine = index[self.cohort.arm[index] == arm]
            guided = self.protocol.arms[arm].dosimetry_guided
            cap = self.protocol.arms[arm].capecitabine
            days, days_without_imaging, imaging = self.decisions.cycle_visits(k, cap)
            if not guided:
                imaging = int(resources.standard_arm_spect_sessions_per_cycle.value)
                days = days_without_imaging + imaging
            c.visits[mine] += days
            c.spect_sessions[mine] += imaging
        c.visits[index] += lab_draws - 1
        c.inpatient_days[index] += resources.inpatient_days_per_cycle.value

    def _record_labs(
        self, index: NDArray[np.intp], day: Floats, labs: LabValues, kind: str
    ) -> None:
        names = ("anemia", "platelets", "wbc", "neutrophils", "egfr")
        columns = (
            labs.hemoglobin_g_l,
            labs.platelets_10e9_l,
            labs.leukocytes_10e9_l,
            labs.neutrophils_10e9_l,
            labs.measured_gfr_ml_min_173,
        )
        for name, values in zip(names, columns, strict=True):
            for i, d, v in zip(index, day, values, strict=True):
                self.course.labs.append(
                    {
                        "patient": int(i),
                        "day": float(d),
                        "term": name,
                        "value": float(v),
                        "kind": kind,
                    }
                )
