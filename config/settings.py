"""Settings for the Safeguarding Recommendation Tracker.

One file, driven by environment variables with safe local defaults. Parsing is strict: a
malformed value stops start-up with a message rather than silently falling back.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"The environment variable {name} must be set.")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} must be at most {maximum}.")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
if DEBUG:
    SECRET_KEY = env_str("SECRET_KEY", "local-development-only-not-secret")
else:
    SECRET_KEY = env_str("SECRET_KEY")  # no default outside development

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "tracker.apps.StaticFilesConfig",  # django.contrib.staticfiles, minus front-end sources
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
    "axes",
    "tracker",
]

MIDDLEWARE = [
    # Outermost, so that every answer under /api/, errors included, carries Cache-Control: no-store.
    "tracker.api.middleware.no_store",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "tracker.User"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tracker.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers carry on while a writer commits; IMMEDIATE transactions take the write
    # lock up front so two writers queue on the busy timeout instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20, minimum=1),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out sign-in before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

FIXTURE_DIRS = [BASE_DIR / "fixtures"]
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves static files from the web process (gunicorn) in production, from `collectstatic`'s
# compressed, content-hashed copies. In development it serves the source files and picks up changes.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# GOV.UK Frontend comes from npm (`make install` runs npm ci) and is served as the project's own static files.
STATICFILES_DIRS = [("govuk", BASE_DIR / "node_modules" / "govuk-frontend" / "dist" / "govuk")]
# The first handler records each upload's name as sent, before Django strips folders from it, so a
# path-traversal name can be refused with a message rather than silently renamed.
FILE_UPLOAD_HANDLERS = [
    "tracker.upload_handlers.RawFilenameUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# A CSV export of more rows than this is made by the worker, like every Excel file: streaming it would
# hold the request (and a gunicorn worker, whose timeout would cut the file short) for minutes at 100,000.
CSV_STREAM_MAX_ROWS = env_int("CSV_STREAM_MAX_ROWS", 10_000, minimum=0)
# Password reset links by email stay valid for two hours.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 2 * 60 * 60, minimum=60)
# Password reset: at most this many emails an hour to one address, and requests from one client address
# (more: an office shares one address). See tracker.accounts.ThrottledPasswordResetView; counted in the cache.
PASSWORD_RESET_EMAILS_PER_HOUR = env_int("PASSWORD_RESET_EMAILS_PER_HOUR", 3, minimum=1)
PASSWORD_RESET_REQUESTS_PER_CLIENT_HOUR = env_int("PASSWORD_RESET_REQUESTS_PER_CLIENT_HOUR", 10, minimum=1)
# The cache holds throttle counters only. Without CACHE_URL it is per process (Django's local memory),
# so N web processes allow up to N times a limit; set CACHE_URL=redis://... to share it between them.
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} is not a redis:// address (or leave it empty).")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Evidence files: stored outside any URL Django or a web server serves; downloads go through a
# permission-checked view. MEDIA_URL is deliberately unset.
EVIDENCE_ROOT = Path(env_str("EVIDENCE_ROOT", str(VAR_DIR / "evidence")))
EVIDENCE_MAX_BYTES = env_int("EVIDENCE_MAX_BYTES", 20 * 1024 * 1024, minimum=1)
FILE_UPLOAD_PERMISSIONS = 0o640

# Hardening. Everything is on as soon as DEBUG is off; each switch can be overridden by its variable.
# Behind a reverse proxy that terminates TLS, set TRUSTED_PROXY_COUNT to the number of proxies in front
# of gunicorn: X-Forwarded-Proto then tells Django the request was HTTPS, and the client's address for
# sign-in throttling is read from X-Forwarded-For (see tracker.accounts.client_ip).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 60 * 60, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Sessions end after SESSION_IDLE_TIMEOUT seconds without a request: using a session moves its expiry
# on (written at most once a minute, see tracker.accounts.SessionStore, rather than SESSION_SAVE_EVERY_REQUEST).
SESSION_ENGINE = "tracker.accounts"
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT", 60 * 60, minimum=120)
# Content-Security-Policy (django-csp), on in development too so that the tests see what production
# sends. Pages load scripts, styles and images only from our own static files; the two inline scripts
# of the page template carry the per-request nonce. Style attributes stay allowed for the inline SVG
# charts. The API docs (Swagger UI, Redoc) are third-party pages built on inline scripts and styles.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/docs/", "/api/redoc/"],
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "manifest-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}
# Sign-in throttling (django-axes): AXES_FAILURE_LIMIT failures for one username from one address lock
# that pair out for AXES_COOLOFF_MINUTES, even with the right password. The pair, not the address alone:
# a whole office behind one shared address must not be locked out by one person's typos.
AXES_VERBOSE = False  # no banner on every manage.py command
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "tracker.accounts.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Axes' own admin pages list every organisation's sign-ins; governance leads unlock their own people from
# the Users page instead (action "Unlock sign-in"), and operators use `manage.py axes_reset_username`.
AXES_ENABLE_ADMIN = False
AXES_COOLOFF_MESSAGE = (
    "Too many failed attempts to sign in. Wait a while before trying again, or ask a governance lead."
)

# Email: files under var/mail/ locally; SMTP in production.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Recommendation Tracker <tracker@localhost>")

# Celery: JSON only, tasks take ids. See config/celery.py for the timing invariants.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A task is acknowledged only when it finishes, and requeued if its worker process dies. Timing must
# nest: task time limit < reminder lease < broker visibility timeout (checked in config/celery.py),
# so a lease never runs out under a live task, and a redelivered task finds its rows' leases expired.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=2)
CELERY_TASK_SOFT_TIME_LIMIT = env_int(
    "CELERY_TASK_SOFT_TIME_LIMIT", CELERY_TASK_TIME_LIMIT - max(1, CELERY_TASK_TIME_LIMIT // 10), minimum=1
)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)}
# The files the worker makes (tracker.tasks.build_export) get longer: a board-pack PDF of an inspection
# with thousands of recommendations takes minutes. Still shorter than the visibility timeout, so a file
# being made is never handed to a second worker.
EXPORT_TASK_TIME_LIMIT = env_int("EXPORT_TASK_TIME_LIMIT", 1800, minimum=2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Workflow and reminder defaults.
# At most tracker.models.MAX_REVIEW_INTERVAL_DAYS (models cannot be imported from settings).
DEFAULT_REVIEW_INTERVAL_DAYS = env_int("DEFAULT_REVIEW_INTERVAL_DAYS", 28, minimum=1, maximum=366)
# Closure follows outcomes: an outcome-gated recommendation closes once each measure has met its target
# for this many consecutive latest periods (or a reviewer records an override).
OUTCOME_PERIODS_REQUIRED = env_int("OUTCOME_PERIODS_REQUIRED", 3, minimum=1, maximum=24)
REMINDER_LEAD_DAYS = env_int("REMINDER_LEAD_DAYS", 7, minimum=0)
REMINDER_OVERDUE_REPEAT_DAYS = env_int("REMINDER_OVERDUE_REPEAT_DAYS", 7, minimum=1)
REMINDER_ESCALATION_DAYS = env_int("REMINDER_ESCALATION_DAYS", 14, minimum=1)
# Delivery: a claimed batch is leased to one worker; temporary failures wait in the ledger with
# exponential backoff and jitter; after REMINDER_MAX_ATTEMPTS a row is dead (shown in the admin).
REMINDER_LEASE_SECONDS = env_int("REMINDER_LEASE_SECONDS", 600, minimum=1)
# The lease renewed before each digest must outlast this many EMAIL_TIMEOUTs (one SMTP exchange),
# checked at worker start-up; only tests with a lease of a few seconds lower it.
REMINDER_SEND_TIMEOUTS = env_int("REMINDER_SEND_TIMEOUTS", 10, minimum=1)
REMINDER_BATCH_RECIPIENTS = env_int("REMINDER_BATCH_RECIPIENTS", 100, minimum=1)
REMINDER_RETRY_BASE_SECONDS = env_int("REMINDER_RETRY_BASE_SECONDS", 60, minimum=1)
REMINDER_RETRY_MAX_SECONDS = env_int("REMINDER_RETRY_MAX_SECONDS", 6 * 3600, minimum=1)
REMINDER_MAX_ATTEMPTS = env_int("REMINDER_MAX_ATTEMPTS", 10, minimum=1)

REST_FRAMEWORK = {
    # Token first: an anonymous request is then told 401 with a WWW-Authenticate header, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "tracker.api.pagination.Pagination",
    # JSON nested at most MAX_JSON_DEPTH deep (its size is bounded by DATA_UPLOAD_MAX_MEMORY_SIZE).
    "DEFAULT_PARSER_CLASSES": ["tracker.api.parsers.BoundedJSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "tracker.api.filters.StrictOrderingFilter",
    ],
    "EXCEPTION_HANDLER": "tracker.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Safeguarding Recommendation Tracker API",
    "DESCRIPTION": "The same objects and rules as the staff pages. Sign in with a session or send "
    "`Authorization: Token <key>`; every error has the body `{detail, code, errors?}`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Issue 16: a plan action's status is not a recommendation's; name its enum apart.
    "ENUM_NAME_OVERRIDES": {
        "PlanActionStatusEnum": "tracker.models.PlanActionStatus",
        "RagEnum": "tracker.models.Rag",  # a recommendation's RAG, "not rated" included
        "RagRatingEnum": "tracker.workflow.RAG_RATINGS",  # red, amber or green: setting a RAG, never "not rated"
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tracker.api.schema.forbid_unknown_request_fields",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # WeasyPrint narrates every step of a PDF at INFO.
    "loggers": {"weasyprint.progress": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}
