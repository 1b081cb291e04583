"""Pre-cycle laboratory check: go, delay or stop from the protocol's cycle conditions.

A failed "stop" condition stops treatment; a failed "delay" condition delays the cycle, and a
cycle already delayed by the protocol's maximum stops instead. Missing values make the check
incomplete: a cycle is never released on labs that were not entered.

The GFR is the measured one, else the mean of LMR and CAPA, else (unlike eligibility, which
needs both markers) the one marker's equation: a panel with creatinine alone is decided on LMR.
The GFR used, its method and the equations' values are among the decision's inputs.
"""

from __future__ import annotations

from typing import Literal

from startrt.protocol.criteria import CriterionResult, Status, evaluate
from startrt.protocol.decision import Decision
from startrt.protocol.definition import Protocol
from startrt.protocol.screening import PatientLabs, gfr_values
from startrt.validation import require_non_negative


class CycleLabDecision(Decision):
    action: Literal["go", "delay", "stop", "incomplete"]
    conditions: tuple[CriterionResult, ...]
    reason: str
    warnings: tuple[str, ...]


def check_pre_cycle_labs(
    labs: PatientLabs, protocol: Protocol, *, weeks_delayed: float = 0.0
) -> CycleLabDecision:
    """Decide whether the next cycle may be given on these labs (see module docstring)."""
    delayed = require_non_negative("weeks_delayed", weeks_delayed, "weeks")
    values = dict(labs.model_dump(mode="json"))
    gfr, warnings = gfr_values(labs, protocol.gfr.agreement_threshold, single_marker=True)
    values.update(gfr)
    results = [evaluate(condition, values) for condition in protocol.cycle_conditions]
    failed: dict[str, list[CriterionResult]] = {"delay": [], "stop": []}
    for condition, result in zip(protocol.cycle_conditions, results, strict=True):
        if result.status is Status.NOT_MET:
            failed[condition.on_fail].append(result)
    missing = [r for r in results if r.status is Status.MISSING]
    max_delay = protocol.treatment.max_cycle_delay_weeks

    def names(items: list[CriterionResult]) -> str:
        return "; ".join(f"{r.text} (value {r.value})" for r in items)

    action: Literal["go", "delay", "stop", "incomplete"]
    if failed["stop"]:
        action, reason = "stop", f"stop condition not met: {names(failed['stop'])}"
    elif failed["delay"] and delayed >= max_delay:
        action = "stop"
        reason = (
            f"already delayed {delayed:g} weeks (maximum {max_delay:g}) and still not met: "
            f"{names(failed['delay'])}"
        )
    elif failed["delay"]:
        action, reason = "delay", f"delay until met: {names(failed['delay'])}"
    elif missing:
        action = "incomplete"
        reason = "missing: " + "; ".join(r.text for r in missing)
    else:
        action, reason = "go", "all pre-cycle laboratory conditions met"
    return CycleLabDecision(
        kind="cycle_labs",
        protocol=protocol.label,
        rule=f"cycle conditions {', '.join(c.id for c in protocol.cycle_conditions)}; "
        f"maximum delay {max_delay:g} weeks",
        inputs={**labs.model_dump(mode="json"), **gfr, "weeks_delayed": delayed},
        action=action,
        conditions=tuple(results),
        reason=reason,
        warnings=tuple(warnings),
    )
