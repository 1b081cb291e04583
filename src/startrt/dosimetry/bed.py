"""Kidney biologically effective dose (BED) for mono-exponential clearance after instant uptake.

BED = D * (1 + D * lambda_eff / ((alpha/beta) * (mu + lambda_eff))), mu = ln 2 / T_rep
(Dale, Br J Radiol 1985;58:515; for kidneys after PRRT: Wessels et al., MIRD Pamphlet No. 20,
J Nucl Med 2008;49:1884; Baechler et al., Med Phys 2008;35:1123). Cycles weeks apart add:
BED_total = sum of the per-cycle BEDs.
"""

from __future__ import annotations

import math

from startrt.physics.nuclides import effective_decay_constant_per_h
from startrt.validation import require_non_negative, require_positive


def _dose_rate_factor(
    effective_half_life_h: float, alpha_beta_gy: float, repair_half_time_h: float
) -> float:
    """G / (alpha/beta) in 1/Gy, with G = lambda_eff / (mu + lambda_eff) (Lea-Catcheside factor)."""
    lambda_eff = effective_decay_constant_per_h(effective_half_life_h)
    mu = math.log(2.0) / require_positive("repair_half_time_h", repair_half_time_h, "h")
    alpha_beta = require_positive("alpha_beta_gy", alpha_beta_gy, "Gy")
    return lambda_eff / (mu + lambda_eff) / alpha_beta


def bed_mono_exponential_gy(
    dose_gy: float, effective_half_life_h: float, alpha_beta_gy: float, repair_half_time_h: float
) -> float:
    """BED (Gy) of one cycle delivering `dose_gy` with mono-exponential effective clearance."""
    dose = require_non_negative("dose_gy", dose_gy, "Gy")
    factor = _dose_rate_factor(effective_half_life_h, alpha_beta_gy, repair_half_time_h)
    return dose * (1.0 + dose * factor)


def dose_for_bed_gy(
    bed_gy: float, effective_half_life_h: float, alpha_beta_gy: float, repair_half_time_h: float
) -> float:
    """Absorbed dose (Gy) whose one-cycle BED equals `bed_gy`: the positive root of
    factor * D^2 + D - BED = 0, i.e. D = 2 BED / (1 + sqrt(1 + 4 factor BED)) (stable form)."""
    bed = require_non_negative("bed_gy", bed_gy, "Gy")
    factor = _dose_rate_factor(effective_half_life_h, alpha_beta_gy, repair_half_time_h)
    return 2.0 * bed / (1.0 + math.sqrt(1.0 + 4.0 * factor * bed))
