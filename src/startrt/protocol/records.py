"""Records the protocol rules read, validated at the edge: implausible values are refused with
the field, value and rule named; nothing is guessed."""

from __future__ import annotations

import types
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from startrt.validation import InvalidInputError, InvalidRecordError

RecordT = TypeVar("RecordT", bound=BaseModel)


class Record(BaseModel):
    """Base of input records: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """true/false is refused where a number is expected (pydantic would read it as 1/0)."""
        name = info.field_name
        if isinstance(value, bool) and name and _numbers_only(cls.model_fields[name].annotation):
            raise PydanticCustomError("bool_number", "must be a number, not true/false")
        return value


def _numbers_only(annotation: Any) -> bool:
    """Whether the type admits int or float but not bool (`float | None` yes, `bool` no)."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = set(get_args(annotation))
    else:
        kinds = {annotation}
    return bool(kinds & {int, float}) and bool not in kinds


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
