"""Two-factor authentication (TOTP, django-otp) of the people who sign for the trial.

Investigators and administrators need a confirmed TOTP device to sign; anyone who has enrolled
one gives its code at login. A session is *verified* once a code was accepted in it (at login,
at enrolment, or with a signing request that carries `otp_token`): django-otp's middleware then
puts the device on `request.user.otp_device`. Signing asks every time for the password and, the
first time in a session not yet verified, for the code (21 CFR 11.200(a)(1): the first signing
of a session uses every component, later ones at least one; a TOTP code is also valid only once,
so a fresh code for each of several signings within 30 s could not be given).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from startrt.web.trial import audit
from startrt.web.trial.models import Membership, Role

TWO_FACTOR_ROLES = (Role.INVESTIGATOR, Role.ADMINISTRATOR)
"""The roles that must enrol a TOTP device to sign (and give its code at login)."""
DEVICE_NAME = "authenticator app"


def requires_two_factor(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether `user` must sign with a second factor: an investigator (at any site), an
    administrator or a superuser."""
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return Membership.objects.filter(user_id=user.pk, role__in=TWO_FACTOR_ROLES).exists()


def confirmed_device(user: AbstractBaseUser | AnonymousUser) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if they enrolled one."""
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).order_by("pk").first()


def pending_device(user: AbstractBaseUser) -> TOTPDevice:
    """The user's unconfirmed device, created (with a fresh random key) when there is none: its
    secret is shown once at enrolment and it counts only once a code from it is confirmed."""
    device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def is_verified(request: HttpRequest) -> bool:
    """Whether this request's session was verified by a code of the user's own device."""
    device = getattr(request.user, "otp_device", None)
    return (
        device is not None
        and getattr(device, "user_id", None) == request.user.pk
        and getattr(device, "confirmed", False)
    )


def check_token(device: TOTPDevice, token: str) -> bool:
    """Whether `token` is a current, not yet used code of `device` (django-otp throttles a
    device after failures and refuses a code used before)."""
    token = (token or "").strip().replace(" ", "")
    if not token.isdigit() or len(token) != device.digits:
        return False
    with transaction.atomic():  # django-otp's throttle and last-used step are saved together
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        accepted = bool(locked.verify_token(token))
    device.refresh_from_db()
    return accepted


def mark_verified(request: HttpRequest, device: TOTPDevice) -> None:
    """Remember in the session (when there is one) that `device` verified this user."""
    if hasattr(request, "session"):
        otp_login(request, device)
    else:  # a request without a session (a service call): this request only
        request.user.otp_device = device  # type: ignore[union-attr]


def confirm_enrolment(request: HttpRequest, device: TOTPDevice, token: str) -> bool:
    """Confirm the pending `device` with a code from the app: it becomes the user's device (any
    earlier one is replaced), the session is verified; audited. False if the code is wrong."""
    user = request.user
    if device.user_id != user.pk or device.confirmed or not check_token(device, token):
        return False
    with transaction.atomic():
        old = [_snapshot(d) for d in TOTPDevice.objects.filter(user_id=user.pk, confirmed=True)]
        TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit.record(
            user,  # type: ignore[arg-type]
            "insert",
            device,
            old=None,
            new={**_snapshot(device), "replaces": old},
        )
    mark_verified(request, device)
    return True


def _snapshot(device: TOTPDevice) -> dict[str, Any]:
    """What the audit keeps of a device: never its key."""
    return {
        "id": device.pk,
        "user": device.user_id,
        "name": device.name,
        "confirmed": device.confirmed,
        "digits": device.digits,
        "step": device.step,
    }
