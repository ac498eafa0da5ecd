"""Django settings. Everything that varies between deployments comes from config.env."""

from __future__ import annotations

import hashlib
import hmac

import dj_database_url

from config.env import BASE_DIR, read_env

ENV = read_env()

DEBUG = ENV.debug
SECRET_KEY = ENV.secret_key
ALLOWED_HOSTS = ENV.allowed_hosts
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "generation",
    "quiz",
    "studies",
    "stats",
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

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

DATABASES = {"default": dj_database_url.parse(ENV.database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    ENV.var_dir.mkdir(parents=True, exist_ok=True)
    # The demo's web server and worker threads share one SQLite file: WAL lets them read while another
    # writes, and IMMEDIATE transactions wait for the write lock (up to the timeout) instead of failing
    # with "database is locked" when a read transaction would have to upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;", "timeout": 20, "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = ENV.static_root
MEDIA_URL = "media/"
MEDIA_ROOT = ENV.media_root
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

RNAGAN_TILE_SIZE = ENV.tile_size
RNAGAN_GENERATION_QUEUE = ENV.generation_queue
RNAGAN_GENERATION_BATCH = ENV.generation_batch
RNAGAN_ENCODE_THREADS = ENV.encode_threads
RNAGAN_POOL_MIN = ENV.pool_min
RNAGAN_TILE_MAX_EXPOSURES = ENV.tile_max_exposures
RNAGAN_TILE_SERVED_BYTES = ENV.tile_served_bytes
RNAGAN_JOB_STALE_AFTER_S = 15 * 60
RNAGAN_QUIZ_ROUNDS = ENV.quiz_rounds
RNAGAN_QUIZ_GAME_TTL = ENV.quiz_game_ttl
RNAGAN_CLIENT_IP_HEADER = ENV.client_ip_header  # e.g. HTTP_X_FORWARDED_FOR
RNAGAN_DEMO_COHORT = ENV.demo_cohort
RNAGAN_EXPORT_SALT = ENV.export_salt or hmac.new(
    ENV.secret_key.encode(), b"rnagan export salt", hashlib.sha256).hexdigest()
# The statistics task recomputes at most this often, and only when answers or ratings changed.
RNAGAN_STATS_REFRESH_S = 120


def _cache_from_url(url: str) -> dict:
    if url.startswith(("redis://", "rediss://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    if url.startswith("file://"):
        return {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": url[len("file://"):]}
    if url.startswith("locmem://"):
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    raise ValueError(f"CACHE_URL={url!r}: use redis://, file:// or locmem://")


CACHES = {"default": _cache_from_url(ENV.cache_url)}
# A session holds only a player's nickname and the anonymous identity their games are filed under; losing
# one costs nothing that matters, and keeping it in the cache spares every game start two database writes.
SESSION_ENGINE = "django.contrib.sessions.backends.cache"

# Celery: Redis in production and tests; kombu's filesystem transport for the demo, so that a real
# worker process runs without any server to install.
CELERY_BROKER_URL = ENV.broker_url
CELERY_RESULT_BACKEND = ENV.result_backend
CELERY_TASK_IGNORE_RESULT = ENV.result_backend is None
if ENV.embedded_broker:
    _broker_dir = ENV.var_dir / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # kombu keeps its exchange tables in ./control unless told otherwise: keep them under var/ too.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = "rnagan"
CELERY_BEAT_SCHEDULE = {
    "replenish-tile-pool": {"task": "generation.tasks.replenish_pool", "schedule": 300.0},
    "resume-stalled-jobs": {"task": "generation.tasks.resume_stalled_jobs", "schedule": 600.0},
    # A refresh that waited longer than its period is dropped: the next one would do the same work.
    "quiz-crowd-stats-refresh": {"task": "quiz.tasks.crowd_stats_refresh", "schedule": 60.0, "options": {"expires": 55}},
    # Debounced: the task returns at once unless answers or ratings changed since the cached result.
    "stats-refresh": {"task": "stats.tasks.stats_refresh", "schedule": float(RNAGAN_STATS_REFRESH_S),
                      "options": {"expires": RNAGAN_STATS_REFRESH_S - 5}},
}
if ENV.broker_url.startswith(("redis://", "rediss://")):
    # An unacknowledged task returns to the queue after this long; it must outlast the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 3600}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = ENV.secure_ssl_redirect
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 30
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
