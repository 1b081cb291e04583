"""Kidney-dose uncertainties in the record (issue 13): entered with the doses (services, API and
page), stored, read by the planner, whose proposal states the risk figures on the course page;
impossible uncertainties are refused naming the field and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from startrt.validation import InvalidInputError
from startrt.web.pages.templatetags.startrt_format import percent
from startrt.web.treatment import services
from startrt.web.treatment.models import DosimetryResult
from startrt.web.trial.models import Patient
from web.test_pages_treatment import signed_in
from web.test_treatment import Sites, Staff, give, planned_cycle, randomized

PAGE = "/patients/S01-LUN-001/treatment/"
WITH_UNCERTAINTY: dict[str, Any] = {
    "left_kidney_dose_gy": 4.0,
    "right_kidney_dose_gy": 5.0,
    "left_kidney_dose_sd_gy": 0.4,
    "right_kidney_dose_sd_gy": 0.5,
    "kidney_dose_sd_systematic_share": 0.6,
}


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    return randomized(team, sites, 1)


def test_uncertainties_are_stored_read_by_the_planner_and_shown(
    team: Staff, patient: Patient
) -> None:
    cycle = give(team, planned_cycle(team, patient), 7.5)
    services.record_dosimetry(team["physicist"], cycle, **WITH_UNCERTAINTY)
    stored = DosimetryResult.objects.get(cycle=cycle)
    assert (stored.left_kidney_dose_sd_gy, stored.right_kidney_dose_sd_gy) == (0.4, 0.5)
    assert stored.kidney_dose_sd_systematic_share == 0.6
    proposal = services.propose_next_cycle(team["physicist"], patient)
    plan = proposal.plan
    read = plan["inputs"]["cycles"][0]
    assert (read["left_kidney_dose_sd_gy"], read["right_kidney_dose_sd_gy"]) == (0.4, 0.5)
    assert plan["kidney_dose_uncertainty"] == "each dose's own standard uncertainty"
    # 4.5 Gy after cycle 1 at 0.6 Gy/GBq: the next full cycle lands near 9 Gy, far below 30
    low, high = plan["predicted_cumulative_kidney_gy_interval"]
    assert low < 9.0 < high < 30.0
    assert plan["probability_over_limit"] < 0.01
    assert plan["remaining_kidney_budget_gy"] == pytest.approx(25.5)
    physicist = signed_in(Client(), team["physicist"])
    html = physicist.get(f"{PAGE}cycles/1/").content.decode()
    assert "4.00 ± 0.40 Gy" in html
    assert "5.00 ± 0.50 Gy" in html
    html = physicist.get(f"{PAGE}cycles/2/").content.decode()  # the proposal for cycle 2
    assert "Uncertainty the kidney-dose model used: each dose&#x27;s own standard" in html
    assert f"true cumulative {low:.2f}–{high:.2f} Gy (90 % interval)" in html
    assert "Cumulative mean-kidney dose 4.50 Gy of 30 Gy" in html


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("left_kidney_dose_sd_gy", -0.1),
        ("right_kidney_dose_sd_gy", 80.0),
        ("kidney_dose_sd_systematic_share", 1.5),
        ("left_kidney_dose_sd_gy", float("nan")),
        ("left_kidney_dose_sd_gy", 50.000001),  # just past the 50 Gy bound
        ("kidney_dose_sd_systematic_share", -1e-9),
    ],
)
def test_impossible_uncertainties_are_refused_and_nothing_is_written(
    team: Staff, patient: Patient, field: str, value: float
) -> None:
    cycle = give(team, planned_cycle(team, patient), 7.5)
    with pytest.raises(InvalidInputError) as refused:
        services.record_dosimetry(team["physicist"], cycle, **{**WITH_UNCERTAINTY, field: value})
    assert field in str(refused.value)
    assert not DosimetryResult.objects.filter(cycle=cycle).exists()


def test_the_api_takes_and_returns_the_uncertainties(team: Staff, patient: Patient) -> None:
    give(team, planned_cycle(team, patient), 7.5)
    client = Client()
    client.force_login(team["physicist"])
    url = "/api/patients/S01-LUN-001/cycles/1/dosimetry"
    response = client.post(url, WITH_UNCERTAINTY, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["left_kidney_dose_sd_gy"] == 0.4
    assert body["kidney_dose_sd_systematic_share"] == 0.6


@pytest.mark.parametrize(
    ("probability", "shown"),
    [(0.0412, "4.1 %"), (0.0005, "0.1 %"), (0.0004, "< 0.1 %"), (0.0, "< 0.1 %"), (None, "—")],
)
def test_probabilities_read_as_percentages(probability: float | None, shown: str) -> None:
    assert percent(probability) == shown


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("left_kidney_dose_sd_gy", 0.0),
        ("right_kidney_dose_sd_gy", 50.0),
        ("kidney_dose_sd_systematic_share", 0.0),
        ("kidney_dose_sd_systematic_share", 1.0),
    ],
)
def test_uncertainties_at_their_exact_bounds_are_stored(
    team: Staff, patient: Patient, field: str, value: float
) -> None:
    cycle = give(team, planned_cycle(team, patient), 7.5)
    services.record_dosimetry(team["physicist"], cycle, **{**WITH_UNCERTAINTY, field: value})
    assert getattr(DosimetryResult.objects.get(cycle=cycle), field) == value
