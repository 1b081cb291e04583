"""The parameter file: every distribution has a source, bad files name the field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from startrt.simulation.parameters import (
    LogNormal,
    Parameters,
    default_parameters_text,
    load_parameters,
    parse_parameters,
)
from startrt.validation import InvalidInputError


def _sources(data: object, path: str = "", inherited: str = "") -> list[tuple[str, str]]:
    """(path, source) of every TOML table holding numbers; a mapping of numbers (levels,
    grades) takes the source of the table it sits in."""
    found: list[tuple[str, str]] = []
    if isinstance(data, dict):
        source = str(data.get("source", data.get("site_source", inherited)))
        if path and any(isinstance(value, int | float) for value in data.values()):
            found.append((path, source))
        for key, value in data.items():
            found.extend(_sources(value, f"{path}.{key}".strip("."), source))
    return found


def test_every_parameter_table_names_a_source_or_assumption() -> None:
    tables = _sources(tomllib.loads(default_parameters_text()))
    assert len(tables) > 40
    for path, source in tables:
        assert "REFERENCE.md" in source or "assumption" in source or "PROTOCOL.md" in source, path


def test_shipped_values_from_reference(parameters: Parameters) -> None:
    # REFERENCE.md: DOTATOC kidney median 0.38 Gy/GBq, CV ~50 %; drift 8 %/cycle (LUMEN);
    # tumour fall 6 % G1 / 14 % G2 (Sjogreen Gleisner 2022); marrow ~67 mGy/GBq.
    dosimetry = parameters.dosimetry
    kidney = dosimetry.kidney  # the planner's population prior, protocol/data
    assert (kidney.median_gy_per_gbq, kidney.cv, kidney.rise_per_cycle) == (0.38, 0.5, 0.08)
    assert (kidney.cycle_cv, kidney.measurement_cv, kidney.systematic_share) == (0.1, 0.07, 0.5)
    assert dosimetry.tumour_fall_per_cycle.of("G1") == 0.06
    assert dosimetry.tumour_fall_per_cycle.of("G2") == 0.14
    assert dosimetry.marrow_gy_per_gbq.median == 0.067
    assert parameters.trial.patients == 300


def test_lognormal_sigma_from_cv() -> None:
    # sigma = sqrt(ln(1 + 0.5^2)) = sqrt(ln 1.25) = 0.472381 (by hand)
    spec = LogNormal(median=0.38, cv=0.5, source="x")
    assert spec.sigma == pytest.approx(0.4723807, rel=1e-6)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("median = 0.067\ncv = 0.30", "median = 0.067\ncv = -0.5", "marrow_gy_per_gbq.cv"),
        ("median = 0.067\ncv = 0.30", "median = 0\ncv = 0.30", "marrow_gy_per_gbq.median"),
        (
            "[dosimetry.tumour_gy_per_gbq]",
            "[dosimetry.kidney_measurement_systematic_share]\nvalue = 1.5\nsource = 'x'\n\n"
            "[dosimetry.tumour_gy_per_gbq]",
            "dosimetry",
        ),
        ('"0" = 0.55, "1" = 0.40', '"0" = 0.75, "1" = 0.40', "population.ecog"),
        ("patients = 300", "patients = 1", "trial.patients"),
        ("[analysis]\nalpha = 0.05", "[analysis]\nalpha = 1.5", "analysis.alpha"),
        ('logrank_strata = "fdg"', 'logrank_strata = "site"', "analysis.logrank_strata"),
        ("value = 5.5", "value = 0.5", "efficacy"),
        ("G1 = 0.7, G2 = 1.0, G3 = 2.0", "G1 = 0.7, G2 = 1.0", "efficacy.grade_hazard_ratio"),
        ("[kidney.egfr_lln]\nvalue = 90.0", "[kidney.egfr_lln]\nvalue = 90.0\nunit = 1", "unit"),
    ],
)
def test_bad_parameter_names_the_field(old: str, new: str, field: str) -> None:
    text = default_parameters_text()
    assert old in text
    with pytest.raises(InvalidInputError) as caught:
        parse_parameters(text.replace(old, new))
    assert field in str(caught.value)


def test_missing_table_and_source_refused() -> None:
    text = default_parameters_text()
    without = text.replace("source = \"REFERENCE.md 'Published figures': tumour dose", "x = (")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        parse_parameters(without)
    start = text.index("[resources.inpatient_days_per_cycle]")
    end = text.index("[resources.standard_arm_spect_sessions_per_cycle]")
    with pytest.raises(InvalidInputError, match=r"resources\.inpatient_days_per_cycle"):
        parse_parameters(text[:start] + text[end:])
    empty_source = text.replace('value = 0.02\nsource = "assumption"', 'value = 0.02\nsource = ""')
    with pytest.raises(InvalidInputError, match=r"death_before_progression_per_year\.source"):
        parse_parameters(empty_source)


def test_load_from_file_and_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(default_parameters_text().replace("patients = 300", "patients = 120"))
    assert load_parameters(path).trial.patients == 120
    with pytest.raises(InvalidInputError, match="parameters"):
        load_parameters(tmp_path / "missing.toml")
    path.write_text(default_parameters_text().replace("cv = 0.30\nsource", "cv = 9\nsource", 1))
    with pytest.raises(InvalidInputError, match=r"population\.platelets_10e9_l\.cv.*mine\.toml"):
        load_parameters(path)


def test_a_file_may_override_the_kidney_prior() -> None:
    text = default_parameters_text().replace(
        "[dosimetry.tumour_gy_per_gbq]",
        "[dosimetry.kidney_gy_per_gbq]\nmedian = 0.5\ncv = 0.3\nsource = 'what if'\n\n"
        "[dosimetry.kidney_cycle_cv]\nvalue = 0.2\nsource = 'what if'\n\n"
        "[dosimetry.tumour_gy_per_gbq]",
    )
    kidney = parse_parameters(text).dosimetry.kidney
    assert (kidney.median_gy_per_gbq, kidney.cv, kidney.cycle_cv) == (0.5, 0.3, 0.2)
    assert (kidney.rise_per_cycle, kidney.measurement_cv) == (0.08, 0.07)  # the prior's
