"""Server-rendered pages. Every action goes through the services (which check roles, audit and
hold the transaction); patients outside the user's sites are 404; a refused value comes back as
the form with the library's message next to the field (HTTP 422); a change based on a version
that has moved on, or of a signed record, is refused with a message saying so (HTTP 409).

Long lists (the patients, a patient's audit trail) come in pages of settings.PAGE_SIZE rows,
their filters kept from page to page; the audit trail downloads as CSV."""

from __future__ import annotations

import csv
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from startrt import fields
from startrt.protocol.eligibility import EligibilityDecision, verdict_text
from startrt.spreadsheet_safe import QUOTING, safe_row
from startrt.validation import InvalidInputError
from startrt.web.exports.tables import audit_rows, audit_table
from startrt.web.monitoring.lock_guard import DataLockedError
from startrt.web.pages.forms import (
    PasswordForm,
    RegisterForm,
    ScreeningForm,
    SignForm,
    UnlockForm,
    add_library_errors,
    date_field,
    entry_sites,
)
from startrt.web.pages.worklist import (
    patient_rows,
    patients_for_list,
    renal_limit_text,
    worklists,
)
from startrt.web.signing import services as signing
from startrt.web.signing.models import Meaning, Signature
from startrt.web.trial import audit, concealment
from startrt.web.trial import services as trial
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.dates import site_time_zone
from startrt.web.trial.models import AuditEntry, Patient, Role, Screening, Site
from startrt.web.trial.permissions import require_role, roles_at, visible_patients

INVALID = 422
CONFLICT = 409
AUDIT_EXPORT_ROLES = (Role.INVESTIGATOR, Role.MONITOR, Role.STATISTICIAN, Role.ADMINISTRATOR)
"""Who may download a patient's audit trail: the site's investigators and the all-site roles
(a file leaves the system; nurses, physicists and pharmacists read it on the page)."""


def visible_patient(request: HttpRequest, trial_id: str) -> Patient:
    """The patient if the user may see them; 404 otherwise (never revealing existence)."""
    patients = visible_patients(request.user).select_related("site")
    return get_object_or_404(patients, trial_id=trial_id)


def refusal(form: forms.Form, error: InvalidInputError) -> int:
    """Show a service's refusal in `form`; the HTTP status to answer with: 409 when the record
    moved on since the user loaded it (or is signed, or the database locked), else 422."""
    if isinstance(error, StaleVersionError):
        form.add_error(
            None,
            "Not saved: someone changed this record after you opened it "
            f"({error.rule.removesuffix(': reload it')}). Reload the page, check the current "
            "values and enter your change again.",
        )
        return CONFLICT
    add_library_errors(form, error)
    return CONFLICT if isinstance(error, signing.RecordLockedError | DataLockedError) else INVALID


def paginate(request: HttpRequest, rows: QuerySet[Any]) -> Page[Any]:
    """The page of `rows` the query asks for (?page=N; the first or last page when N is not a
    page number)."""
    return Paginator(rows, settings.PAGE_SIZE).get_page(request.GET.get("page"))


def _screening_of(patient: Patient) -> Screening | None:
    return Screening.objects.filter(patient=patient).first()


class PatientFilter(forms.Form):
    q = forms.CharField(required=False, label="Trial ID contains", max_length=32)
    site = forms.ModelChoiceField(
        queryset=Site.objects.none(), required=False, empty_label="all", to_field_name="code"
    )


@require_GET
@login_required
def patient_list(request: HttpRequest) -> HttpResponse:
    """The home page: the user's worklists, and the patients of the user's sites (status,
    arm, current cycle, next cycle date, cumulative kidney dose), filtered by trial ID and
    site, a page at a time."""
    patients = visible_patients(request.user)
    filters = PatientFilter(request.GET)
    site_field = filters.fields["site"]
    assert isinstance(site_field, forms.ModelChoiceField)
    site_field.queryset = Site.objects.filter(patients__in=patients).distinct().order_by("name")
    if filters.is_valid():
        if query := filters.cleaned_data["q"].strip():
            patients = patients.filter(trial_id__icontains=query)
        if site := filters.cleaned_data["site"]:
            patients = patients.filter(site=site)
    page = paginate(request, patients_for_list(patients).order_by("site__name", "trial_id"))
    context = {
        "page": page,
        "rows": patient_rows(page),
        "limit_text": renal_limit_text(),
        "today": timezone.localdate(),
        "worklists": worklists(request.user),
        "filters": filters,
        "can_register": entry_sites(request.user).exists(),
    }
    return render(request, "pages/patient_list.html", context)


@login_required
def register(request: HttpRequest) -> HttpResponse:
    form = RegisterForm(request.user, request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            patient = trial.register_patient(
                request.user,
                form.cleaned_data["site"],
                form.cleaned_data["trial_id"],
                form.cleaned_data["sex"],
            )
        except InvalidInputError as error:
            add_library_errors(form, error)
        else:
            return redirect("pages:patient", trial_id=patient.trial_id)
    status = INVALID if form.errors else 200
    return render(request, "pages/register.html", {"form": form}, status=status)


@require_GET
@login_required
def patient_page(request: HttpRequest, trial_id: str) -> HttpResponse:
    return _render_patient(request, visible_patient(request, trial_id))


@require_POST
@login_required
def enter_screening(request: HttpRequest, trial_id: str) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    form = ScreeningForm(request.POST)
    if form.is_valid():
        try:
            trial.record_screening(  # refuses a signed (locked) record itself
                request.user,
                patient,
                form.record_data(),
                reason=form.cleaned_data["reason"],
                expected_version=form.cleaned_data["expected_version"],
            )
        except InvalidInputError as error:
            status = refusal(form, error)
        else:
            return redirect("pages:patient", trial_id=patient.trial_id)
    else:
        status = INVALID
    return _render_patient(request, patient, status=status, screening_form=form)


@require_POST
@login_required
def randomize(request: HttpRequest, trial_id: str) -> HttpResponse:
    """Randomize, signed by the investigator's password (the allocation is the signed record)."""
    patient = visible_patient(request, trial_id)
    form = PasswordForm(request.POST)
    if form.is_valid():
        try:
            signing.sign_action(
                request,
                form.cleaned_data["password"],
                Meaning.RESPONSIBILITY,
                lambda: trial.randomize(request.user, patient),
            )
        except InvalidInputError as error:
            add_library_errors(form, error)
        else:
            return redirect("pages:patient", trial_id=patient.trial_id)
    return _render_patient(request, patient, status=INVALID, randomize_form=form)


@require_POST
@login_required
def sign_screening(request: HttpRequest, trial_id: str) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    screening = get_object_or_404(Screening, patient=patient)
    form = SignForm(request.POST)
    if form.is_valid():
        try:
            signing.sign(
                request,
                form.cleaned_data["password"],
                signing.kind_of(screening),
                screening.pk,
                form.cleaned_data["meaning"],
            )
        except InvalidInputError as error:
            add_library_errors(form, error)
        else:
            return redirect("pages:patient", trial_id=patient.trial_id)
    return _render_patient(request, patient, status=INVALID, sign_form=form)


@require_POST
@login_required
def unlock_signature(request: HttpRequest, trial_id: str, signature_id: int) -> HttpResponse:
    patient = visible_patient(request, trial_id)
    signature = get_object_or_404(Signature, pk=signature_id, patient=patient)
    form = UnlockForm(request.POST)
    if form.is_valid():
        try:
            signing.unlock(
                request, form.cleaned_data["password"], signature, form.cleaned_data["reason"]
            )
        except InvalidInputError as error:
            add_library_errors(form, error)
        else:
            return redirect("pages:patient", trial_id=patient.trial_id)
    return _render_patient(request, patient, status=INVALID, unlock_forms={signature.pk: form})


class AuditFilter(forms.Form):
    """The audit trail's filters: record type, field, user, action and a date range (days in
    the site's time zone)."""

    table = forms.ChoiceField(required=False, label="Record")
    field = forms.ChoiceField(required=False, label="Field")
    username = forms.ChoiceField(required=False, label="User")
    action = forms.ChoiceField(
        required=False, choices=[("", "all"), *audit.ACTIONS.items()], label="Action"
    )
    since = date_field(required=False, label="From")
    until = date_field(required=False, label="To")

    def __init__(self, entries: QuerySet[AuditEntry], user: Any, *args: Any, **kwargs: Any) -> None:
        """Choices from the patient's `entries` as `user` may read them (concealed)."""
        super().__init__(*args, **kwargs)
        tables = entries.order_by("table").values_list("table", flat=True).distinct()
        users = entries.order_by("username").values_list("username", flat=True).distinct()
        shown = concealment.readable(entries.only("table", "row_id", "old", "new"), user)
        stored = [values or {} for entry in shown for values in (entry.old, entry.new)]
        self.groups = {k for values in stored for k, v in values.items() if isinstance(v, dict)}
        names = (
            {
                key
                for values in stored
                for key in (*values, *(k for g in self.groups & set(values) for k in values[g]))
            }
            - audit.UNSHOWN
            - self.groups
        )
        self._choose("table", sorted((t, audit.table_name(t)) for t in tables))
        self._choose("field", sorted(((n, fields.label(n)) for n in names), key=lambda c: c[1]))
        self._choose("username", [(u, u) for u in users])

    def _choose(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "all"), *sorted(choices, key=lambda choice: choice[1])]

    def filtered(self, entries: QuerySet[AuditEntry], zone: tzinfo) -> QuerySet[AuditEntry]:
        if not self.is_valid():
            return entries
        data = self.cleaned_data
        wanted = {key: data[key] for key in ("table", "username", "action") if data[key]}
        entries = entries.filter(**wanted)
        if name := data["field"]:
            paths = ["", *(f"{group}__" for group in sorted(self.groups))]
            wanted_field = Q()
            for side, path in ((side, path) for side in ("old", "new") for path in paths):
                wanted_field |= Q(**{f"{side}__{path}has_key": name})
            entries = entries.filter(wanted_field)
        if data["since"]:
            entries = entries.filter(at__gte=datetime.combine(data["since"], time(), zone))
        if data["until"]:
            day_after = data["until"] + timedelta(days=1)
            entries = entries.filter(at__lt=datetime.combine(day_after, time(), zone))
        return entries


@require_GET
@login_required
def audit_trail(request: HttpRequest, trial_id: str) -> HttpResponse:
    """The patient's audit trail for people, oldest first, filtered by record type, field, user,
    action and dates, a page at a time; with the CSV download for the roles that may take it."""
    patient = visible_patient(request, trial_id)
    entries = AuditEntry.objects.filter(patient_trial_id=patient.trial_id)
    filters = AuditFilter(entries, request.user, request.GET)
    zone = site_time_zone(patient.site)
    page = paginate(request, filters.filtered(entries, zone).order_by("at", "pk"))
    readable = [audit.for_people(e, zone) for e in concealment.readable(page, request.user)]
    who = _who({row.entry.username for row in readable})
    context = {
        "patient": patient,
        "page": page,
        "rows": [(row, who[row.entry.username]) for row in readable],
        "filters": filters,
        "filtered": any(request.GET.get(name) for name in filters.fields),
        "can_export": bool(
            roles_at(request.user, patient.site) & {role.value for role in AUDIT_EXPORT_ROLES}
        ),
    }
    return render(request, "pages/audit.html", context)


def _who(usernames: set[str]) -> dict[str, str]:
    """Each user by full name (or user name) and roles: "Anna Berg (Research nurse)"."""
    roles: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for user in User.objects.filter(username__in=usernames).prefetch_related("memberships"):
        names[user.username] = user.get_full_name() or user.username
        roles[user.username] = {Role(m.role).label for m in user.memberships.all()}
    return {
        username: f"{names.get(username, username)} ({', '.join(sorted(roles[username]))})"
        if roles.get(username)
        else names.get(username, username)
        for username in usernames
    }


@require_GET
@login_required
def audit_csv(request: HttpRequest, trial_id: str) -> HttpResponse:
    """The patient's whole audit trail as CSV, in the columns and value format of the export's
    audit_trail.csv (investigators of the site and the all-site roles; else 403)."""
    patient = visible_patient(request, trial_id)
    require_role(request.user, patient.site, *AUDIT_EXPORT_ROLES)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit_trail_{patient.trial_id}.csv"'
    writer = csv.writer(response, quoting=QUOTING)  # for spreadsheets: see spreadsheet_safe
    writer.writerow(audit_table().columns)
    entries = AuditEntry.objects.filter(patient_trial_id=patient.trial_id).order_by("at", "pk")
    for row in audit_rows(entries.iterator(), request.user):
        writer.writerow(safe_row(row.values()))
    return response


def _render_patient(
    request: HttpRequest,
    patient: Patient,
    *,
    status: int = 200,
    screening_form: ScreeningForm | None = None,
    randomize_form: PasswordForm | None = None,
    sign_form: SignForm | None = None,
    unlock_forms: dict[int, UnlockForm] | None = None,
) -> HttpResponse:
    screening = _screening_of(patient)
    allocation = getattr(patient, "allocation", None)
    roles = roles_at(request.user, patient.site)
    signatures = list(patient.signatures.order_by("signed_at", "pk"))
    sees_the_list = concealment.sees_the_list(request.user)
    unlock_forms = unlock_forms or {}
    context = {
        "patient": patient,
        "screening": screening,
        "screening_locked": screening is not None
        and signing.is_locked(signing.kind_of(screening), screening.pk),
        "screening_form": screening_form or _screening_form(screening),
        "eligibility": _latest_eligibility(patient),
        "allocation": allocation,
        "randomize_form": randomize_form or PasswordForm(),
        "sign_form": sign_form or SignForm(initial={"meaning": Meaning.AUTHORSHIP}),
        "signatures": [
            (
                signature,
                signing.content_unchanged(signature),
                unlock_forms.get(signature.pk) or UnlockForm(),
                concealment.hides_signed_record(signature.kind, sees_the_list),
            )
            for signature in signatures
        ],
        "can_enter": bool(roles & {role.value for role in trial.ENTRY_ROLES}),
        "can_randomize": Role.INVESTIGATOR.value in roles,
    }
    return render(request, "pages/patient.html", context, status=status)


def _screening_form(screening: Screening | None) -> ScreeningForm:
    if screening is None:
        return ScreeningForm()
    return ScreeningForm(initial={**screening.record, "expected_version": screening.version})


def _latest_eligibility(patient: Patient) -> dict[str, Any] | None:
    """The latest eligibility decision as stored, with its one-line verdict and its criteria
    in review order (failing, missing, the rest)."""
    stored = patient.decisions.filter(kind="eligibility").order_by("-made_at", "-pk").first()
    if stored is None:
        return None
    decision = EligibilityDecision.model_validate(stored.record)
    return {
        **stored.record,
        "verdict": verdict_text(decision),
        "criteria": [
            {
                **criterion.model_dump(mode="json"),
                "value_text": criterion.value_text(),
                "rule_text": criterion.rule_text(),
            }
            for criterion in decision.for_review()
        ],
        "made_at": stored.made_at,
        "made_by": stored.made_by,
    }
