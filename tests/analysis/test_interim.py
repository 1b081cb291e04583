"""Interim monitoring: the log-rank Z and its sign, the drift, the conditional power (Lan &
Wittes 1988) by hand, the boundary at the observed information fraction, refusals, the boundary
plot and the report wiring."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from startrt.analysis.endpoints import survival_endpoints
from startrt.analysis.interim import (
    allocation_of,
    boundary_figure,
    conditional_power,
    design_drift,
    interim_look,
    interim_looks,
    log_rank_z,
)
from startrt.analysis.power import DesignAssumptions
from startrt.analysis.report import build_report
from startrt.analysis.trial_protocol import protocol_of
from startrt.validation import InvalidInputError
from support.datasets import report_dataset


def test_log_rank_z_by_hand_and_its_sign() -> None:
    # standard: events on days 1 and 3; personalized: an event on day 2, censored on day 4.
    # day 1: 4 at risk, 2 personalized, 1 event (standard): E = 2/4, V = 1/4
    # day 2: 3 at risk, 2 personalized, 1 event (personalized): E = 2/3, V = (2/3)(1/3) = 2/9
    # day 3: 2 at risk, 1 personalized, 1 event (standard): E = 1/2, V = 1/4
    # O = 1, E = 5/3, V = 13/18: Z = (5/3 - 1) / sqrt(13/18) = 0.784465 > 0 (personalized
    # had fewer events than expected)
    time, event, personalized = [1, 3, 2, 4], [1, 1, 1, 0], [0, 0, 1, 1]
    assert log_rank_z(time, event, personalized) == pytest.approx(
        (2 / 3) / math.sqrt(13 / 18), rel=1e-12
    )
    assert log_rank_z(time, event, [1, 1, 0, 0]) == pytest.approx(-(2 / 3) / math.sqrt(13 / 18))


def test_design_drift_by_hand() -> None:
    # HR 0.70, D = 247, 1:1: -ln(0.7) = 0.3566749; sqrt(247 x 0.25) = sqrt(61.75) = 7.8581168
    assert design_drift(0.70, 247) == pytest.approx(0.3566749 * 7.8581168, rel=1e-6)
    # Schoenfeld's events make the drift z_alpha/2 + z_beta (1.959964 + 0.841621), up to rounding
    assert design_drift(0.70, 247) == pytest.approx(1.959964 + 0.841621, abs=0.002)
    # 2:1 towards personalized: p (1 - p) = 2/9
    assert design_drift(0.5, 90, 2 / 3) == pytest.approx(math.log(2) * math.sqrt(20.0))


def test_conditional_power_by_hand() -> None:
    # Z = 1.5 at t = 0.5, final boundary 2.0: B = 1.5 sqrt(0.5) = 1.0606602
    # design drift 2.8: (2.0 - 1.0606602 - 2.8 x 0.5) / sqrt(0.5) = -0.4606602 / 0.7071068
    #   = -0.6514719; CP = Phi(0.6514719) = 0.742629
    assert conditional_power(1.5, 0.5, 2.8, 2.0) == pytest.approx(0.742629, abs=1e-6)
    # current trend: drift B / t = 2.1213203; (2.0 - 1.0606602 - 1.0606602) / 0.7071068
    #   = -0.1715729; CP = Phi(0.1715729) = 0.568113
    assert conditional_power(1.5, 0.5, 1.0606602 / 0.5, 2.0) == pytest.approx(0.568113, abs=1e-6)
    # no drift, Z = 0 at t = 0.75, final 1.96: 1 - Phi(1.96 / 0.5) = 1 - Phi(3.92) = 4.43e-5
    # (1 - Phi(x) = erfc(x / sqrt 2) / 2)
    tail = 0.5 * math.erfc(3.92 / math.sqrt(2.0))
    assert tail == pytest.approx(4.43e-5, rel=1e-2)
    assert conditional_power(0.0, 0.75, 0.0, 1.96) == pytest.approx(tail, rel=1e-9)


def test_two_look_boundary_at_half_information() -> None:
    """HR 0.65, power 0.8: Schoenfeld's D = 170 (4 (1.959964 + 0.841621)^2 / ln(0.65)^2 =
    169.2, rounded up); 85 events are t = 0.5. The Lan-DeMets O'Brien-Fleming two-look
    boundaries at t = 0.5 and 1 (two-sided 0.05) are 2.963 and 1.969 (Jennison & Turnbull
    2000, table 2.7 family; gsDesign sfLDOF: 2.9626, 1.9686)."""
    look = interim_look(2.5, 85, 0.65, power=0.8)
    assert look.required_events == 170
    assert look.information_fraction == 0.5
    assert look.z_boundary == pytest.approx(2.9626, abs=2e-4)
    assert look.z_final == pytest.approx(1.9686, abs=2e-4)
    assert look.crosses is False
    assert look.b_value == pytest.approx(2.5 * math.sqrt(0.5))
    assert look.drift_trend == pytest.approx(2.5 / math.sqrt(0.5))
    # CP under the trend: (1.9686 - 2.5 / sqrt(0.5)) / sqrt(0.5) = (1.9686 - 3.5355) / 0.7071
    # = -2.2160 -> Phi(2.2160) = 0.98666
    assert look.conditional_power_trend == pytest.approx(0.98666, abs=2e-4)
    assert interim_look(3.0, 85, 0.65).crosses is True
    assert interim_look(-3.0, 85, 0.65).crosses is True  # two-sided: favours standard


def test_information_complete_is_the_final_analysis() -> None:
    look = interim_look(2.1, 209, 0.60)  # D = 121
    assert look.information_fraction > 1.0
    assert look.z_boundary == look.z_final == pytest.approx(1.959964, abs=1e-6)
    assert look.crosses is True
    assert look.conditional_power_design is None
    assert look.conditional_power_trend is None
    assert "final analysis" in look.note


def test_too_early_for_a_boundary_still_gives_conditional_power() -> None:
    # t = 1 / 380: the boundary would be near 2.2414 / sqrt(t) = 44, beyond any Z
    look = interim_look(0.5, 1, 0.75)
    assert look.z_boundary is None
    assert look.crosses is None
    assert "no interim boundary" in look.note
    assert look.z_final == pytest.approx(1.959964, abs=1e-6)
    assert look.conditional_power_design is not None


def test_conditional_power_under_the_trend_is_that_of_drift_b_over_t() -> None:
    look = interim_look(1.2, 100, 0.70)
    t = look.information_fraction
    assert look.conditional_power_trend == pytest.approx(
        conditional_power(1.2, t, 1.2 * math.sqrt(t) / t, look.z_final), rel=1e-12
    )
    assert look.conditional_power_design == pytest.approx(
        conditional_power(1.2, t, look.drift_design, look.z_final), rel=1e-12
    )


@given(
    st.floats(-4, 4),
    st.floats(0.01, 4),
    st.floats(0.05, 0.95),
    st.floats(-2, 5),
)
def test_conditional_power_increases_with_z(z: float, step: float, t: float, drift: float) -> None:
    lower = conditional_power(z, t, drift, 1.96)
    higher = conditional_power(z + step, t, drift, 1.96)
    assert higher >= lower
    assert 0.0 <= lower <= 1.0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ((1.0, 1.0, 2.8, 1.96), "information_fraction"),
        ((1.0, 0.0, 2.8, 1.96), "information_fraction"),
        ((float("nan"), 0.5, 2.8, 1.96), "z_observed"),
        ((1.0, 0.5, float("inf"), 1.96), "drift"),
        ((1.0, 0.5, 2.8, True), "z_final"),
    ],
)
def test_bad_conditional_power_input_is_refused(arguments: tuple[Any, ...], field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        conditional_power(*arguments)
    assert error.value.field == field


def test_bad_design_input_is_refused() -> None:
    for call, field in (
        (lambda: design_drift(0.0, 100), "hazard_ratio"),
        (lambda: design_drift(0.7, 0), "required_events"),
        (lambda: design_drift(0.7, 100, 1.0), "allocation"),
        (lambda: interim_look(1.0, 0, 0.7), "observed_events"),
        (lambda: interim_look(1.0, 10, 1.0), "hazard_ratio"),
    ):
        with pytest.raises(InvalidInputError) as error:
            call()
        assert error.value.field == field


def test_looks_of_the_report_dataset() -> None:
    """tests/support/datasets.py: 3 PFS events (P02 standard day 107, P05 personalized day 203,
    P07 personalized day 277) among 7 randomized; one look per design (4 HR x 2 powers)."""
    dataset = report_dataset()
    protocol = protocol_of(dataset.protocol).protocol
    assert allocation_of(protocol) == 0.5
    endpoints = survival_endpoints(dataset, protocol)
    looks, reason = interim_looks(endpoints, protocol, DesignAssumptions())
    assert reason == ""
    assert len(looks) == 8
    assert {look.observed_events for look in looks} == {3}
    expected_z = log_rank_z(
        endpoints["pfs_days"], endpoints["pfs_event"], endpoints["arm"] == "personalized"
    )
    assert {look.z_observed for look in looks} == {expected_z}
    none = endpoints.assign(pfs_event=False)
    assert interim_looks(none, protocol, DesignAssumptions()) == (
        [],
        "no interim look: no event with both groups at risk",
    )


def test_boundary_plot_and_report() -> None:
    looks = [interim_look(1.0, 60, 0.70), interim_look(1.0, 60, 0.75)]
    drawn = boundary_figure(looks, 0.05)
    for text in ("boundary: favours personalized", "HR 0.7: Z at 60 of 247 events (t = 0.24)"):
        assert text in drawn, text
    report = build_report(report_dataset())
    figure = next(f for f in report.figures if f.name == "interim_boundary")
    table = next(t for t in report.tables if t.name == "interim_monitoring")
    assert figure.section == table.section == "Sample size and power"
    assert len(table.frame) == 8
    assert set(pd.unique(table.frame["observed_events"])) == {3}
    assert np.all(table.frame["information_fraction"] == 3 / table.frame["required_events"])
