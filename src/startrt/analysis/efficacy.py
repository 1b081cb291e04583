"""Efficacy tables: Kaplan-Meier summaries (events, median, survival at 12 and 24 months,
RMST) per group, and the comparisons personalized vs standard overall and within each FDG-PET
stratum (the dTOC and CAP-dTOC strata): log-rank, stratified log-rank, Cox hazard ratio
(unstratified and stratified by the randomization stratum) and the RMST difference. The arms
are the protocol's; the experimental arm is its personalized allocation
(`arm_assignment.personalized_arm`).

Time is shown in months (days / 30.4375). RMST is restricted to tau, the shortest of the
longest follow-up of the groups (standard, personalized, dTOC, CAP-dTOC) in the population
analysed (Tian et al., Stat Med 2020;39:2795), so every group of a table shares one tau.
A comparison that cannot be estimated (no event, one group empty) says why in `note`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from startrt.analysis.groups import arm_ids, grouped
from startrt.analysis.survival import (
    KaplanMeier,
    cox_hazard_ratio,
    kaplan_meier,
    logrank_test,
    restricted_mean,
    rmst_difference,
)
from startrt.protocol.definition import Protocol
from startrt.validation import InvalidInputError

DAYS_PER_MONTH = 365.25 / 12
ENDPOINTS = {"pfs": "progression-free survival", "os": "overall survival"}
LANDMARK_MONTHS = (12, 24)


def curves(
    endpoints: pd.DataFrame, endpoint: str, column: str, protocol: Protocol
) -> list[tuple[str, KaplanMeier]]:
    """Kaplan-Meier curve of each arm of `column` (arm or treatment_arm) with patients."""
    return [
        (level, _km(rows, endpoint))
        for level in arm_ids(protocol, column)
        if len(rows := endpoints[endpoints[column] == level])
    ]


def _km(rows: pd.DataFrame, endpoint: str) -> KaplanMeier:
    return kaplan_meier(rows[f"{endpoint}_days"], rows[f"{endpoint}_event"])


def rmst_tau_days(groups: Iterable[pd.DataFrame], endpoint: str) -> float | None:
    """The shortest of the groups' longest follow-up times (None without a group or time)."""
    longest = [float(rows[f"{endpoint}_days"].max()) for rows in groups if len(rows)]
    return min(longest) if longest and min(longest) > 0 else None


def km_summary(endpoints: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Per endpoint and group: patients, events, median with its 95 % interval, survival at
    the landmarks with the pointwise 95 % band, RMST to tau with its SE (months)."""
    rows: list[dict[str, Any]] = []
    for endpoint in ENDPOINTS:
        tau = rmst_tau_days((rows for _, rows in grouped(endpoints, protocol)), endpoint)
        for group, members in grouped(endpoints, protocol):
            row: dict[str, Any] = {"endpoint": endpoint, "group": group, "patients": len(members)}
            row["events"] = int(members[f"{endpoint}_event"].sum())
            if len(members):
                row |= _curve_summary(_km(members, endpoint))
                row |= _rmst(members, endpoint, tau)
            rows.append(row)
    return pd.DataFrame(rows)


def _curve_summary(km: KaplanMeier) -> dict[str, Any]:
    median = km.median()
    row = {
        "median_months": _months(median.estimate_days),
        "median_lower_months": _months(median.lower_days),
        "median_upper_months": _months(median.upper_days),
    }
    for months in LANDMARK_MONTHS:
        if months * DAYS_PER_MONTH > km.time_days[-1]:
            continue  # beyond the data
        index = int(np.searchsorted(km.time_days, months * DAYS_PER_MONTH, side="right")) - 1
        row[f"survival_{months}m"] = float(km.survival[index])
        row[f"survival_{months}m_lower"] = float(km.lower[index])
        row[f"survival_{months}m_upper"] = float(km.upper[index])
    return row


def _rmst(members: pd.DataFrame, endpoint: str, tau: float | None) -> dict[str, Any]:
    if tau is None:
        return {}
    fit = restricted_mean(members[f"{endpoint}_days"], members[f"{endpoint}_event"], tau)
    return {
        "tau_months": _months(tau),
        "rmst_months": _months(fit.estimate_days),
        "rmst_se_months": _months(fit.se_days),
    }


def _months(days: float | None) -> float | None:
    return None if days is None else days / DAYS_PER_MONTH


def comparisons(endpoints: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Personalized vs standard per endpoint, overall and within each FDG-PET stratum: one row
    per analysis with statistic, estimate, lower, upper (95 %), p_value and note."""
    rows: list[dict[str, Any]] = []
    for endpoint in ENDPOINTS:
        for population, members in _populations(endpoints, protocol):
            time = members[f"{endpoint}_days"].to_numpy()
            event = members[f"{endpoint}_event"].to_numpy()
            group = (members["arm"] == protocol.arm_assignment.personalized_arm).to_numpy()
            strata = members["stratum"].fillna("").to_numpy()
            tau = rmst_tau_days((rows for _, rows in grouped(members, protocol)), endpoint)
            for analysis, run in _analyses(time, event, group, strata, tau):
                row: dict[str, Any] = {"endpoint": endpoint, "population": population}
                row["analysis"] = analysis
                row |= {"patients": len(members), "events": int(event.sum())}
                rows.append(row | _attempt(run))
    return pd.DataFrame(rows)


def _populations(endpoints: pd.DataFrame, protocol: Protocol) -> Iterator[tuple[str, pd.DataFrame]]:
    """All randomized patients, then each FDG-PET stratum named after its personalized arm."""
    yield "all randomized", endpoints
    fdg = endpoints["stratum"].map(fdg_level)
    assignment = protocol.arm_assignment
    for level, arm in (
        ("negative", assignment.fdg_negative_arm),
        ("positive", assignment.fdg_positive_arm),
    ):
        yield f"{arm} stratum (FDG-PET {level})", endpoints[fdg == level]


def fdg_level(stratum: object) -> str | None:
    """The FDG-PET level of a stratum label such as "site=Lund;fdg=positive"."""
    if not isinstance(stratum, str):
        return None
    levels = dict(pair.partition("=")[::2] for pair in stratum.split(";"))
    return levels.get("fdg")


Analysis = Callable[[], dict[str, Any]]


def _analyses(
    time: Any, event: Any, group: Any, strata: Any, tau: float | None
) -> Iterator[tuple[str, Analysis]]:
    def logrank(stratified: bool) -> dict[str, Any]:
        test = logrank_test(time, event, group, strata if stratified else None)
        return {"statistic": test.chi2, "p_value": test.p_value}

    def cox(stratified: bool) -> dict[str, Any]:
        fit = cox_hazard_ratio(time, event, group, strata if stratified else None)
        return {"estimate": fit.hazard_ratio, "lower": fit.lower, "upper": fit.upper} | {
            "p_value": fit.p_value
        }

    def rmst() -> dict[str, Any]:
        if tau is None:
            raise InvalidInputError("tau_days", None, "no follow-up in a group")
        fit = rmst_difference(time, event, group, tau)
        return {
            "estimate": _months(fit.difference_days),
            "lower": _months(fit.lower),
            "upper": _months(fit.upper),
            "p_value": fit.p_value,
            "note": f"months, restricted to tau = {_months(tau):.1f} months",
        }

    yield "log-rank chi2", lambda: logrank(False)
    yield "stratified log-rank chi2", lambda: logrank(True)
    yield "Cox hazard ratio", lambda: cox(False)
    yield "stratified Cox hazard ratio", lambda: cox(True)
    yield "RMST difference", rmst


def _attempt(run: Analysis) -> dict[str, Any]:
    try:
        return run()
    except InvalidInputError as error:
        return {"note": f"not estimable: {error.rule}"}
