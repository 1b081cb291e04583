"""User administration pages (no Django admin): the list of users, a new user, and a user's
page with their roles per site, a role added or removed, deactivation or reactivation and the
history of the account. Only administrators (`trial.users.admin_scope`), in a session verified
by their authenticator app, reach them; everyone else gets the 403 page. The rules and the
audit live in `trial.users`; a refusal comes back next to the field it names (HTTP 422)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from startrt import fields
from startrt.validation import InvalidInputError
from startrt.web.pages.forms import add_library_errors
from startrt.web.pages.views import INVALID
from startrt.web.signing import two_factor
from startrt.web.trial import audit
from startrt.web.trial import users as accounts
from startrt.web.trial.models import Membership, Role, Site

EVERY_SITE = ""
"""The site choice of a trial-wide role (a membership without site)."""

ADD_PREFIX, ACTIVE_PREFIX = "add", "active"
"""The user page's forms, each with its own field names and ids."""

View = Callable[..., HttpResponse]


def administrators_only(view: View) -> View:
    """Signed in, an administrator (403 otherwise), in a session verified by two factors (else
    to the enrolment / verification page)."""

    @login_required
    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        scope = accounts.require_admin(request.user)
        if not two_factor.is_verified(request):
            messages.warning(
                request, "User administration needs a session verified by your authenticator app."
            )
            return redirect("pages:two_factor")
        return view(request, scope, *args, **kwargs)

    return checked


def _site_field(scope: accounts.Scope) -> forms.ChoiceField:
    choices = [(str(site.pk), site.name) for site in scope.sites().order_by("name")]
    if scope.every_site:
        choices.append((EVERY_SITE, "Every site (monitor, statistician, administrator)"))
    return forms.ChoiceField(
        label=fields.label("site"), choices=choices, required=False, initial=choices[0][0]
    )


class RoleForm(forms.Form):
    """A role at a site (every site only for the trial-wide roles)."""

    role = forms.ChoiceField(label=fields.label("role"), choices=Role.choices)

    def __init__(self, scope: accounts.Scope, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"] = _site_field(scope)
        self.order_fields(self.field_order or ["role", "site"])

    def grant(self) -> accounts.RoleGrant:
        site_id = self.cleaned_data["site"]
        site = Site.objects.get(pk=site_id) if site_id != EVERY_SITE else None
        return accounts.RoleGrant(self.cleaned_data["role"], site)


class NewUserForm(RoleForm):
    username = forms.CharField(label=fields.label("username"), max_length=150)
    first_name = forms.CharField(label=fields.label("first_name"), max_length=150)
    last_name = forms.CharField(label=fields.label("last_name"), max_length=150)
    email = forms.CharField(label=fields.label("email"), max_length=254, required=False)
    password = forms.CharField(
        label="Initial password",
        required=False,
        strip=False,
        help_text="Leave empty to generate a one-time password, shown once on the next page.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    field_order = ["username", "first_name", "last_name", "email", "password", "role", "site"]


class AddRoleForm(RoleForm):
    reason = forms.CharField(
        label=fields.label("reason") + " (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReasonForm(forms.Form):
    """A reason, required (removing a role, deactivating, reactivating)."""

    reason = forms.CharField(label=fields.label("reason"), widget=forms.Textarea(attrs={"rows": 2}))


def _remove_prefix(membership: Membership) -> str:
    return f"remove-{membership.pk}"


def _roles_text(user: User) -> list[str]:
    """Each role of `user` at its site: "Investigator at Lund", "Monitor at every site"."""
    return sorted(
        f"{Role(m.role).label} at {m.site.name if m.site else 'every site'}"
        for m in user.memberships.all()
    )


def _two_factor_text(user: User) -> str:
    if two_factor.confirmed_device(user) is not None:
        return "enrolled"
    return "required, not enrolled" if two_factor.requires_two_factor(user) else "not needed"


@require_http_methods(["GET"])
@administrators_only
def user_list(request: HttpRequest, scope: accounts.Scope) -> HttpResponse:
    """The users the administrator administers, with their roles per site."""
    rows = [
        {"user": user, "roles": _roles_text(user), "two_factor": _two_factor_text(user)}
        for user in accounts.administered_users(request.user)
    ]
    context = {"rows": rows, "scope_sites": None if scope.every_site else scope.sites()}
    return render(request, "pages/users.html", context)


@require_http_methods(["GET", "POST"])
@administrators_only
def new_user(request: HttpRequest, scope: accounts.Scope) -> HttpResponse:
    """Create a user with a first role; a generated password is shown once (never stored in a
    message or the audit trail)."""
    form = NewUserForm(scope, request.POST if request.method == "POST" else None)
    status = 200
    if form.is_bound:
        status = INVALID
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = accounts.create_user(
                    request.user,
                    username=data["username"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    email=data["email"],
                    password=data["password"] or None,
                    roles=[form.grant()],
                )
            except InvalidInputError as error:
                add_library_errors(form, error)
            else:
                if created.one_time_password is None:
                    messages.success(request, f"User {created.user.username} created.")
                    return redirect("pages:user", user_id=created.user.pk)
                response = render(request, "pages/user_created.html", {"created": created})
                response["Cache-Control"] = "no-store"  # the page shows a password
                return response
    return render(request, "pages/user_form.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@administrators_only
def user_page(request: HttpRequest, scope: accounts.Scope, user_id: int) -> HttpResponse:
    """A user's roles per site (each removable with a reason), a role to add, deactivation or
    reactivation with a reason, and the account's history."""
    user = accounts.administered_user(request.user, user_id)
    add_form = AddRoleForm(
        scope, request.POST if "add_role" in request.POST else None, prefix=ADD_PREFIX
    )
    active_form = ReasonForm(
        request.POST if "set_active" in request.POST else None, prefix=ACTIVE_PREFIX
    )
    status = 200
    if add_form.is_bound:
        status = INVALID
        if add_form.is_valid():
            try:
                accounts.add_role(
                    request.user, user, add_form.grant(), add_form.cleaned_data["reason"]
                )
            except InvalidInputError as error:
                add_library_errors(add_form, error)
            else:
                messages.success(request, f"Role added to {user.username}.")
                return redirect("pages:user", user_id=user.pk)
    if active_form.is_bound:
        status = INVALID
        if active_form.is_valid():
            active = not user.is_active
            try:
                accounts.set_active(
                    request.user, user, active=active, reason=active_form.cleaned_data["reason"]
                )
            except InvalidInputError as error:
                add_library_errors(active_form, error)
            else:
                done = "reactivated" if active else "deactivated"
                messages.success(request, f"{user.username} is {done}.")
                return redirect("pages:user", user_id=user.pk)
    return _user_page(request, scope, user, add_form, active_form, status=status)


@require_POST
@administrators_only
def remove_role(
    request: HttpRequest, scope: accounts.Scope, user_id: int, membership_id: int
) -> HttpResponse:
    """Remove one role of the user, with a reason; the user's page again on a refusal."""
    user = accounts.administered_user(request.user, user_id)
    membership = get_object_or_404(Membership, pk=membership_id, user=user)
    form = ReasonForm(request.POST, prefix=_remove_prefix(membership))
    if form.is_valid():
        try:
            accounts.remove_role(request.user, membership, form.cleaned_data["reason"])
        except InvalidInputError as error:
            add_library_errors(form, error)
        else:
            messages.success(request, f"Role removed from {user.username}.")
            return redirect("pages:user", user_id=user.pk)
    return _user_page(
        request,
        scope,
        user,
        AddRoleForm(scope, prefix=ADD_PREFIX),
        ReasonForm(prefix=ACTIVE_PREFIX),
        remove=(membership.pk, form),
        status=INVALID,
    )


def _user_page(
    request: HttpRequest,
    scope: accounts.Scope,
    user: User,
    add_form: AddRoleForm,
    active_form: ReasonForm,
    *,
    remove: tuple[int, ReasonForm] | None = None,
    status: int,
) -> HttpResponse:
    memberships = user.memberships.select_related("site").order_by("site__name", "role")
    roles = [
        {
            "membership": m,
            "label": Role(m.role).label,
            "site": m.site.name if m.site else "Every site",
            "may_remove": scope.covers(m.site_id),
            "form": remove[1]
            if remove and remove[0] == m.pk
            else ReasonForm(prefix=_remove_prefix(m)),
        }
        for m in memberships
    ]
    zone = timezone.get_current_timezone()
    context = {
        "account": user,
        "roles": roles,
        "add_form": add_form,
        "active_form": active_form,
        "two_factor": _two_factor_text(user),
        "history": [audit.for_people(entry, zone) for entry in accounts.history(user)],
    }
    return render(request, "pages/user.html", context, status=status)
