"""Body surface area (m2) from height (cm) and weight (kg)."""

from __future__ import annotations

import math

from startrt.validation import HEIGHT_CM, WEIGHT_KG


def _checked(height_cm: float, weight_kg: float) -> tuple[float, float]:
    return HEIGHT_CM.check("height_cm", height_cm), WEIGHT_KG.check("weight_kg", weight_kg)


def dubois_bsa_m2(height_cm: float, weight_kg: float) -> float:
    """DuBois body surface area, m2: 0.007184 * W^0.425 * H^0.725 (W in kg, H in cm).

    Source: DuBois D, DuBois EF, Arch Intern Med 1916;17:863-871.
    """
    height, weight = _checked(height_cm, weight_kg)
    return 0.007184 * math.pow(weight, 0.425) * math.pow(height, 0.725)


def mosteller_bsa_m2(height_cm: float, weight_kg: float) -> float:
    """Mosteller body surface area, m2: sqrt(H * W / 3600) (H in cm, W in kg).

    Source: Mosteller RD, N Engl J Med 1987;317:1098.
    """
    height, weight = _checked(height_cm, weight_kg)
    return math.sqrt(height * weight / 3600.0)
