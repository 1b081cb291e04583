"""Django settings of the trial web application.

SQLite in the data folder by default (`STARTRT_DATA_DIR`, default `./var`); PostgreSQL or any
database by URL in `STARTRT_DATABASE_URL` (e.g. postgres://user@127.0.0.1:5432/startrt), with the
same migrations. The secret key comes from `STARTRT_SECRET_KEY`, or the file named by
`STARTRT_SECRET_KEY_FILE` (which may live outside the data folder), or a file created once in
the data folder. Key file, SQLite file and a new data folder are created owner-only (0600/0700).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

DATA_DIR = Path(os.environ.get("STARTRT_DATA_DIR", "var")).resolve()


def private_file(path: Path, content: str = "") -> Path:
    """Create `path` (and its missing folders, 0700) readable by the owner only (0600) from
    the first byte: opened with O_CREAT | O_EXCL and mode 0600, so there is no moment at which
    it is world-readable whatever the umask. An existing file is left as it is."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
    return path


def _secret_key() -> str:
    """`STARTRT_SECRET_KEY`, else the file `STARTRT_SECRET_KEY_FILE` (e.g. outside the data
    folder), else DATA_DIR/secret_key; a missing file is created 0600 with a new key."""
    if key := os.environ.get("STARTRT_SECRET_KEY"):
        return key
    path = Path(os.environ.get("STARTRT_SECRET_KEY_FILE") or DATA_DIR / "secret_key")
    if not path.exists():
        private_file(path, secrets.token_urlsafe(50))
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ImproperlyConfigured(f"the secret key file {path} is empty")
    return key


def _flag(name: str, *, default: bool) -> bool:
    """A yes/no setting from the environment: 1/true/yes/on or 0/false/no/off."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: use 1 or 0")


def _list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list from the environment."""
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """The header "X-Forwarded-Proto: https" as ("HTTP_X_FORWARDED_PROTO", "https"); "" -> None."""
    if not value.strip():
        return None
    header, separator, expected = value.partition(":")
    if not separator or not header.strip() or not expected.strip():
        raise ImproperlyConfigured(
            f"STARTRT_SECURE_PROXY_SSL_HEADER={value!r}: write it as 'Header-Name: value'"
        )
    return "HTTP_" + header.strip().upper().replace("-", "_"), expected.strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("STARTRT_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("STARTRT_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "ninja",  # its static Swagger UI for /api/docs (no CDN)
    "startrt.web.trial",
    "startrt.web.treatment",
    "startrt.web.events",
    "startrt.web.monitoring",
    "startrt.web.pages",
    "startrt.web.signing",
    "startrt.web.safety",
    "startrt.web.medications",
    "django_tasks",
    "django_tasks_db",  # the task queue's table: a study's dosimetry runs on `db_worker`
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "startrt.web.middleware.NoStoreMiddleware",
    "startrt.web.middleware.ApiJsonErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.otp_device: the session's 2nd factor
    "startrt.web.pages.time_zones.SiteTimeZoneMiddleware",  # a patient's site's time zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "startrt.web.pages.data_lock_views.DataLockRefusalMiddleware",  # a trigger's refusal: 409
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # login throttling: locks out after failures
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 1  # hours
# a lockout is per username AND address (a nested list is a combination in axes 8): one user's
# mistakes do not lock the colleagues behind the same hospital NAT
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# signing has its own throttle (signing.services): wrong signing passwords or codes lock signing,
# not login; SIGNING_FAILURE_LIMIT of them within SIGNING_COOLOFF_MINUTES, per user
SIGNING_FAILURE_LIMIT = 5
SIGNING_COOLOFF_MINUTES = 15
# a signing token (POST /api/signing-session) is valid this long, bound to the user and session
SIGNING_TOKEN_MINUTES = int(os.environ.get("STARTRT_SIGNING_TOKEN_MINUTES", "10"))
# two-factor (TOTP, django-otp): required to sign for investigators and administrators
OTP_TOTP_ISSUER = "startrt"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
ROOT_URLCONF = "startrt.web.urls"
WSGI_APPLICATION = "startrt.web.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("STARTRT_DATABASE_URL", f"sqlite:///{DATA_DIR / 'startrt.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers on the embedded SQLite: a write transaction (an atomic block; requests
    # are not wrapped, ATOMIC_REQUESTS stays off, so reads take no lock) takes the write lock as
    # it begins (BEGIN IMMEDIATE) and waits up to `timeout` seconds for it rather than failing
    # with "database is locked"; in WAL mode readers and the one writer do not block each other.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and DATABASES["default"][
    "NAME"
] not in ("", ":memory:"):
    # created 0600 before Django's first connection (SQLite would create it with the umask's
    # mode; an empty file is an empty database); SQLite gives its journal and WAL files the
    # database file's mode
    private_file(Path(DATABASES["default"]["NAME"]))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# the task queue (django-tasks, database backend: the same SQLite or PostgreSQL database); its
# worker (`startrt manage db_worker`) is started by `startrt serve`
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# unzipped size of an uploaded study (web/treatment/study_upload.py: 1 GiB fits 4 SPECT/CT)
STARTRT_MAX_STUDY_BYTES = int(os.environ.get("STARTRT_MAX_STUDY_BYTES", str(1 << 30)))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_AGE = 8 * 3600
CSRF_COOKIE_SAMESITE = "Strict"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Security behind HTTPS (README "Security"): all off by default for local use on http://127.0.0.1,
# STARTRT_HTTPS=1 turns the secure set on; each setting can also be given on its own.
HTTPS = _flag("STARTRT_HTTPS", default=False)
SESSION_COOKIE_SECURE = _flag("STARTRT_SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = _flag("STARTRT_CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_SSL_REDIRECT = _flag("STARTRT_SECURE_SSL_REDIRECT", default=HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^health$"]  # a proxy's health check over plain HTTP
SECURE_HSTS_SECONDS = int(
    os.environ.get("STARTRT_SECURE_HSTS_SECONDS", str(365 * 24 * 3600 if HTTPS else 0))
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("STARTRT_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = _flag("STARTRT_SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(
    os.environ.get("STARTRT_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https" if HTTPS else "")
)
CSRF_TRUSTED_ORIGINS = _list(
    "STARTRT_CSRF_TRUSTED_ORIGINS",
    [f"https://{host}" for host in ALLOWED_HOSTS if host and HTTPS],
)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): everything from the application itself, no inline script
# or style (the pages' stylesheet and the API docs' Swagger UI are static files); images may be
# data: URIs (Swagger UI's icons); no framing, no plugins, forms post to the application only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# API lists: `limit` items from `offset` (api.trial.Pages); pages of the site: PAGE_SIZE rows
NINJA_PAGINATION_PER_PAGE = 100
NINJA_PAGINATION_MAX_LIMIT = 1000
PAGE_SIZE = 50

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_TZ = True
STATIC_URL = "static/"

# E-mail (SAE notifications to the sponsor's safety desk, web/safety/notifications.py): written
# as files to DATA_DIR/mail by default; SMTP when STARTRT_EMAIL_HOST is set (port, user,
# password, TLS from STARTRT_EMAIL_PORT, _USER, _PASSWORD, _USE_TLS). Recipients: the
# comma-separated STARTRT_SAFETY_DESK_EMAIL.
STARTRT_SAFETY_DESK_EMAIL = _list("STARTRT_SAFETY_DESK_EMAIL", ["safety-desk@localhost"])
DEFAULT_FROM_EMAIL = os.environ.get("STARTRT_EMAIL_FROM", "startrt@localhost")
EMAIL_TIMEOUT = 20
if os.environ.get("STARTRT_EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["STARTRT_EMAIL_HOST"]
    EMAIL_PORT = int(os.environ.get("STARTRT_EMAIL_PORT", "25"))
    EMAIL_HOST_USER = os.environ.get("STARTRT_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("STARTRT_EMAIL_PASSWORD", "")
    EMAIL_USE_TLS = _flag("STARTRT_EMAIL_USE_TLS", default=False)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = DATA_DIR / "mail"
