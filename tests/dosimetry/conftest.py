"""Phantom studies shared by the dosimetry pipeline tests (written once per test session)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from startrt.imaging.phantom_study import make_phantom_study


@pytest.fixture(scope="session")
def phantom_128(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A 128^3 (4.8 mm) four-time-point study with a 2.4 mm CT, and its truth."""
    folder = tmp_path_factory.mktemp("phantom_128") / "study"
    study = make_phantom_study(folder, seed=5, ct_subdivision=2)
    return folder, json.loads(study.truth_file.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def phantom_64(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A small 64^3 (9.6 mm) study for error and interface tests."""
    folder = tmp_path_factory.mktemp("phantom_64") / "study"
    study = make_phantom_study(folder, seed=2, grid_size=64, ct_subdivision=2)
    return folder, json.loads(study.truth_file.read_text(encoding="utf-8"))
