"""The user's own account: sign-in with the second factor, enrolment of an authenticator app
(TOTP, django-otp) and the change of one's own password (audited).

Sign-in: whoever has enrolled an authenticator app gives its 6-digit code with the password (a
wrong code counts as a failed login for django-axes); an investigator or administrator who has
not enrolled yet is taken to the enrolment page after signing in (signing needs it)."""

from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy

from startrt.web.signing import two_factor
from startrt.web.trial import audit

OTP_FIELD = "otp_token"


def _otp_field(label: str = "One-time code from your authenticator app") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}
        ),
    )


class TwoFactorLoginForm(AuthenticationForm):
    """Username and password (django-axes throttles them), then the code of the user's device
    when they have enrolled one."""

    otp_token = _otp_field("One-time code (if you have enrolled an authenticator app)")

    error_messages = {
        **AuthenticationForm.error_messages,
        "otp_missing": "Enter the 6-digit code from your authenticator app.",
        "otp_wrong": "The code is not a current code of your authenticator app (a code is valid "
        "once, for about 30 seconds).",
    }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # authenticates: a wrong password is a failed login (axes)
        user = self.get_user()
        device = two_factor.confirmed_device(user) if user is not None else None
        if device is None:
            return cleaned
        token = cleaned.get(OTP_FIELD, "")
        if not token or not two_factor.check_token(device, token):
            user_login_failed.send(  # counted by django-axes like a wrong password
                sender=__name__,
                credentials={"username": user.get_username()},
                request=self.request,
            )
            code = "otp_wrong" if token else "otp_missing"
            raise forms.ValidationError(self.error_messages[code], code=code)
        user.otp_device = device  # django-otp keeps it in the session on login
        return cleaned


class LoginView(auth_views.LoginView):
    form_class = TwoFactorLoginForm
    template_name = "pages/login.html"
    redirect_authenticated_user = True

    def get_success_url(self) -> str:
        user = self.request.user
        if two_factor.requires_two_factor(user) and two_factor.confirmed_device(user) is None:
            messages.warning(
                self.request,
                "Your role signs with two factors: enrol an authenticator app before signing.",
            )
            return reverse("pages:two_factor")
        return super().get_success_url()


class EnrolForm(forms.Form):
    otp_token = _otp_field("The 6-digit code your app shows now")


@login_required
def two_factor_page(request: HttpRequest) -> HttpResponse:
    """Enrol (or replace) the user's authenticator app: the otpauth URI and the secret as text
    (a QR code too when a QR package is installed), confirmed by a code from the app. Replacing
    an enrolled app needs a session verified by it."""
    user = request.user
    enrolled = two_factor.confirmed_device(user)
    may_enrol = enrolled is None or two_factor.is_verified(request)
    context: dict[str, Any] = {
        "enrolled": enrolled,
        "required": two_factor.requires_two_factor(user),
        "may_enrol": may_enrol,
    }
    if not may_enrol:
        return render(request, "pages/two_factor.html", context)
    device = two_factor.pending_device(user)  # type: ignore[arg-type]
    form = EnrolForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_bound:
        if form.is_valid() and two_factor.confirm_enrolment(
            request, device, form.cleaned_data[OTP_FIELD]
        ):
            messages.success(request, "Your authenticator app is enrolled.")
            return redirect("pages:two_factor")
        form.add_error(OTP_FIELD, TwoFactorLoginForm.error_messages["otp_wrong"])
        status = 422
    context.update(
        form=form,
        config_url=device.config_url,
        secret=base64.b32encode(device.bin_key).decode("ascii"),
        qr_svg=_qr_svg(device.config_url),
    )
    response = render(request, "pages/two_factor.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page shows a secret
    return response


def _qr_svg(data: str) -> str | None:
    """The QR code of `data` as inline SVG when `qrcode` or `segno` is installed, else None."""
    from io import BytesIO

    from django_otp.qr import write_qrcode_image

    out = BytesIO()
    try:
        write_qrcode_image(data, out)
    except ModuleNotFoundError:
        return None
    return out.getvalue().decode("utf-8")


class PasswordChangeView(auth_views.PasswordChangeView):
    """The user changes their own password (the project's validators apply); audited, without
    the password or its hash."""

    form_class = PasswordChangeForm
    template_name = "pages/password_change.html"
    success_url = reverse_lazy("pages:patients")

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            audit.record(
                form.user,
                "update",
                form.user,
                old={"password": "(previous)"},
                new={"password": "(changed)"},
                reason="password changed by its owner",
            )
        messages.success(self.request, "Your password is changed.")
        return response
