"""PFS hazard ratio of personalized vs standard by subgroup, with the interaction test and the
forest plot.

Each subgroup is an entry of `SUBGROUPS` (a registry): a name, a label and the level of every
patient, read from the patients' columns. The randomized subgroups the dataset holds are the
FDG-PET status (the stratum's FDG-PET component, known in both arms; dTOC / CAP-dTOC exist only
in the personalized arm), the site, the randomization stratum and the baseline WHO grade
(`clinical.net_grade`; a patient without a grade is in no level).

Per level: patients and events per arm, and the hazard ratio from an unstratified Cox model on
the level's patients (Efron ties) with its Wald 95 % interval; a
level where it has no finite estimate (e.g. no event in one arm) gets none and says why. The
interaction test compares, by likelihood ratio, the Cox models stratified by level with arm
and with arm + arm x level (chi-square on levels - 1 df; Collett, Modelling Survival Data, 3rd
ed. 2015, 3.9 and 5.9; Wang et al., N Engl J Med 2007;357:2189-2194 on reporting subgroups), over
the levels with an estimate. Hazard ratio < 1 favours personalized.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator
from matplotlib.transforms import blended_transform_factory
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from startrt.analysis import baseline
from startrt.analysis import report as trial_report
from startrt.analysis.dataset import TrialDataset
from startrt.analysis.efficacy import ENDPOINTS, fdg_level
from startrt.analysis.figures import svg
from startrt.analysis.survival import cox_hazard_ratio
from startrt.protocol.definition import Protocol
from startrt.protocol.stratification import FDG_LEVELS, protocol_strata
from startrt.validation import InvalidInputError

OVERALL = "all randomized"
COLUMNS = (
    "subgroup",
    "level",
    "patients_personalized",
    "events_personalized",
    "patients_standard",
    "events_standard",
    "hazard_ratio",
    "lower",
    "upper",
    "interaction_p",
    "note",
)


@dataclass(frozen=True)
class Subgroup:
    """A subgroup factor: `levels(patients, protocol)` gives each patient's level (None when
    unknown), `order(protocol)` the levels in display order."""

    label: str
    levels: Callable[[pd.DataFrame, Protocol], pd.Series]
    order: Callable[[Protocol], tuple[str, ...]]


def _fdg_label(level: str) -> str:
    return f"FDG-PET {level}"


def _stratum_label(stratum: object) -> str | None:
    """A stratum for people: "site=Lund;fdg=positive" -> "Lund, FDG-PET positive"."""
    if not isinstance(stratum, str) or not stratum:
        return None
    pairs = [pair.partition("=")[::2] for pair in stratum.split(";")]
    return ", ".join(_fdg_label(level) if factor == "fdg" else level for factor, level in pairs)


def _stratum_order(protocol: Protocol) -> tuple[str, ...]:
    return tuple(
        str(_stratum_label(";".join(f"{factor}={level}" for factor, level in stratum)))
        for stratum in protocol_strata(protocol).strata()
    )


SUBGROUPS: tuple[Subgroup, ...] = (
    Subgroup(
        "FDG-PET status",
        lambda patients, _: patients["stratum"].map(
            lambda stratum: None if (level := fdg_level(stratum)) is None else _fdg_label(level)
        ),
        lambda _: tuple(_fdg_label(level) for level in FDG_LEVELS),
    ),
    Subgroup("Site", lambda patients, _: patients["site"], lambda p: p.sites),
    Subgroup(
        "Randomization stratum",
        lambda patients, _: patients["stratum"].map(_stratum_label),
        _stratum_order,
    ),
    Subgroup("WHO grade", lambda patients, _: patients["who_grade"], lambda _: baseline.GRADES),
)


@dataclass(frozen=True)
class Interaction:
    """Likelihood-ratio test of the arm x subgroup interaction (None: not tested, `note` says
    why)."""

    chi2: float | None
    df: int
    p_value: float | None
    note: str = ""


def subgroup_patients(dataset: TrialDataset, endpoints: pd.DataFrame) -> pd.DataFrame:
    """The survival endpoints (`endpoints.survival_endpoints`) with each patient's site and
    baseline WHO grade."""
    sites = dataset.patients[["trial_id", "site"]].merge(
        dataset.baseline[["trial_id", "who_grade"]], on="trial_id", how="left"
    )
    return endpoints.astype({"trial_id": str}).merge(
        sites.astype({"trial_id": str}), on="trial_id", how="left"
    )


def subgroup_table(
    patients: pd.DataFrame, protocol: Protocol, endpoint: str = "pfs"
) -> pd.DataFrame:
    """The overall row, then per subgroup of `SUBGROUPS` one row per level with patients:
    patients and events per arm, hazard ratio with its 95 % interval (or a note why none), and
    on each subgroup's rows the interaction p value. `patients`: `subgroup_patients`."""
    if endpoint not in ENDPOINTS:
        raise InvalidInputError("endpoint", endpoint, f"must be one of {list(ENDPOINTS)}")
    personalized = protocol.arm_assignment.personalized_arm
    rows = [{"subgroup": OVERALL, "level": OVERALL} | _level(patients, endpoint, personalized)]
    for subgroup in SUBGROUPS:
        level_of = subgroup.levels(patients, protocol)
        levels = [level for level in subgroup.order(protocol) if (level_of == level).any()]
        found = [_level(patients[level_of == level], endpoint, personalized) for level in levels]
        estimable = [
            level for level, row in zip(levels, found, strict=True) if "hazard_ratio" in row
        ]
        chosen = level_of.isin(estimable).to_numpy()
        test = interaction_test(
            patients.loc[chosen, f"{endpoint}_days"],
            patients.loc[chosen, f"{endpoint}_event"],
            patients.loc[chosen, "arm"] == personalized,
            level_of[chosen],
        )
        left_out = [level for level in levels if level not in estimable]
        note = "; ".join(
            part
            for part in (
                test.note,
                f"interaction tested without {', '.join(left_out)} (no estimate)"
                if left_out
                else "",
            )
            if part
        )
        for level, row in zip(levels, found, strict=True):
            level_note = "; ".join(part for part in (row.pop("note", ""), note) if part)
            rows.append(
                {"subgroup": subgroup.label, "level": level}
                | row
                | {"interaction_p": test.p_value, "note": level_note}
            )
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS))


def _level(rows: pd.DataFrame, endpoint: str, personalized: str) -> dict[str, Any]:
    """Counts per arm and the hazard ratio of one level's patients."""
    group = (rows["arm"] == personalized).to_numpy()
    event = rows[f"{endpoint}_event"].to_numpy(dtype=bool)
    row: dict[str, Any] = {
        "patients_personalized": int(group.sum()),
        "events_personalized": int((event & group).sum()),
        "patients_standard": int((~group).sum()),
        "events_standard": int((event & ~group).sum()),
    }
    if not row["patients_personalized"] or not row["patients_standard"]:
        return row | {"note": "no hazard ratio: an arm has no patients"}
    try:
        fit = cox_hazard_ratio(rows[f"{endpoint}_days"].to_numpy(dtype=float), event, group)
    except InvalidInputError as error:
        return row | {"note": error.rule}
    return row | {"hazard_ratio": fit.hazard_ratio, "lower": fit.lower, "upper": fit.upper}


def interaction_test(time_days: Any, event: Any, group: Any, level: Any) -> Interaction:
    """Likelihood-ratio test of the arm x level interaction in Cox models stratified by level
    (each level its own baseline hazard; Efron ties): 2 (l(arm + arm x level) - l(arm))
    against chi-square on levels - 1 df."""
    time = np.asarray(time_days, dtype=float)
    levels = pd.Series(np.asarray(level, dtype=object))
    if levels.nunique() < 2:
        return Interaction(None, 0, None, "interaction not tested: fewer than two levels")
    arm = np.asarray(group, dtype=float)[:, None]
    dummies = pd.get_dummies(levels, drop_first=True, dtype=float).to_numpy()
    status = np.asarray(event, dtype=float)
    strata = levels.astype(str).to_numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fits = [
            PHReg(time, exog, status=status, strata=strata, ties="efron").fit()
            for exog in (arm, np.hstack([arm, arm * dummies]))
        ]
    df = dummies.shape[1]
    if any(issubclass(warning.category, ConvergenceWarning) for warning in caught):
        return Interaction(None, df, None, "interaction not estimable: no convergence")
    chi2 = max(2.0 * (fits[1].llf - fits[0].llf), 0.0)
    return Interaction(chi2, df, float(stats.chi2.sf(chi2, df)))


ROW_INCHES = 0.22
FIGURE_INCHES = 7.5  # the width of the other figures: a portrait page
# Columns in figure fractions: labels from the left edge, the counts right-aligned, the plot,
# then the estimate left-aligned.
LABEL_X, PERSONALIZED_X, STANDARD_X = 0.0, 0.44, 0.58
PLOT_X, PLOT_WIDTH, ESTIMATE_X = 0.60, 0.22, 0.84
TICKS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
INK = "#33415c"


def forest_figure(table: pd.DataFrame, title: str) -> str:
    """The forest plot of `subgroup_table` as SVG (`forest_plot`)."""
    return svg(forest_plot(table, title))


def forest_plot(table: pd.DataFrame, title: str) -> Figure:
    """Forest plot of `subgroup_table`: per row the hazard ratio (square, its area in proportion
    to the level's events) with its 95 % interval on a log axis centred on 1 (an interval beyond
    the axis ends in an arrow), the events / patients per arm and the HR (95 % CI) as text."""
    lines = _forest_lines(table)
    estimated = table.dropna(subset=["hazard_ratio"])
    spread = max([2.0, *estimated["upper"], *(1.0 / estimated["lower"])])
    half_width = min(math.log(spread) * 1.1, math.log(TICKS[-1]))
    low, high = math.exp(-half_width), math.exp(half_width)
    events = estimated["events_personalized"] + estimated["events_standard"]
    most = max(int(events.max()), 1) if len(estimated) else 1
    rows_shown = len(lines) + 1.5
    height = rows_shown * ROW_INCHES + 1.0
    figure = plt.figure(figsize=(FIGURE_INCHES, height))
    axis = figure.add_axes((PLOT_X, 0.7 / height, PLOT_WIDTH, rows_shown * ROW_INCHES / height))
    axis.set_xscale("log")
    axis.set(xlim=(low, high), ylim=(len(lines) - 0.5, -2.0), yticks=[])
    axis.set_xticks(_ticks(half_width))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_locator(NullLocator())
    axis.grid(False)
    axis.axvline(1.0, color="black", linewidth=0.8)
    place = blended_transform_factory(figure.transFigure, axis.transData)

    def text(x: float, y: float, words: str, **style: Any) -> None:
        axis.text(x, y, words, transform=place, va="center", clip_on=False, **style)

    figure.text(LABEL_X, 1.0 - 0.05 / height, title, va="top", fontweight="bold", fontsize=10)
    for side in ("top", "left", "right"):
        axis.spines[side].set_visible(False)
    for x, words, align in (
        (LABEL_X, "subgroup", "left"),
        (PERSONALIZED_X, "personalized\nevents/patients", "right"),
        (STANDARD_X, "standard\nevents/patients", "right"),
        (ESTIMATE_X, "HR (95 % CI)", "left"),
    ):
        text(x, -1.3, words, ha=align, fontweight="bold", fontsize=8)
    for y, (label, row) in enumerate(lines):
        if row is None:
            text(LABEL_X, y, label, ha="left", fontweight="bold")
            continue
        text(LABEL_X + 0.015, y, label, ha="left")
        for x, arm in ((PERSONALIZED_X, "personalized"), (STANDARD_X, "standard")):
            text(x, y, f"{int(row[f'events_{arm}'])}/{int(row[f'patients_{arm}'])}", ha="right")
        if pd.isna(row["hazard_ratio"]):
            text(ESTIMATE_X, y, "not estimable", ha="left", color="#555555")
            continue
        share = (row["events_personalized"] + row["events_standard"]) / most
        axis.plot(
            [max(row["lower"], low), min(row["upper"], high)], [y, y], color=INK, linewidth=1.2
        )
        axis.plot([row["hazard_ratio"]], [y], "s", color=INK, markersize=2.5 + 6.0 * share**0.5)
        if row["lower"] < low:
            axis.plot([low], [y], "<", color=INK, markersize=4, clip_on=False)
        if row["upper"] > high:
            axis.plot([high], [y], ">", color=INK, markersize=4, clip_on=False)
        interval = f"{row['hazard_ratio']:.2f} ({row['lower']:.2f}-{row['upper']:.2f})"
        text(ESTIMATE_X, y, interval, ha="left")
    for words, shift, align in (
        ("\u2190 favours personalized", -4, "right"),
        ("favours standard \u2192", 4, "left"),
    ):
        axis.annotate(
            words,
            xy=(1.0, 0.0),
            xycoords=("data", "axes fraction"),
            xytext=(shift, -18),
            textcoords="offset points",
            ha=align,
            va="top",
            fontsize=8,
        )
    axis.set_xlabel("hazard ratio, personalized vs standard (log scale)", labelpad=16)
    return figure


def _ticks(half_width: float) -> list[float]:
    """Ticks of `TICKS` within exp(+-half_width), outwards from 1, at least a seventh of the
    axis apart so that their labels never touch."""
    kept = [1.0]
    for side in (
        sorted(t for t in TICKS if t > 1.0),
        sorted((t for t in TICKS if t < 1.0), reverse=True),
    ):
        last = 1.0
        for tick in side:
            if abs(math.log(tick)) <= half_width and abs(math.log(tick / last)) >= half_width / 3.5:
                kept.append(tick)
                last = tick
    return sorted(kept)


def _forest_lines(table: pd.DataFrame) -> list[tuple[str, pd.Series | None]]:
    """The plot's rows top to bottom: the overall row, then each subgroup's heading (with its
    interaction p) followed by its levels."""
    lines: list[tuple[str, pd.Series | None]] = []
    for subgroup, rows in table.groupby("subgroup", sort=False):
        if subgroup == OVERALL:
            lines.append(("All randomized", rows.iloc[0]))
            continue
        p = rows["interaction_p"].iloc[0]
        tested = "not tested" if pd.isna(p) else f"= {p:.2f}"
        lines.append((f"{subgroup} (interaction p {tested})", None))
        lines.extend((str(row["level"]), row) for _, row in rows.iterrows())
    return lines


def report_part(
    dataset: TrialDataset, endpoints: pd.DataFrame, protocol: Protocol
) -> Iterator[trial_report.ReportTable | trial_report.ReportFigure]:
    """The forest plot (when a hazard ratio is estimable) and its table, in the report's
    efficacy section."""
    section = trial_report.Section.EFFICACY
    table = subgroup_table(subgroup_patients(dataset, endpoints), protocol)
    title = "Progression-free survival by subgroup: hazard ratio, personalized vs standard"
    if table["hazard_ratio"].notna().any():
        yield trial_report.ReportFigure("forest_pfs", section, title, forest_figure(table, title))
    yield trial_report.ReportTable(
        "efficacy_subgroups",
        section,
        "PFS hazard ratio by subgroup (events and patients per arm; 95 % intervals)",
        table,
        " ".join((__doc__ or "").split("\n\n")[2].split()),
    )
