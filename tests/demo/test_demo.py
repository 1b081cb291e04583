"""`make demo` replaces only its own database."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from startrt.demo.run import MARKER, data_folder, demo_parameters
from startrt.simulation.endpoints import cut_off_day
from startrt.validation import InvalidInputError


def test_a_foreign_database_is_refused_and_the_demos_own_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARTRT_DATA_DIR", str(tmp_path))
    (tmp_path / "startrt.sqlite3").write_text("a trial's data")
    with pytest.raises(InvalidInputError, match=r"STARTRT_DATA_DIR.*did not make"):
        data_folder()
    assert (tmp_path / "startrt.sqlite3").read_text() == "a trial's data"

    (tmp_path / MARKER).write_text("")
    assert data_folder() == tmp_path.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER]


def test_an_empty_database_file_is_no_trial_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings create the SQLite file (0600) before any connection: `make test` leaves an
    empty one in ./var, and `make demo` afterwards must still run."""
    monkeypatch.setenv("STARTRT_DATA_DIR", str(tmp_path))
    (tmp_path / "startrt.sqlite3").write_bytes(b"")
    (tmp_path / "secret_key").write_text("k")
    assert data_folder() == tmp_path.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER]


def test_the_demo_cohort_is_cut_before_today() -> None:
    parameters = demo_parameters()
    # 2022-11-01 + 24 months accrual + 9 months follow-up: around 1 August 2025
    cut_off = parameters.trial.start_date + timedelta(days=cut_off_day(parameters))
    assert date(2025, 7, 25) <= cut_off <= date(2025, 8, 8) < date.today()
