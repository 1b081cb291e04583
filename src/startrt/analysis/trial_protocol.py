"""The protocol version a dataset names, so limits are read from the version the trial ran."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from startrt.protocol.definition import (
    PROTOCOL_PACKAGE,
    Protocol,
    default_protocol,
    parse_protocol,
    shipped_protocol_files,
)


@dataclass(frozen=True)
class ProtocolChoice:
    """The protocol used and, when it is not the one the dataset names, a note saying so."""

    protocol: Protocol
    note: str | None


def protocol_of(name: str) -> ProtocolChoice:
    """The shipped protocol whose label ("START-01 v1.0") or file name
    ("START-01_v1.0.toml") is `name`; otherwise the default version, with a note."""
    for file_name in shipped_protocol_files():
        text = resources.files(PROTOCOL_PACKAGE).joinpath(file_name).read_text("utf-8")
        protocol = parse_protocol(text, file_name)
        if name in (protocol.label, file_name):
            return ProtocolChoice(protocol, None)
    fallback = default_protocol()
    note = f"protocol {name!r} is not shipped with startrt: limits are those of {fallback.label}"
    return ProtocolChoice(fallback, note)
