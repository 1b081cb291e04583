"""`make demo` replaces only its own database."""

from __future__ import annotations

from pathlib import Path

import pytest

from startrt.demo import MARKER, data_folder, demo_parameters
from startrt.validation import InvalidInputError


def test_a_foreign_database_is_refused_and_the_demos_own_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARTRT_DATA_DIR", str(tmp_path))
    (tmp_path / "startrt.sqlite3").write_text("a trial's data")
    with pytest.raises(InvalidInputError, match="STARTRT_DATA_DIR.*did not make"):
        data_folder()
    assert (tmp_path / "startrt.sqlite3").read_text() == "a trial's data"

    (tmp_path / MARKER).write_text("")
    assert data_folder() == tmp_path.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER]


def test_the_demo_cohort_is_cut_before_today() -> None:
    trial = demo_parameters().trial
    assert trial.patients == 40
    # 2022-11-01 + 24 months accrual + 9 months follow-up: August 2025, in the past
    assert (trial.accrual_months, trial.minimum_follow_up_months) == (24.0, 9.0)
