"""Fixtures shared by the web and demo tests."""

from typing import Any

import pytest


@pytest.fixture
def fast_password_hashing(settings: Any) -> None:
    """Tests create many users: a fast hasher here (production keeps Django's PBKDF2)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
