"""Interim monitoring of the PFS comparison: the Lan-DeMets O'Brien-Fleming boundary at the
observed information fraction and the conditional power.

At d observed PFS events and D events required by the design (Schoenfeld's, for a design hazard
ratio and power of the sample-size assumptions), the information fraction is t = d / D and the
boundary is that of a two-look design, now at t and final at 1 (Lan & DeMets, Biometrika
1983;70:659-663, O'Brien-Fleming-type spending). The observed statistic is the unstratified
log-rank Z = (E - O) / sqrt(V) of the personalized arm (expected minus observed events over the
square root of the hypergeometric variance): Z > 0 favours personalized. The design is
two-sided: the trial crosses when |Z| >= the boundary.

Conditional power (Lan & Wittes, Biometrics 1988;44:579-585; Proschan, Lan & Wittes,
Statistical Monitoring of Clinical Trials, 2006, ch. 3) on the Brownian-motion scale
B(t) = Z sqrt(t): the probability that the final Z reaches the final boundary z_f in favour
of personalized, CP(theta) = 1 - Phi((z_f - B(t) - theta (1 - t)) / sqrt(1 - t)), where the
drift theta = E[Z(1)] is -log(HR) sqrt(D p (1 - p)) under the design hazard ratio (p: the
share randomized to personalized) and B(t) / t under the current trend.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from startrt.analysis import report as trial_report
from startrt.analysis.figures import svg
from startrt.analysis.power import DesignAssumptions
from startrt.analysis.sample_size import lan_demets_obrien_fleming, schoenfeld_events
from startrt.analysis.survival import logrank_test
from startrt.protocol.definition import Protocol
from startrt.validation import InvalidInputError


@dataclass(frozen=True)
class InterimLook:
    """Where the trial stands against one design (hazard ratio, power): events observed and
    required, information fraction, boundaries (None when not applicable, `note` says why),
    the observed Z, whether it crosses, and the conditional power under the design hazard
    ratio and under the current trend."""

    hazard_ratio: float
    power: float
    required_events: int
    observed_events: int
    information_fraction: float
    z_observed: float
    z_boundary: float | None
    nominal_p: float | None
    z_final: float
    crosses: bool | None
    b_value: float
    drift_design: float
    drift_trend: float | None
    conditional_power_design: float | None
    conditional_power_trend: float | None
    note: str = ""


def log_rank_z(time_days: object, event: object, personalized: object) -> float:
    """The log-rank Z of the personalized group (1) vs standard (0): (E - O) / sqrt(V), > 0
    when personalized has fewer events than expected (`survival.logrank_test`)."""
    test = logrank_test(time_days, event, personalized)
    expected, observed = test.expected[1], test.observed[1]
    return math.copysign(math.sqrt(test.chi2), expected - observed)


def design_drift(hazard_ratio: float, required_events: int, allocation: float = 0.5) -> float:
    """E[Z(1)] under `hazard_ratio` (personalized vs standard) at `required_events` events:
    -log(HR) sqrt(D p (1 - p)) (Schoenfeld, Biometrika 1981;68:316-319)."""
    if not isinstance(hazard_ratio, int | float) or not hazard_ratio > 0:
        raise InvalidInputError("hazard_ratio", hazard_ratio, "must be a number > 0")
    if isinstance(required_events, bool) or not isinstance(required_events, int):
        raise InvalidInputError("required_events", required_events, "must be a whole number")
    if required_events < 1:
        raise InvalidInputError("required_events", required_events, "must be >= 1")
    if not isinstance(allocation, int | float) or not 0 < allocation < 1:
        raise InvalidInputError("allocation", allocation, "must lie in (0, 1)")
    return -math.log(hazard_ratio) * math.sqrt(required_events * allocation * (1 - allocation))


def conditional_power(
    z_observed: float, information_fraction: float, drift: float, z_final: float
) -> float:
    """1 - Phi((z_final - B(t) - drift (1 - t)) / sqrt(1 - t)), B(t) = Z sqrt(t) (Lan &
    Wittes 1988): the probability of Z(1) >= z_final given Z at information fraction t."""
    for field, value in (("z_observed", z_observed), ("drift", drift), ("z_final", z_final)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInputError(field, value, "must be a finite number")
    t = information_fraction
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < 1:
        raise InvalidInputError("information_fraction", t, "must lie in (0, 1)")
    b_value = z_observed * math.sqrt(t)
    return float(stats.norm.sf((z_final - b_value - drift * (1 - t)) / math.sqrt(1 - t)))


def interim_look(
    z_observed: float,
    observed_events: int,
    hazard_ratio: float,
    power: float = 0.8,
    alpha: float = 0.05,
    allocation: float = 0.5,
) -> InterimLook:
    """The interim look at `observed_events` with log-rank Z `z_observed`, against the design
    needing Schoenfeld's events for `hazard_ratio` and `power` at two-sided `alpha`."""
    if isinstance(observed_events, bool) or not isinstance(observed_events, int):
        raise InvalidInputError("observed_events", observed_events, "must be a whole number")
    if observed_events < 1:
        raise InvalidInputError("observed_events", observed_events, "must be >= 1")
    required = schoenfeld_events(hazard_ratio, alpha, power, allocation)
    t = observed_events / required
    drift = design_drift(hazard_ratio, required, allocation)
    final_only = lan_demets_obrien_fleming([1.0], alpha)[0]
    z_final, z_boundary, nominal_p, note = final_only.z_boundary, None, None, ""
    interim = t < 1.0
    if not interim:
        z_boundary, nominal_p = z_final, final_only.nominal_p
        note = "information complete: the final analysis"
    else:
        try:
            now, final = lan_demets_obrien_fleming([t, 1.0], alpha)
        except InvalidInputError as error:
            note = f"no interim boundary: {error.rule}; final boundary of a single look"
        else:
            z_boundary, nominal_p, z_final = now.z_boundary, now.nominal_p, final.z_boundary
    b_value = z_observed * math.sqrt(min(t, 1.0))
    trend = b_value / t if interim else None
    return InterimLook(
        hazard_ratio=hazard_ratio,
        power=power,
        required_events=required,
        observed_events=observed_events,
        information_fraction=t,
        z_observed=z_observed,
        z_boundary=z_boundary,
        nominal_p=nominal_p,
        z_final=z_final,
        crosses=None if z_boundary is None else abs(z_observed) >= z_boundary,
        b_value=b_value,
        drift_design=drift,
        drift_trend=trend,
        conditional_power_design=(
            conditional_power(z_observed, t, drift, z_final) if interim else None
        ),
        conditional_power_trend=(
            conditional_power(z_observed, t, trend, z_final) if trend is not None else None
        ),
        note=note,
    )


BOUNDARY = (
    "hazard_ratio",
    "power",
    "required_events",
    "observed_events",
    "information_fraction",
    "z_observed",
    "z_boundary",
    "nominal_p",
    "z_final",
    "crosses",
)
"""The columns of the boundary table; `POWER`: those of the conditional-power table."""
POWER = (
    "b_value",
    "drift_design",
    "conditional_power_design",
    "drift_trend",
    "conditional_power_trend",
    "note",
)


def allocation_of(protocol: Protocol) -> float:
    """The share of patients randomized to the personalized arm (`[randomization] ratio`)."""
    randomization = protocol.randomization
    ratio = dict(zip(randomization.arms, randomization.ratio, strict=True))
    return ratio[protocol.arm_assignment.personalized_arm] / sum(randomization.ratio)


def interim_looks(
    endpoints: pd.DataFrame, protocol: Protocol, assumptions: DesignAssumptions
) -> tuple[list[InterimLook], str]:
    """The look at the PFS events of `endpoints` against each design (hazard ratio x power) of
    `assumptions`, or no look and the reason."""
    personalized = (endpoints["arm"] == protocol.arm_assignment.personalized_arm).to_numpy()
    events = int(endpoints["pfs_event"].sum())
    try:
        z = log_rank_z(endpoints["pfs_days"].to_numpy(), endpoints["pfs_event"], personalized)
    except InvalidInputError as error:
        return [], f"no interim look: {error.rule}"
    allocation = allocation_of(protocol)
    looks = [
        interim_look(z, events, hazard_ratio, power, assumptions.alpha, allocation)
        for hazard_ratio in assumptions.hazard_ratios
        for power in assumptions.powers
    ]
    return looks, ""


def boundary_figure(looks: Sequence[InterimLook], alpha: float) -> str:
    """The O'Brien-Fleming-type boundary of a look at information fraction t (final look at 1)
    over t, its mirror, each design's look now (observed Z at its t) and the final boundary."""
    fractions = np.linspace(0.05, 1.0, 39)
    boundary = [lan_demets_obrien_fleming([t], alpha)[0].z_boundary for t in fractions]
    figure, axis = plt.subplots(figsize=(7.5, 4.0))
    axis.plot(fractions, boundary, color="black", label="boundary: favours personalized")
    axis.plot(
        fractions,
        -np.asarray(boundary),
        color="black",
        linestyle="--",
        linewidth=0.8,
        label="boundary: favours standard",
    )
    top = max([5.0, *(abs(look.z_observed) + 1.0 for look in looks)])
    palette = plt.get_cmap("tab10")
    for index, look in enumerate(looks):
        t = min(look.information_fraction, 1.0)
        colour = palette(index % 10)
        axis.axvline(t, color=colour, linestyle=":", linewidth=0.8)
        label = (
            f"HR {look.hazard_ratio:g}: Z at {look.observed_events} of "
            f"{look.required_events} events (t = {look.information_fraction:.2f})"
        )
        axis.plot([t], [look.z_observed], "o", color=colour, label=label)
        axis.plot([1.0], [look.z_final], "D", color=colour, markersize=4)
    axis.axhline(0.0, color="grey", linewidth=0.6)
    axis.set(
        xlim=(0.0, 1.03),
        ylim=(-top, top),
        xlabel="information fraction t (PFS events observed / required; 1 = final look)",
        ylabel="log-rank Z (> 0 favours personalized)",
    )
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2, fontsize=7, frameon=False)
    return svg(figure)


def report_part(
    endpoints: pd.DataFrame, protocol: Protocol, assumptions: DesignAssumptions
) -> Iterator[trial_report.ReportTable | trial_report.ReportFigure]:
    """The boundary plot and the interim table, in the report's sample-size section."""
    section = trial_report.Section.DESIGN
    looks, reason = interim_looks(endpoints, protocol, assumptions)
    if looks:
        first_power = [look for look in looks if look.power == assumptions.powers[0]]
        yield trial_report.ReportFigure(
            "interim_boundary",
            section,
            "Interim monitoring: Lan-DeMets O'Brien-Fleming boundary and the observed "
            f"log-rank Z (power {assumptions.powers[0]:g}; diamonds: final boundary)",
            boundary_figure(first_power, assumptions.alpha),
        )
    frame = pd.DataFrame([asdict(look) for look in looks], columns=[*BOUNDARY, *POWER])
    yield trial_report.ReportTable(
        "interim_monitoring",
        section,
        "Interim monitoring of PFS: the Lan-DeMets O'Brien-Fleming boundary at the observed "
        "information fraction",
        frame.loc[:, list(BOUNDARY)],
        " ".join((__doc__ or "").split("\n\n")[1].split()) + (f" {reason}" if reason else ""),
    )
    yield trial_report.ReportTable(
        "interim_conditional_power",
        section,
        "Interim monitoring of PFS: conditional power under the design hazard ratio and under "
        "the current trend",
        frame.loc[:, ["hazard_ratio", "power", *POWER]],
        " ".join((__doc__ or "").split("\n\n")[2].split()),
    )
