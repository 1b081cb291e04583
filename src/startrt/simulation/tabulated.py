"""The protocol engine's decisions remembered per distinct case, for replicate trials.

`TabulatedDecisions` gives the same answers fast enough for thousands of replicate trials, by
asking the same code once per distinct case and remembering (`simulation.tables`):
- eligibility: each criterion is evaluated by `criteria.evaluate` once per distinct value it
  reads (values are reported at laboratory precision); derived values (GFR, months since the
  progression imaging, capecitabine contraindication) come from `screening_values` of a
  representative candidate; the decision is `assess_eligibility` of one representative per
  distinct pattern of criterion outcomes (the decision depends on nothing else);
- pre-cycle labs: likewise per condition, then `check_pre_cycle_labs` per pattern and delay;
- cycle planning: for an AD limit on the mean kidney without a marrow limit, the plan after k
  cycles depends on the history only through the activity the kidney budget allows,
  a = max(limit - cumulative dose, 0) / predicted Gy/GBq, computed on arrays by the course
  model's own `allowed_activity_gbq` and `predicted_gy_per_gbq` (no copy of the rule here).
  The plan as a function of a is tabulated per arm and cycle count by calling
  `plan_next_cycle` on probe histories (`StepTable`); a patient whose a falls in a step's gap
  (< 1e-9 GBq wide) and every patient under another kind of limit is planned by the engine;
  under a `max_probability_over_limit` the tables hold the deterministic rule and the
  dosimetry-guided plans are then capped by the kidney-dose model's `largest_safe_steps` and
  the planner's `risk_capped_activity_gbq`, on arrays;
- capecitabine: the renal factor as a step function of CrCl is tabulated from
  `capecitabine_decision`, then the course per (arm, cycle, height, weight, renal band, dose
  level);
- CTCAE grades, capecitabine dose modification, arm assignment and visit counts: once per
  distinct input.
The tests check `TabulatedDecisions` against `EngineDecisions` on random virtual patients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from startrt.clinical.capecitabine import (
    contraindications,
)
from startrt.protocol.capecitabine import capecitabine_decision
from startrt.protocol.course import (
    Course,
    CycleDose,
    allowed_activity_gbq,
    exact,
    predicted_gy_per_gbq,
)
from startrt.protocol.criteria import Criterion, Value, evaluate
from startrt.protocol.cycle_labs import check_pre_cycle_labs
from startrt.protocol.cycle_planning import Budget, risk_capped_activity_gbq
from startrt.protocol.definition import Protocol, RenalLimit
from startrt.protocol.eligibility import assess_eligibility
from startrt.protocol.kidney_dose_prediction import History as PriorHistory
from startrt.protocol.kidney_dose_prediction import predict
from startrt.protocol.screening import DERIVED_FIELDS, PatientLabs, gfr_values, screening_values
from startrt.simulation.arrays import Bools, Floats, Ints
from startrt.simulation.engine import (
    LAB_ACTIONS,
    LAB_FIELDS,
    LIMITING,
    PLAN_ACTIONS,
    STATUSES,
    Decisions,
    History,
    LabValues,
    PlanOutcome,
    Plans,
    criterion_fields,
    plan_outcome,
    plans_of,
)
from startrt.simulation.population import CONSTANT_FIELDS, Candidates, screening_record
from startrt.simulation.tables import StepTable, build_step_table, confirm_step_table
from startrt.validation import CRCL_ML_MIN, InvalidInputError

# allowed activities above this are planned by the engine (probes above it would need a
# Gy/GBq under the protocol's plausible minimum)
_PROBE_ACTIVITY_TOP_GBQ = 500.0
_CRCL_GRID_ML_MIN = (0.0, 150.0, CRCL_ML_MIN.high)  # probes of the CrCl step tables


def kidney_allowance_gbq(history: History, limit: RenalLimit) -> Floats:
    """The activity the kidney budget allows after the cycles of `history` (GBq), by the
    course model's own functions on arrays; the plans are tabulated against it."""
    cumulative = history.kidney_gy.sum(axis=1)
    latest = predicted_gy_per_gbq(
        history.kidney_gy[:, -1],
        history.activity_gbq[:, -1],
        np.full(len(cumulative), limit.kidney_gy_per_gbq_rise_per_cycle),
    )
    return allowed_activity_gbq(np.full(len(cumulative), limit.limit_gy), cumulative, latest)


class TabulatedDecisions(Decisions):
    """The engine's decisions remembered per distinct case (see the module docstring)."""

    def __init__(self, protocol: Protocol, start_date: date) -> None:
        super().__init__(protocol, start_date)
        limit = self.protocol.renal_limit
        self.tabulated_planning = (
            limit.quantity == "AD" and limit.kidney == "mean" and self.protocol.marrow_limit is None
        )
        # the tables hold the deterministic rule; a probability limit caps it afterwards
        self.deterministic = protocol.model_copy(
            update={"renal_limit": limit.model_copy(update={"max_probability_over_limit": None})}
        )
        self._plan_tables: dict[tuple[int, int], StepTable[PlanOutcome]] = {}
        self.crcl_contraindication = build_step_table(
            lambda x: (x, bool(contraindications(crcl_ml_min=x))),
            _CRCL_GRID_ML_MIN,
            order=lambda flag: -float(flag),
            tolerance=0.0,
        )
        self.fallback_plans = 0

    # eligibility ----------------------------------------------------------------------------

    def eligible(self, candidates: Candidates, screening_dates: list[date]) -> Bools:
        if not len(candidates):
            return np.zeros(0, dtype=np.bool_)
        columns = _CandidateColumns(self, candidates)
        criteria = (*self.protocol.eligibility.inclusion, *self.protocol.eligibility.exclusion)
        statuses = np.column_stack([self._statuses(c, columns) for c in criteria])

        def decide(i: int) -> bool:
            record = screening_record(candidates, i, self.start_date)
            return assess_eligibility(record, self.protocol).eligible is True

        return self.memo("eligible").map_array(statuses, decide, np.bool_)

    def _statuses(self, criterion: Criterion, columns: _CandidateColumns) -> Ints:
        names = criterion_fields(criterion)
        keyed = [columns.get(name) for name in names]
        keys = np.column_stack([part for column in keyed for part in column.key()])

        def status(i: int) -> int:
            values = {name: column.python(i) for name, column in zip(names, keyed, strict=True)}
            return STATUSES.index(evaluate(criterion, values).status)

        return self.memo(f"criterion:{criterion.id}").map_array(keys, status, np.int64)

    # pre-cycle labs -------------------------------------------------------------------------

    def lab_actions(self, labs: LabValues, weeks_delayed: float) -> Ints:
        n = len(labs.hemoglobin_g_l)
        if not n:
            return np.zeros(0, dtype=np.int64)
        gfr = self._derived_gfr(labs.measured_gfr_ml_min_173)
        values = {**{name: getattr(labs, name) for name in LAB_FIELDS}, "gfr_ml_min_173": gfr}
        columns = []
        for condition in self.protocol.cycle_conditions:
            names = criterion_fields(condition)

            def status(i: int, condition: Criterion = condition, names: list[str] = names) -> int:
                value: dict[str, Value] = {name: float(values[name][i]) for name in names}
                return STATUSES.index(evaluate(condition, value).status)

            memo = self.memo(f"condition:{condition.id}")
            keys = np.column_stack([values[name] for name in names])
            columns.append(memo.map_array(keys, status, np.int64))
        keys = np.column_stack([*columns, np.full(n, weeks_delayed)])

        def decide(i: int) -> int:
            decision = check_pre_cycle_labs(
                labs.labs(i), self.protocol, weeks_delayed=weeks_delayed
            )
            return LAB_ACTIONS.index(decision.action)

        return self.memo("lab_action").map_array(keys, decide, np.int64)

    def _derived_gfr(self, measured: Floats) -> Floats:
        def derive(i: int) -> float:
            labs = PatientLabs(measured_gfr_ml_min_173=float(measured[i]))
            value = gfr_values(labs, self.protocol.gfr.agreement_threshold)[0]["gfr_ml_min_173"]
            assert isinstance(value, float)
            return value

        return self.memo("gfr").map_array(measured, derive)

    # cycle planning -------------------------------------------------------------------------

    def plan(self, arms: Ints, history: History) -> Plans:
        n, k = len(arms), history.cycles
        action = np.zeros(n, dtype=np.int64)
        activity = np.zeros(n, dtype=np.float64)
        limiting = np.zeros(n, dtype=np.int64)
        allowed = (
            kidney_allowance_gbq(history, self.protocol.renal_limit)
            if k and self.tabulated_planning
            else np.zeros(n)
        )
        unknown = np.ones(n, dtype=np.bool_) if not self.tabulated_planning else np.zeros(n, bool)
        if self.tabulated_planning:
            for arm in np.unique(arms):
                mine = np.flatnonzero(arms == arm)
                table = self._plan_table(int(arm), k)
                index, known = table.lookup(allowed[mine])
                tabled = plans_of([table.outputs[i] for i in index])
                action[mine], activity[mine] = tabled.action, tabled.activity_gbq
                limiting[mine] = tabled.limiting
                unknown[mine] = ~known
            self._cap_by_risk(arms, history, Plans(action, activity, limiting), ~unknown)
        for i in np.flatnonzero(unknown):
            self.fallback_plans += 1
            outcome = plan_outcome(
                self.arm_ids[arms[i]], history.planner_cycles(int(i)), self.protocol
            )
            exact = plans_of([outcome])
            action[i], activity[i], limiting[i] = (
                exact.action[0],
                exact.activity_gbq[0],
                exact.limiting[0],
            )
        return Plans(action, activity, limiting)

    def _cap_by_risk(self, arms: Ints, history: History, plans: Plans, tabled: Bools) -> None:
        """Under the protocol's `max_probability_over_limit`, cap the tabulated plans of the
        dosimetry-guided arms (in place) by the planner's own functions on arrays:
        `largest_safe_steps` of the kidney-dose model and `risk_capped_activity_gbq`; a capped
        activity is a reduced cycle, 0 a stop, both for the kidney limit (`plan_next_cycle`)."""
        protocol = self.protocol
        maximum = protocol.renal_limit.max_probability_over_limit
        if maximum is None:
            return
        treatment = protocol.treatment
        guided = np.array([arm.fixed_cycles is None for arm in protocol.arms])[arms]
        giving = np.isin(plans.action, [PLAN_ACTIONS.index("full"), PLAN_ACTIONS.index("reduced")])
        index = np.flatnonzero(guided & giving & tabled)
        if not index.size:
            return
        step = exact(treatment.activity_step_gbq)
        prediction = predict(
            PriorHistory.without_uncertainties(
                history.activity_gbq[index], history.kidney_gy[index]
            )
        )
        steps = prediction.largest_safe_steps(
            protocol.renal_limit.limit_gy,
            maximum,
            float(step),
            int(exact(treatment.activity_per_cycle_gbq) / step),
        )
        safe = steps * step.numerator / step.denominator  # float(k x step), correctly rounded
        deterministic = plans.activity_gbq[index]
        minimum = np.full(index.size, treatment.minimum_activity_gbq)
        capped = risk_capped_activity_gbq(deterministic, safe, minimum)
        lower = index[capped < deterministic]
        plans.activity_gbq[lower] = capped[capped < deterministic]
        plans.action[lower] = np.where(
            plans.activity_gbq[lower] > 0, PLAN_ACTIONS.index("reduced"), PLAN_ACTIONS.index("stop")
        )
        plans.limiting[lower] = LIMITING.index("kidney")

    def _plan_table(self, arm: int, cycles: int) -> StepTable[PlanOutcome]:
        """The plan after `cycles` cycles as a step function of the allowed activity."""
        key = (arm, cycles)
        if key not in self._plan_tables:
            probe = self._plan_probe(self.arm_ids[arm], cycles)
            table = None
            known = [(arm, cycles - 1), *((other, cycles) for other in range(len(self.arm_ids)))]
            for other in known:
                if cycles and other in self._plan_tables and table is None:
                    table = confirm_step_table(self._plan_tables[other], probe)
            if table is None:
                full = self.protocol.treatment.activity_per_cycle_gbq
                grid = [*np.arange(0.0, full + 1.0, 0.05), 20.0, 100.0, _PROBE_ACTIVITY_TOP_GBQ]
                table = build_step_table(probe, grid, order=lambda o: o.activity_gbq)
            self._plan_tables[key] = table
        return self._plan_tables[key]

    def _plan_probe(self, arm: str, cycles: int) -> Callable[[float], tuple[float, PlanOutcome]]:
        """Probe histories of `cycles` full cycles whose allowed activity is ~`target`: the
        latest cycle at L / (2 (target + A)) Gy/GBq, earlier cycles L / (2 (k - 1)) Gy each
        (k = 1: the latest at L / (target + A) Gy/GBq), so a = target up to rounding."""
        protocol = self.deterministic
        limit = protocol.renal_limit.limit_gy
        full = protocol.treatment.activity_per_cycle_gbq

        def probe(target: float) -> tuple[float, PlanOutcome]:
            if cycles == 0:
                return target, plan_outcome(arm, (), protocol)
            if cycles == 1:
                doses = [limit * full / (target + full)]
            else:
                rate = limit / (2.0 * (target + full))
                doses = [limit / (2.0 * (cycles - 1))] * (cycles - 1) + [rate * full]
            history = tuple(CycleDose(activity_gbq=full, kidney_dose_gy=d) for d in doses)
            budget = Budget(Course(history), protocol)
            cumulative = budget.course.exact_cumulative_gy("mean")
            assert cumulative is not None
            x = allowed_activity_gbq(exact(limit), cumulative, budget.rate("mean"))
            return float(x), plan_outcome(arm, history, protocol)

        return probe

    # capecitabine ---------------------------------------------------------------------------

    def _renal_probe(self, crcl: float) -> tuple[float, float]:
        """(CrCl, the renal factor of `capecitabine_decision`; 0 where contraindicated) for a
        first cycle of an arm with capecitabine: the factor reads only CrCl and the protocol."""
        arm = next(arm.id for arm in self.protocol.arms if arm.capecitabine)
        decision = capecitabine_decision(
            arm, 1, height_cm=170.0, weight_kg=70.0, crcl_ml_min=crcl, protocol=self.protocol
        )
        return crcl, 0.0 if decision.dose is None else decision.dose.renal_factor

    @cached_property
    def _renal_band(self) -> StepTable[float]:
        """CrCl bands of equal renal factor; built when capecitabine is first dosed."""
        return build_step_table(
            self._renal_probe, _CRCL_GRID_ML_MIN, order=lambda factor: factor, tolerance=0.0
        )

    def capecitabine_tablets(
        self, arm: Ints, cycle: int, height_cm: Ints, weight_kg: Ints, crcl: Floats, level: Ints
    ) -> tuple[Ints, Ints]:
        band, known = self._renal_band.lookup(crcl)
        if not known.all():
            raise InvalidInputError("crcl_ml_min", float(crcl[~known][0]), "outside the tables")
        keys = np.column_stack([arm, np.full(len(arm), cycle), height_cm, weight_kg, band, level])
        points = self._renal_band.points

        def tablets(i: int) -> tuple[int, int]:
            return self._capecitabine_course(
                int(arm[i]),
                cycle,
                float(height_cm[i]),
                float(weight_kg[i]),
                points[band[i]],
                int(level[i]),
            )

        answers = self.memo("capecitabine").map_array(keys, tablets, np.int64)
        return answers[:, 0], answers[:, 1]


@dataclass(frozen=True)
class _Column:
    """Values of one screening field for every candidate: a number per candidate (with a mask
    for None) and how to turn it back into the engine's Python value."""

    values: Floats
    missing: Bools
    kind: type

    def key(self) -> tuple[Floats, Floats]:
        return np.where(self.missing, 0.0, self.values), self.missing.astype(np.float64)

    def python(self, i: int) -> Value:
        if self.missing[i]:
            return None
        value = float(self.values[i])
        if self.kind is bool:
            return bool(value)
        return int(value) if self.kind is int else value


class _CandidateColumns:
    """Screening values of candidates as the criteria read them (record and derived)."""

    def __init__(self, decisions: TabulatedDecisions, candidates: Candidates) -> None:
        self.decisions = decisions
        self.candidates = candidates
        self.n = len(candidates)

    def get(self, name: str) -> _Column:
        c, n = self.candidates, self.n
        simulated: dict[str, tuple[Any, type]] = {
            "age_years": (c.age_years, float),
            "weight_kg": (c.weight_kg, float),
            "height_cm": (c.height_cm, float),
            "ecog": (c.ecog, int),
            "krenning_score": (c.krenning_score, int),
            "fdg_pet_positive": (c.fdg_positive, bool),
            "sstr_negative_lesions": (c.sstr_negative_lesions, bool),
            "measured_gfr_ml_min_173": (c.gfr_measured, float),
            "creatinine_umol_l": (c.creatinine_umol_l, float),
            "hemoglobin_g_l": (c.hemoglobin_g_l, float),
            "platelets_10e9_l": (c.platelets, float),
            "leukocytes_10e9_l": (c.value("leukocytes"), float),
            "neutrophils_10e9_l": (c.value("neutrophils"), float),
            "albumin_g_l": (c.albumin_g_l, float),
        }
        if name in simulated:
            values, kind = simulated[name]
            return _Column(np.asarray(values, dtype=np.float64), np.zeros(n, np.bool_), kind)
        if name in CONSTANT_FIELDS:
            return _constant(CONSTANT_FIELDS[name], n)
        if name in DERIVED_FIELDS:
            return self._derived(name)
        return _constant(None, n)

    def _derived(self, name: str) -> _Column:
        """A derived value from `screening_values` of a representative candidate per key."""
        c = self.candidates
        keys: dict[str, NDArray[Any]] = {
            "gfr_ml_min_173": c.gfr_measured,
            "progression_months_before_screening": c.progression_days,
            "capecitabine_contraindicated": self.decisions.crcl_contraindication.lookup(
                c.crcl_ml_min
            )[0],
        }
        key = keys.get(name, np.zeros(self.n, dtype=np.int64))
        decisions = self.decisions

        def derive(i: int) -> tuple[float, bool, str]:
            record = screening_record(c, i, decisions.start_date)
            values, _ = screening_values(record, decisions.protocol.gfr.agreement_threshold)
            value = values[name]
            if value is None:
                return 0.0, True, "none"
            kind = "bool" if isinstance(value, bool) else "float"
            return float(value), False, kind

        answers, inverse = decisions.memo(f"derived:{name}").distinct(key, derive)
        kinds = {answer[2] for answer in answers if not answer[1]}
        return _Column(
            np.array([a[0] for a in answers], dtype=np.float64)[inverse],
            np.array([a[1] for a in answers], dtype=np.bool_)[inverse],
            bool if kinds == {"bool"} else float,
        )


def _constant(value: Any, n: int) -> _Column:
    if value is None:
        return _Column(np.zeros(n), np.ones(n, np.bool_), float)
    kind = bool if isinstance(value, bool) else float
    return _Column(np.full(n, float(value)), np.zeros(n, np.bool_), kind)
