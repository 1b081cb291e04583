"""Kidney biologically effective dose (BED) for exponential kinetics, per cycle and cumulative.

BED = D * (1 + D * G / (alpha/beta)), G the Lea-Catcheside dose-protraction factor
G = 2/D^2 int_0^inf R(t) int_0^t R(w) exp(-mu (t - w)) dw dt, mu = ln 2 / T_rep
(Dale, Br J Radiol 1985;58:515; for kidneys after PRRT: Wessels et al., MIRD Pamphlet No. 20,
J Nucl Med 2008;49:1884; Baechler et al., Med Phys 2008;35:1123). For a dose rate
R(t) = sum_i c_i exp(-k_i t) the integral is closed: G = 2/D^2 sum_ij c_i c_j /
((k_i + k_j)(k_i + mu)), D = sum_i c_i / k_i. Mono-exponential (instant uptake):
G = l / (mu + l). Uptake then clearance (Baechler 2008): c = (1, -1), k = (l_c, l_u).
Cycles weeks apart add (full repair in between): BED_total = sum of the per-cycle BEDs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from startrt.dosimetry.tac_models import MODELS
from startrt.physics.nuclides import effective_decay_constant_per_h
from startrt.validation import InvalidInputError, require_non_negative, require_positive

if TYPE_CHECKING:  # the fitting module (scipy.optimize) is not needed at run time here
    from startrt.dosimetry.tac import FitResult


@dataclass(frozen=True)
class Radiobiology:
    """The tissue's alpha/beta and repair half-time; for kidneys the protocol's (START-01:
    2.6 Gy and 2.8 h, Wessels 2008 / Baechler 2008), given by the caller, never assumed here."""

    alpha_beta_gy: float
    repair_half_time_h: float


def _protraction_factor(
    amplitudes: Sequence[float], rates_per_h: Sequence[float], repair_half_time_h: float
) -> float:
    """Lea-Catcheside G for R(t) = sum c_i exp(-k_i t) (closed form in the module docstring)."""
    mu = math.log(2.0) / require_positive("repair_half_time_h", repair_half_time_h, "h")
    terms = list(zip(amplitudes, rates_per_h, strict=True))
    dose = sum(c / k for c, k in terms)
    double_integral = sum(ci * cj / ((ki + kj) * (ki + mu)) for ci, ki in terms for cj, kj in terms)
    return 2.0 * double_integral / dose**2


def _bed_from_factor(dose_gy: float, protraction: float, alpha_beta_gy: float) -> float:
    dose = require_non_negative("dose_gy", dose_gy, "Gy")
    alpha_beta = require_positive("alpha_beta_gy", alpha_beta_gy, "Gy")
    return dose * (1.0 + dose * protraction / alpha_beta)


def _mono_protraction(effective_half_life_h: float, repair_half_time_h: float) -> float:
    rate = effective_decay_constant_per_h(effective_half_life_h)
    return _protraction_factor((1.0,), (rate,), repair_half_time_h)


def bed_mono_exponential_gy(
    dose_gy: float, effective_half_life_h: float, alpha_beta_gy: float, repair_half_time_h: float
) -> float:
    """BED (Gy) of one cycle delivering `dose_gy` with mono-exponential effective clearance."""
    protraction = _mono_protraction(effective_half_life_h, repair_half_time_h)
    return _bed_from_factor(dose_gy, protraction, alpha_beta_gy)


def bed_bi_exponential_gy(
    dose_gy: float,
    uptake_half_life_h: float,
    clearance_half_life_h: float,
    alpha_beta_gy: float,
    repair_half_time_h: float,
) -> float:
    """BED (Gy) of one cycle with dose rate ~ exp(-l_c t) - exp(-l_u t) (uptake then
    clearance; half-lives effective, uptake shorter than clearance) (Baechler et al., Med Phys
    2008;35:1123)."""
    uptake = require_positive("uptake_half_life_h", uptake_half_life_h, "h")
    clearance = require_positive("clearance_half_life_h", clearance_half_life_h, "h")
    if uptake >= clearance:
        raise InvalidInputError(
            "uptake_half_life_h", uptake_half_life_h, "must be < clearance_half_life_h"
        )
    rates = (math.log(2.0) / clearance, math.log(2.0) / uptake)
    protraction = _protraction_factor((1.0, -1.0), rates, repair_half_time_h)
    return _bed_from_factor(dose_gy, protraction, alpha_beta_gy)


def bed_for_fit_gy(
    dose_gy: float, fit: FitResult, alpha_beta_gy: float, repair_half_time_h: float
) -> float:
    """BED (Gy) of one cycle whose dose rate follows the fitted curve (mono, bi or uptake:
    the sum-of-exponentials Lea-Catcheside factor above; Baechler et al., Med Phys
    2008;35:1123). A trapezoid integration has no kinetics and is refused."""
    if fit.model not in MODELS:
        raise InvalidInputError("fit", fit.model, "needs a fitted mono, bi or uptake curve")
    terms = MODELS[fit.model].terms(np.array(list(fit.parameters.values()), dtype=np.float64))
    amplitudes = [float(amplitude) for amplitude, _ in terms]
    rates = [float(rate) for _, rate in terms]
    if sum(c / k for c, k in zip(amplitudes, rates, strict=True)) <= 0:
        raise InvalidInputError("fit", dict(fit.parameters), "the fitted curve has no integral")
    protraction = _protraction_factor(amplitudes, rates, repair_half_time_h)
    return _bed_from_factor(dose_gy, protraction, alpha_beta_gy)


def cumulative_bed_gy(cycle_beds_gy: Sequence[float]) -> float:
    """Total BED (Gy) of cycles weeks apart: the sum of the per-cycle BEDs (full repair
    between cycles; Wessels et al., J Nucl Med 2008;49:1884)."""
    return sum(
        require_non_negative(f"cycle_beds_gy[{i}]", bed, "Gy")
        for i, bed in enumerate(cycle_beds_gy)
    )


def dose_for_bed_gy(
    bed_gy: float, effective_half_life_h: float, alpha_beta_gy: float, repair_half_time_h: float
) -> float:
    """Absorbed dose (Gy) whose one-cycle BED equals `bed_gy`: the positive root of
    factor * D^2 + D - BED = 0, i.e. D = 2 BED / (1 + sqrt(1 + 4 factor BED)) (stable form)."""
    bed = require_non_negative("bed_gy", bed_gy, "Gy")
    factor = _mono_protraction(effective_half_life_h, repair_half_time_h) / require_positive(
        "alpha_beta_gy", alpha_beta_gy, "Gy"
    )
    return 2.0 * bed / (1.0 + math.sqrt(1.0 + 4.0 * factor * bed))
