"""The planner's reasoning in words and numbers, from its decision record, against examples
worked by hand: full, reduced (landing exactly on the limit), stop (budget too small, limit
reached, limit exceeded), the worse kidney, the standard arm, dosimetry needed, and the
kidney-dose model's probability limit of the demonstration protocol."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import numpy as np
import pytest

from startrt.protocol.course import CycleDose
from startrt.protocol.cycle_planning import CyclePlan, plan_next_cycle
from startrt.protocol.definition import Protocol, load_protocol
from startrt.protocol.kidney_dose_prediction import History, predict
from startrt.protocol.plan_reasoning import plan_reasoning, planned_kidney_dose
from startrt.validation import InvalidInputError

Amend = Callable[..., Protocol]
DEMO = resources.files("startrt.protocol.files").joinpath("demo", "START-01_v1.0-risk5.toml")
ONE_SIDED = "Rule: full activity when the predicted total stays at or under the limit"
STEPPED = f"{ONE_SIDED}; otherwise the largest multiple of 0.1 GBq that does; under 1.0 GBq: stop"


def sides(*doses: tuple[float, float], activity: float = 7.4) -> tuple[CycleDose, ...]:
    return tuple(
        CycleDose(activity_gbq=activity, left_kidney_dose_gy=left, right_kidney_dose_gy=right)
        for left, right in doses
    )


def means(*doses: float) -> tuple[CycleDose, ...]:
    return tuple(CycleDose(activity_gbq=7.5, kidney_dose_gy=dose) for dose in doses)


def stored(plan: CyclePlan) -> CyclePlan:
    """The plan as the web reads it back from its JSON."""
    return CyclePlan.model_validate(plan.model_dump(mode="json"))


def test_full_activity(protocol: Protocol) -> None:
    # 7.4 GBq cycles, 3.86/4.12 then 4.10/4.50 Gy: mean cumulative (7.96 + 8.62) / 2 = 8.29 Gy;
    # cycle 2's mean 4.30 Gy / 7.4 GBq = 0.581 Gy/GBq, x 7.5 GBq = 4.358 Gy; total 12.648 Gy,
    # budget after 30 - 12.648 = 17.352 Gy
    plan = stored(plan_next_cycle("dTOC", sides((3.86, 4.12), (4.10, 4.50)), protocol))
    text = plan_reasoning(plan, protocol)
    assert text.startswith(
        "Cycle 3: 7.5 GBq proposed (full activity). Cumulative mean-kidney dose 8.29 Gy of "
        "30 Gy; predicted for 7.5 GBq: 4.36 Gy at 0.58 Gy/GBq (cycle 2's), total 12.65 Gy; "
        "remaining budget after the cycle 17.35 Gy."
    )
    assert text.endswith(f"{ONE_SIDED} (START-01 v1.0).")
    planned = planned_kidney_dose(plan, protocol)
    assert planned is not None
    assert float(planned.total) == pytest.approx(plan.predicted_cumulative_kidney_gy)


def test_the_risk_figures_are_stated(protocol: Protocol) -> None:
    # v1.0 has no probability limit: the model's figures are stated, not applied
    plan = stored(plan_next_cycle("dTOC", means(5.0, 5.4, 5.6, 6.0), protocol))
    model = predict(
        History.without_uncertainties(np.full((1, 4), 7.5), np.array([[5.0, 5.4, 5.6, 6.0]]))
    )
    low, high = (float(end[0]) for end in model.interval_gy(7.5))
    true_over = float(model.probability_over(30.0, 7.5)[0])
    assert 0.1 < true_over < 0.3
    assert (
        f"Kidney-dose model, after the cycle: true cumulative {low:.2f}–{high:.2f} Gy "
        f"(90 % interval); P(over 30 Gy) {100 * true_over:.1f} % (measured: "
    ) in plan_reasoning(plan, protocol)


def test_reduced_to_land_exactly_on_the_limit(protocol: Protocol) -> None:
    # 3 x 9.0 Gy = 27 Gy; 1.2 Gy/GBq: a full cycle adds 9 Gy (36 Gy, over); the largest 0.1 GBq
    # step keeping 30 Gy is (30 - 27) / 1.2 = 2.5 GBq exactly: 3.00 Gy, total 30.00 Gy
    plan = stored(plan_next_cycle("dTOC", means(9.0, 9.0, 9.0), protocol))
    assert (plan.action, plan.activity_gbq) == ("reduced", 2.5)
    text = plan_reasoning(plan, protocol)
    assert text.startswith(
        "Cycle 4: 2.5 GBq proposed (reduced from 7.5 GBq). Cumulative mean-kidney dose 27.00 Gy "
        "of 30 Gy; a full 7.5 GBq cycle would add 9.00 Gy at 1.20 Gy/GBq (cycle 3's), total "
        "36.00 Gy, over the limit; 2.5 GBq adds 3.00 Gy, total 30.00 Gy; remaining budget after "
        "the cycle 0.00 Gy."
    )
    assert text.endswith(f"{STEPPED} (START-01 v1.0).")


@pytest.mark.parametrize(
    ("doses", "why"),
    [
        # 29.5 Gy leaves 0.5 Gy; 11.5 / 7.5 = 1.533 Gy/GBq allows 0.33 GBq < 1.0 GBq
        (
            (9.0, 9.0, 11.5),
            "Cumulative mean-kidney dose 29.50 Gy of 30 Gy leaves 0.50 Gy; at 1.53 Gy/GBq "
            "(cycle 3's) that allows less than the protocol's minimum of 1.0 GBq.",
        ),
        (
            (15.0, 15.0),
            "Cumulative mean-kidney dose 30.00 Gy of 30 Gy: it has reached the limit, no budget "
            "is left.",
        ),
        (
            (15.0, 15.25),
            "Cumulative mean-kidney dose 30.25 Gy of 30 Gy: it exceeds the limit, no budget is "
            "left.",
        ),
    ],
)
def test_stop(protocol: Protocol, doses: tuple[float, ...], why: str) -> None:
    plan = stored(plan_next_cycle("dTOC", means(*doses), protocol))
    text = plan_reasoning(plan, protocol)
    assert text.startswith(f"Cycle {len(doses) + 1}: no further cycle proposed (stop). {why}")
    assert "Kidney-dose model, now: " in text  # no cycle: the figures are of the course so far
    assert text.endswith(f"{STEPPED} (START-01 v1.0).")
    assert planned_kidney_dose(plan, protocol) is None


def test_the_worse_kidney_names_its_side(amend: Amend) -> None:
    worse = amend("renal_limit", kidney="worse")
    # right 5 + 6 = 11 Gy is worse than left 4 + 4 = 8 Gy; right 6 / 7.4 = 0.811 Gy/GBq
    # x 7.5 = 6.081 Gy, total 17.081 Gy (left: 8 + 4.054 = 12.05 Gy)
    plan = stored(plan_next_cycle("dTOC", sides((4.0, 5.0), (4.0, 6.0)), worse))
    assert plan_reasoning(plan, worse).startswith(
        "Cycle 3: 7.5 GBq proposed (full activity). Cumulative worse-kidney dose (right kidney) "
        "11.00 Gy of 30 Gy; predicted for 7.5 GBq: 6.08 Gy at 0.81 Gy/GBq (cycle 2's), total "
        "17.08 Gy; remaining budget after the cycle 12.92 Gy."
    )


def test_the_standard_arm_and_missing_dosimetry(protocol: Protocol) -> None:
    standard = stored(plan_next_cycle("standard", sides((3.86, 4.12)), protocol))
    assert plan_reasoning(standard, protocol).startswith(
        "Cycle 2: 7.5 GBq proposed (full activity). Standard arm: 4 cycles of 7.5 GBq regardless "
        "of dose. Cumulative mean-kidney dose 3.99 Gy of 30 Gy."
    )
    unmeasured = (CycleDose(activity_gbq=7.5),)
    needed = stored(plan_next_cycle("dTOC", unmeasured, protocol))
    assert plan_reasoning(needed, protocol) == (
        "Cycle 2: no activity proposed (dosimetry needed). No plan until the kidney dosimetry is "
        "complete and plausible: cycle 1: no mean kidney dose. Rule: no plan without every "
        "cycle's kidney dose at 0.02–5 Gy/GBq (START-01 v1.0)."
    )


def test_the_probability_limit_lowers_the_activity() -> None:
    risk = load_protocol(str(DEMO))
    # 22 Gy + 6.0 Gy (0.8 Gy/GBq x 7.5 GBq) = 28 Gy keeps 30 Gy, but the model puts the true
    # cumulative over 30 Gy with a probability above the 5 % maximum: 6.0 GBq (4.80 Gy)
    plan = stored(plan_next_cycle("dTOC", means(5.0, 5.4, 5.6, 6.0), risk))
    assert (plan.action, plan.activity_gbq) == ("reduced", 6.0)
    model = predict(
        History.without_uncertainties(np.full((1, 4), 7.5), np.array([[5.0, 5.4, 5.6, 6.0]]))
    )
    at_full = float(model.probability_over(30.0, 7.5)[0])
    at_six = float(model.probability_over(30.0, 6.0)[0])
    assert at_six <= 0.05 < at_full
    text = plan_reasoning(plan, risk)
    assert (
        "a full 7.5 GBq cycle would add 6.00 Gy at 0.80 Gy/GBq (cycle 4's), total 28.00 Gy, "
        "within the limit; 6.0 GBq adds 4.80 Gy, total 26.80 Gy; remaining budget after the "
        "cycle 3.20 Gy. The dose limit alone would allow 7.5 GBq, but then P(true cumulative > "
        f"30 Gy) would be {100 * at_full:.1f} % (protocol maximum 5.0 %); 6.0 GBq keeps it at "
        f"{100 * at_six:.1f} %."
    ) in text
    assert text.endswith(
        f"{ONE_SIDED} and P(true cumulative > 30 Gy) at or under 5.0 %; otherwise the largest "
        "multiple of 0.1 GBq that does; under 1.0 GBq: stop (START-01 v1.0-risk5)."
    )


def test_the_protocol_must_be_the_plans(protocol: Protocol) -> None:
    plan = plan_next_cycle("dTOC", (), load_protocol(str(DEMO)))
    with pytest.raises(InvalidInputError, match=r"START-01 v1\.0-risk5"):
        plan_reasoning(plan, protocol)


def test_the_first_cycle(protocol: Protocol) -> None:
    text = plan_reasoning(plan_next_cycle("dTOC", (), protocol), protocol)
    assert text.startswith(
        "Cycle 1: 7.5 GBq proposed (full activity). First cycle: full activity; the kidney "
        "dosimetry follows this cycle."
    )
