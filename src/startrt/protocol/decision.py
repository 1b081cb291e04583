"""Every decision the system makes carries its inputs, the rule applied and the protocol version,
so it can be stored as it was made and verified later."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Decision(BaseModel):
    """Base of decision records; `model_dump(mode="json")` is the stored form."""

    model_config = ConfigDict(frozen=True)

    kind: str
    protocol: str
    rule: str
    inputs: dict[str, Any]
