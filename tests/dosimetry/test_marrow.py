"""Red-marrow self-dose by the blood method (Hindorf 2010) and cross-dose from organs and the
remainder of the body (EANM 2022), worked examples by hand."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from startrt.clinical.sex import Sex
from startrt.dosimetry.cycle_dosimetry import BloodSamples, compute_dosimetry
from startrt.dosimetry.marrow import (
    red_marrow_mass_g,
    red_marrow_self_dose,
    sgouros_red_marrow_to_blood_ratio,
)
from startrt.dosimetry.marrow_cross_dose import (
    REMAINDER_OF_BODY,
    TotalBodySValues,
    marrow_s_value,
    red_marrow_cross_dose,
    remainder_of_body_s_value,
)
from startrt.dosimetry.study import load_study
from startrt.physics.organ_s_values import Phantom
from startrt.validation import InvalidInputError

LN2 = math.log(2.0)
# Blood: 1.0 MBq/mL clearing with T = 1.5 h plus 0.02 MBq/mL with T = 60 h (a usual sampling)
TIMES_H = (0.05, 0.75, 2.0, 4.0, 8.0, 24.0, 96.0, 168.0)
BLOOD_MBQ_PER_ML = tuple(
    1.0 * 2 ** (-t / 1.5) + 0.02 * 2 ** (-t / 60.0) for t in TIMES_H
)  # fmt: skip


def test_worked_example_male_reference() -> None:
    # blood TIA concentration = (1.0 * 1.5 + 0.02 * 60) / ln2 = 2.7 / 0.693147 = 3.895277 MBq*h/mL
    # male red marrow 1170 g (ICRP 89), RMBLR 1: TIA = 3.895277 * 1170 = 4557.47 MBq*h
    # local deposition 147.9 keV * 1.602177e-16 J/keV * 3.6e9 /MBq/h / 1e-3 kg/g
    #   = 0.0853063 Gy*g/(MBq*h); D = 4557.47 * 0.0853063 / 1170 = 0.332292 Gy
    result = red_marrow_self_dose(TIMES_H, BLOOD_MBQ_PER_ML, sex=Sex.MALE)
    assert result.blood_fit.model == "bi"
    assert result.blood_tia_mbq_h_per_ml == pytest.approx(3.895277, rel=1e-6)
    assert result.red_marrow_mass_g == 1170.0
    assert result.red_marrow_tia_mbq_h == pytest.approx(4557.47, rel=1e-6)
    assert result.self_dose_gy == pytest.approx(0.332292, rel=1e-5)


def test_worked_example_female_scaled_with_hematocrit_ratio() -> None:
    # female 80 kg: 900 g * 80 / 60 = 1200 g; RMBLR = 0.19 / (1 - 0.40) = 0.316667
    # TIA = 3.895277 * 0.316667 * 1200 = 1480.205 MBq*h; D = 3.895277 * 0.316667 * 0.0853063
    #   = 0.105226 Gy (the marrow mass cancels in the self-dose)
    ratio = sgouros_red_marrow_to_blood_ratio(0.40)
    assert ratio == pytest.approx(0.316667, rel=1e-5)
    result = red_marrow_self_dose(
        TIMES_H, BLOOD_MBQ_PER_ML, sex=Sex.FEMALE, weight_kg=80.0, red_marrow_to_blood_ratio=ratio
    )
    assert result.red_marrow_mass_g == pytest.approx(1200.0)
    assert result.red_marrow_tia_mbq_h == pytest.approx(1480.205, rel=1e-5)
    assert result.self_dose_gy == pytest.approx(0.105226, rel=1e-5)


def test_reference_masses() -> None:
    assert red_marrow_mass_g(Sex.FEMALE) == 900.0
    # male 90 kg: 1170 * 90 / 73 = 1442.47 g
    assert red_marrow_mass_g(Sex.MALE, 90.0) == pytest.approx(1442.466, rel=1e-6)


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("hematocrit_fraction", lambda: sgouros_red_marrow_to_blood_ratio(0.9)),
        ("hematocrit_fraction", lambda: sgouros_red_marrow_to_blood_ratio(40.0)),
        ("weight_kg", lambda: red_marrow_mass_g(Sex.MALE, 800.0)),
        (
            "red_marrow_to_blood_ratio",
            lambda: red_marrow_self_dose(
                TIMES_H, BLOOD_MBQ_PER_ML, sex=Sex.MALE, red_marrow_to_blood_ratio=0.0
            ),
        ),
        ("blood_mbq_per_ml", lambda: red_marrow_self_dose((1.0, 2.0), (0.1, -0.1), sex=Sex.MALE)),
        ("times_h", lambda: red_marrow_self_dose((2.0, 1.0), (0.1, 0.1), sex=Sex.MALE)),
        ("sex", lambda: red_marrow_mass_g("unknown")),  # type: ignore[arg-type]
    ],
)
def test_bad_input_names_field(field: str, call: object) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call()  # type: ignore[operator]


# --- cross-dose from organs and the remainder of the body (dosimetry/marrow_cross_dose.py) ---

# S(RM <- organ) by hand from the OpenDose files' spongiosa rows (mGy/(MBq*s)) and the Cristy
# 1981 active-marrow percentages (sum 99.9). Liver, ICRP 110 AM:
#   cranium 7.6 x 8.3901e-10 = 6.3765e-9, mandible 0.8 x 5.6588e-9 = 4.5270e-9,
#   scapulae 2.8 x 1.7406e-8 = 4.8737e-8, clavicles 0.8 x 1.5250e-8 = 1.2200e-8,
#   sternum 3.1 x 6.4737e-8 = 2.00685e-7, ribs 16.1 x 1.3811e-7 = 2.22357e-6,
#   cervical 3.9 x 4.4848e-9 = 1.7491e-8, thoracic 16.1 x 1.0178e-7 = 1.63866e-6,
#   lumbar 12.3 x 5.3153e-8 = 6.53782e-7, sacrum 9.9 x 6.9422e-9 = 6.8728e-8,
#   pelvis 17.5 x 4.7248e-9 = 8.2684e-8, femora upper 6.7 x 1.0186e-9 = 6.8246e-9,
#   humeri upper 2.3 x 1.0268e-8 = 2.3616e-8; sum 4.987879e-6 / 99.9 = 4.992872e-8.
# The other sources the same way (sums of the 13 products / 99.9):
S_RM_AM = {
    "liver": 4.987879e-6 / 99.9,  # 4.992872e-8
    "spleen": 5.357858e-6 / 99.9,  # 5.363221e-8
    "left_kidney": 5.459684e-6 / 99.9,  # 5.465150e-8
    "right_kidney": 5.873931e-6 / 99.9,  # 5.879811e-8
}
S_RM_AF_SPLEEN = 6.428123e-6 / 99.9  # 6.434558e-8
# TIA [MBq*h] x 3600 s/h x S [mGy/(MBq*s)] / 1000 mGy/Gy
GY_PER_MBQ_H_PER_MGY_PER_MBQ_S = 3.6


@pytest.mark.parametrize(
    ("source", "phantom", "expected"),
    [
        ("liver", "AM", 4.992872e-8),
        ("spleen", "AM", 5.363221e-8),
        ("left_kidney", "AM", 5.465150e-8),
        ("right_kidney", "AM", 5.879811e-8),
        ("spleen", "AF", 6.434558e-8),
    ],
)
def test_marrow_s_values_by_hand(source: str, phantom: Phantom, expected: float) -> None:
    assert marrow_s_value(source, phantom) == pytest.approx(expected, rel=1e-6)


def test_organ_cross_dose_by_hand_without_total_body_s_value() -> None:
    # liver 4000 MBq*h x 4.992872e-8 x 3.6 = 7.189736e-4 Gy; spleen 600 x 5.363221e-8 x 3.6
    # = 1.158456e-4 Gy; total 8.348191e-4 Gy. Remainder TIA = 20000 - 4600 - 300 = 15100 MBq*h
    cross = red_marrow_cross_dose(
        {"liver": 4000.0, "spleen": 600.0},
        total_body_tia_mbq_h=20000.0,
        marrow_tia_mbq_h=300.0,
        phantom="AM",
    )
    assert cross.by_source_gy["liver"] == pytest.approx(7.189736e-4, rel=1e-6)
    assert cross.by_source_gy["spleen"] == pytest.approx(1.158456e-4, rel=1e-6)
    assert cross.total_gy == pytest.approx(8.348191e-4, rel=1e-6)
    assert cross.remainder_of_body_tia_mbq_h == pytest.approx(15100.0)
    # the missing S(RM <- total body) is said, not invented
    assert REMAINDER_OF_BODY not in cross.by_source_gy
    assert any("no S(RM <- total body)" in note and "15100" in note for note in cross.notes)
    assert any("spongiosa" in note and "Cristy 1981" in note for note in cross.notes)


def test_remainder_of_body_s_value_by_hand() -> None:
    # numbers of the order of the MIRD adult male's for 177Lu (mGy/(MBq*s), g):
    # S(RM<-TB) 2.74e-7, m_TB 73700; RM (1.15e-5, 1120), liver (3.09e-8, 1910),
    # spleen (3.67e-8, 183), kidneys (3.35e-8, 299)
    # m_RB = 73700 - 1120 - 1910 - 183 - 299 = 70188 g
    # S(RM<-RB) = (2.74e-7 * 73700 - (1.288e-2 + 5.9019e-5 + 6.7161e-6 + 1.00165e-5)) / 70188
    #           = (2.019380e-2 - 1.2955752e-2) / 70188 = 7.238048e-3 / 70188 = 1.031237e-7
    s_value = remainder_of_body_s_value(
        2.74e-7,
        73700.0,
        {
            "red_marrow": (1.15e-5, 1120.0),
            "liver": (3.09e-8, 1910.0),
            "spleen": (3.67e-8, 183.0),
            "kidneys": (3.35e-8, 299.0),
        },
    )
    assert s_value == pytest.approx(1.031237e-7, rel=1e-6)


def test_electrons_of_the_remainder_never_reach_the_marrow() -> None:
    # analytic: electrons only, S(T <- TB) = E/m_TB for any T, S(RM <- RM) = E/m_RM, organs 0:
    # S(RM <- RB) = (E - E) / m_RB = 0
    energy = 1.0e-3
    s_value = remainder_of_body_s_value(
        energy / 70000.0, 70000.0, {"red_marrow": (energy / 1100.0, 1100.0), "liver": (0.0, 1800.0)}
    )
    assert s_value == pytest.approx(0.0, abs=1e-18)


def test_remainder_cross_dose_with_given_total_body_s_values() -> None:
    # organs as above with the OpenDose AM masses (liver 1799.776 g, spleen 149.968 g):
    # m_RB = 73700 - 1120 - 1799.776 - 149.968 = 70630.256 g
    # S(RM<-RB) = (2.019380e-2 - (1.288e-2 + 4.992872e-8 * 1799.776 + 5.363221e-8 * 149.968))
    #           / 70630.256 = (2.019380e-2 - 1.2977904e-2) / 70630.256 = 1.021644e-7
    # D = 15100 MBq*h x 1.021644e-7 x 3.6 = 5.553656e-3 Gy
    total_body = TotalBodySValues(2.74e-7, 1.15e-5, total_body_mass_g=73700.0, marrow_mass_g=1120.0)
    cross = red_marrow_cross_dose(
        {"liver": 4000.0, "spleen": 600.0},
        total_body_tia_mbq_h=20000.0,
        marrow_tia_mbq_h=300.0,
        phantom="AM",
        total_body=total_body,
    )
    assert cross.by_source_gy[REMAINDER_OF_BODY] == pytest.approx(5.553656e-3, rel=1e-5)
    assert cross.total_gy == pytest.approx(8.348191e-4 + 5.553656e-3, rel=1e-5)


def test_total_body_below_the_organs_is_noted_and_taken_as_zero() -> None:
    cross = red_marrow_cross_dose(
        {"liver": 4000.0}, total_body_tia_mbq_h=3000.0, marrow_tia_mbq_h=100.0, phantom="AM"
    )
    assert cross.remainder_of_body_tia_mbq_h == 0.0
    assert any("-1100" in note and "taken as 0" in note for note in cross.notes)


@pytest.mark.parametrize(
    ("field", "call"),
    [
        (
            "organ_tia_mbq_h",
            lambda: red_marrow_cross_dose(
                {"liver": -1.0}, total_body_tia_mbq_h=1.0, marrow_tia_mbq_h=0.0, phantom="AM"
            ),
        ),
        (
            "source",
            lambda: red_marrow_cross_dose(
                {"tumour_1": 1.0}, total_body_tia_mbq_h=1.0, marrow_tia_mbq_h=0.0, phantom="AM"
            ),
        ),
        ("phantom", lambda: marrow_s_value("liver", "AX")),  # type: ignore[arg-type]
        (
            "total_body_mass_g",
            lambda: remainder_of_body_s_value(1e-7, 1000.0, {"red_marrow": (1e-5, 1000.0)}),
        ),
        (
            "total_body",
            lambda: red_marrow_cross_dose(
                {"liver": 1.0},
                total_body_tia_mbq_h=10.0,
                marrow_tia_mbq_h=0.0,
                phantom="AM",
                total_body=TotalBodySValues(1e-9, 1e-5, 73700.0, 1120.0),
            ),
        ),
    ],
)
def test_bad_cross_dose_input_names_field(field: str, call: object) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call()  # type: ignore[operator]


def test_compute_dosimetry_adds_the_cross_dose(phantom_64: tuple[Path, dict[str, Any]]) -> None:
    # blood 0.001 MBq/mL clearing with T_eff 30 h: self-dose 0.001 * 30 / ln2 * 0.0853063
    # = 0.0036923 Gy (RMBLR 1, the mass cancels); cross-dose: each organ's fitted TIA x the hand
    # S values x 3.6; the remainder of the body = the phantom's background (mono: a0 * T / ln2)
    # plus the tumours (no marrow S value) minus the marrow's TIA
    folder, truth = phantom_64
    times = (0.1, 1.0, 4.0, 24.0, 96.0, 168.0)
    blood = tuple(0.001 * 0.5 ** (t / 30.0) for t in times)
    samples = BloodSamples(times, blood, weight_kg=73.0, sex=Sex.MALE)
    result = compute_dosimetry(
        load_study(folder, declared_aligned=True), method="organ", blood_samples=samples
    )
    marrow = result.vois["red_marrow"]
    assert marrow.local_deposition_dose_gy == pytest.approx(0.0036923, rel=1e-3)
    cross_gy = sum(
        result.vois[organ].tia_mbq_h * s_value * GY_PER_MBQ_H_PER_MGY_PER_MBQ_S
        for organ, s_value in S_RM_AM.items()
    )
    assert marrow.dose_gy == pytest.approx(0.0036923 + cross_gy, rel=1e-3)
    assert marrow.dose_gy_per_gbq == pytest.approx(marrow.dose_gy / 7.4, rel=1e-9)
    summary = next(note for note in result.notes if "self-dose" in note)
    assert "+ cross-dose" in summary
    assert "liver" in summary
    remainder_note = next(note for note in result.notes if "remainder of body" in note)
    found = re.search(r"TIA ([0-9.e+]+) MBq\*h", remainder_note)
    assert found is not None
    reported = float(found.group(1))
    background = truth["background"]
    expected = (
        background["a0_mbq"] * background["effective_half_life_h"] / LN2
        + sum(truth["vois"][f"tumour_{i}"]["tia_mbq_h"] for i in (1, 2, 3))
        - marrow.tia_mbq_h
    )
    assert reported == pytest.approx(expected, rel=0.02)


def test_a_female_patient_gets_the_af_phantom(phantom_64: tuple[Path, dict[str, Any]]) -> None:
    # the spleen's part in the notes: its fitted TIA x the AF S value by hand x 3.6
    times = (0.1, 1.0, 4.0, 24.0, 96.0, 168.0)
    samples = BloodSamples(times, tuple(0.001 * 0.5 ** (t / 30.0) for t in times), sex=Sex.FEMALE)
    result = compute_dosimetry(
        load_study(phantom_64[0], declared_aligned=True), method="organ", blood_samples=samples
    )
    summary = next(note for note in result.notes if "self-dose" in note)
    found = re.search(r"spleen ([0-9.e-]+)", summary)
    assert found is not None
    spleen_gy = result.vois["spleen"].tia_mbq_h * S_RM_AF_SPLEEN * GY_PER_MBQ_H_PER_MGY_PER_MBQ_S
    assert float(found.group(1)) == pytest.approx(spleen_gy, rel=1e-3)
    assert any("OpenDose AF spongiosa" in note for note in result.notes)
