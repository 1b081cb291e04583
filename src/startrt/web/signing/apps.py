from __future__ import annotations

from django.apps import AppConfig


class SigningConfig(AppConfig):
    """Electronic signatures of trial records; a signed record is locked until a reasoned unlock."""

    name = "startrt.web.signing"
    label = "signing"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from startrt.web.signing.services import revoke_signing_tokens

        user_logged_out.connect(revoke_signing_tokens, dispatch_uid="startrt.signing.logout")
