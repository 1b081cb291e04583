"""The data-lock page of data managers and administrators: the lock in force (cut-off,
checksum, whether the data are unchanged since, whether every clinical table carries the
triggers), lock with a cut-off and reason, unlock with a reason (both signed by re-entering the
password, `signing.check_password`: a wrong one counts against the signing throttle), freeze
and unfreeze a
patient's records with a reason, and the history of locks and freezes. Every action goes
through `monitoring.data_lock` (role checked, audited); anyone else gets 403.

`DataLockRefusalMiddleware` answers a page whose change a data-lock trigger refused (a write
the services' own check did not see coming) with the refusal, 409, instead of a server error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from startrt.validation import InvalidInputError
from startrt.web.monitoring import data_lock, lock_guard
from startrt.web.monitoring.models import DatabaseLock, PatientFreeze
from startrt.web.pages.forms import PasswordForm, add_library_errors, date_field
from startrt.web.pages.views import CONFLICT, INVALID
from startrt.web.signing import services as signing
from startrt.web.trial.models import Patient

REASON = forms.Textarea(attrs={"rows": 2})


class LockForm(PasswordForm):
    cutoff_date = date_field(label="Data cut-off date")
    reason = forms.CharField(widget=REASON, help_text="Why the database is locked now.")
    field_order = ("cutoff_date", "reason", "password")


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=REASON)


class UnlockForm(PasswordForm):
    reason = forms.CharField(widget=REASON, help_text="Why the database is unlocked.")
    field_order = ("reason", "password")


class FreezeForm(forms.Form):
    trial_id = forms.CharField(label="Patient (trial ID)", max_length=16)
    reason = forms.CharField(widget=REASON, help_text="Why the patient's records are frozen.")


def _lock_action(request: HttpRequest, form: LockForm) -> str:
    signing.check_password(request, form.cleaned_data["password"])
    lock = data_lock.lock_database(
        request.user, form.cleaned_data["cutoff_date"], form.cleaned_data["reason"]
    )
    return f"Database locked at the data cut-off {lock.cutoff_date.isoformat()}."


def _unlock_action(request: HttpRequest, form: UnlockForm) -> str:
    signing.check_password(request, form.cleaned_data["password"])
    data_lock.unlock_database(request.user, form.cleaned_data["reason"])
    return "Database unlocked: changes are accepted again."


def _patient(trial_id: str) -> Patient:
    patient = Patient.objects.filter(trial_id=trial_id.strip()).first()
    if patient is None:
        raise InvalidInputError("trial_id", trial_id, "no patient has this trial ID")
    return patient


def _freeze_action(request: HttpRequest, form: FreezeForm) -> str:
    patient = _patient(form.cleaned_data["trial_id"])
    data_lock.freeze_patient(request.user, patient, form.cleaned_data["reason"])
    return f"The records of {patient.trial_id} are frozen."


def _unfreeze_action(request: HttpRequest, form: ReasonForm) -> str:
    patient = _patient(request.POST.get("trial_id", ""))
    data_lock.unfreeze_patient(request.user, patient, form.cleaned_data["reason"])
    return f"The records of {patient.trial_id} are no longer frozen."


ACTIONS: dict[str, tuple[type[forms.Form], Callable[..., str]]] = {
    "lock": (LockForm, _lock_action),
    "unlock": (UnlockForm, _unlock_action),
    "freeze": (FreezeForm, _freeze_action),
    "unfreeze": (ReasonForm, _unfreeze_action),
}


@require_http_methods(["GET", "POST"])
@login_required
def data_lock_page(request: HttpRequest) -> HttpResponse:
    data_lock.require_lock_role(request.user)
    bound: dict[str, forms.Form] = {}
    status = 200
    action = request.POST.get("action", "")
    if request.method == "POST" and action in ACTIONS:
        form_class, act = ACTIONS[action]
        form = form_class(request.POST, prefix=action)
        bound[action] = form
        if form.is_valid():
            try:
                messages.success(request, act(request, form))
            except InvalidInputError as error:
                add_library_errors(form, error)
                status = CONFLICT if isinstance(error, lock_guard.DataLockedError) else INVALID
            else:
                return redirect("pages:data_lock")
        else:
            status = INVALID
    return render(request, "pages/data_lock/status.html", _context(bound), status=status)


def _context(bound: dict[str, forms.Form]) -> dict[str, Any]:
    lock = lock_guard.active_lock()
    forms_shown = {
        name: bound.get(name) or form_class(prefix=name)
        for name, (form_class, _) in ACTIONS.items()
    }
    return {
        "lock": lock,
        "unchanged": lock is not None and data_lock.snapshot_unchanged(lock),
        "unprotected": lock_guard.tables_without_triggers(),
        "locks": DatabaseLock.objects.select_related("locked_by", "unlocked_by").order_by("-pk"),
        "freezes": PatientFreeze.objects.select_related(
            "patient", "frozen_by", "unfrozen_by"
        ).order_by("unfrozen_at", "-pk"),
        "forms": forms_shown,
    }


class DataLockRefusalMiddleware:
    """A page's change refused by a data-lock trigger: the refusal page (409), not a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith("/api/") or not isinstance(exception, DatabaseError):
            return None
        refusal = lock_guard.refusal_of(exception)
        if refusal is None:
            return None
        context = {"rule": refusal.rule[:1].upper() + refusal.rule[1:]}
        return render(request, "pages/data_lock/refused.html", context, status=CONFLICT)
