"""Risk-aware planning speed (issue 13): one `plan_next_cycle` with the kidney-dose model,
against today's plan without it, measured in the same run.

Baseline: START-01 v1.0's plan with the model's figures switched off (`_risk_figures`
replaced by an empty dict for the baseline only): exactly the deterministic plan as before
issue 13. Ours: (1) v1.0's plan with the figures (the decision unchanged), (2) the
demonstration protocol's plan (`max_probability_over_limit = 0.05`: the figures and the
probability limit's bisection). Histories of 6 cycles; target < 5 ms per plan.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from importlib import resources
from unittest import mock

from startrt.protocol import cycle_planning
from startrt.protocol.course import CycleDose
from startrt.protocol.cycle_planning import plan_next_cycle
from startrt.protocol.definition import Protocol, default_protocol, load_protocol

PLANS = 200
TARGET_MS = 5.0


def _median_ms(work: Callable[[], object], repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3 / PLANS


def main() -> None:
    v1 = default_protocol()
    demo = resources.files("startrt.protocol.files").joinpath("demo", "START-01_v1.0-risk5.toml")
    risk = load_protocol(str(demo))
    cycles = tuple(CycleDose(activity_gbq=7.5, kidney_dose_gy=3.6 + i / 5) for i in range(6))

    def plans(protocol: Protocol) -> Callable[[], object]:
        return lambda: [plan_next_cycle("dTOC", cycles, protocol) for _ in range(PLANS)]

    plans(risk)()  # warm imports and caches
    with mock.patch.object(cycle_planning, "_risk_figures", return_value={}):
        base_ms = _median_ms(plans(v1))
    figures_ms = _median_ms(plans(v1))
    risk_ms = _median_ms(plans(risk))
    print(f"\n{'plan of cycle 7 (6 cycles given)':<58} {'ms/plan':>8} {'ratio':>7}")
    print(f"{'today: v1.0 without the kidney-dose model (baseline)':<58} {base_ms:8.2f} {1.0:7.1f}")
    for name, ms in (
        ("v1.0 with the model's figures", figures_ms),
        ("v1.0-risk5: figures + probability limit", risk_ms),
    ):
        print(f"{name:<58} {ms:8.2f} {ms / base_ms:7.1f}")
    verdict = "met" if max(figures_ms, risk_ms) < TARGET_MS else "NOT met"
    print(f"target < {TARGET_MS:g} ms per plan with the model: {verdict}")


if __name__ == "__main__":
    main()
