"""Shared fixtures for protocol tests: the shipped protocol and variants of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from startrt.protocol.definition import Protocol, default_protocol


@pytest.fixture(scope="session")
def protocol() -> Protocol:
    return default_protocol()


Amend = Callable[..., Protocol]


@pytest.fixture(scope="session")
def amend(protocol: Protocol) -> Amend:
    """amend(section, **changes): the protocol with fields of one section changed, re-validated."""

    def amended(section: str, **changes: Any) -> Protocol:
        data = protocol.model_dump(by_alias=True)
        data[section] = {**(data[section] or {}), **changes}
        return Protocol.model_validate(data)

    return amended
