"""The light commands do not import the heavy layers (not a timed test; `python -m bench cli`
measures the answer time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "pandas",
    "scipy",
    "django",
    "matplotlib",
    "SimpleITK",
    "pydicom",
    "dask",
    "startrt.analysis",
    "startrt.dosimetry.study",
    "startrt.imaging",
    "startrt.simulation",
    "startrt.web",
)

# Runs one command in a fresh interpreter, then prints its exit status and which of the
# modules named after "--" are loaded.
RUN = """
import json, sys
split = sys.argv.index("--")
command, watched = sys.argv[1:split], sys.argv[split + 1:]
sys.argv = ["startrt", *command]
from startrt.cli import main
try:
    main()
    status = 0
except SystemExit as stop:
    status = stop.code or 0
print(json.dumps([status, [name for name in watched if name in sys.modules]]))
"""


def run_watching(command: list[str], watched: tuple[str, ...]) -> tuple[int, list[str]]:
    """(exit status, the watched modules loaded) of one command in a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-c", RUN, *command, "--", *watched],
        capture_output=True,
        text=True,
        check=True,
    )
    status, loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    return status, loaded


@pytest.mark.parametrize(
    "command",
    [
        ["ctcae", "alt", "100", "--lln", "0", "--uln", "35"],
        ["ctcae", "platelets", "60", "--lln", "150", "--json"],
        ["egfr", "--sex", "male", "--age", "60", "--creatinine-umol-l", "100"],
        ["bsa", "--height-cm", "180", "--weight-kg", "80", "--json"],
        ["--help"],
    ],
)
def test_calculators_import_neither_numpy_nor_the_heavy_layers(command: list[str]) -> None:
    assert run_watching(command, ("numpy", "startrt.protocol", *HEAVY)) == (0, [])


def test_plan_cycle_imports_no_heavy_layer(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    cycles = [{"activity_gbq": 7.5, "kidney_dose_gy": 4.0}]
    plan.write_text(json.dumps({"arm": "dTOC", "cycles": cycles}), encoding="utf-8")
    assert run_watching(["plan-cycle", str(plan), "--json"], HEAVY) == (0, [])


def test_the_watch_sees_a_heavy_command(tmp_path: Path) -> None:
    # The check itself works: `dosimetry run` imports its layers, then refuses the folder.
    command = ["dosimetry", "run", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]
    assert run_watching(command, ("scipy",)) == (2, ["scipy"])
