"""Planning policies compared in the in-silico trial, on the same virtual patients.

Every policy is a protocol file's settings applied to the base protocol (issue 13): the base
(START-01 v1.0: the next cycle predicted at the latest Gy/GBq), the base with the kidney-dose
prior's rise per cycle predicted (`kidney_gy_per_gbq_rise_per_cycle`), and probability limits
(`max_probability_over_limit` 5, 10, 20 %). Replicate r of every policy draws the same patients
from the same streams (same seed), so the differences are the policies'. Per policy, over the
replicate trials: the share of personalized patients whose true (and measured) cumulative kidney
dose exceeds the limit, cycles and GBq per personalized patient, median PFS of the personalized
arm, and the power of the PFS log-rank test with its Monte Carlo standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from startrt.protocol.definition import Protocol, RenalLimit
from startrt.protocol.kidney_dose_prediction import kidney_dose_prior

RISK_LIMITS = (0.05, 0.10, 0.20)
Runner = Callable[[Protocol], pd.DataFrame]  # a protocol -> its replicate table
COLUMNS = {
    "true_kidney_over_limit_share": "true_over_limit_share",
    "measured_kidney_over_limit_share": "measured_over_limit_share",
    "cycles": "cycles",
    "activity_gbq": "gbq",
    "median_pfs_months": "median_pfs_months",
}


def _with_limit(protocol: Protocol, **changes: float) -> Protocol:
    limit = RenalLimit.model_validate({**protocol.renal_limit.model_dump(), **changes})
    return protocol.model_copy(update={"renal_limit": limit})


def policies(base: Protocol) -> dict[str, Protocol]:
    """The compared policies (module docstring), by name."""
    rise = kidney_dose_prior().rise_per_cycle.value
    named = {
        base.label: base,
        f"+ predicted rise {rise:.0%}/cycle": _with_limit(
            base, kidney_gy_per_gbq_rise_per_cycle=rise
        ),
    }
    for maximum in RISK_LIMITS:
        named[f"+ P(true > limit) <= {maximum:.0%}"] = _with_limit(
            base, max_probability_over_limit=maximum
        )
    return named


def compare_policies(base: Protocol, run: Runner) -> pd.DataFrame:
    """One row per policy from its replicate table (`run(protocol)`, the same seed and
    replicates for every policy)."""
    group = base.arm_assignment.personalized_arm
    rows = []
    for name, protocol in policies(base).items():
        table = run(protocol)
        power = float(table["reject"].mean())
        row: dict[str, object] = {"policy": name, "replicates": len(table)}
        for metric, column in COLUMNS.items():
            row[column] = float(table[f"{metric}_{group}"].mean())
        row["power"] = power
        row["power_mc_se"] = math.sqrt(power * (1 - power) / len(table))
        rows.append(row)
    return pd.DataFrame(rows)
