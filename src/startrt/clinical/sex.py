"""Biological sex as used by the sex-specific kidney-function equations."""

from __future__ import annotations

from enum import StrEnum


class Sex(StrEnum):
    """Sex recorded for a patient; selects the coefficients of sex-specific equations."""

    FEMALE = "female"
    MALE = "male"
