"""Red-marrow self-dose by the blood method (Hindorf 2010), worked example by hand."""

from __future__ import annotations

import math

import pytest

from startrt.clinical.sex import Sex
from startrt.dosimetry.marrow import (
    red_marrow_mass_g,
    red_marrow_self_dose,
    sgouros_red_marrow_to_blood_ratio,
)
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
