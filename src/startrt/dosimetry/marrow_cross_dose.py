"""Red-marrow cross-dose from the source organs and the remainder of the body, to be added to the
blood-based self-dose (`marrow.red_marrow_self_dose`), as the EANM guidance for 177Lu asks
(Sjogreen Gleisner et al., Eur J Nucl Med Mol Imaging 2022;49:1778; the cross-dose from organs
and tumours is significant for 177Lu-DOTATATE: Forrer et al., EJNMMI 2009;36:1138).

D_RM<-h [Gy] = TIA_h [MBq*h] * 3600 s/h * S(RM <- h) [mGy/(MBq*s)] / 1000 (MIRD).

S(RM <- organ): the OpenDose tables (ICRP 110 AM / AF) have no red-marrow target, only the
spongiosa of each bone site (marrow and trabecular bone, not segmented in the voxel phantoms).
S(RM <- h) is taken as the spongiosa S values weighted by the adult active-marrow distribution
(Cristy M, Phys Med Biol 1981;26:389): the spongiosa approximation. The cross-dose is carried by
the 113 / 208 keV photons; the spongiosa dose overestimates the marrow's where bone absorbs more,
at low photon energies (skeletal dosimetry of ICRP Publication 116, 2010).

Remainder of body RB = total body TB minus the organs and the marrow (MIRD Pamphlet 11 / 21;
Cloutier et al., J Nucl Med 1973;14:53; sources without a marrow S value, such as tumours, stay
in it): TIA_RB = TIA_TB - sum_h TIA_h - TIA_RM and
S(RM <- RB) = S(RM <- TB) m_TB / m_RB - sum_h S(RM <- h) m_h / m_RB, h over the organs and the
marrow itself, m_RB = m_TB - sum_h m_h (phantom masses). The OpenDose tables shipped hold no
total-body source, so S(RM <- TB) must be given (`TotalBodySValues`); without it the remainder's
TIA is reported and its cross-dose is not counted, said in the notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from startrt.physics.organ_s_values import Phantom, organ_s_value, self_target_name
from startrt.validation import InvalidInputError, require_non_negative

REMAINDER_OF_BODY = "remainder_of_body"
_GY_PER_MBQ_H_PER_MGY_PER_MBQ_S = 3600.0 / 1000.0

# Percent of the adult active marrow per bone site (Cristy 1981, adult), by the OpenDose
# spongiosa region holding it; the adult's other bones hold none.
ACTIVE_MARROW_PERCENT: Mapping[str, float] = MappingProxyType(
    {
        "Cranium, spongiosa": 7.6,
        "Mandible, spongiosa": 0.8,
        "Scapulae, spongiosa": 2.8,
        "Clavicles, spongiosa": 0.8,
        "Sternum, spongiosa": 3.1,
        "Ribs, spongiosa": 16.1,
        "Cervical spine, spongiosa": 3.9,
        "Thoracic spine, spongiosa": 16.1,
        "Lumbar spine, spongiosa": 12.3,
        "Sacrum, spongiosa": 9.9,
        "Pelvis, spongiosa": 17.5,
        "Femora, upper half, spongiosa": 6.7,
        "Humeri, upper half, spongiosa": 2.3,
    }
)


@dataclass(frozen=True)
class TotalBodySValues:
    """What the remainder-of-body correction needs beyond the organ tables, for one phantom:
    S(RM <- TB), S(RM <- RM) (mGy/(MBq*s)) and the total-body and red-marrow masses (g)."""

    marrow_from_total_body_mgy_per_mbq_s: float
    marrow_self_mgy_per_mbq_s: float
    total_body_mass_g: float
    marrow_mass_g: float


@dataclass(frozen=True)
class MarrowCrossDose:
    """Cross-dose to the red marrow (Gy) by source (organ names and REMAINDER_OF_BODY when its
    S value is known), the remainder of the body's TIA and what was assumed or left out."""

    by_source_gy: Mapping[str, float]
    remainder_of_body_tia_mbq_h: float
    notes: tuple[str, ...]

    @property
    def total_gy(self) -> float:
        return sum(self.by_source_gy.values())


def marrow_s_value(source: str, phantom: Phantom) -> float:
    """S(RM <- source organ) in mGy/(MBq*s): the OpenDose spongiosa S values weighted by the
    active-marrow percentages (module docstring)."""
    weighted = sum(
        percent * organ_s_value(source, site, phantom).s_mgy_per_mbq_s
        for site, percent in ACTIVE_MARROW_PERCENT.items()
    )
    return weighted / sum(ACTIVE_MARROW_PERCENT.values())


def remainder_of_body_s_value(
    marrow_from_total_body_mgy_per_mbq_s: float,
    total_body_mass_g: float,
    subtracted: Mapping[str, tuple[float, float]],
) -> float:
    """S(RM <- RB) (mGy/(MBq*s)) from S(RM <- TB) and, per region h taken out of the total body,
    (S(RM <- h), m_h in g) (Cloutier 1973)."""
    remainder_mass_g = total_body_mass_g - sum(mass for _, mass in subtracted.values())
    if remainder_mass_g <= 0.0:
        raise InvalidInputError(
            "total_body_mass_g", total_body_mass_g, "must exceed the subtracted regions' masses"
        )
    subtracted_s_g = sum(s_value * mass for s_value, mass in subtracted.values())
    total_s_g = marrow_from_total_body_mgy_per_mbq_s * total_body_mass_g
    return (total_s_g - subtracted_s_g) / remainder_mass_g


def red_marrow_cross_dose(
    organ_tia_mbq_h: Mapping[str, float],
    *,
    total_body_tia_mbq_h: float,
    marrow_tia_mbq_h: float,
    phantom: Phantom,
    total_body: TotalBodySValues | None = None,
) -> MarrowCrossDose:
    """Cross-dose to the red marrow from the measured source organs (`organ_tia_mbq_h`, names
    as in SOURCE_ORGANS) and from the remainder of the body (module docstring)."""
    tias = {
        name: require_non_negative(f"organ_tia_mbq_h[{name}]", tia, "MBq*h")
        for name, tia in organ_tia_mbq_h.items()
    }
    total_body_tia = require_non_negative("total_body_tia_mbq_h", total_body_tia_mbq_h, "MBq*h")
    marrow_tia = require_non_negative("marrow_tia_mbq_h", marrow_tia_mbq_h, "MBq*h")
    s_values = {name: marrow_s_value(name, phantom) for name in tias}
    by_source = {
        name: tias[name] * s_values[name] * _GY_PER_MBQ_H_PER_MGY_PER_MBQ_S for name in tias
    }
    notes = [
        f"S(RM <- organ): OpenDose {phantom} spongiosa S values weighted by the adult "
        "active-marrow distribution (Cristy 1981); OpenDose has no red-marrow target"
    ]
    remainder_tia = total_body_tia - sum(tias.values()) - marrow_tia
    if remainder_tia < 0.0:
        notes.append(
            f"remainder of body: TIA {remainder_tia:.6g} MBq*h (total body below the organs and "
            "marrow) taken as 0"
        )
        remainder_tia = 0.0
    if total_body is None:
        notes.append(
            f"remainder of body: TIA {remainder_tia:.6g} MBq*h, no cross-dose counted: no "
            "S(RM <- total body) in the OpenDose tables shipped"
        )
    else:
        subtracted = {
            name: (
                s_values[name],
                organ_s_value(name, self_target_name(name), phantom).target_mass_g,
            )
            for name in tias
        }
        subtracted["red_marrow"] = (total_body.marrow_self_mgy_per_mbq_s, total_body.marrow_mass_g)
        s_remainder = remainder_of_body_s_value(
            total_body.marrow_from_total_body_mgy_per_mbq_s,
            total_body.total_body_mass_g,
            subtracted,
        )
        if s_remainder < 0.0:
            raise InvalidInputError(
                "total_body", total_body, "S(RM <- remainder of body) comes out negative"
            )
        by_source[REMAINDER_OF_BODY] = remainder_tia * s_remainder * _GY_PER_MBQ_H_PER_MGY_PER_MBQ_S
        notes.append(
            f"remainder of body: TIA {remainder_tia:.6g} MBq*h, S(RM <- RB) "
            f"{s_remainder:.4g} mGy/(MBq*s) (Cloutier 1973)"
        )
    return MarrowCrossDose(MappingProxyType(by_source), remainder_tia, tuple(notes))
