"""Virtual lesion measurements, judged by the clinic's RECIST 1.1 code."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from startrt.clinical.recist import evaluate_series, parse_series
from startrt.simulation.lesions import recist_series
from startrt.validation import InvalidInputError

BASELINE = date(2025, 1, 6)


def overall(responses: list[str]) -> tuple[list[str], str]:
    dated = [(BASELINE + timedelta(weeks=12 * (i + 1)), r) for i, r in enumerate(responses)]
    result = evaluate_series(parse_series(recist_series(BASELINE, dated)))
    return [str(a.overall) for a in result.assessments], str(result.best_overall)


@pytest.mark.parametrize(
    ("path", "best"),
    [
        (["PR", "PR", "PD"], "PR"),
        (["SD", "SD", "SD"], "SD"),
        (["CR", "CR"], "CR"),
        (["CR", "PD"], "CR"),
        (["SD", "PD"], "SD"),
        (["PD"], "PD"),
    ],
)
def test_each_path_is_judged_as_simulated(path: list[str], best: str) -> None:
    assert overall(path) == (path, best)


def test_refusals_name_the_time_point() -> None:
    with pytest.raises(InvalidInputError, match=r"responses\[0\].*must be the last"):
        recist_series(BASELINE, [(BASELINE + timedelta(days=84), "PD"), (date(2026, 1, 1), "SD")])
    with pytest.raises(InvalidInputError, match=r"responses\[0\].*follow baseline"):
        recist_series(BASELINE, [(BASELINE, "SD")])
    with pytest.raises(InvalidInputError, match="CR, PR, SD or PD"):
        recist_series(BASELINE, [(BASELINE + timedelta(days=84), "NE")])
