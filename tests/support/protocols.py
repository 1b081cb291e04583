"""Protocol files for tests: the shipped START-01 v1.0 and an amendment v1.1 beside it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from startrt.protocol.definition import PROTOCOL_FOLDER

SHIPPED_FILE = "START-01_v1.0.toml"
AMENDMENT_FILE = "START-01_v1.1.toml"
AMENDMENT_EFFECTIVE = date(2025, 3, 1)
# the amendment: a 25 Gy renal limit (v1.0: 30 Gy) and inclusion from GFR > 45 (v1.0: > 50)
AMENDMENT_RENAL_LIMIT_GY = 25.0
AMENDMENT_GFR_THRESHOLD = 45
IN12_V1_0 = 'field = "gfr_ml_min_173"\noperator = ">"\nthreshold = 50\n\n[[eligibility.inclusion]]'


def shipped_text() -> str:
    """The text of the shipped START-01 v1.0 file."""
    return PROTOCOL_FOLDER.joinpath(SHIPPED_FILE).read_text("utf-8")


def amended_text(
    *changes: tuple[str, str], version: str = "1.1", effective_date: date = AMENDMENT_EFFECTIVE
) -> str:
    """The shipped text with each (old, new) of `changes` replaced (old must be there once),
    as `version` effective on `effective_date`."""
    text = shipped_text()
    for old, new in (
        *changes,
        ('version = "1.0"', f'version = "{version}"'),
        ("effective_date = 2022-11-01", f"effective_date = {effective_date.isoformat()}"),
    ):
        if text.count(old) != 1:
            raise AssertionError(f"{old!r} is not once in {SHIPPED_FILE}")
        text = text.replace(old, new)
    return text


def amendment_text() -> str:
    """START-01 v1.1, effective 2025-03-01: the renal limit and the GFR inclusion changed."""
    gfr = IN12_V1_0.replace("threshold = 50", f"threshold = {AMENDMENT_GFR_THRESHOLD}")
    return amended_text(
        ("limit_gy = 30.0", f"limit_gy = {AMENDMENT_RENAL_LIMIT_GY}"), (IN12_V1_0, gfr)
    )


def amended_folder(folder: Path) -> Path:
    """`folder` holding START-01 v1.0 and its amendment v1.1 (effective 2025-03-01)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SHIPPED_FILE).write_text(shipped_text(), encoding="utf-8")
    (folder / AMENDMENT_FILE).write_text(amendment_text(), encoding="utf-8")
    return folder
