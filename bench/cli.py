"""Start-up of the light commands: `startrt ctcae`, `egfr` and `plan-cycle`, each in a fresh
interpreter as a user runs them, against `python -c pass` measured in the same run.

The answer time is nearly all imports; the heavy layers (SciPy, pandas, matplotlib, SimpleITK,
pydicom, Dask, Django) are imported only by the commands that use them. Target: < 0.5 s.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.5
REPEATS = 7


def answer_seconds(arguments: list[str], repeats: int = REPEATS) -> float:
    """Median wall time of `python ARGUMENTS` in a fresh process until it has answered."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *arguments], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        plan = Path(scratch) / "plan.json"
        cycles = [{"activity_gbq": 7.5, "kidney_dose_gy": 4.0}] * 2
        plan.write_text(json.dumps({"arm": "dTOC", "cycles": cycles}), encoding="utf-8")
        commands = (
            "ctcae alt 100 --lln 0 --uln 35",
            "egfr --sex female --age 60 --creatinine-umol-l 80",
            "plan-cycle PLAN.json",
        )
        baseline = answer_seconds(["-c", "pass"])
        print(f"\nCLI answer time, fresh process (target < {TARGET_SECONDS} s)")
        print(f"{'command':<60} {'s':>6} {'x python -c pass':>17} {'target':>7}")
        print(f"{'python -c pass':<60} {baseline:6.3f} {1.0:17.1f}")
        for command in commands:
            words = [str(plan) if word == "PLAN.json" else word for word in command.split()]
            seconds = answer_seconds(["-m", "startrt", *words])
            verdict = "met" if seconds < TARGET_SECONDS else "MISSED"
            name = f"startrt {command}"
            print(f"{name:<60} {seconds:6.3f} {seconds / baseline:17.1f} {verdict:>7}")
