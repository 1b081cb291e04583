"""Virtual candidates: the drawn distributions reproduce their parameters (fixed seed, within
sampling error), and derived values agree with the clinical code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from startrt.clinical.egfr import cockcroft_gault_crcl_ml_min, lmr_egfr
from startrt.clinical.sex import Sex
from startrt.protocol.definition import Protocol
from startrt.simulation.parameters import GRADES, LogNormal, Parameters, TruncatedNormal
from startrt.simulation.population import (
    Candidates,
    cockcroft_gault,
    draw_candidates,
    draw_lognormal,
    draw_truncated_normal,
    lmr_creatinine_umol_l,
)

N = 40_000


@pytest.fixture(scope="module")
def candidates(parameters: Parameters, protocol: Protocol) -> Candidates:
    return draw_candidates(parameters, protocol.sites, np.random.default_rng(2024), N)


def within_binomial(count: int, n: int, p: float, z: float = 4.0) -> bool:
    return abs(count / n - p) <= z * math.sqrt(p * (1 - p) / n)


def test_lognormal_median_and_cv() -> None:
    spec = LogNormal(median=0.38, cv=0.5, source="REFERENCE.md")
    draws = draw_lognormal(np.random.default_rng(1), spec, 200_000)
    # SE of the log sample median: sqrt(pi/2) sigma / sqrt(n) = 1.2533 * 0.4724 / 447 = 0.0013
    assert math.log(np.median(draws) / 0.38) == pytest.approx(0.0, abs=4 * 0.0013)
    # lognormal mean = median exp(sigma^2 / 2) = 0.38 * sqrt(1.25) = 0.42485
    assert np.mean(draws) == pytest.approx(0.42485, rel=0.01)
    assert np.std(draws) / np.mean(draws) == pytest.approx(0.5, rel=0.03)


def test_truncated_normal_against_scipy() -> None:
    spec = TruncatedNormal(mean=82, sd=18, low=25, high=140, source="assumption")
    draws = draw_truncated_normal(np.random.default_rng(2), spec, 200_000)
    a, b = (25 - 82) / 18, (140 - 82) / 18
    reference = stats.truncnorm(a, b, loc=82, scale=18)
    assert draws.min() >= 25
    assert draws.max() <= 140
    assert np.mean(draws) == pytest.approx(reference.mean(), abs=4 * reference.std() / 447)
    assert np.std(draws) == pytest.approx(reference.std(), rel=0.01)
    assert np.mean(draws < 50) == pytest.approx(reference.cdf(50), abs=0.003)


def test_candidate_shares(candidates: Candidates, parameters: Parameters) -> None:
    population = parameters.population
    assert within_binomial(int(candidates.fdg_positive.sum()), N, population.fdg_positive_share.p)
    assert within_binomial(int(candidates.female.sum()), N, population.female_share.p)
    for level, p in population.grade.probabilities.items():
        count = int(np.sum(candidates.grade == GRADES.index(level) + 1))
        assert within_binomial(count, N, p), level
    for level, p in population.krenning_score.probabilities.items():
        assert within_binomial(int(np.sum(candidates.krenning_score == int(level))), N, p)
    assert within_binomial(int(np.sum(candidates.site == 0)), N, 0.25)


def test_candidate_doses(candidates: Candidates, parameters: Parameters) -> None:
    dosimetry = parameters.dosimetry
    kidney = LogNormal(
        median=dosimetry.kidney.median_gy_per_gbq, cv=dosimetry.kidney.cv, source="the prior"
    )
    for values, spec in (
        (candidates.kidney_gy_per_gbq, kidney),
        (candidates.tumour_gy_per_gbq, dosimetry.tumour_gy_per_gbq),
        (candidates.marrow_gy_per_gbq, dosimetry.marrow_gy_per_gbq),
    ):
        log = np.log(values)
        assert np.median(values) == pytest.approx(spec.median, rel=4 * 1.26 * spec.sigma / 200)
        assert np.std(log) == pytest.approx(spec.sigma, rel=0.02)
    half_life = candidates.value("kidney_half_life")
    assert np.median(half_life) == pytest.approx(50.0, rel=0.01)
    assert np.all(half_life * 10 == np.round(half_life * 10))


def test_labs_at_reporting_precision(candidates: Candidates, parameters: Parameters) -> None:
    leukocytes = candidates.value("leukocytes")
    assert np.array_equal(leukocytes, candidates.leukocytes / 10)
    assert np.all(candidates.neutrophils <= candidates.leukocytes)
    assert np.median(candidates.platelets) == pytest.approx(240, rel=0.01)
    hb = parameters.population.hemoglobin_g_l
    assert candidates.hemoglobin_g_l.min() >= hb.low
    assert candidates.hemoglobin_g_l.max() <= hb.high
    assert np.mean(candidates.gfr_true) == pytest.approx(
        stats.truncnorm((25 - 82) / 18, (140 - 82) / 18, loc=82, scale=18).mean(), abs=0.4
    )


def test_creatinine_inverts_lmr() -> None:
    rng = np.random.default_rng(3)
    female = rng.random(500) < 0.5
    age = rng.integers(30, 89, 500).astype(np.float64)
    gfr = rng.uniform(25, 140, 500)
    creatinine = lmr_creatinine_umol_l(female, age, gfr)
    valid = creatinine >= 10  # old candidates with a very high GFR have no such creatinine
    assert valid.mean() > 0.9
    for f, a, c, g in zip(female[valid], age[valid], creatinine[valid], gfr[valid], strict=True):
        sex = Sex.FEMALE if f else Sex.MALE
        assert lmr_egfr(sex, float(a), float(c)) == pytest.approx(g, rel=1e-9)


def test_cockcroft_gault_equals_the_clinical_function_bit_for_bit() -> None:
    rng = np.random.default_rng(4)
    female = rng.random(2000) < 0.5
    age = rng.integers(18, 95, 2000)
    weight = rng.integers(40, 150, 2000)
    creatinine = rng.integers(30, 400, 2000)
    vectorised = cockcroft_gault(female, age, weight, creatinine)
    for i in range(2000):
        sex = Sex.FEMALE if female[i] else Sex.MALE
        exact = cockcroft_gault_crcl_ml_min(
            sex, float(age[i]), float(weight[i]), float(creatinine[i])
        )
        assert vectorised[i] == exact


def test_candidates_crcl_is_their_cockcroft_gault(candidates: Candidates) -> None:
    recomputed = cockcroft_gault(
        candidates.female, candidates.age_years, candidates.weight_kg, candidates.creatinine_umol_l
    )
    assert np.array_equal(recomputed, candidates.crcl_ml_min)


def test_same_stream_same_candidates(parameters: Parameters, protocol: Protocol) -> None:
    first = draw_candidates(parameters, protocol.sites, np.random.default_rng(9), 50)
    again = draw_candidates(parameters, protocol.sites, np.random.default_rng(9), 50)
    other = draw_candidates(parameters, protocol.sites, np.random.default_rng(10), 50)
    assert np.array_equal(first.kidney_gy_per_gbq, again.kidney_gy_per_gbq)
    assert np.array_equal(first.platelets, again.platelets)
    assert not np.array_equal(first.kidney_gy_per_gbq, other.kidney_gy_per_gbq)
