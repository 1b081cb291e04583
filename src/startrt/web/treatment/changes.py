"""How the treatment services write: rows locked at the version the user saw, every insert and
change audited (a change with its reason), and the checks shared by several services."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone

from startrt.dosimetry.ledger import ACTIVITY_GBQ_MAX
from startrt.protocol.definition import Arm
from startrt.validation import InvalidInputError, require_positive
from startrt.web.trial.models import Patient, Slot
from startrt.web.trial.services import _protocol


def treatment_arm(patient: Patient) -> Arm:
    """The protocol arm the patient was allocated to (refused before randomization)."""
    slot = Slot.objects.filter(patient=patient).first()
    if slot is None or not slot.treatment_arm:
        raise InvalidInputError("patient", patient.trial_id, "is not randomized: no treatment arm")
    return _protocol().arm(slot.treatment_arm)


def require_date(field: str, value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInputError(field, value, "must be a calendar date")
    return value


def require_past_instant(field: str, value: object) -> datetime:
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise InvalidInputError(field, value, "must be a date and time with its time zone")
    if value > timezone.now():
        raise InvalidInputError(field, value.isoformat(), "must not lie in the future")
    return value


def require_activity_gbq(field: str, value: float) -> float:
    """An activity of one cycle: > 0 and at most the library's 15 GBq."""
    activity = require_positive(field, value, "GBq")
    if activity > ACTIVITY_GBQ_MAX:
        raise InvalidInputError(field, value, f"must be <= {ACTIVITY_GBQ_MAX:g} GBq")
    return activity
