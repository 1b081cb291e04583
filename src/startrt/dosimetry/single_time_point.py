"""Time-integrated activity (MBq*h) from one quantitative image at time t after injection.

Hänscheid et al., J Nucl Med 2018;59:75: TIA ~= A(t) * 2t / ln 2, which for mono-exponential
kinetics A0 exp(-l t) has the ratio to the true A0/l of u * 2^(1-u), u = t / T_eff: exact at
t = T_eff and t = 2 T_eff, at most 6.2 % high (t = T_eff / ln 2) and within 10 % for
0.77 T_eff <= t <= 2.43 T_eff (derived in tests/dosimetry/test_single_time_point.py).
Madsen et al., Med Phys 2018;45:2318: TIA = A(t) exp(k t) / k with a population effective
rate k = ln 2 / T_eff; exact for mono-exponential kinetics with that rate.
"""

from __future__ import annotations

import math

from startrt.physics.nuclides import LU177, effective_decay_constant_per_h
from startrt.validation import InvalidInputError, require_non_negative, require_positive


def hanscheid_tia_mbq_h(activity_mbq: float, time_h: float) -> float:
    """TIA (MBq*h) ~= A(t) * 2t / ln 2 (Hänscheid et al., J Nucl Med 2018;59:75)."""
    activity = require_non_negative("activity_mbq", activity_mbq, "MBq")
    time = require_positive("time_h", time_h, "h")
    return activity * 2.0 * time / math.log(2.0)


def madsen_tia_mbq_h(
    activity_mbq: float,
    time_h: float,
    effective_half_life_h: float,
    *,
    physical_half_life_h: float = LU177.half_life_h,
) -> float:
    """TIA (MBq*h) = A(t) exp(k t) / k, k = ln 2 / T_eff (Madsen et al., Med Phys
    2018;45:2318); T_eff may not exceed the physical half-life."""
    activity = require_non_negative("activity_mbq", activity_mbq, "MBq")
    time = require_positive("time_h", time_h, "h")
    rate = effective_decay_constant_per_h(effective_half_life_h)
    physical = require_positive("physical_half_life_h", physical_half_life_h, "h")
    if effective_half_life_h > physical:
        raise InvalidInputError(
            "effective_half_life_h",
            effective_half_life_h,
            f"must be <= the physical half-life {physical:g} h",
        )
    return activity * math.exp(rate * time) / rate
