"""The planning policies of the in-silico trial (`simulation.policies`, `startrt simulate
--policies`) as the report shows them: the table and the trade-off figure, kidney-dose
overshoot against cycles per personalized patient."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from startrt.analysis.figures import PALETTE, svg  # figures also selects the Agg backend

COLUMNS = {
    "policy": "policy",
    "true_over_limit_share": "true cumulative > limit",
    "measured_over_limit_share": "measured cumulative > limit",
    "cycles": "cycles per patient",
    "gbq": "GBq per patient",
    "median_pfs_months": "median PFS (months)",
    "power": "power",
}


def policies_table(policies: pd.DataFrame) -> pd.DataFrame:
    """The policies' rows with readable column names (shares and power as given, 0-1)."""
    return policies[list(COLUMNS)].rename(columns=COLUMNS).round(4)


def policies_figure(policies: pd.DataFrame) -> str:
    """Share of personalized patients over the renal limit (true and measured cumulative dose)
    against cycles per personalized patient, one point per policy (SVG)."""
    figure, axis = plt.subplots(figsize=(6.4, 3.8))
    cycles = policies["cycles"].to_numpy(float)
    true = 100 * policies["true_over_limit_share"].to_numpy(float)
    measured = 100 * policies["measured_over_limit_share"].to_numpy(float)
    for index, name in enumerate(policies["policy"].astype(str)):
        colour = PALETTE[index % len(PALETTE)]
        axis.scatter(cycles[index], true[index], color=colour, label=name)
        axis.scatter(cycles[index], measured[index], facecolors="none", edgecolors=colour)
    axis.set_xlabel("cycles per personalized patient (mean)")
    axis.set_ylabel("patients over the renal limit (%)")
    axis.set_title("filled: true cumulative dose; open: measured", fontsize=8)
    axis.legend(fontsize=7, loc="upper left")
    return svg(figure)
