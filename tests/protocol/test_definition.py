"""The shipped protocol loads; wrong protocol files get errors naming the file and field."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from startrt.protocol.definition import (
    Protocol,
    ProtocolFileError,
    load_protocol,
    parse_protocol,
    shipped_protocol_files,
)
from support.protocols import SHIPPED_FILE, amended_text, shipped_text


def test_shipped_protocol_has_the_protocol_md_parameters(protocol: Protocol) -> None:
    assert SHIPPED_FILE in shipped_protocol_files()
    assert protocol.label == "START-01 v1.0"
    assert protocol.effective_date == date(2022, 11, 1)  # the trial start (PROTOCOL.md)
    assert protocol.treatment.activity_per_cycle_gbq == 7.5
    assert (protocol.renal_limit.quantity, protocol.renal_limit.limit_gy) == ("AD", 30.0)
    assert (protocol.renal_limit.alpha_beta_gy, protocol.renal_limit.repair_half_time_h) == (
        2.6,
        2.8,
    )
    assert protocol.arm("standard").fixed_cycles == 4
    assert protocol.capecitabine.dose_mg_per_m2 == 825
    assert (protocol.schedule.interval_weeks, protocol.schedule.window_weeks) == (10, 2)
    assert protocol.sites == ("Gothenburg", "Lund", "Stockholm", "Uppsala")
    assert protocol.marrow_limit is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("limit_gy = 30.0", "limit_gy = -30.0", "renal_limit.limit_gy"),
        ('quantity = "AD"', 'quantity = "EQD2"', "renal_limit.quantity"),
        ("block_sizes = [4, 6]", "block_sizes = [4, 5]", "multiples of sum(ratio)"),
        ('fdg_positive_arm = "CAP-dTOC"', 'fdg_positive_arm = "CAPTOC"', "unknown arm"),
        ('field = "ecog"', 'field = "ecog_score"', "unknown field 'ecog_score'"),
        ('id = "IN02"', 'id = "IN01"', "repeated: ['IN01']"),
        ("minimum_activity_gbq = 1.0", "minimum_activity_gbq = 8.0", "minimum_activity_gbq"),
        ("activity_per_cycle_gbq = 7.5", "activity_per_cycle_gbq = 7.5\ncolour = 1", "colour"),
        # the effective date is a TOML date: not a string, a number or a date-time
        ("effective_date = 2022-11-01", 'effective_date = "2022-11-01"', "effective_date"),
        ("effective_date = 2022-11-01", "effective_date = 20221101", "effective_date"),
        ("effective_date = 2022-11-01", "effective_date = 2022-11-01T00:00:00", "effective_date"),
        ("effective_date = 2022-11-01", "effective_date = 2022-11-31", "not valid TOML"),
        ("effective_date = 2022-11-01", "", "effective_date: Field required"),
    ],
)
def test_wrong_files_name_the_field(old: str, new: str, message: str) -> None:
    text = shipped_text()
    assert old in text
    with pytest.raises(ProtocolFileError, match=re.escape(message)):
        parse_protocol(text.replace(old, new, 1), "amended.toml")


def test_not_toml_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ProtocolFileError, match="not valid TOML"):
        parse_protocol("id = ", "broken.toml")
    with pytest.raises(ProtocolFileError, match="cannot be read"):
        load_protocol(tmp_path / "missing.toml")


def test_an_amendment_is_a_new_file(tmp_path: Path) -> None:
    amendment = amended_text(
        (
            "# No bone-marrow limit in v1.0; an amendment may add:  [marrow_limit]  limit_gy = 2.0",
            "[marrow_limit]\nlimit_gy = 2.0",
        )
    )
    path = tmp_path / "START-01_v1.1.toml"
    path.write_text(amendment, encoding="utf-8")
    protocol = load_protocol(path)
    assert protocol.label == "START-01 v1.1"
    assert protocol.marrow_limit is not None
    assert protocol.marrow_limit.limit_gy == 2.0
