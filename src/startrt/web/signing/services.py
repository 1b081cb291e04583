"""Electronic signatures by re-entering the password (21 CFR Part 11 style).

`sign` checks the password (and, for investigators and administrators, the second factor: see
`two_factor`), then stores who, when, what and the meaning with a SHA-256 of the record's
content. A wrong password or code is a `SigningFailure` (audited), counted apart from the login
throttle of django-axes: `settings.SIGNING_FAILURE_LIMIT` of them within
`settings.SIGNING_COOLOFF_MINUTES` lock the user's signing, not their login, until the oldest
leaves that window (even the right password is then refused). An active signature locks its
record unless its meaning is a review (`Meaning.locks`): services that change a record call
`ensure_unlocked` (or `is_locked`) first. `unlock` needs the password and a reason, and is
audited. The password check runs outside any transaction, so a failed attempt is kept even
when the action is rolled back: call these outside `atomic`.

Signing tokens (21 CFR 11.200(a)(1)(i): within one continuous session, the first signing uses
every component, later ones one component only the signer can use): `issue_signing_token`
checks the password (and second factor) as a signature would and returns a random token, bound
to the user and the signed-in session, valid `settings.SIGNING_TOKEN_MINUTES`, revoked at
logout; every signing function accepts `signing_token` instead of the password. Only SHA-256
digests are stored. The signature's audit entry says what was used (`signed_with`: "password"
or "signing session <id>").
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from startrt.validation import InvalidInputError
from startrt.web.signing import two_factor
from startrt.web.signing.models import Meaning, Signature, SigningFailure, SigningToken
from startrt.web.trial import audit, chain
from startrt.web.trial.changes import require_reason
from startrt.web.trial.models import Patient, Role
from startrt.web.trial.permissions import require_role, visible_patients

SIGNING_ROLES: dict[Meaning, tuple[Role, ...]] = {
    Meaning.AUTHORSHIP: (
        Role.RESEARCH_NURSE,
        Role.INVESTIGATOR,
        Role.PHYSICIST,
        Role.PHARMACIST,
    ),
    Meaning.REVIEW: (Role.MONITOR, Role.INVESTIGATOR, Role.PHYSICIST, Role.PHARMACIST),
    Meaning.APPROVAL: (Role.INVESTIGATOR, Role.PHYSICIST),
    Meaning.RESPONSIBILITY: (Role.INVESTIGATOR, Role.PHYSICIST, Role.PHARMACIST),
}
"""Who may sign with which meaning (at the patient's site); the signer may always unlock their
own signature, an investigator at the site anyone's."""
ALREADY_SIGNED = "you have already signed this record with this meaning"


class SignatureRefusedError(InvalidInputError):
    """The password or one-time code was wrong or missing, or signing is locked after too many
    failures: nothing was signed."""


class RecordLockedError(InvalidInputError):
    """The record carries an active signature: unlock it, with a reason, before changing it."""


def kind_of(record: models.Model) -> str:
    """The record kind signatures use: the model label, e.g. "trial.screening"."""
    return str(record._meta.label_lower)


def content_sha256(record: models.Model) -> str:
    """SHA-256 of the record's field values as canonical JSON (sorted keys, no spaces); of only
    the fields its model names in `signed_fields` when it names them (a cycle's release covers
    its plan, not the administration recorded after it)."""
    values = audit.snapshot(record)
    signed_fields = getattr(type(record), "signed_fields", None)
    if signed_fields is not None:
        values = {name: values[name] for name in signed_fields}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_password(request: HttpRequest, password: str, otp_token: str = "") -> AbstractBaseUser:
    """The signed-in user, if `password` is theirs and, when they sign with two factors, the
    session is verified or `otp_token` is a current code of their device (the session is then
    verified); else SignatureRefusedError, counted against the signing throttle. Call outside
    `atomic`, so that a failure is kept when the action is rolled back."""
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied("sign in before signing")
    _refuse_while_locked(user)
    if not password:
        raise SignatureRefusedError("password", "", "enter your password to sign")
    if not (user.is_active and user.check_password(password)):  # type: ignore[union-attr]
        _failed(request, user, "password")
        raise SignatureRefusedError(
            "password", "(hidden)", f"is not the password of {user.get_username()}: not signed"
        )
    if two_factor.requires_two_factor(user) or two_factor.confirmed_device(user) is not None:
        verify_second_factor(request, otp_token, required=True)
    return user  # type: ignore[return-value]


def check_credentials(
    request: HttpRequest, password: str, otp_token: str = "", signing_token: str = ""
) -> tuple[AbstractBaseUser, str]:
    """The signed-in user and what they signed with ("password" or "signing session <id>"):
    `signing_token` when given (`check_signing_token`), else `check_password`."""
    if signing_token:
        token = check_signing_token(request, signing_token)
        return request.user, f"signing session {token.pk}"  # type: ignore[return-value]
    return check_password(request, password, otp_token), "password"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _session_sha256(request: HttpRequest) -> str | None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    return _sha256(key) if key else None


def issue_signing_token(
    request: HttpRequest, password: str, otp_token: str = ""
) -> tuple[str, SigningToken]:
    """A new signing token (returned once, in clear) and its row, after `check_password` (a
    wrong password or code is a signing failure, as for a signature); audited. Refused without
    a signed-in session (a cookie) to bind it to."""
    user = check_password(request, password, otp_token)
    session = _session_sha256(request)
    if session is None:
        raise InvalidInputError("session", "", "a signing token needs a signed-in session")
    token = secrets.token_urlsafe(32)
    expires = timezone.now() + timedelta(minutes=settings.SIGNING_TOKEN_MINUTES)
    with transaction.atomic():
        row = SigningToken.objects.create(
            user_id=user.pk, token_sha256=_sha256(token), session_sha256=session, expires_at=expires
        )
        audit.record(user, "insert", row, old=None, new=_token_snapshot(row))  # type: ignore[arg-type]
    return token, row


def _token_snapshot(token: SigningToken) -> dict[str, object]:
    """What the audit keeps of a token: not its digests."""
    return {k: v for k, v in audit.snapshot(token).items() if not k.endswith("sha256")}


def check_signing_token(request: HttpRequest, signing_token: str) -> SigningToken:
    """The signed-in user's token `signing_token`, if it was issued in this session and is
    neither expired nor revoked; else SignatureRefusedError. A token that is not this user's
    in this session is a signing failure (counted); an expired or revoked one of theirs is not."""
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied("sign in before signing")
    _refuse_while_locked(user)
    token = SigningToken.objects.filter(token_sha256=_sha256(signing_token)).first()
    session = _session_sha256(request)
    if token is None or token.user_id != user.pk or session != token.session_sha256:
        _failed(request, user, "signing_token")
        raise SignatureRefusedError(
            "signing_token",
            "(hidden)",
            f"is not a signing token of {user.get_username()} in this session: not signed",
        )
    if token.revoked_at is not None:
        raise SignatureRefusedError(
            "signing_token", "(hidden)", "was revoked at logout: sign with the password"
        )
    if token.expires_at <= timezone.now():
        raise SignatureRefusedError(
            "signing_token",
            "(hidden)",
            f"expired at {token.expires_at:%H:%M} UTC: sign with the password, or ask for a new "
            "token (POST /api/signing-session)",
        )
    if not user.is_active or (
        two_factor.requires_two_factor(user) and not two_factor.is_verified(request)
    ):
        raise SignatureRefusedError(
            "signing_token", "(hidden)", "this session is not verified: sign with the password"
        )
    return token


def revoke_signing_tokens(
    sender: object, request: HttpRequest | None, user: Any, **_: object
) -> None:
    """`user_logged_out` receiver: revoke (audited) the tokens of the session being ended."""
    session = None if request is None else _session_sha256(request)
    if session is None or user is None or not getattr(user, "pk", None):
        return
    with transaction.atomic():
        live = SigningToken.objects.select_for_update().filter(
            user_id=user.pk,
            session_sha256=session,
            revoked_at__isnull=True,
        )
        for token in live:
            old = _token_snapshot(token)
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit.record(
                user, "update", token, old=old, new=_token_snapshot(token), reason="logout"
            )


def verify_second_factor(request: HttpRequest, otp_token: str, *, required: bool = False) -> None:
    """Verify this request's session with `otp_token`, a code of the user's TOTP device (a
    wrong code is a signing failure). Nothing to do when the session is already verified (a
    code sent anyway is not checked: it may be the one just used at sign-in) or, without a
    code, when `required` is False; else refused, naming what to do."""
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied("sign in before signing")
    device = two_factor.confirmed_device(user)
    if device is None:
        if required:
            raise SignatureRefusedError(
                "otp_token",
                "",
                "signing needs two-factor authentication: enrol an authenticator app at "
                "/account/two-factor/ first",
            )
        return
    if two_factor.is_verified(request):
        return
    if not otp_token:
        if required:
            raise SignatureRefusedError(
                "otp_token",
                "",
                "this session was not verified by a code: give the 6-digit code of your "
                "authenticator app (otp_token in the API; on the pages, sign in again with it)",
            )
        return
    _refuse_while_locked(user)
    if not two_factor.check_token(device, otp_token):
        _failed(request, user, "otp_token")
        raise SignatureRefusedError(
            "otp_token", "(hidden)", "is not a current code of your authenticator app: not signed"
        )
    two_factor.mark_verified(request, device)


def signing_locked_until(user: AbstractBaseUser) -> datetime | None:
    """When the user's signing lock ends, if `SIGNING_FAILURE_LIMIT` failures within the last
    `SIGNING_COOLOFF_MINUTES` lock it now; else None."""
    window = timedelta(minutes=settings.SIGNING_COOLOFF_MINUTES)
    limit = settings.SIGNING_FAILURE_LIMIT
    recent = list(
        SigningFailure.objects.filter(user_id=user.pk, at__gt=timezone.now() - window)
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return None
    return recent[-1] + window  # the limit-th most recent failure leaves the window then


def _refuse_while_locked(user: AbstractBaseUser) -> None:
    until = signing_locked_until(user)
    if until is not None:
        raise SignatureRefusedError(
            "password",
            "(hidden)",
            f"signing is locked after {settings.SIGNING_FAILURE_LIMIT} wrong passwords or codes "
            f"within {settings.SIGNING_COOLOFF_MINUTES} minutes: try again after "
            f"{until:%H:%M} UTC (signing in is not affected)",
        )


def _failed(request: HttpRequest, user: AbstractBaseUser, factor: str) -> None:
    """Keep (and audit) one failed signing attempt, in its own transaction."""
    with transaction.atomic():
        failure = SigningFailure.objects.create(
            user_id=user.pk,
            username=user.get_username(),
            factor=factor,
            ip_address=request.META.get("REMOTE_ADDR") or None,
        )
        audit.record(user, "insert", failure, old=None, new=audit.snapshot(failure))  # type: ignore[arg-type]


def sign(
    request: HttpRequest,
    password: str,
    kind: str,
    record_id: int | str,
    meaning: str,
    *,
    otp_token: str = "",
    signing_token: str = "",
) -> Signature:
    """Sign the record `kind` #`record_id` as the signed-in user, after re-checking the password
    (and the second factor, see `check_password`) or the signing token."""
    user, signed_with = check_credentials(request, password, otp_token, signing_token)
    return _store_signature(user, kind, record_id, meaning, signed_with)


def sign_action(
    request: HttpRequest,
    password: str,
    meaning: str,
    action: Callable[[], models.Model],
    *,
    otp_token: str = "",
    signing_token: str = "",
) -> Signature:
    """Run `action` (a service call returning the record it made or changed) and sign that
    record, in one transaction, only after the password (and second factor), or the signing
    token, is confirmed."""
    user, signed_with = check_credentials(request, password, otp_token, signing_token)
    with transaction.atomic():
        record = action()
        return _store_signature(user, kind_of(record), record.pk, meaning, signed_with)


def is_locked(kind: str, record_id: int | str) -> bool:
    """Whether the record carries an active signature whose meaning locks (`Meaning.locks`)."""
    return _locking_signatures(kind, record_id).exists()


def ensure_unlocked(kind: str, record_id: int | str) -> None:
    """Refuse (RecordLockedError) a change of a record that carries an active signature whose
    meaning locks; a review does not (the reviewer sees "changed since signed" instead)."""
    signature = _locking_signatures(kind, record_id).order_by("signed_at").first()
    if signature is not None:
        raise RecordLockedError(
            "record",
            f"{kind} {record_id}",
            f"is signed ({signature.meaning}) by {signature.signer_username} on "
            f"{signature.signed_at:%Y-%m-%d %H:%M} UTC: unlock the signature, with a reason, "
            "before changing it",
        )


def content_unchanged(signature: Signature) -> bool:
    """Whether the signed record still has the content it had when signed."""
    record = apps.get_model(signature.kind).objects.filter(pk=signature.record_id).first()
    return record is not None and content_sha256(record) == signature.content_sha256


def unlock(
    request: HttpRequest,
    password: str,
    signature: Signature,
    reason: str,
    *,
    otp_token: str = "",
    signing_token: str = "",
) -> Signature:
    """End `signature`'s lock on its record: the password (or signing token) again and a
    reason; audited."""
    reason = _unlock_reason(reason)
    user, signed_with = check_credentials(request, password, otp_token, signing_token)
    with transaction.atomic():
        return _unlock(user, signature, reason, signed_with)


def unlock_record(
    request: HttpRequest,
    password: str,
    kind: str,
    record_id: int | str,
    reason: str,
    *,
    otp_token: str = "",
    signing_token: str = "",
) -> list[Signature]:
    """End every active signature's lock on the record (one password or signing-token check,
    one transaction); refused when none locks it (a review, which does not lock, stays)."""
    reason = _unlock_reason(reason)
    user, signed_with = check_credentials(request, password, otp_token, signing_token)
    with transaction.atomic():
        locking = list(_locking_signatures(kind, record_id).order_by("signed_at", "pk"))
        if not locking:
            rule = "carries no active signature that locks it"
            raise InvalidInputError("record", f"{kind} {record_id}", rule)
        return [_unlock(user, signature, reason, signed_with) for signature in locking]


def _unlock_reason(reason: str) -> str:
    return require_reason(reason, "unlocking a signed record needs a reason")


def _unlock(
    user: AbstractBaseUser, signature: Signature, reason: str, signed_with: str = "password"
) -> Signature:
    signature = (
        Signature.objects.select_for_update().select_related("patient__site").get(pk=signature.pk)
    )
    if not visible_patients(user).filter(pk=signature.patient_id).exists():
        raise Http404("no such signature")
    if signature.signer_id != user.pk:
        require_role(user, signature.patient.site, Role.INVESTIGATOR)
    if not signature.active:
        raise InvalidInputError("signature", signature.pk, "is already unlocked")
    old = audit.snapshot(signature)
    signature.unlocked_at = timezone.now()
    signature.unlocked_by = user.get_username()
    signature.unlock_reason = reason
    # only these columns: the app's PostgreSQL role may update no other (app_role_grants)
    signature.save(update_fields=["unlocked_at", "unlocked_by", "unlock_reason"])
    _audit(user, "update", signature, old=old, reason=reason, signed_with=signed_with)
    return signature


def _active_signatures(kind: str, record_id: int | str) -> models.QuerySet[Signature]:
    return Signature.objects.filter(kind=kind, record_id=str(record_id), unlocked_at__isnull=True)


def _locking_signatures(kind: str, record_id: int | str) -> models.QuerySet[Signature]:
    locking = [meaning.value for meaning in Meaning if meaning.locks]
    return _active_signatures(kind, record_id).filter(meaning__in=locking)


@transaction.atomic
def _store_signature(
    user: AbstractBaseUser,
    kind: str,
    record_id: int | str,
    meaning: str,
    signed_with: str = "password",
) -> Signature:
    if meaning not in Meaning.values:
        raise InvalidInputError("meaning", meaning, f"must be one of {', '.join(Meaning.values)}")
    record = _locked_record(kind, record_id)
    patient = _patient_of(kind, record)
    if not visible_patients(user).filter(pk=patient.pk).exists():
        raise Http404("no such record")
    require_role(user, patient.site, *SIGNING_ROLES[Meaning(meaning)])
    if _active_signatures(kind, record.pk).filter(signer=user, meaning=meaning).exists():
        raise InvalidInputError("meaning", meaning, ALREADY_SIGNED)
    try:
        with transaction.atomic():
            signature = chain.append(  # hash-chained to the last signature
                Signature(
                    patient=patient,
                    kind=kind,
                    record_id=str(record.pk),
                    meaning=meaning,
                    content_sha256=content_sha256(record),
                    signer=user,
                    signer_username=user.get_username(),
                    signer_full_name=(
                        user.get_full_name() if hasattr(user, "get_full_name") else ""
                    ),
                )
            )
    except IntegrityError:  # a concurrent identical signature won the race
        raise InvalidInputError("meaning", meaning, ALREADY_SIGNED) from None
    _audit(user, "insert", signature, old=None, signed_with=signed_with)
    return signature


def _locked_record(kind: str, record_id: int | str) -> models.Model:
    """The record, row-locked so it cannot change while it is being signed."""
    try:
        model = apps.get_model(kind)
    except (LookupError, ValueError):
        raise InvalidInputError("kind", kind, "is not a record kind (app.model)") from None
    if model._meta.app_label == Signature._meta.app_label:
        raise InvalidInputError("kind", kind, "signatures are not signed")
    try:
        key = model._meta.pk.to_python(record_id)
    except ValidationError:
        raise Http404("no such record") from None
    record = model.objects.select_for_update().filter(pk=key).first()
    if record is None:
        raise Http404("no such record")
    return record


def _patient_of(kind: str, record: models.Model) -> Patient:
    patient = record if isinstance(record, Patient) else getattr(record, "patient", None)
    if not isinstance(patient, Patient):
        raise InvalidInputError("kind", kind, "this record belongs to no patient: not signable")
    return patient


def _audit(
    user: AbstractBaseUser,
    action: str,
    signature: Signature,
    *,
    old: dict[str, object] | None,
    reason: str = "",
    signed_with: str = "password",
) -> None:
    """Audit a signature's insert or unlock, with what the signer used (`signed_with`)."""
    audit.record(
        user,
        action,
        signature,
        old=old,
        new={**audit.snapshot(signature), "signed_with": signed_with},
        reason=reason,
        patient_trial_id=signature.patient.trial_id,
    )
