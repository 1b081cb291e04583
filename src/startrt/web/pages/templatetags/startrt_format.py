"""Template filters for people: a probability as a percentage."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(probability: float | None, decimals: int = 1) -> str:
    """0.0412 -> "4.1 %"; under half the last digit (0 included): "< 0.1 %"."""
    if probability is None:
        return "—"
    value = 100.0 * float(probability)
    smallest = 10.0**-decimals
    if value < smallest / 2:  # a modelled probability is never exactly 0
        return f"< {smallest:.{decimals}f} %"
    return f"{value:.{decimals}f} %"
