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
from wecom_provider.observability.net import parse_networks
from wecom_provider.observability.redaction import remember_secret

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

# The public host, plus loopback for health checks and scrapes from inside the host or
# container. An empty DJANGO_ALLOWED_HOSTS counts as unset.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=[]) or [
    _public.hostname or "localhost",
    "localhost",
    "127.0.0.1",
    "[::1]",
]
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]

# --- applications --------------------------------------------------------------
INSTALLED_APPS = [
    "ops.sites.OpsAdminConfig",  # django.contrib.admin with the ops dashboard (ops/sites.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (no CDN)
    "wecom_provider",  # management commands (wecom_sandbox); no models
    "tenants",
    "licensing",
    "callbacks",
    "api",
    "ops",  # ops dashboard in the admin, scrape-time gauges
    "webhooks",  # signed pushes of the event feed to products (webhooks/)
    "axes",  # admin login lockout (wecom_provider/observability/admin_throttle.py)
]

MIDDLEWARE = [
    # First, so every log line of the request (and early answers) carries the request id.
    "wecom_provider.observability.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Serializes admin login attempts per username and address so axes' check and count
    # cannot interleave; AxesMiddleware (last, as axes requires) turns lockouts into 429.
    "wecom_provider.observability.admin_throttle.AdminLoginSerializeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]
# Axes' backend first: it refuses locked-out credentials before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# WeCom's callback URLs run only these (wecom_provider/wsgi.py): server-to-server calls
# with a deadline need a request id and the security checks, nothing of the browser's.
CALLBACK_MIDDLEWARE = [
    "wecom_provider.observability.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
]
CALLBACK_URLCONF = "wecom_provider.callback_urls"

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

# Persistent connections (seconds; 0 closes each at the end of its request or task).
# Behind PgBouncer a kept client connection costs no PostgreSQL backend, only a slot
# of pgbouncer's max_client_conn.
DATABASES["default"]["CONN_MAX_AGE"] = env_int(
    "DATABASE_CONN_MAX_AGE", default=DATABASES["default"].get("CONN_MAX_AGE", 0), minimum=0
)
# DATABASE_POOLER names what sits between us and PostgreSQL. "pgbouncer-transaction":
# PgBouncer in transaction pooling, where each transaction (each statement in
# autocommit) may run on a different server connection. Nothing may then outlive a
# transaction on the server side (docs/operations.md, "Behind PgBouncer"):
# - no server-side cursors: QuerySet.iterator() would DECLARE a WITH HOLD cursor on one
#   server connection and FETCH from another;
# - no prepared statements: psycopg prepares a statement after prepare_threshold runs
#   and reuses the name on whatever server connection comes next (Django turns this
#   off by default; pinned here so a ?prepare_threshold= in DATABASE_URL cannot undo it);
# - no session-level advisory locks: wecom_provider/pglocks.py holds them in a
#   transaction on a connection of their own.
# SET TIME ZONE at connect is fine: PgBouncer tracks TimeZone per client.
DATABASE_POOLER = env_str("DATABASE_POOLER", "")
if DATABASE_POOLER not in ("", "pgbouncer-transaction"):
    raise ImproperlyConfigured("DATABASE_POOLER must be empty or 'pgbouncer-transaction'")
if DATABASE_POOLER:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_POOLER needs a postgres:// DATABASE_URL")
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
    DATABASES["default"]["OPTIONS"].pop("server_side_binding", None)

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
# The ceiling on calls to WeCom per second, for the whole platform (every process
# shares one Redis window: wecom/ratelimit.py). Background work (beat's
# token refreshes, reconciliation) may use only the ceiling minus the product reserve
# (percent), so product-facing calls always find room. A caller waits for a slot up to
# its wait (s), then gets WeComThrottled (API: 503; a refresh defers to a later tick).
# The guard (ms) lengthens the window so a call slow between grant and arrival still
# leaves WeCom seeing at most the ceiling in any second.
WECOM_MAX_CALLS_PER_SECOND = env_int("WECOM_MAX_CALLS_PER_SECOND", default=10, minimum=1)
WECOM_RATE_PRODUCT_RESERVE_PERCENT = env_int(
    "WECOM_RATE_PRODUCT_RESERVE_PERCENT", default=30, minimum=0
)
WECOM_RATE_PRODUCT_WAIT = env_int("WECOM_RATE_PRODUCT_WAIT", default=5, minimum=0)
WECOM_RATE_BACKGROUND_WAIT = env_int("WECOM_RATE_BACKGROUND_WAIT", default=20, minimum=0)
WECOM_RATE_WINDOW_GUARD_MS = env_int("WECOM_RATE_WINDOW_GUARD_MS", default=100, minimum=0)
# Measuring only (bench/scale.py): a Redis list to which the limiter appends every
# grant's time. Empty (the default): no ledger.
WECOM_RATE_LEDGER = env_str("WECOM_RATE_LEDGER", "")

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
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 2 * 60 * 60,
    # A publish to a dead broker must fail in milliseconds, not block the request for the
    # default 4 s connect timeout plus back-off (the callback view publishes after commit,
    # and WeCom gives up after 5 s). Workers reconnect on their own.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_RESULT_EXPIRES = 60 * 60
CELERY_TIMEZONE = "UTC"

# --- beat: one leader (celery-redbeat) ---------------------------------------------
# Any number of `celery beat` processes may run (one per zone, two pods): each takes a
# lock in Redis before it schedules anything; the others wait. The leader renews the
# lock every loop (at most CELERY_BEAT_MAX_LOOP_INTERVAL apart); when it dies without
# releasing it, the lock expires after CELERY_REDBEAT_LOCK_TIMEOUT and a standby takes over
# within that plus one loop (default: 30 + 5 s, inside the 60 s we promise). The
# schedule itself stays in wecom_provider/celery.py; redbeat copies it into Redis
# with each entry's last run, so a new leader neither repeats nor skips a tick.
CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = env_int("BEAT_MAX_LOOP_INTERVAL", default=5, minimum=1)
CELERY_REDBEAT_REDIS_URL = REDIS_URL
CELERY_REDBEAT_KEY_PREFIX = "wcp:redbeat:"
CELERY_REDBEAT_LOCK_KEY = "wcp:redbeat::lock"
CELERY_REDBEAT_LOCK_TIMEOUT = env_int("REDBEAT_LOCK_TIMEOUT", default=30, minimum=2)
if CELERY_REDBEAT_LOCK_TIMEOUT <= CELERY_BEAT_MAX_LOOP_INTERVAL:
    # The leader renews once a loop: a shorter lock would lapse between renewals.
    raise ImproperlyConfigured("REDBEAT_LOCK_TIMEOUT must exceed BEAT_MAX_LOOP_INTERVAL")
# Every period of the schedule is multiplied by this (tests run beats in minutes
# instead of hours); 1 in production.
try:
    BEAT_PERIOD_SCALE = float(env_str("BEAT_PERIOD_SCALE", "1"))
except ValueError:
    raise ImproperlyConfigured("BEAT_PERIOD_SCALE must be a number") from None
if not 0 < BEAT_PERIOD_SCALE <= 1:
    raise ImproperlyConfigured("BEAT_PERIOD_SCALE must be in (0, 1]")
# "name=seconds,…": the period of single entries (tests watch one tick closely).
BEAT_PERIOD_OVERRIDES: dict[str, float] = {}
for _item in env_list("BEAT_PERIOD_OVERRIDES", default=[]):
    _name, _, _seconds = _item.partition("=")
    try:
        BEAT_PERIOD_OVERRIDES[_name.strip()] = float(_seconds)
    except ValueError:
        raise ImproperlyConfigured("BEAT_PERIOD_OVERRIDES must be name=seconds,…") from None

# --- DRF / OpenAPI -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # API keys only (Authorization: Bearer wcp_…); no session auth, so no CSRF surface.
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Per-client fixed window in Redis (API_RATE_LIMIT_PER_MINUTE or the client's own).
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ClientRateThrottle"],
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "DEFAULT_VERSION": "v1",
    "ALLOWED_VERSIONS": ["v1"],
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
# Token economy (tenants.credentials): at most one rejection-driven WeCom call per
# credential per this many seconds; a refused credential (wrong secret, dead code) is
# not retried for this long after its second failure (the first retry comes sooner).
TOKEN_FORCED_REFRESH_COOLDOWN = env_int("TOKEN_FORCED_REFRESH_COOLDOWN", default=60, minimum=1)
TOKEN_CREDENTIAL_BACKOFF = env_int("TOKEN_CREDENTIAL_BACKOFF", default=3600, minimum=60)

SPECTACULAR_SETTINGS = {
    "TITLE": "wecom-provider internal API",
    "DESCRIPTION": "Tenants, corp access tokens, JS-SDK signatures, licenses and events for "
    "internal products. Authenticate with `Authorization: Bearer <key>`. Every error is "
    '`{"error": {"code", "message", "details"}}`.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs are public: they describe the API, not any tenant.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AuthorizationStatusEnum": "tenants.models.Authorization.Status",
        "LicenseOrderStatusEnum": "licensing.models.OrderStatus",
        "LicenseAccountStatusEnum": "licensing.models.AccountStatus",
        "LicenseAccountTypeEnum": "licensing.models.AccountType",
        "SuiteKindEnum": "tenants.models.Suite.Kind",
        "JsapiTicketKindEnum": "api.models.JsapiTicket.Kind",
    },
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
# A missing manifest entry falls back to the plain file name instead of a 500: tests and
# `make run` serve static files without collectstatic; the image runs collectstatic.
WHITENOISE_MANIFEST_STRICT = False
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
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=_https and not DEBUG)
# Probes and scrapers call these over plain HTTP inside the network; a redirect to
# https://<internal address> would only make them fail.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # only the admin's server-rendered forms use the token
SESSION_COOKIE_AGE = 12 * 60 * 60  # an ops console session lasts a working day, not two weeks
# On by default (one year) when the public URL is https: the console guards secrets and
# must never be reached over plain HTTP once a browser has seen it. DJANGO_HSTS_SECONDS=0
# turns it off (e.g. while trying HTTPS out).
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_HSTS_SECONDS", default=365 * 24 * 60 * 60 if _https and not DEBUG else 0, minimum=0
)
# Sent only while SECURE_HSTS_SECONDS > 0. The platform normally has a host of its own,
# so covering its subdomains costs nothing; set 0 when PUBLIC_BASE_URL is a shared apex.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Preload-list submission is the domain owner's decision for the whole registrable
# domain, not this service's; DJANGO_HSTS_PRELOAD=1 opts in.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Reverse proxies in front of the app that append to X-Forwarded-For. 0: use REMOTE_ADDR
# (and refuse network-based /metrics access to proxied requests). Used for the admin
# login throttle and the /metrics allow-list.
TRUSTED_PROXY_COUNT = env_int("DJANGO_TRUSTED_PROXY_COUNT", default=0, minimum=0)
# X-Forwarded-Proto decides whether a request counts as HTTPS (secure cookies, the SSL
# redirect). Any client can send that header, so it is trusted only behind a proxy that
# sets it, i.e. when DJANGO_TRUSTED_PROXY_COUNT > 0.
if TRUSTED_PROXY_COUNT > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Failed admin logins per username, and separately per client address, before 429, and
# the lockout window (s). Enforced by django-axes with its database handler.
ADMIN_LOGIN_MAX_FAILURES = env_int("ADMIN_LOGIN_MAX_FAILURES", default=5, minimum=1)
ADMIN_LOGIN_FAILURE_WINDOW = env_int("ADMIN_LOGIN_FAILURE_WINDOW", default=5 * 60, minimum=1)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# Two separate parameters, not a combination: guesses spread over many addresses still
# lock the username, and one address trying many usernames is locked as an address.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = "wecom_provider.observability.admin_throttle.axes_failure_limit"
AXES_COOLOFF_TIME = "wecom_provider.observability.admin_throttle.axes_cool_off"
AXES_CLIENT_IP_CALLABLE = "wecom_provider.observability.admin_throttle.axes_client_ip"
AXES_LOCKOUT_CALLABLE = "wecom_provider.observability.admin_throttle.axes_lockout_response"
AXES_RESET_ON_SUCCESS = True
# Refused attempts during a lockout do not restart it: otherwise anyone could keep an
# operator locked out forever by trying once every few minutes.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# No axes pages in the admin: every ModelAdmin there declares its permissions
# (wecom_provider/adminperms.py); unlock with `manage.py axes_reset_username` instead.
AXES_ENABLE_ADMIN = False
# Axes' per-request access log would grow by a row per admin login; failures suffice.
AXES_DISABLE_ACCESS_LOG = True
# Axes keeps the failed POST (password masked); the CSRF token is masked too.
AXES_SENSITIVE_PARAMETERS = ["csrfmiddlewaretoken"]

# /metrics: a bearer token (optional) or a client network in the allow-list.
METRICS_TOKEN = env_secret("METRICS_TOKEN") or ""
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
parse_networks("METRICS_ALLOWED_NETWORKS", METRICS_ALLOWED_NETWORKS)  # fail fast if malformed
# Celery workers count task outcomes and token refreshes in their own processes; with a
# port set, the worker serves them at http://WORKER_METRICS_ADDR:PORT/ (no auth: keep it
# on a private network). 0 = off.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", default=0, minimum=0)
WORKER_METRICS_ADDR = env_str("WORKER_METRICS_ADDR", "127.0.0.1")

# --- logging -------------------------------------------------------------------
# Every handler stamps records with the request/task and tenant ids and scrubs secrets
# (wecom_provider.observability.logs); filters sit on the handlers so they cover every
# logger that reaches one: ours, django.request, celery, gunicorn.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json").lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain")
_log_handler = {
    "class": "logging.StreamHandler",
    "stream": sys.stderr,
    "formatter": LOG_FORMAT,
    "filters": ["context", "redact"],  # context first: redaction must see the final record
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "wecom_provider.observability.logs.ContextFilter"},
        "redact": {"()": "wecom_provider.observability.logs.RedactingFilter"},
    },
    "formatters": {
        "json": {"()": "wecom_provider.observability.logs.JsonFormatter"},
        "plain": {"()": "wecom_provider.observability.logs.PlainFormatter"},
    },
    "handlers": {"console": _log_handler},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's default handlers: its console handler would print DEBUG lines
        # twice, and mail_admins would e-mail raw tracebacks with local variables.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # gunicorn configures these before loading the app; Django's dictConfig then swaps
        # their handlers for ours (the access line holds query strings: auth_code, …).
        "gunicorn.error": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # httpx logs full URLs at INFO, and WeCom puts tokens in query strings.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
# Secrets known at startup are scrubbed from logs by value too (exception texts, reprs).
for _secret in (
    SECRET_KEY,
    METRICS_TOKEN,
    DATABASES["default"].get("PASSWORD", ""),
    *(part.partition(":")[2] for part in FIELD_ENCRYPTION_KEYS.split(",")),
):
    remember_secret(_secret, pin=True)

# --- WeCom install pages ---------------------------------------------------------
# Where admins' browsers install a suite (the simulator's URL in development and tests).
WECOM_INSTALL_BASE = env_url(
    "WECOM_INSTALL_BASE", default="https://open.work.weixin.qq.com", schemes=("http", "https")
)
# The public install entry costs one or two WeCom calls per hit: cap it per client
# address (per minute, in Redis). An admin's test-install link is valid this long (s), and
# the signed install state (tenants/install_links.py) this long after its link was made.
INSTALL_RATE_LIMIT_PER_MINUTE = env_int("INSTALL_RATE_LIMIT_PER_MINUTE", default=10, minimum=1)
TEST_INSTALL_LINK_MAX_AGE = env_int("TEST_INSTALL_LINK_MAX_AGE", default=60 * 60, minimum=60)
INSTALL_STATE_MAX_AGE = env_int("INSTALL_STATE_MAX_AGE", default=60 * 60, minimum=60 * 30)

# --- licenses ---------------------------------------------------------------------
LICENSE_RECONCILE_DAYS = env_int("LICENSE_RECONCILE_DAYS", default=365, minimum=1)
LICENSE_EXPIRY_WARNING_DAYS = env_int("LICENSE_EXPIRY_WARNING_DAYS", default=30, minimum=1)
# Paid apps (应用版本付费): the order history the reconciler walks (31-day windows).
APP_ORDER_RECONCILE_DAYS = env_int("APP_ORDER_RECONCILE_DAYS", default=365, minimum=1)

# --- callbacks -------------------------------------------------------------------
CALLBACK_MAX_BODY_BYTES = env_int("CALLBACK_MAX_BODY_BYTES", default=64 * 1024, minimum=1024)
# WeCom's query timestamp must be this close to our clock (seconds, either way).
CALLBACK_TIMESTAMP_TOLERANCE = env_int("CALLBACK_TIMESTAMP_TOLERANCE", default=300, minimum=1)
CALLBACK_RETENTION_DAYS = env_int("CALLBACK_RETENTION_DAYS", default=30, minimum=1)

# --- internal REST API (/api/v1/) ------------------------------------------------------
# Requests per minute per API client unless the client has its own limit.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", default=600, minimum=1)
# The event feed holds back events younger than this, so its id cursor never skips one
# whose transaction committed late.
API_EVENTS_SETTLE_SECONDS = env_int("API_EVENTS_SETTLE_SECONDS", default=2, minimum=0)

# --- WeCom API gateway (api/gateway/, docs/gateway.md) ---------------------------------
# WeCom's quotas (protocol §10), enforced in Redis before a call leaves (429 +
# Retry-After); 0 turns one off. Per corp and API, per outbound address and API (the
# third-party provider figures), per member for app messages, per hour for JS-SDK tickets.
WECOM_QUOTA_CORP_API_PER_MINUTE = env_int(
    "WECOM_QUOTA_CORP_API_PER_MINUTE", default=10_000, minimum=0
)
WECOM_QUOTA_CORP_API_PER_HOUR = env_int("WECOM_QUOTA_CORP_API_PER_HOUR", default=150_000, minimum=0)
WECOM_QUOTA_ADDRESS_API_PER_MINUTE = env_int(
    "WECOM_QUOTA_ADDRESS_API_PER_MINUTE", default=40_000, minimum=0
)
WECOM_QUOTA_ADDRESS_API_PER_HOUR = env_int(
    "WECOM_QUOTA_ADDRESS_API_PER_HOUR", default=1_200_000, minimum=0
)
WECOM_QUOTA_MESSAGE_PER_MEMBER_PER_MINUTE = env_int(
    "WECOM_QUOTA_MESSAGE_PER_MEMBER_PER_MINUTE", default=30, minimum=0
)
WECOM_QUOTA_JSAPI_TICKET_CORP_PER_HOUR = env_int(
    "WECOM_QUOTA_JSAPI_TICKET_CORP_PER_HOUR", default=400, minimum=0
)
WECOM_QUOTA_JSAPI_TICKET_APP_PER_HOUR = env_int(
    "WECOM_QUOTA_JSAPI_TICKET_APP_PER_HOUR", default=100, minimum=0
)
# Names the egress address the per-address quota counts for (one shared window when all
# web processes leave through one NAT address; set per egress otherwise).
WECOM_GATEWAY_OUTBOUND_ADDRESS = env_str("WECOM_GATEWAY_OUTBOUND_ADDRESS", "")
# After a 45033 (concurrency) the corp's API is held back this many seconds; a 45009
# holds it for WeCom's block (60 s, then 1 h, then the rest of the day when repeated).
WECOM_GATEWAY_CONCURRENCY_BREAKER_SECONDS = env_int(
    "WECOM_GATEWAY_CONCURRENCY_BREAKER_SECONDS", default=10, minimum=1
)
# Largest JSON body a product may send through the gateway (bytes).
WECOM_GATEWAY_MAX_JSON_BYTES = env_int(
    "WECOM_GATEWAY_MAX_JSON_BYTES", default=1024 * 1024, minimum=1024
)

# --- webhooks (webhooks/) ------------------------------------------------------------
# Hosts (names, IPs or CIDR networks) a subscription may reach over http or at a
# non-public address; everything else must be https to a public address.
WEBHOOK_ALLOWED_HOSTS = env_list("WEBHOOK_ALLOWED_HOSTS", default=[])
# A subscription whose deliveries have all failed for this long is disabled (and alerts).
WEBHOOK_DISABLE_AFTER_DAYS = env_int("WEBHOOK_DISABLE_AFTER_DAYS", default=5, minimum=1)
# Feed rows older than this are pruned (rows a pending delivery still needs are kept).
FEED_RETENTION_DAYS = env_int("FEED_RETENTION_DAYS", default=30, minimum=1)
