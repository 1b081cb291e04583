"""The registry of protocol versions: the version in force on a date, and the decisions made
on that date under it (START-01 v1.0 from 2022-11-01, a test amendment v1.1 from 2025-03-01)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from startrt.protocol.definition import (
    PROTOCOL_FOLDER,
    ProtocolFileError,
    ProtocolVersions,
    default_protocol,
    protocol_in_force,
    protocol_versions,
)
from startrt.protocol.eligibility import assess_eligibility
from startrt.protocol.records import parse_record
from startrt.protocol.screening import ScreeningRecord
from startrt.validation import InvalidInputError
from support.protocols import (
    AMENDMENT_EFFECTIVE,
    AMENDMENT_RENAL_LIMIT_GY,
    SHIPPED_FILE,
    amended_folder,
    amended_text,
    shipped_text,
)
from support.records import eligible_screening

TRIAL_START = date(2022, 11, 1)
DAY_BEFORE = AMENDMENT_EFFECTIVE - timedelta(days=1)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return amended_folder(tmp_path / "protocols")


def test_the_shipped_registry_holds_v1_0_from_the_trial_start() -> None:
    versions = protocol_versions()
    assert versions.versions[0].file == SHIPPED_FILE
    assert versions.first.effective_date == TRIAL_START
    assert protocol_in_force(TRIAL_START).label == "START-01 v1.0"
    assert default_protocol() == protocol_in_force(date.today())
    assert protocol_versions(PROTOCOL_FOLDER) is versions  # read once per folder


@pytest.mark.parametrize(
    ("on", "label", "renal_limit_gy"),
    [
        (TRIAL_START, "START-01 v1.0", 30.0),
        (DAY_BEFORE, "START-01 v1.0", 30.0),
        (AMENDMENT_EFFECTIVE, "START-01 v1.1", AMENDMENT_RENAL_LIMIT_GY),
        (date(2031, 1, 1), "START-01 v1.1", AMENDMENT_RENAL_LIMIT_GY),
    ],
)
def test_the_latest_version_effective_on_or_before_the_date_is_in_force(
    folder: Path, on: date, label: str, renal_limit_gy: float
) -> None:
    protocol = protocol_in_force(on, folder)
    assert protocol.label == label
    assert protocol.renal_limit.limit_gy == renal_limit_gy


def test_versions_are_ordered_by_effective_date_not_file_name(tmp_path: Path) -> None:
    # "A-..." sorts before the v1.0 file but takes effect later
    (tmp_path / SHIPPED_FILE).write_text(shipped_text(), encoding="utf-8")
    (tmp_path / "A-amendment.toml").write_text(amended_text(), encoding="utf-8")
    versions = ProtocolVersions.from_folder(tmp_path)
    assert [v.file for v in versions.versions] == [SHIPPED_FILE, "A-amendment.toml"]
    assert versions.in_force(AMENDMENT_EFFECTIVE).version == "1.1"


def test_a_date_before_the_first_version_is_refused(folder: Path) -> None:
    with pytest.raises(InvalidInputError) as refused:
        protocol_in_force(TRIAL_START - timedelta(days=1), folder)
    assert (refused.value.field, refused.value.value) == ("date", "2022-10-31")
    assert "effective_date of START-01 v1.0 (2022-11-01)" in refused.value.rule


@pytest.mark.parametrize(
    ("version", "effective_date", "clash"),
    [
        ("1.0", AMENDMENT_EFFECTIVE, "have the same version 1.0"),
        ("1.2", TRIAL_START, "have the same effective_date 2022-11-01"),
    ],
)
def test_two_files_for_one_version_or_one_date_are_refused_naming_both(
    folder: Path, version: str, effective_date: date, clash: str
) -> None:
    text = amended_text(version=version, effective_date=effective_date)
    (folder / "START-01_v1.2.toml").write_text(text, encoding="utf-8")
    message = f"protocol files {SHIPPED_FILE} and START-01_v1.2.toml {clash}"
    with pytest.raises(ProtocolFileError, match=re.escape(message)):
        ProtocolVersions.from_folder(folder)


def test_files_of_another_protocol_and_an_empty_folder_are_refused(
    folder: Path, tmp_path: Path
) -> None:
    other = amended_text(('id = "START-01"', 'id = "START-02"'), version="1.2")
    (folder / "START-02_v1.2.toml").write_text(other, encoding="utf-8")
    with pytest.raises(ProtocolFileError, match=r"different protocols \(START-01, START-02\)"):
        ProtocolVersions.from_folder(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ProtocolFileError, match="holds no protocol file"):
        ProtocolVersions.from_folder(empty)


def test_a_bad_file_in_the_folder_is_named(folder: Path) -> None:
    (folder / "START-01_v1.2.toml").write_text(
        amended_text(("limit_gy = 30.0", "limit_gy = -1.0"), version="1.2"), encoding="utf-8"
    )
    with pytest.raises(ProtocolFileError, match=r"START-01_v1\.2\.toml is not valid"):
        ProtocolVersions.from_folder(folder)


@pytest.mark.parametrize(
    ("decided_on", "label", "eligible"),
    [(DAY_BEFORE, "START-01 v1.0", False), (AMENDMENT_EFFECTIVE, "START-01 v1.1", True)],
)
def test_a_decision_applies_and_names_the_version_in_force_on_its_date(
    folder: Path, decided_on: date, label: str, eligible: bool
) -> None:
    # GFR 48: below v1.0's inclusion threshold (> 50), above the amendment's (> 45)
    data = eligible_screening(sex="male", measured_gfr_ml_min_173=48)
    record = parse_record(ScreeningRecord, data, "screening")
    decision = assess_eligibility(record, protocol_in_force(decided_on, folder))
    assert (decision.protocol, decision.eligible) == (label, eligible)
    assert decision.model_dump(mode="json")["protocol"] == label  # the stored form
