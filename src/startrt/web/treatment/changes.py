"""How the treatment services write: rows locked at the version the user saw, every insert and
change audited (a change with its reason), and the checks shared by several services."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from startrt.protocol.course import ACTIVITY_GBQ_MAX
from startrt.protocol.definition import Arm
from startrt.validation import (
    ACTIVITY_GBQ_MIN,
    InvalidInputError,
    PlausibleRange,
    require_positive,
)
from startrt.web.treatment.models import IMAGING_SESSIONS_MAX, INPATIENT_DAYS_MAX
from startrt.web.trial.models import Patient, Slot
from startrt.web.trial.services import current_protocol


def treatment_arm(patient: Patient) -> Arm:
    """The protocol arm the patient was allocated to (refused before randomization)."""
    slot = Slot.objects.filter(patient=patient).first()
    if slot is None or not slot.treatment_arm:
        raise InvalidInputError("patient", patient.trial_id, "is not randomized: no treatment arm")
    return current_protocol().arm(slot.treatment_arm)


INPATIENT_DAYS = PlausibleRange(0.0, INPATIENT_DAYS_MAX, "days")


def json_ready(data: Mapping[str, Any]) -> dict[str, Any]:
    """The data as the JSON column will return it (e.g. integer keys become strings)."""
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


def optional_inpatient_days(value: float | None) -> float | None:
    """Days in hospital for the cycle (fractions allowed), 0-60, or not recorded."""
    return None if value is None else INPATIENT_DAYS.check("inpatient_days", value)


def optional_imaging_sessions(value: int | None) -> int | None:
    """SPECT/CT sessions of a cycle's dosimetry: a whole number 1-10, or not recorded."""
    if value is None:
        return None
    rule = f"must be a whole number of SPECT/CT sessions, 1-{IMAGING_SESSIONS_MAX}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError("imaging_sessions", value, rule)
    if not 1 <= value <= IMAGING_SESSIONS_MAX:
        raise InvalidInputError("imaging_sessions", value, rule)
    return value


def require_date(field: str, value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInputError(field, value, "must be a calendar date")
    return value


def require_activity_gbq(field: str, value: float) -> float:
    """An activity of one cycle: at least the plausible ACTIVITY_GBQ_MIN (0.01 GBq) and at most
    the library's 15 GBq."""
    activity = require_positive(field, value, "GBq")
    if activity < ACTIVITY_GBQ_MIN:
        rule = f"must be >= {ACTIVITY_GBQ_MIN:g} GBq (smaller is a unit or typing error)"
        raise InvalidInputError(field, value, rule)
    if activity > ACTIVITY_GBQ_MAX:
        raise InvalidInputError(field, value, f"must be <= {ACTIVITY_GBQ_MAX:g} GBq")
    return activity
