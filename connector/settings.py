"""Settings, all from the environment (django-environ).

Every setting has a default that serves `make run` on one machine: SQLite, an
embedded Celery broker on the filesystem and a file-backed cache. Production
(`DJANGO_ENV=production`) refuses to start without real secrets and turns on
every transport-security setting `check --deploy` asks for.
"""

from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

# State that the embedded configuration shares between processes on one machine
# (broker queue, cache, lock files). Never used when REDIS_URL is set.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-secret-key-not-for-production-0123456789")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Development defaults below serve `make run`; in production they are empty, and the
# system checks of connector/web/checks.py refuse them (and the development ones).
PUBLIC_URL = env.str("PUBLIC_URL", default="" if PRODUCTION else "http://127.0.0.1:8000").rstrip(
    "/"
)
SOURCE_PRODUCT_NAME = env.str("SOURCE_PRODUCT_NAME", default="Acme")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "tenants",
    "connector.web",
    "connector.connections",
    "connector.sources",
    "connector.metrics",
    "connector.sync",
    "connector.imports",
    "connector.planner",
]
if not PRODUCTION:
    # The fake LaunchDarkly of `make run` and the tests (`manage.py ldsandbox`); its
    # dependencies are the `sandbox` extra, which production does not install.
    INSTALLED_APPS.append("sandbox")
    # The demo user that `manage.py seed_demo` creates and `make run` prints (one place).
    DEMO_SIGN_IN = {"email": "demo@example.com", "password": "demo-password-2026"}

MIDDLEWARE = [
    "connector.observability.middleware.RequestContextMiddleware",  # first: every answer
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "connector.urls"
WSGI_APPLICATION = "connector.wsgi.application"

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
                "tenants.context_processors.workspaces",
                "connector.connections.context_processors.launchdarkly_connection",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to one file: wait for the lock instead of failing,
    # and take the write lock at BEGIN so two writers never deadlock on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so worker processes started by the tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenants.User"
# The only backend: every door that signs people in is throttled (tenants/throttle.py).
AUTHENTICATION_BACKENDS = ["tenants.throttle.ThrottledModelBackend"]
LOGIN_URL = "tenants:login"
LOGIN_REDIRECT_URL = "tenants:home"
LOGOUT_REDIRECT_URL = "tenants:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "connector" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Redis, or the embedded default -------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_timeout": 5, "socket_connect_timeout": 5},
        }
    }
else:
    # A file cache is shared by every process on the machine, which is what the
    # sign-in throttle needs; shared locks and counters use connector.shared_state.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery: at-least-once delivery -------------------------------------------------
# The longest countdown any task is given (rate-limit waits, backoff). The broker's
# visibility timeout must exceed it, or Redis redelivers a delayed task early.
CELERY_MAX_COUNTDOWN_S = 30 * 60
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any]
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_MAX_COUNTDOWN_S * 2 + 600,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
        "retry_on_timeout": True,
    }
else:
    # kombu's filesystem transport, with messages written and taken atomically
    # (connector/broker.py says why).
    CELERY_BROKER_TRANSPORT = "connector.broker:Transport"
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("out", "control", "work"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "control_folder": str(_broker_dir / "control"),
        "work_folder": str(_broker_dir / "work"),
        "store_processed": False,
        # kombu polls the folder once a second by default, which caps a worker at a
        # window's worth of items per second; a tenth of a second costs little.
        "polling_interval": 0.1,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
# Tasks are safe to run twice (atomic claims, deterministic keys), so a task running
# when the broker connection drops may finish; cancelling needs a pool that can kill
# jobs, which the threads pool our I/O-bound workers use cannot.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    "sync-sweep": {"task": "sync.sweep", "schedule": 30},
    "sync-resync": {"task": "sync.resync_all", "schedule": 60 * 60},
    "purge-expired-invitations": {
        "task": "tenants.invitations_purge_expired",
        "schedule": 24 * 60 * 60,
    },
    "purge-signin-counters": {"task": "tenants.signin_counters_purge", "schedule": 60 * 60},
    "imports-sweep": {"task": "imports.sweep", "schedule": 15},
    "imports-volumes": {"task": "imports.volumes", "schedule": 60 * 60},
}
CELERY_TIMEZONE = "UTC"

# --- Sync engine ------------------------------------------------------------------------
# Items of one workspace queued or in flight at once: bounds what one workspace can
# put in front of the others in the broker's queue (fairness), and its concurrency.
SYNC_WINDOW_PER_WORKSPACE = env.int("SYNC_WINDOW_PER_WORKSPACE", default=6)
SYNC_MAX_ATTEMPTS = env.int("SYNC_MAX_ATTEMPTS", default=6)
SYNC_BACKOFF_BASE_S = env.float("SYNC_BACKOFF_BASE_S", default=2.0)
SYNC_BACKOFF_CAP_S = env.float("SYNC_BACKOFF_CAP_S", default=300.0)
# A claim older than this belongs to a worker that died: the sweeper frees the item.
# Live workers renew their claim before every call and while they wait.
SYNC_STALE_CLAIM_S = env.int("SYNC_STALE_CLAIM_S", default=150)
# An item's own time limit: no LaunchDarkly call starts after it (the threads pool the
# workers use cannot enforce Celery's time limits). It plus one call's timeouts must
# stay under SYNC_STALE_CLAIM_S; a system check says so when it does not.
SYNC_ITEM_TIME_LIMIT_S = env.float("SYNC_ITEM_TIME_LIMIT_S", default=100.0)
# Rate-limit waits up to this long are slept in the worker (precise, no broker trip);
# longer ones reschedule the item.
SYNC_MAX_INLINE_WAIT_S = env.float("SYNC_MAX_INLINE_WAIT_S", default=11.0)
# Read timeout of the engine's LaunchDarkly calls: bounds how long a hung answer holds
# a worker slot and a place in the workspace's window.
SYNC_READ_TIMEOUT_S = env.float("SYNC_READ_TIMEOUT_S", default=20.0)

# --- Event import -------------------------------------------------------------------------
# A failed delivery (network, 5xx) waits a random time up to base * 2^attempts, capped.
IMPORT_BACKOFF_BASE_S = env.float("IMPORT_BACKOFF_BASE_S", default=0.5)
IMPORT_BACKOFF_CAP_S = env.float("IMPORT_BACKOFF_CAP_S", default=60.0)
# Occurrences per delivered batch (LaunchDarkly's 10 MB cap is kept by size as well).
IMPORT_BATCH_EVENTS = env.int("IMPORT_BATCH_EVENTS", default=5000)
# A drain hands over to a fresh task after this long, so one busy environment never
# holds a worker and other workspaces' drains get their turn.
IMPORT_DRAIN_SLICE_S = env.float("IMPORT_DRAIN_SLICE_S", default=20.0)

# --- LaunchDarkly ---------------------------------------------------------------------
LAUNCHDARKLY_BASE_URL = env.str("LAUNCHDARKLY_BASE_URL", default="")
LAUNCHDARKLY_EVENTS_URL = env.str("LAUNCHDARKLY_EVENTS_URL", default="")
LAUNCHDARKLY_OAUTH_CLIENT_ID = env.str(
    "LAUNCHDARKLY_OAUTH_CLIENT_ID", default="" if PRODUCTION else "connector-dev"
)
LAUNCHDARKLY_OAUTH_CLIENT_SECRET = env.str(
    "LAUNCHDARKLY_OAUTH_CLIENT_SECRET", default="" if PRODUCTION else "connector-dev-secret"
)
LAUNCHDARKLY_AUTHORIZE_ORIGINS = [
    "https://app.launchdarkly.com",
    "https://app.eu.launchdarkly.com",
    "https://app.launchdarkly.us",
    *([LAUNCHDARKLY_BASE_URL.rstrip("/")] if LAUNCHDARKLY_BASE_URL else []),
]
# Comma-separated Fernet keys, newest first. The default serves `make run` only.
TOKEN_ENCRYPTION_KEYS = env.list(
    "TOKEN_ENCRYPTION_KEYS",
    default=[] if PRODUCTION else ["ZGV2LW9ubHktZmVybmV0LWtleS1ub3QtZm9yLXByb2Q="],
)

# --- Email ------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="connector@localhost")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))  # file backend

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Proxies of our own in front of the web process (a load balancer: 1). Their
# X-Forwarded-For entries give the client's address for the sign-in throttle; with 0
# the header is ignored, as anyone can send it.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env.list(
        "CSRF_TRUSTED_ORIGINS", default=[PUBLIC_URL] if PUBLIC_URL else []
    )

# Enforced CSP: no inline script or style anywhere, so every page's JS and CSS are files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        # "Connect LaunchDarkly" posts here and is redirected to the instance's
        # authorize page; browsers apply form-action to that redirect too.
        "form-action": ["'self'", *LAUNCHDARKLY_AUTHORIZE_ORIGINS],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# Sign-in throttle, per account from one address (an address: 3 times as lenient):
# after SOFT failures each further attempt must wait longer; after HARD failures that
# address is refused for LOCKOUT seconds, and counts expire LOCKOUT seconds after the
# first failure.
SIGNIN_THROTTLE_SOFT = env.int("SIGNIN_THROTTLE_SOFT", default=3)
SIGNIN_THROTTLE_HARD = env.int("SIGNIN_THROTTLE_HARD", default=10)
SIGNIN_THROTTLE_LOCKOUT_S = env.int("SIGNIN_THROTTLE_LOCKOUT_S", default=15 * 60)

INVITATION_TTL_DAYS = 7

# --- Observability ----------------------------------------------------------------------
# `json` (production's default): one JSON object per line, with request_id, workspace,
# run_id, item_id and task_id when known (connector.observability.context) and the
# traceback of an exception as exc_info; `plain` (development's): text for people.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
if LOG_FORMAT not in ("json", "plain"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "connector.observability.context.LogContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; empty: no endpoint (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Error tracking: set, Sentry is initialised (Django and Celery); empty, never imported.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import connector
    from connector.observability.sentry import sentry_init

    sentry_init(dsn=SENTRY_DSN, environment=DJANGO_ENV, release=connector.__version__)
