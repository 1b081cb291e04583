"""Best overall response per patient and response rates with exact confidence intervals.

Best overall response (RECIST 1.1, Eisenhauer et al., Eur J Cancer 2009;45:228-247, 4.4) is
taken from the per-assessment overall responses of the dataset with the rule of
`startrt.clinical.recist`: CR > PR > SD > PD > NE over the assessments after randomization up
to the first PD; SD counts only at >= 42 days (6 weeks) after randomization (4.4.3), otherwise
the best response is PD if PD follows and NE if not. Confirmation of CR/PR is not required:
START-01 is randomized with PFS as primary endpoint, and RECIST 1.1 (4.6) requires it only
where response is the primary endpoint of a non-randomized trial. A patient without any
assessment after randomization is NE and stays in the denominator (intention to treat).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import pandas as pd
from scipy import stats

from startrt.analysis.dataset import TrialDataset
from startrt.analysis.endpoints import randomized_patients
from startrt.analysis.groups import arm_ids, dataset_protocol
from startrt.clinical.recist import (
    SD_MIN_INTERVAL_DAYS,
    AssessmentResponse,
    Response,
    best_overall_response,
)
from startrt.validation import InvalidInputError

"""RECIST 1.1 minimum interval from study entry for SD (protocol-defined; 6 weeks here)."""

RESPONSE_ORDER: Final = (Response.CR, Response.PR, Response.SD, Response.PD, Response.NE)
OBJECTIVE_RESPONSE: Final = frozenset({Response.CR, Response.PR})
DISEASE_CONTROL: Final = frozenset({Response.CR, Response.PR, Response.SD})
RATE_COLUMNS: Final = (
    "grouping",
    "group",
    "n",
    *RESPONSE_ORDER,
    *(f"{name}{suffix}" for name in ("orr", "dcr") for suffix in ("_n", "", "_lower", "_upper")),
)
GROUPINGS: Final = ("arm", "treatment_arm")


@dataclass(frozen=True)
class Proportion:
    """A proportion and its exact (Clopper-Pearson) confidence interval."""

    estimate: float
    lower: float
    upper: float


def exact_proportion(successes: int, n: int, confidence: float = 0.95) -> Proportion:
    """Clopper-Pearson interval (Clopper & Pearson, Biometrika 1934;26:404-413) from beta
    quantiles: lower = B(a/2; x, n - x + 1) (0 if x = 0), upper = B(1 - a/2; x + 1, n - x)
    (1 if x = n), a = 1 - confidence."""
    for field, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(field, value, "must be a whole number")
    if n < 1:
        raise InvalidInputError("n", n, "must be >= 1")
    if not 0 <= successes <= n:
        raise InvalidInputError("successes", successes, f"must lie in [0, n = {n}]")
    if isinstance(confidence, bool) or not isinstance(confidence, float | int):
        raise InvalidInputError("confidence", confidence, "must be a number in (0, 1)")
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError("confidence", confidence, "must lie in (0, 1)")
    tail = (1.0 - confidence) / 2.0
    lower = 0.0 if successes == 0 else stats.beta.ppf(tail, successes, n - successes + 1)
    upper = 1.0 if successes == n else stats.beta.ppf(1.0 - tail, successes + 1, n - successes)
    return Proportion(successes / n, float(lower), float(upper))


def best_response_per_patient(
    dataset: TrialDataset, *, sd_min_interval_days: int = SD_MIN_INTERVAL_DAYS
) -> pd.DataFrame:
    """One row per randomized patient (as `endpoints.randomized_patients`): trial_id, arm,
    treatment_arm, best_response (CR, PR, SD, PD or NE) by the rule in the module docstring."""
    if isinstance(sd_min_interval_days, bool) or not isinstance(sd_min_interval_days, int):
        raise InvalidInputError("sd_min_interval_days", sd_min_interval_days, "must be an int")
    randomized = randomized_patients(dataset)
    assessments = {
        str(trial_id): rows.sort_values("assessed_on", kind="stable")
        for trial_id, rows in dataset.assessments.groupby("trial_id")
    }
    rows = []
    for patient in randomized.itertuples(index=False):
        randomized_on = _day(patient.randomized_on)
        own = assessments.get(str(patient.trial_id))
        timeline = (
            [] if own is None else list(zip(own["assessed_on"], own["response"], strict=True))
        )
        points = [
            _time_point(_day(on), str(response))
            for on, response in timeline
            if _day(on) > randomized_on
        ]
        best = best_overall_response(points, randomized_on, sd_min_interval_days)
        rows.append(
            {
                "trial_id": patient.trial_id,
                "arm": patient.arm,
                "treatment_arm": patient.treatment_arm,
                "best_response": best.value,
            }
        )
    return pd.DataFrame(rows, columns=["trial_id", "arm", "treatment_arm", "best_response"])


def response_rates(dataset: TrialDataset, confidence: float = 0.95) -> pd.DataFrame:
    """Response counts and rates per group: one row per arm and per treatment arm that has
    patients (columns grouping, group, n, CR, PR, SD, PD, NE, orr_n, orr, orr_lower,
    orr_upper, dcr_n, dcr, dcr_lower, dcr_upper). ORR = CR + PR, DCR = CR + PR + SD, over all
    randomized patients of the group, with Clopper-Pearson intervals."""
    best = best_response_per_patient(dataset)
    protocol = dataset_protocol(dataset)
    rows: list[dict[str, Any]] = []
    for grouping in GROUPINGS:
        for group in arm_ids(protocol, grouping):
            responses = best.loc[best[grouping] == group, "best_response"]
            if responses.empty:
                continue
            n = len(responses)
            row: dict[str, Any] = {"grouping": grouping, "group": group, "n": n}
            row.update(
                {response: int((responses == response).sum()) for response in RESPONSE_ORDER}
            )
            for name, members in (("orr", OBJECTIVE_RESPONSE), ("dcr", DISEASE_CONTROL)):
                count = int(responses.isin(members).sum())
                rate = exact_proportion(count, n, confidence)
                row |= {
                    f"{name}_n": count,
                    name: rate.estimate,
                    f"{name}_lower": rate.lower,
                    f"{name}_upper": rate.upper,
                }
            rows.append(row)
    return pd.DataFrame(rows, columns=list(RATE_COLUMNS))


def _time_point(on: date, response: str) -> AssessmentResponse:
    """An assessment carrying only its date and overall response, as recist's rule reads it."""
    return AssessmentResponse(
        date=on,
        sum_mm=None,
        nadir_mm=None,
        change_from_baseline_pct=None,
        change_from_nadir_pct=None,
        target=None,
        non_target=None,
        new_lesions=False,
        overall=Response(response),
    )


def _day(value: Any) -> date:
    return pd.Timestamp(value).date()
