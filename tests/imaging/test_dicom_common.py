"""Shared DICOM helpers: DS strings, quantization slopes, slice spacing, geometry checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.valuerep import DSfloat

from startrt.imaging import dicom_common as dc
from startrt.imaging.volume import Grid
from startrt.validation import InvalidInputError


def test_decimal_strings_fit_sixteen_characters() -> None:
    values = dc.decimal_strings([-307.19999999999993, 1 / 3, 1e-17, 7400000000.0])
    assert all(len(str(value)) <= 16 for value in values)
    assert [float(v) for v in values] == pytest.approx([-307.2, 1 / 3, 1e-17, 7.4e9], rel=1e-12)


def test_slope_is_the_written_value_and_maps_the_peak_to_the_top() -> None:
    slope = dc.slope_for(1234.5678, 65535)
    # 1234.5678 / 65535 = 0.018838...; the float equals its own 16-character DS text
    assert slope == float(DSfloat(slope, auto_format=True))
    assert slope == pytest.approx(0.0188383, rel=1e-6)
    # a quarter of the peak: 65535 / 4 = 16383.75 -> 16384
    stored = dc.quantize(np.array([0.0, 1234.5678 / 4, 1234.5678]), slope, 65535, np.uint16)
    assert stored.tolist() == [0, 16384, 65535]
    assert dc.slope_for(0.0, 65535) == 1.0


def test_even_spacing_refuses_gaps_and_repeats() -> None:
    assert dc.even_spacing(np.array([0.0, 2.5, 5.0, 7.5]), "f") == pytest.approx(2.5)
    with pytest.raises(InvalidInputError, match="evenly spaced"):
        dc.even_spacing(np.array([0.0, 2.5, 7.5]), "f")
    with pytest.raises(InvalidInputError, match="evenly spaced"):
        dc.even_spacing(np.array([0.0, 0.0, 0.0]), "f")


def test_left_handed_grids_are_refused() -> None:
    mirrored = Grid((2, 2, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, -1))
    with pytest.raises(InvalidInputError, match="cross product") as error:
        dc.require_slices_along_normal(mirrored, "volume")
    assert error.value.field == "volume"


def test_malformed_times_name_the_file() -> None:
    with pytest.raises(InvalidInputError, match="malformed") as error:
        dc.parse_datetime("20241340", "101500", Path("a.dcm"), "AcquisitionDate/AcquisitionTime")
    assert error.value.field == "a.dcm"
