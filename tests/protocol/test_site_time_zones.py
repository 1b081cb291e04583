"""Each site's IANA time zone from the protocol file's `[site_time_zones]` (issue 14): the times
people read are in it; a file without the table reads UTC; a wrong zone or site is refused."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest

from startrt.protocol.definition import ProtocolFileError, default_protocol, parse_protocol
from startrt.validation import InvalidInputError
from support.protocols import shipped_text

TABLE = (
    "[site_time_zones]                  # IANA time zones of the times shown to each site's staff\n"
)
ZONES = """Gothenburg = "Europe/Stockholm"
Lund = "Europe/Stockholm"
Stockholm = "Europe/Stockholm"
Uppsala = "Europe/Stockholm"
"""


def test_every_start01_site_is_in_stockholm_time() -> None:
    protocol = default_protocol()
    assert [protocol.time_zone(site) for site in protocol.sites] == [
        ZoneInfo("Europe/Stockholm")
    ] * 4


def test_a_file_without_time_zones_reads_utc() -> None:
    text = shipped_text()
    assert TABLE + ZONES in text
    protocol = parse_protocol(text.replace(TABLE + ZONES, ""), "no-zones.toml")
    assert protocol.time_zone("Lund") == ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'Lund = "Europe/Stockholm"',
            'Lund = "Europe/Lund"',
            "site_time_zones.Lund='Europe/Lund': must be an IANA time zone",
        ),
        ('Lund = "Europe/Stockholm"', 'Lund = ""', "site_time_zones.Lund=''"),
        ('Lund = "Europe/Stockholm"', 'Malmo = "Europe/Stockholm"', "'Malmo', not one of sites"),
    ],
)
def test_a_wrong_zone_or_site_is_refused(old: str, new: str, message: str) -> None:
    text = shipped_text()
    with pytest.raises(ProtocolFileError, match=re.escape(message)):
        parse_protocol(text.replace(old, new, 1), "amended.toml")


def test_the_zone_of_an_unknown_site_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=re.escape("not a site of START-01 v1.0")):
        default_protocol().time_zone("Malmö")
