"""Records the protocol rules read, validated at the edge: implausible values are refused with
the field, value and rule named; nothing is guessed."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from startrt.validation import InvalidInputError, InvalidRecordError

RecordT = TypeVar("RecordT", bound=BaseModel)


class Record(BaseModel):
    """Base of input records: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_record(model: type[RecordT], data: Any, record: str) -> RecordT:
    """Validate `data` into `model`; every refused field is named in one InvalidRecordError."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [
            InvalidInputError(
                ".".join(str(part) for part in item["loc"]) or record,
                item.get("input"),
                item["msg"],
            )
            for item in error.errors()
        ]
        raise InvalidRecordError(record, problems) from None
