"""Mean absorbed dose of an organ (OpenDose S values, mass-scaled) or of a spherical tumour.

MIRD schema: D = TIA * S (Bolch et al., MIRD Pamphlet No. 21, J Nucl Med 2009;50:477); TIA in
MBq*h, doses in Gy, masses in g.
"""

from __future__ import annotations

import math

import numpy as np

from startrt.physics.nuclides import JOULE_PER_KEV, LU177, SECONDS_PER_HOUR
from startrt.physics.organ_s_values import Phantom, organ_s_value, self_target_name
from startrt.physics.tissue import TISSUE_DENSITY_G_ML
from startrt.validation import PlausibleRange, require_non_negative

MASS_G = PlausibleRange(1.0, 10_000.0, "g")
MGY_PER_GY = 1000.0
DECAYS_PER_MBQ_H = 1.0e6 * SECONDS_PER_HOUR

# 177Lu photons, ICRP Publication 107 (2008): (energy keV, yield per decay); gamma rays and Hf K
# x-rays (K-beta lines 63.1-65.5 keV merged at their yield-weighted mean energy). The L x-rays
# (< 11 keV, 0.313 keV per decay) travel < 1 cm in tissue and are counted as absorbed locally.
LU177_PHOTONS_KEV_YIELD: tuple[tuple[float, float], ...] = (
    (54.7191, 0.0163172),
    (55.9237, 0.0285488),
    (63.7051, 0.0115680),
    (71.646, 0.00154),
    (112.95, 0.064),
    (136.725, 0.00048),
    (208.366, 0.11),
    (249.674, 0.00212),
    (321.316, 0.00219),
)
LU177_LOCAL_PHOTON_ENERGY_KEV = 0.313

# Mass energy-absorption coefficient of liquid water, cm2/g (NIST, Hubbell & Seltzer, NISTIR 5632,
# 1995/2004); interpolated log-log as NIST recommends.
_WATER_MU_EN_ENERGY_KEV = np.array(
    [30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0, 200.0, 300.0, 400.0]
)
_WATER_MU_EN_CM2_G = np.array(
    [0.1557, 0.06947, 0.04223, 0.03190, 0.02597, 0.02546, 0.02764, 0.02967, 0.03192, 0.03279]
)
_MU_EN_ENERGY_KEV = PlausibleRange(30.0, 400.0, "keV")


def organ_self_dose_gy(
    tia_mbq_h: float, source_organ: str, patient_mass_g: float, phantom: Phantom
) -> float:
    """Self-dose (Gy) = TIA * 3600 s/h * S_self * m_phantom / m_patient / 1000, OpenDose ICRP 110
    S values scaled to the patient's organ mass (MIRD Pamphlet No. 21, Bolch et al. 2009; the
    scaling holds for the electron part, which dominates 177Lu self-dose)."""
    tia = require_non_negative("tia_mbq_h", tia_mbq_h, "MBq*h")
    patient_mass = MASS_G.check("patient_mass_g", patient_mass_g)
    s_value, phantom_mass_g = organ_s_value(source_organ, self_target_name(source_organ), phantom)
    s_scaled = s_value * phantom_mass_g / patient_mass
    return tia * SECONDS_PER_HOUR * s_scaled / MGY_PER_GY


def sphere_photon_absorbed_fraction(energy_kev: float, mass_g: float) -> float:
    """Fraction of photon energy absorbed in a uniform source sphere of tumour tissue:
    1 - P_esc(mu_en R), P_esc(x) = 3/(8x^3) (2x^2 - 1 + (1 + 2x) e^(-2x)), the escape probability
    from a uniformly emitting sphere (Case, de Hoffmann & Placzek, Introduction to the Theory of
    Neutron Diffusion, Los Alamos 1953), with water's mu_en (NIST) as the attenuation
    (energy-absorption approximation; scattered photons that stay are not counted)."""
    mass = MASS_G.check("mass_g", mass_g)
    energy = _MU_EN_ENERGY_KEV.check("energy_kev", energy_kev)
    density = TISSUE_DENSITY_G_ML["tumour"]
    radius_cm = (3.0 * mass / (4.0 * math.pi * density)) ** (1.0 / 3.0)
    log_mu_en = np.interp(
        math.log(energy), np.log(_WATER_MU_EN_ENERGY_KEV), np.log(_WATER_MU_EN_CM2_G)
    )
    mu_en_cm2_g = math.exp(float(log_mu_en))
    x = mu_en_cm2_g * density * radius_cm
    escape = 3.0 / (8.0 * x**3) * (2.0 * x**2 - 1.0 + (1.0 + 2.0 * x) * math.exp(-2.0 * x))
    return float(1.0 - escape)


def sphere_dose_gy(tia_mbq_h: float, mass_g: float) -> float:
    """Mean dose (Gy) of a spherical tumour (density 1.04 g/mL) with uniform activity: electrons
    (147.9 keV per decay, ICRP 107) absorbed locally plus photons (ICRP 107 lines) times their
    absorbed fraction `sphere_photon_absorbed_fraction`. Electron escape (ranges up to ~2 mm) is
    neglected: it grows as the sphere shrinks, to a few % near 1 g (cf. Stabin & Konijnenberg,
    J Nucl Med 2000;41:149, absorbed fractions in spheres)."""
    tia = require_non_negative("tia_mbq_h", tia_mbq_h, "MBq*h")
    mass = MASS_G.check("mass_g", mass_g)
    photon_kev = sum(
        energy * photon_yield * sphere_photon_absorbed_fraction(energy, mass)
        for energy, photon_yield in LU177_PHOTONS_KEV_YIELD
    )
    absorbed_kev = LU177.electron_energy_per_decay_kev + LU177_LOCAL_PHOTON_ENERGY_KEV + photon_kev
    return tia * DECAYS_PER_MBQ_H * absorbed_kev * JOULE_PER_KEV / (mass * 1.0e-3)
