"""Outcome models against values computed by hand (default parameters)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from startrt.dosimetry.bed import bed_mono_exponential_gy
from startrt.protocol.definition import Protocol
from startrt.simulation.outcomes import (
    HazardClock,
    PfsModel,
    bed_per_gy2,
    exponential_days,
    gfr_at,
    linear_predictor,
    response_probability,
    survival_after_progression_days,
)
from startrt.simulation.parameters import Parameters


def test_dose_multiplier(parameters: Parameters) -> None:
    model = PfsModel.of(parameters)
    # q = 5.5^(-1/0.5) = 1/30.25; D0 = q 70 / (1 - q) = 2.39316 Gy
    assert model.offset_dose_gy == pytest.approx(2.39316, rel=1e-5)
    m = model.dose_multiplier(np.array([70.0, 0.0, 140.0]))
    # m(D_ref) = 1; m(0) = 5.5 (untreated); m(140) = (142.39316 / 72.39316)^-0.5 = 0.71302
    assert m == pytest.approx([1.0, 5.5, 0.71302], rel=1e-5)


def test_weibull_scale_from_median(parameters: Parameters) -> None:
    model = PfsModel.of(parameters)
    # median 38 months = 1156.625 days; scale = 1156.625 / ln(2)^(1/1.2) = 1569.777 days
    assert model.scale_days == pytest.approx(1569.777, rel=1e-6)
    assert model.cumulative(np.array([1156.625])) == pytest.approx([math.log(2.0)])


def test_hazard_clock_constant_and_piecewise(parameters: Parameters) -> None:
    model = PfsModel.of(parameters)
    clock = HazardClock(
        model,
        relative=np.ones(2),
        remaining=np.array([math.log(2.0), 1.0]),
        time_days=np.zeros(2),
        progression_days=np.full(2, math.inf),
    )
    # patient 0: multiplier 1 throughout -> progression at the reference median
    event = clock.advance(np.array([0, 1]), np.array([200.0, 300.0]), np.array([1.0, 2.0]))
    assert list(event) == [False, False]
    # patient 1: 2 x (300 / 1569.777)^1.2 = 2 x 0.137259 = 0.274517 of its Exp(1) draw used
    # by day 300; then H_ref(t) = 0.137259 + 0.725483 = 0.862741 ->
    # t = 1569.777 x 0.862741^(1/1.2) = 1388.050 days
    assert clock.remaining[1] == pytest.approx(0.725483, rel=1e-5)
    clock.finish(np.array([0, 1]), np.array([1.0, 1.0]))
    assert clock.progression_days == pytest.approx([1156.625, 1388.050], rel=1e-6)


def test_hazard_clock_event_within_interval(parameters: Parameters) -> None:
    model = PfsModel.of(parameters)
    clock = HazardClock(
        model, np.ones(1), np.array([math.log(2.0)]), np.zeros(1), np.array([np.inf])
    )
    assert clock.advance(np.array([0]), np.array([2000.0]), np.array([1.0]))[0]
    assert clock.progression_days[0] == pytest.approx(1156.625, rel=1e-9)


def test_linear_predictor(parameters: Parameters) -> None:
    # FDG+ 2.5 x G3 2.0 x capecitabine 0.85 = 4.25; FDG- G1 no capecitabine: 0.7
    ratio = linear_predictor(
        parameters, np.array([True, False]), np.array([3, 1]), np.array([True, False])
    )
    assert ratio == pytest.approx([4.25, 0.7])


def test_response_probability(parameters: Parameters) -> None:
    p = response_probability(
        parameters, np.array([70.0, 140.0, 70.0, 0.0]), np.array([False, False, True, False])
    )
    # logit(0.16) = -1.658228; + ln 2 -> 0.27586; FDG+ odds 0.190476 x 0.5 -> 0.086957
    assert p == pytest.approx([0.16, 0.27586, 0.086957, 0.0], rel=1e-4)


def test_bed_factor(protocol: Protocol) -> None:
    # l = ln2 / 50 = 0.0138629, mu = ln2 / 2.8 = 0.247553, G = l / (mu + l) = 0.0530298,
    # q = G / 2.6 = 0.0203961
    limit = protocol.renal_limit  # alpha/beta 2.6 Gy, repair half-time 2.8 h
    q = bed_per_gy2(np.array([50.0, 50.0, 30.0]), limit)
    assert q[0] == pytest.approx(0.0203961, rel=1e-5)
    dose = 4.0
    assert dose + q[2] * dose**2 == pytest.approx(bed_mono_exponential_gy(dose, 30.0, 2.6, 2.8))


def test_gfr_decline(parameters: Parameters) -> None:
    # 80 exp(-(0.01 x 1 + 0.002 x 30 x 1)) = 80 exp(-0.07) = 80 x 0.9323938 = 74.5915
    gfr = gfr_at(parameters, np.array([80.0]), np.array([365.25]), np.array([30.0]), np.zeros(1))
    assert gfr == pytest.approx([74.5915], rel=1e-5)
    # the same BED given half a year in: exposure 30 Gy x 0.5 years
    later = gfr_at(
        parameters, np.array([80.0]), np.array([365.25]), np.array([30.0]), np.array([30 * 182.625])
    )
    assert later == pytest.approx([80 * math.exp(-0.01 - 0.002 * 15)], rel=1e-12)


def test_event_times(parameters: Parameters) -> None:
    # Exp(1) draw 1 at 0.02 / year -> 50 years; ln 2 after progression -> the 24-month median
    assert exponential_days(np.array([1.0]), 0.02) == pytest.approx([18262.5])
    assert np.isinf(exponential_days(np.array([1.0]), 0.0)).all()
    assert survival_after_progression_days(parameters, np.array([math.log(2)])) == pytest.approx(
        [730.5]
    )
