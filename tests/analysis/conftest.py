"""Fixtures shared by the analysis tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from startrt.analysis.dataset import TrialDataset, make_dataset
from support.datasets import report_dataset as make_report_dataset


@pytest.fixture(scope="session")
def report_dataset() -> TrialDataset:
    """The hand-made dataset of tests/support/datasets.py (10 screened, 7 randomized)."""
    return make_report_dataset()


@pytest.fixture
def report_unit_costs(tmp_path: Path) -> Path:
    """A unit-cost file costing GBq, dosimetry sessions, in-patient days and capecitabine mg."""
    path = tmp_path / "costs.toml"
    path.write_text(
        'currency = "SEK"\n[cost_per_unit]\nactivity_gbq = 20000\ndosimetry_sessions = 3000\n'
        "inpatient_days = 5000\ncapecitabine_mg = 0.01\n",
        encoding="utf-8",
    )
    return path


OutcomeDataset = Callable[..., TrialDataset]


@pytest.fixture
def outcome_dataset() -> OutcomeDataset:
    """outcome_dataset(patients, assessments=..., follow_up=..., deaths=..., visits=...): a
    dataset for the endpoint and response tests, dates given as days from randomization.

    patients: {trial_id: {"arm": ..., "treatment_arm": ..., "stratum": ..., "randomized": bool}}
    (defaults: standard arm, stratum "S1-FDGneg", randomized on 2024-01-01); assessments:
    (trial_id, day, response); follow_up: (trial_id, day, status, progression day or None);
    deaths: (trial_id, day); visits: (trial_id, day, kind). Cut-off: 2030-01-01.
    """

    def build(
        patients: dict[str, dict[str, Any]],
        *,
        assessments: Sequence[tuple[str, int, str]] = (),
        follow_up: Sequence[tuple[str, int, str, int | None]] = (),
        deaths: Sequence[tuple[str, int]] = (),
        visits: Sequence[tuple[str, int, str]] = (),
    ) -> TrialDataset:
        start = date(2024, 1, 1)

        def on(days: int | None) -> str:
            return "" if days is None else (start + timedelta(days=days)).isoformat()

        rows = []
        for trial_id, given in patients.items():
            randomized = given.get("randomized", True)
            arm = given.get("arm", "standard")
            rows.append(
                {
                    "trial_id": trial_id,
                    "site": "S1",
                    "screened_on": on(-14),
                    "eligible": "true",
                    "randomized_on": on(0) if randomized else "",
                    "arm": arm if randomized else "",
                    "treatment_arm": given.get("treatment_arm", arm) if randomized else "",
                    "stratum": given.get("stratum", "S1-FDGneg") if randomized else "",
                }
            )
        tables = {
            "patients": rows,
            "assessments": [
                {"trial_id": t, "assessed_on": on(d), "response": r} for t, d, r in assessments
            ],
            "follow_up": [
                {"trial_id": t, "contact_on": on(d), "status": s, "progression_on": on(p)}
                for t, d, s, p in follow_up
            ],
            "deaths": [{"trial_id": t, "died_on": on(d), "cause": ""} for t, d in deaths],
            "visits": [{"trial_id": t, "visit_on": on(d), "kind": k} for t, d, k in visits],
        }
        return make_dataset(date(2030, 1, 1), "START-01 v1.0", "test", tables)

    return build
