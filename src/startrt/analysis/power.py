"""Sample size and power of the PFS comparison: events and patients needed for a range of
hazard ratios, and where the trial stands (information fraction and the Lan-DeMets
O'Brien-Fleming efficacy boundary at the events observed so far).

The protocol file states no design hazard ratio, control median or accrual, so the report
shows a range under stated assumptions (DesignAssumptions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from startrt.analysis.sample_size import (
    freedman_events,
    lan_demets_obrien_fleming,
    patients_for_events,
    schoenfeld_events,
)
from startrt.validation import InvalidInputError


@dataclass(frozen=True)
class DesignAssumptions:
    """Assumptions of the sample-size table. Control median PFS 24 months: COMPETE's 23.9
    months with 4 x 7.5 GBq 177Lu-edotreotide (DOTATOC); accrual and follow-up: assumed."""

    hazard_ratios: tuple[float, ...] = (0.60, 0.65, 0.70, 0.75)
    powers: tuple[float, ...] = (0.8, 0.9)
    alpha: float = 0.05
    median_control_months: float = 24.0
    accrual_months: float = 48.0
    follow_up_months: float = 24.0

    def describe(self) -> str:
        return (
            f"Two-sided alpha {self.alpha:g}, 1:1 allocation, exponential PFS with a control "
            f"median of {self.median_control_months:g} months, uniform accrual over "
            f"{self.accrual_months:g} months and {self.follow_up_months:g} months of follow-up "
            "after the last patient (assumptions: the protocol file states none)."
        )


def sample_size_table(observed_events: int, assumptions: DesignAssumptions) -> pd.DataFrame:
    """Per hazard ratio and power: events (Schoenfeld; Freedman), patients for Schoenfeld's
    events, and at the `observed_events` PFS events the information fraction with the
    two-look (now, final) O'Brien-Fleming-type boundary on the Z scale and its nominal p."""
    rows: list[dict[str, Any]] = []
    for hazard_ratio in assumptions.hazard_ratios:
        for power in assumptions.powers:
            events = schoenfeld_events(hazard_ratio, assumptions.alpha, power)
            row: dict[str, Any] = {
                "hazard_ratio": hazard_ratio,
                "power": power,
                "events_schoenfeld": events,
                "events_freedman": freedman_events(hazard_ratio, assumptions.alpha, power),
                "patients": patients_for_events(
                    events,
                    hazard_ratio,
                    assumptions.median_control_months,
                    assumptions.accrual_months,
                    assumptions.follow_up_months,
                ),
                "observed_events": observed_events,
                "information_fraction": observed_events / events,
            }
            rows.append(row | _interim_boundary(observed_events / events, assumptions.alpha))
    return pd.DataFrame(rows)


def _interim_boundary(fraction: float, alpha: float) -> dict[str, Any]:
    if not 0.0 < fraction < 1.0:
        return {}
    try:
        look = lan_demets_obrien_fleming([fraction, 1.0], alpha)[0]
    except InvalidInputError:  # too early: the boundary is beyond any plausible Z
        return {}
    return {"z_boundary": look.z_boundary, "nominal_p": look.nominal_p}
