"""Replicate trials: the same numbers whatever the chunking or scheduler; the log-rank test's
rejection rate is alpha when the arms do not differ; the operating characteristics."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import pytest
from dask.distributed import LocalCluster

from startrt.protocol.definition import Protocol
from startrt.simulation.distributed import run_distributed
from startrt.simulation.parameters import Parameters
from startrt.simulation.replicates import operating_characteristics, run_replicates
from startrt.validation import InvalidInputError

Edit = Callable[..., Parameters]


def test_chunking_does_not_change_the_numbers(small: Parameters) -> None:
    one_chunk = run_replicates(small, 3, 5, chunk_size=5)
    pd.testing.assert_frame_equal(run_replicates(small, 3, 5, chunk_size=1), one_chunk)
    pd.testing.assert_frame_equal(run_replicates(small, 3, 5, chunk_size=2), one_chunk)
    assert list(one_chunk["replicate"]) == [0, 1, 2, 3, 4]
    assert one_chunk["log_hazard_ratio"].nunique() == 5  # replicates differ
    other_seed = run_replicates(small, 4, 5)
    assert not other_seed["log_hazard_ratio"].equals(one_chunk["log_hazard_ratio"])


def test_dask_threads_match_serial(small: Parameters) -> None:
    serial = run_replicates(small, 8, 4)
    dask = run_distributed(small, 8, 4, workers=2, processes=False, chunk_size=1)
    pd.testing.assert_frame_equal(dask, serial)


def test_dask_scheduler_address_matches_serial(small: Parameters) -> None:
    serial = run_replicates(small, 8, 3)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        dask = run_distributed(small, 8, 3, scheduler=address, chunk_size=2)
    pd.testing.assert_frame_equal(dask, serial)


@pytest.mark.slow
def test_dask_process_cluster_matches_serial(small: Parameters) -> None:
    serial = run_replicates(small, 9, 6, chunk_size=6)
    dask = run_distributed(small, 9, 6, workers=2, processes=True, chunk_size=2)
    pd.testing.assert_frame_equal(dask, serial)


def test_operating_characteristics(small: Parameters, protocol: Protocol) -> None:
    table = run_replicates(small, 1, 6)
    summary = operating_characteristics(table, small, protocol, 1)
    assert summary["replicates"] == 6
    assert summary["power"] == pytest.approx(table["reject"].mean())
    assert summary["power_mc_se"] == pytest.approx(
        math.sqrt(summary["power"] * (1 - summary["power"]) / 6)
    )
    groups = summary["groups"]
    assert set(groups) == {"standard", "personalized", "dTOC", "CAP-dTOC"}
    patients = groups["standard"]["patients"]["mean"] + groups["personalized"]["patients"]["mean"]
    assert patients == 60
    assert groups["personalized"]["cycles"]["mean"] > groups["standard"]["cycles"]["mean"]
    assert summary["hazard_ratio"]["q025"] <= summary["hazard_ratio"]["median"]


def test_bad_run_arguments(small: Parameters) -> None:
    with pytest.raises(InvalidInputError, match="replicates"):
        run_replicates(small, 1, 0)
    with pytest.raises(InvalidInputError, match="seed"):
        run_replicates(small, -1, 1)
    with pytest.raises(InvalidInputError, match="chunk_size"):
        run_replicates(small, 1, 2, chunk_size=0)


@pytest.mark.slow
def test_type_one_error_is_alpha_without_a_treatment_effect(
    edited: Edit, protocol: Protocol
) -> None:
    """No dose response and no capecitabine effect: PFS does not depend on the arm, so the
    log-rank test should reject in alpha = 5 % of trials. 400 trials of 300 patients: Monte
    Carlo SE sqrt(0.05 x 0.95 / 400) = 0.0109; accept within 3 SE."""
    null = edited(
        (
            "[efficacy.dose_response_exponent]\nvalue = 0.5",
            "[efficacy.dose_response_exponent]\nvalue = 0.0",
        ),
        (
            "[efficacy.capecitabine_hazard_ratio]\nvalue = 0.85",
            "[efficacy.capecitabine_hazard_ratio]\nvalue = 1.0",
        ),
    )
    replicates = 400
    table = run_replicates(null, 20260101, replicates, protocol)
    summary = operating_characteristics(table, null, protocol, 20260101)
    se = math.sqrt(0.05 * 0.95 / replicates)
    assert abs(summary["power"] - 0.05) <= 3 * se
    assert summary["hazard_ratio"]["median"] == pytest.approx(1.0, abs=0.03)
    # p values under the null are uniform: a quarter of them below 0.25 (binomial SE 0.022)
    assert (table["logrank_p"] < 0.25).mean() == pytest.approx(0.25, abs=3 * 0.0217)


@pytest.mark.slow
def test_power_exceeds_alpha_with_the_default_effect(
    parameters: Parameters, protocol: Protocol
) -> None:
    table = run_replicates(parameters, 77, 150, protocol)
    summary = operating_characteristics(table, parameters, protocol, 77)
    assert summary["hazard_ratio"]["median"] < 0.95
    assert summary["power"] > 0.12  # ~0.23 expected; 3 SE (0.034) above alpha at least
