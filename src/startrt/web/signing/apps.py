from __future__ import annotations

from django.apps import AppConfig


class SigningConfig(AppConfig):
    """Electronic signatures of trial records; a signed record is locked until a reasoned unlock."""

    name = "startrt.web.signing"
    label = "signing"
