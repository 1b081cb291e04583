"""Virtual lesion measurements behind a simulated response path, so that a virtual patient's
tumour assessments can be entered as RECIST 1.1 measurements and judged by the clinic's own
RECIST code (`clinical.recist`).

Baseline: three targets, liver 50 mm, lung 30 mm and a lymph node of 20 mm short axis (sum
100 mm), and one non-target bone lesion. A time point shows:
- PR: 30 + 18 + 12 = 60 mm (-40 % from baseline; RECIST 1.1 PR needs <= -30 %);
- CR: every target gone and the node 8 mm (< 10 mm is normal), the bone lesion absent;
- SD: 48 + 29 + 18 = 95 mm (-5 %, neither -30 % nor +20 % over the nadir of 95 mm);
- PD: the time point before it again plus a new lesion (a new lesion is PD whatever the sums).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from startrt.clinical.recist import Response
from startrt.validation import InvalidInputError

BASELINE_MM = {"L1": 50.0, "L2": 30.0, "N1": 20.0}
TARGETS_MM = {
    Response.PR: {"L1": 30.0, "L2": 18.0, "N1": 12.0},
    Response.CR: {"L1": 0.0, "L2": 0.0, "N1": 8.0},
    Response.SD: {"L1": 48.0, "L2": 29.0, "N1": 18.0},
}
_ORGANS = {"L1": "liver", "L2": "lung", "N1": "mediastinum", "B1": "bone"}


def recist_series(baseline_on: date, responses: list[tuple[date, str]]) -> dict[str, Any]:
    """The RECIST series (clinical.recist.parse_series shape) whose time points show
    `responses` ((date, CR | PR | SD | PD) in date order; nothing may follow a PD)."""
    follow_up = []
    shown = BASELINE_MM
    for index, (on, response) in enumerate(responses):
        if on <= baseline_on:
            raise InvalidInputError(f"responses[{index}]", on.isoformat(), "must follow baseline")
        if response == Response.PD:
            if index != len(responses) - 1:
                raise InvalidInputError(f"responses[{index}]", response, "must be the last")
        elif response in TARGETS_MM:
            shown = TARGETS_MM[Response(response)]
        else:
            raise InvalidInputError(f"responses[{index}]", response, "must be CR, PR, SD or PD")
        gone = response == Response.CR or (
            response == Response.PD and shown is TARGETS_MM[Response.CR]
        )
        follow_up.append(
            {
                "date": on.isoformat(),
                "target_mm": dict(shown),
                "non_target": {"B1": "absent" if gone else "present"},
                "new_lesions": response == Response.PD,
            }
        )
    return {
        "baseline": {"date": baseline_on.isoformat(), "lesions": _lesions()},
        "follow_up": follow_up,
    }


def _lesions() -> list[dict[str, Any]]:
    return [
        {
            "id": lesion,
            "organ": organ,
            "lymph_node": organ == "mediastinum",
            "diameter_mm": BASELINE_MM.get(lesion),
            "target": lesion in BASELINE_MM,
        }
        for lesion, organ in _ORGANS.items()
    ]
