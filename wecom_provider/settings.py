"""Django settings, fed only by the environment (see README "Configuration").

One module for every environment: production, `make run` and `make test` differ
only in environment variables. Malformed values stop the process at import.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from wecom_provider.env import env_bool
from wecom_provider.env import env_int
from wecom_provider.env import env_list
from wecom_provider.env import env_secret
from wecom_provider.env import env_str
from wecom_provider.env import env_url
from wecom_provider.env import parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DJANGO_DEBUG", default=False)

# --- secrets -----------------------------------------------------------------
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set (a random key is generated only with DJANGO_DEBUG=1)"
        )
    # Per-process random key: sessions do not survive a restart, which is fine in development.
    SECRET_KEY = secrets.token_urlsafe(50)

# Key ring for secrets at rest ("id:base64-32-bytes,id2:…", newest first), deliberately
# separate from SECRET_KEY. Parsed and validated by wecom_provider.fieldcrypt at startup.
FIELD_ENCRYPTION_KEYS = env_secret("FIELD_ENCRYPTION_KEYS") or ""
if not FIELD_ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is not set")

# --- hosts and URLs ----------------------------------------------------------
# Where WeCom and browsers reach us: callback URLs, install redirects, CSRF origins.
PUBLIC_BASE_URL = env_url(
    "PUBLIC_BASE_URL",
    default="http://127.0.0.1:8000" if DEBUG else None,
    schemes=("http", "https"),
)
_public = urlsplit(PUBLIC_BASE_URL)

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS",
    default=["localhost", "127.0.0.1", "[::1]", _public.hostname or "localhost"]
    if DEBUG
    else [_public.hostname or ""],
)
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]

# --- applications --------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "wecom_provider",  # management commands (wecom_sandbox); no models
    "tenants",
    "licensing",
    "callbacks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "wecom_provider.urls"
WSGI_APPLICATION = "wecom_provider.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- data stores ---------------------------------------------------------------
DATABASES = {
    "default": parse_database_url(
        "DATABASE_URL",
        env_secret("DATABASE_URL") or "sqlite:///var/db.sqlite3",  # relative to BASE_DIR
        base_dir=BASE_DIR,
    ).as_django()
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", default="redis://127.0.0.1:6379/0", schemes=("redis", "rediss"))
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "wcp",
        "OPTIONS": {
            # Short timeouts: a Redis outage must surface as an error quickly, not hang requests.
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- WeCom -------------------------------------------------------------------
WECOM_API_BASE = env_url(
    "WECOM_API_BASE", default="https://qyapi.weixin.qq.com", schemes=("http", "https")
)
WECOM_HTTP_TIMEOUT = env_int("WECOM_HTTP_TIMEOUT", default=10, minimum=1)

# --- Celery ------------------------------------------------------------------
# Delivery is at-least-once; tasks opt into acks_late one by one when idempotent.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# No task is ever scheduled further out than this; the broker's visibility timeout
# (after which Redis redelivers an unacked message) must stay well above it.
CELERY_MAX_COUNTDOWN = 30 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_RESULT_EXPIRES = 60 * 60
CELERY_TIMEZONE = "UTC"

# --- DRF / OpenAPI -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "wecom-provider internal API",
    "VERSION": "1",
}

# --- auth, i18n, static ------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- security (production defaults; DEBUG relaxes what needs HTTPS) ---------------------
_https = _public.scheme == "https"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=_https and not DEBUG)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", default=0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- logging -------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": sys.stderr, "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # httpx logs full URLs at INFO, and WeCom puts tokens in query strings.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- WeCom install pages ---------------------------------------------------------
# Where admins' browsers install a suite (the simulator's URL in development and tests).
WECOM_INSTALL_BASE = env_url(
    "WECOM_INSTALL_BASE", default="https://open.work.weixin.qq.com", schemes=("http", "https")
)
